"""The ``opro`` selector: every new instruction's dev score joins the history (the meta-prompt
of the next step shows the best of them); the lead is the best instruction so far. OPRO keeps
no current prompt of its own: the history is its state."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.components import Selector, StepContext
from promptopt.history import History, Scored
from promptopt.types import Candidate, Prompt, Selection
from promptopt_opro.loss import SCORE_SPLIT


class OproSelector(Selector):
    """Records the step's scored instructions and leads with the best one scored so far (ties:
    the earlier)."""

    name = "opro"
    description = "records every scored instruction; the lead is the best so far (OPRO)"

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
        pool: list[tuple[float, int, Prompt]] = [
            (e.loss, i, e.prompt)
            for i, e in enumerate(ctx.history.best(len(ctx.history), split=SCORE_SPLIT))
        ]
        start = len(pool)
        pool += [
            (s, start + i, c.prompt)
            for i, (c, s) in enumerate(zip(candidates, scores, strict=True))
        ]
        if not pool:
            return Selection(prompt, None, reason="no instruction scored yet", evaluated=evaluated)
        loss, _, best = min(pool, key=lambda item: (item[0], item[1]))
        reason = f"best so far: dev accuracy {1.0 - loss:.4f}"
        if not candidates:
            reason = "no valid instruction this step; " + reason
        return Selection(best, loss, reason=reason, evaluated=evaluated)

    def finalists(self, history: History) -> list[Scored]:
        """Every instruction scored on the dev split, best first (ties: the earlier)."""
        return history.best(len(history), split=SCORE_SPLIT)
