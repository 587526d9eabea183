"""The ``gpo`` loss extractor: a prompt's loss is its error rate (1 - its mean score under the
task's metric) on the dev split, measured with the task model through
:func:`promptopt.evaluation.evaluate` (its on-disk cache means a prompt is never generated again
on the same model); repeats reuse the run history's score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from promptopt.components import ComponentOptions, LossExtractor, StepContext
from promptopt.history import PromptKey, prompt_key
from promptopt.types import Candidate, Prompt, PromptLoss, Split
from promptopt_gpo.retrieval import SCORE_SPLIT


class GpoLossOptions(ComponentOptions):
    """How a prompt's dev accuracy is measured."""

    #: Reasoning tokens per example (the reference's task model: 256, greedy).
    max_new_tokens: int = Field(default=256, ge=1)
    #: Tokens generated after the task's extractor to read the answer.
    answer_max_tokens: int = Field(default=12, ge=1)
    #: "generate": parse the generated answer; "logprob": the most likely option.
    scoring: Literal["generate", "logprob"] = "generate"
    #: Reuse finished per-example outcomes from the evaluation cache on disk.
    cache: bool = True


class GpoLossExtractor(LossExtractor[GpoLossOptions]):
    """Exact dev-split accuracy of each new candidate (one greedy reasoning chain per example,
    then the task's extractor and answer)."""

    name = "gpo"
    description = "dev-split error rate via promptopt's evaluation and its cache (GPO)"
    Options = GpoLossOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._memo: dict[tuple[PromptKey, Split], PromptLoss] = {}

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """The dev error rate of every candidate: from the history for a prompt scored before,
        else measured now."""
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
        """Exact losses on ``split`` (GPO's components ask for its eval split, dev); each
        prompt is measured once per split and process."""
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
                # keyed on the exact model input: the prompt's layout is part of it
                cache=EvalCache.default() if opts.cache else None,
            )
        ctx.count("prompts_evaluated")
        ctx.count("examples_generated", report.n - report.cache_hits)
        ctx.count("examples_from_cache", report.cache_hits)
        # 1 - the mean score under the task's metric: the error rate for right-or-wrong ones
        total = sum(o.score for o in report.outcomes)
        error = (report.n - total) / report.n if report.n else 1.0
        loss = PromptLoss(
            prompt,
            loss=error,
            error_rate=error,
            details={"correct": float(report.correct), "n": float(report.n), "score": total},
            split=split,
            outcomes={o.example_id: o.score for o in report.outcomes},
        )
        self._memo[(prompt_key(prompt), split)] = loss
        return loss
