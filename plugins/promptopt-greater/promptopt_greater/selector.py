"""The ``greater`` selector: shortlist the most negative gradients, evaluate them exactly in that
order, keep the best (a "." past half the initial length is taken whatever its loss, as in the
reference), then move to the next position: wrap or grow at the end, and start a new sweep from
position 0 when the loss falls below the threshold. Only the step budget and patience end a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.history import History, Scored
from promptopt.types import Candidate, Prompt, Selection
from promptopt_greater.layout import make_prompt, prompt_tokens, round_trips
from promptopt_greater.loss import candidate_token
from promptopt_greater.whitebox import WhiteBox, white_box


def shortlist(scores: Sequence[float], size: int) -> list[int]:
    """Indices of the ``size`` lowest scores, lowest first (stable: earlier index on ties)."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i], i))
    return order[:size]


def pick_lowest(losses: Sequence[float]) -> int:
    """Index of the minimum loss; ties go to the later one (the reference's ``<=``)."""
    best = 0
    for i, loss in enumerate(losses):
        if loss <= losses[best]:
            best = i
    return best


def is_period(wb: WhiteBox, token: int) -> bool:
    """The reference's test for a sentence end: the token's text contains a "."."""
    return "." in wb.decode([token])


def next_position(wb: WhiteBox, prompt: Prompt, filler: str) -> tuple[Prompt, str]:
    """The chosen prompt moved to its next edit position: ``pos + 1``; at the end, wrap to 0 if
    the last chosen token contains ".", else append a filler token there (the prompt grows)."""
    tokens = list(prompt_tokens(wb, prompt))
    pos = prompt.position + 1
    if pos < len(tokens):
        return make_prompt(wb, prompt.prefix, tokens, pos), "next"
    if is_period(wb, tokens[prompt.position]):
        return make_prompt(wb, prompt.prefix, tokens, 0), "wrap"
    for text in (filler, " ", "."):
        ids = wb.encode(text)
        grown = [*tokens, *ids[:1]]
        if len(ids) == 1 and round_trips(wb, prompt.prefix, grown):
            return make_prompt(wb, prompt.prefix, grown, len(tokens)), "grow"
    return make_prompt(wb, prompt.prefix, tokens, 0), "wrap"


class GreaterSelectorOptions(ComponentOptions):
    """Shortlist size, the prompts kept for the final choice, sweeps and patience."""

    shortlist: int = Field(default=3, ge=1)
    #: How many of the run's lowest-loss prompts the final dev-split choice considers.
    keep: int = Field(default=10, ge=1)
    #: A chosen loss below this ends the sweep: the next step edits position 0 again.
    loss_threshold: float = Field(default=0.12, ge=0)
    #: Steps without a new best loss before the run ends.
    patience: int = Field(default=150, ge=1)
    #: Take a shortlisted "." at or past half the initial length, whatever its loss.
    force_period: bool = True
    #: The token appended when the prompt grows ("_" in the reference).
    filler: str = "_"


class GreaterSelector(Selector[GreaterSelectorOptions]):
    """Exact check of the gradient shortlist; every step is accepted (as in the reference)."""

    name = "greater"
    description = "exact check of the 3 best gradient candidates, position sweeps, patience"
    Options = GreaterSelectorOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.best_loss: float | None = None
        self.since_improvement = 0
        self.initial_length: int | None = None
        self.sweep = 0

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        wb = white_box(ctx.backend)
        if self.initial_length is None:
            self.initial_length = len(prompt_tokens(wb, prompt))
        shortlisted = [candidates[i] for i in shortlist(scores, self.options.shortlist)]
        forced = self._forced_period(wb, prompt.position, shortlisted)
        # The reference evaluates the shortlist in gradient order and stops at a forced ".".
        to_evaluate = shortlisted if forced is None else shortlisted[: forced + 1]
        evaluated = ctx.loss_extractor.evaluate(ctx, [c.prompt for c in to_evaluate])
        best = forced if forced is not None else pick_lowest([e.loss for e in evaluated])
        winner, result = to_evaluate[best], evaluated[best]
        if self.best_loss is None or result.loss < self.best_loss:
            self.best_loss, self.since_improvement = result.loss, 0
        else:
            self.since_improvement += 1
        if result.loss < self.options.loss_threshold:
            self.sweep += 1
            tokens = prompt_tokens(wb, winner.prompt)
            moved, how = make_prompt(wb, winner.prompt.prefix, tokens, 0), "new sweep"
        else:
            moved, how = next_position(wb, winner.prompt, self.options.filler)
        stop = self.since_improvement > self.options.patience
        ctx.note("shortlist", [c.label for c in shortlisted])
        ctx.note("shortlist_losses", [e.loss for e in evaluated])
        ctx.note("chosen", winner.label)
        ctx.note("forced_period", forced is not None)
        ctx.note("move", how)
        ctx.note("sweep", self.sweep)
        return Selection(
            prompt=moved,
            loss=result.loss,
            stop=stop,
            reason=f"no improvement for {self.since_improvement} steps" if stop else "",
            evaluated=tuple(evaluated),
        )

    def _forced_period(
        self, wb: WhiteBox, position: int, shortlisted: Sequence[Candidate]
    ) -> int | None:
        """Index of the first shortlisted "." candidate when the rule applies, else None."""
        half = (self.initial_length or 0) / 2
        if not self.options.force_period or position < half:
            return None
        for i, candidate in enumerate(shortlisted):
            if is_period(wb, candidate_token(candidate, position)):
                return i
        return None

    def finalists(self, history: History) -> list[Scored]:
        """The ``keep`` lowest-loss prompts of the whole run (every sweep), best first."""
        return history.best(self.options.keep, split="train")

    # ----------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "since_improvement": self.since_improvement,
            "initial_length": self.initial_length,
            "sweep": self.sweep,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = state["best_loss"]
        self.since_improvement = int(state["since_improvement"])
        self.initial_length = state["initial_length"]
        self.sweep = int(state["sweep"])
