"""The ``opro`` loss extractor: a prompt's loss is its error rate (1 - its mean score under the
task's metric) on the scoring split (dev), measured with the task model through
:func:`promptopt.evaluation.evaluate` with the instruction at its position; a prompt scored
before reuses the history's score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptopt.components import ComponentOptions, LossExtractor, StepContext
from promptopt.history import PromptKey, prompt_key
from promptopt.types import Candidate, Prompt, PromptLoss, Split
from promptopt_opro.layout import placed
from promptopt_opro.metaprompt import InstructionPos

#: The split OPRO scores instructions on (the reference's optimization set).
SCORE_SPLIT: Split = "dev"


class OproLossOptions(ComponentOptions):
    """How an instruction's accuracy is measured."""

    #: Where the task model sees the instruction (shared with the method and the proposer).
    instruction_pos: InstructionPos = "Q_end"
    #: Reasoning tokens per example (greedy, as the reference's scorer at temperature 0).
    max_new_tokens: int = Field(default=256, ge=1)
    #: Tokens generated after the task's extractor to read the answer.
    answer_max_tokens: int = Field(default=12, ge=1)
    #: Reuse finished per-example outcomes from the evaluation cache on disk.
    cache: bool = True


class OproLossExtractor(LossExtractor[OproLossOptions]):
    """Exact scoring-split accuracy of each new instruction (a greedy chain per example, then
    the task's extractor and answer)."""

    name = "opro"
    description = "dev-split error rate with the instruction at its position (OPRO)"
    Options = OproLossOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._memo: dict[tuple[PromptKey, Split], PromptLoss] = {}

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """The dev error rate of every candidate: the history's for one scored before."""
        losses = []
        for candidate in candidates:
            earlier = ctx.history.lookup(candidate.prompt, split=SCORE_SPLIT)
            if earlier is not None:
                ctx.count("scores_reused")
                losses.append(earlier.loss)
            else:
                losses.append(self.evaluate(ctx, [candidate.prompt], split=SCORE_SPLIT)[0].loss)
        return losses

    def evaluate(
        self, ctx: StepContext, prompts: Sequence[Prompt], *, split: Split = "train"
    ) -> list[PromptLoss]:
        """Exact losses on ``split``; each prompt is measured once per split and process."""
        return [
            self._memo.get((prompt_key(p), split)) or self._measure(ctx, p, split) for p in prompts
        ]

    def _measure(self, ctx: StepContext, prompt: Prompt, split: Split) -> PromptLoss:
        from promptopt.evalcache import EvalCache
        from promptopt.evaluation import evaluate

        opts = self.options
        task, backend = placed(ctx.task, ctx.backend, prompt, opts.instruction_pos)
        with ctx.timed("evaluation"):
            report = evaluate(
                backend,
                task,
                prompt,
                ctx.examples(split),
                max_new_tokens=opts.max_new_tokens,
                answer_max_tokens=opts.answer_max_tokens,
                split=split,
                progress=ctx.progress,
                cache=EvalCache.default() if opts.cache else None,
            )
        ctx.count("prompts_evaluated")
        ctx.count("examples_generated", report.n - report.cache_hits)
        total = sum(o.score for o in report.outcomes)
        error = (report.n - total) / report.n if report.n else 1.0
        loss = PromptLoss(
            prompt,
            loss=error,
            error_rate=error,
            details={"correct": float(report.correct), "n": float(report.n), "score": total},
            split=split,
        )
        self._memo[(prompt_key(prompt), split)] = loss
        return loss
