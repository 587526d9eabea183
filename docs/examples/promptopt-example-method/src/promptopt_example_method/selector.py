"""``climb``: evaluate the best-scored candidates exactly and move only to a better prompt.

The selector keeps one piece of state, the number of steps since the last improvement, in
``state_dict`` (so a resumed run stops when an uninterrupted one would); everything else it
needs is in the run's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.types import Candidate, Prompt, PromptLoss, Selection
from pydantic import Field


class ClimbOptions(ComponentOptions):
    """``-o shortlist=3``, ``-o patience=5``."""

    #: Candidates evaluated exactly per step, lowest scores first.
    shortlist: int = Field(default=2, ge=1)
    #: Steps without a better prompt before the run stops.
    patience: int = Field(default=3, ge=1)


class ClimbSelector(Selector[ClimbOptions]):
    """Hill climbing on the exact loss over a shortlist of the cheap scores."""

    name = "climb"
    description = "moves to the best of a shortlist only if it beats the prompt (example plugin)"
    Options = ClimbOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.stale = 0  # steps since the last improvement; checkpointed

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        order = sorted(range(len(candidates)), key=lambda i: (scores[i], i))
        shortlist = [candidates[i].prompt for i in order[: self.options.shortlist]]
        known = ctx.history.lookup(prompt, split="train")  # from an earlier step, if any
        evaluated = ctx.loss_extractor.evaluate(ctx, shortlist if known else [prompt, *shortlist])
        current = known.as_loss() if known else evaluated[0]
        best = min(evaluated, key=lambda e: e.loss)
        ctx.note("shortlist", [e.prompt.text for e in evaluated])
        if best.loss < current.loss:
            self.stale = 0
            return self.pick(best, evaluated, f"better: {best.loss:.4f} < {current.loss:.4f}")
        self.stale += 1
        stop = self.stale >= self.options.patience
        reason = f"no better prompt for {self.stale} step(s)" + ("; stopping" if stop else "")
        return self.pick(current, evaluated, reason, stop=stop)

    @staticmethod
    def pick(
        chosen: PromptLoss, evaluated: Sequence[PromptLoss], reason: str, stop: bool = False
    ) -> Selection:
        return Selection(
            chosen.prompt, chosen.loss, stop=stop, reason=reason, evaluated=tuple(evaluated)
        )

    def state_dict(self) -> dict[str, Any]:
        return {"stale": self.stale}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stale = int(state.get("stale", 0))
