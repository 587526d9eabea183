"""The ``ape`` selector: every new instruction's dev score joins the history; the step's best
``keep`` share (the paper's top k%) becomes the population the next step resamples, the best
of them leading. A step without candidates keeps its population."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.history import History, Scored
from promptopt.types import Candidate, Prompt, Selection
from promptopt_ape.loss import SCORE_SPLIT


class ApeSelectorOptions(ComponentOptions):
    """``-o keep=0.5``: the share of a step's instructions kept for resampling."""

    keep: float = Field(default=0.5, gt=0.0, le=1.0)


class ApeSelector(Selector[ApeSelectorOptions]):
    """Keeps the top ``keep`` share of the step's instructions by dev score (ties: the earlier
    proposed), the best first."""

    name = "ape"
    description = "keeps the best share of the step's instructions for resampling (APE)"
    Options = ApeSelectorOptions

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        fresh = [
            c.prompt for c in candidates if ctx.history.lookup(c.prompt, split=SCORE_SPLIT) is None
        ]
        evaluated = tuple(ctx.loss_extractor.evaluate(ctx, fresh, split=SCORE_SPLIT))
        ctx.note(
            "scored",
            [
                {"prompt": c.prompt.text, "accuracy": 1.0 - s, "loss": s}
                for c, s in zip(candidates, scores, strict=True)
            ],
        )
        if not candidates:
            current = ctx.history.lookup(prompt, split=SCORE_SPLIT)
            return Selection(
                prompt,
                current.loss if current else None,
                reason="no valid instruction this step: the population stays",
                evaluated=evaluated,
                population=ctx.population,
            )
        order = sorted(range(len(candidates)), key=lambda i: (scores[i], i))
        keep = order[: max(1, math.ceil(self.options.keep * len(order)))]
        population = tuple(candidates[i].prompt for i in keep)
        ctx.note("kept", [p.text for p in population])
        best = keep[0]
        return Selection(
            population[0],
            scores[best],
            reason=f"kept the best {len(keep)} of {len(order)} by dev accuracy",
            evaluated=evaluated,
            population=population,
        )

    def finalists(self, history: History) -> list[Scored]:
        """Every instruction scored on the dev split, best first (ties: the earlier)."""
        return history.best(len(history), split=SCORE_SPLIT)
