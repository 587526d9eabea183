"""``evoprompt-dev``: a prompt's loss is its error rate (1 - its mean score under the task's
metric) on the dev split, where the authors score every prompt. Measured with the task model
through :func:`promptopt.evaluation.evaluate` (greedy reasoning, the task's extractor and
parser; its on-disk cache means a prompt is never generated twice on one model); a prompt the
run scored before reuses its score from the history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from promptopt.components import ComponentOptions, LossExtractor, StepContext
from promptopt.history import PromptKey, prompt_key
from promptopt.types import Candidate, Prompt, PromptLoss, Split

#: Where EvoPrompt scores prompts (the authors' dev sample).
SCORE_SPLIT: Split = "dev"


class DevLossOptions(ComponentOptions):
    """How a prompt's dev score is measured."""

    #: Reasoning tokens per example (promptopt eval's default; the authors' davinci: 1000).
    max_new_tokens: int = Field(default=512, ge=1)
    #: Tokens generated after the task's extractor to read the answer.
    answer_max_tokens: int = Field(default=12, ge=1)
    #: "generate": parse the generated answer; "logprob": the most likely option.
    scoring: Literal["generate", "logprob"] = "generate"
    #: Reuse finished per-example outcomes from the evaluation cache on disk.
    cache: bool = True


class DevLossExtractor(LossExtractor[DevLossOptions]):
    """Exact dev-split error rate of every candidate (each prompt measured once per split and
    process; repeats reuse the history)."""

    name = "evoprompt-dev"
    description = "dev-split error rate via promptopt's evaluation and its cache (EvoPrompt)"
    Options = DevLossOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._memo: dict[tuple[PromptKey, Split], PromptLoss] = {}

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """The dev error rate of every candidate: from the history when scored before, else
        measured now."""
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
        """Exact losses on ``split`` (EvoPrompt's components ask for dev)."""
        return [
            self._memo.get((prompt_key(p), split)) or self._measure(ctx, p, split) for p in prompts
        ]

    def _measure(self, ctx: StepContext, prompt: Prompt, split: Split) -> PromptLoss:
        from promptopt.evalcache import EvalCache
        from promptopt.evaluation import evaluate

        opts = self.options
        examples = ctx.examples(split)
        with ctx.timed("evaluation"):
            report = evaluate(
                ctx.backend,
                ctx.task,
                prompt,
                examples,
                scoring=opts.scoring,
                max_new_tokens=opts.max_new_tokens,
                answer_max_tokens=opts.answer_max_tokens,
                split=split,
                progress=ctx.progress,
                cache=EvalCache.default() if opts.cache else None,
            )
        ctx.count("prompts_evaluated")
        ctx.count("examples_generated", report.n - report.cache_hits)
        ctx.count("examples_from_cache", report.cache_hits)
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
