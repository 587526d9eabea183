"""A loss extractor for methods that score whole prompts by evaluating them (GPO, APE, OPRO,
EvoPrompt): a prompt's loss is 1 - its mean score under the task's metric on a split, measured
with the task model through :func:`promptopt.evaluation.evaluate` and its on-disk cache; a
prompt the run scored before reuses the history's score, and each prompt is measured once per
split and process. Subclasses name the scoring split and may lay a prompt out their own way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import Field

from promptopt.components import Backend, ComponentOptions, LossExtractor, StepContext, Task
from promptopt.history import PromptKey, prompt_key
from promptopt.types import Candidate, Prompt, PromptLoss, Split


class EvaluationLossOptions(ComponentOptions):
    """How a prompt's score is measured."""

    #: Reasoning tokens per example (greedy).
    max_new_tokens: int = Field(default=256, ge=1)
    #: Tokens generated after the task's extractor to read the answer.
    answer_max_tokens: int = Field(default=12, ge=1)
    #: "generate": parse the generated answer; "logprob": the most likely option.
    scoring: Literal["generate", "logprob"] = "generate"
    #: Reuse finished per-example outcomes from the evaluation cache on disk.
    cache: bool = True


EvaluationLossOptionsT = TypeVar("EvaluationLossOptionsT", bound=EvaluationLossOptions)


class EvaluationLossExtractor(LossExtractor[EvaluationLossOptionsT]):
    """Exact error rate of each candidate on :attr:`score_split` (one greedy reasoning chain
    per example, then the task's extractor and answer), with per-example scores kept for the
    do-no-harm test."""

    #: The split candidates are scored on.
    score_split: ClassVar[Split] = "dev"

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._memo: dict[tuple[PromptKey, Split], PromptLoss] = {}

    def score_candidates(
        self, ctx: StepContext, prompt: Prompt, candidates: Sequence[Candidate]
    ) -> list[float]:
        """The error rate of every candidate on the scoring split: the history's for a prompt
        scored before, else measured now."""
        losses = []
        for candidate in candidates:
            earlier = ctx.history.lookup(candidate.prompt, split=self.score_split)
            if earlier is not None:
                ctx.count("scores_reused")
                losses.append(earlier.loss)
            else:
                losses.append(
                    self.evaluate(ctx, [candidate.prompt], split=self.score_split)[0].loss
                )
        return losses

    def evaluate(
        self, ctx: StepContext, prompts: Sequence[Prompt], *, split: Split = "train"
    ) -> list[PromptLoss]:
        """Exact losses on ``split``; each prompt is measured once per split and process."""
        return [
            self._memo.get((prompt_key(p), split)) or self._measure(ctx, p, split) for p in prompts
        ]

    def placed(self, ctx: StepContext, prompt: Prompt) -> tuple[Task, Backend]:
        """The task and backend that show ``prompt`` to the model (default: the run's, with the
        task's layout); a method with its own instruction positions overrides it."""
        return ctx.task, ctx.backend

    def _measure(self, ctx: StepContext, prompt: Prompt, split: Split) -> PromptLoss:
        from promptopt.evalcache import EvalCache
        from promptopt.evaluation import evaluate

        opts = self.options
        task, backend = self.placed(ctx, prompt)
        with ctx.timed("evaluation"):
            report = evaluate(
                backend,
                task,
                prompt,
                ctx.examples(split),
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
