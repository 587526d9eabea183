"""The ``greater`` selector: shortlist the most negative gradients, evaluate them exactly, keep the
best, move to the next position (wrapping or growing the prompt), keep the 10 best prompts and
stop early on a low loss, on patience, or on a closing "." past half the initial length."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from pydantic import Field

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.types import Candidate, Prompt, PromptLoss, Selection
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


def next_position(wb: WhiteBox, prompt: Prompt, filler: str) -> tuple[Prompt, str]:
    """The chosen prompt moved to its next edit position: ``pos + 1``; at the end, wrap to 0 if
    the last chosen token contains ".", else append a filler token there (the prompt grows)."""
    tokens = list(prompt_tokens(wb, prompt))
    pos = prompt.position + 1
    if pos < len(tokens):
        return make_prompt(wb, prompt.prefix, tokens, pos), "next"
    if "." in wb.decode([tokens[prompt.position]]):
        return make_prompt(wb, prompt.prefix, tokens, 0), "wrap"
    for text in (filler, " ", "."):
        ids = wb.encode(text)
        grown = [*tokens, *ids[:1]]
        if len(ids) == 1 and round_trips(wb, prompt.prefix, grown):
            return make_prompt(wb, prompt.prefix, grown, len(tokens)), "grow"
    return make_prompt(wb, prompt.prefix, tokens, 0), "wrap"


class GreaterSelector(Selector):
    """Exact check of the gradient shortlist; every step is accepted (as in the reference)."""

    name = "greater"
    description = "exact check of the 3 best gradient candidates, position sweep, early stop"

    class Options(ComponentOptions):
        shortlist: int = Field(default=3, ge=1)
        keep: int = Field(default=10, ge=1)
        loss_threshold: float = Field(default=0.12, ge=0)
        patience: int = Field(default=150, ge=1)
        stop_on_period: bool = True
        filler: str = " "

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.kept: list[PromptLoss] = []
        self.best_loss: float | None = None
        self.since_improvement = 0
        self.initial_length: int | None = None

    @property
    def opts(self) -> GreaterSelector.Options:
        """The options, typed."""
        return cast(GreaterSelector.Options, self.options)

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
        chosen_idx = shortlist(scores, self.opts.shortlist)
        shortlisted = [candidates[i] for i in chosen_idx]
        evaluated = ctx.loss_extractor.evaluate(ctx, [c.prompt for c in shortlisted])
        start = time.perf_counter()
        best = pick_lowest([e.loss for e in evaluated])
        winner, result = shortlisted[best], evaluated[best]
        for item in evaluated:
            self._keep(item)
        improved = self.best_loss is None or result.loss < self.best_loss
        if improved:
            self.best_loss = result.loss
            self.since_improvement = 0
        else:
            self.since_improvement += 1
        moved, how = next_position(wb, winner.prompt, self.opts.filler)
        stop, reason = self._stop(wb, winner, result)
        ctx.info.update(
            {
                "shortlist": [c.label for c in shortlisted],
                "shortlist_losses": [e.loss for e in evaluated],
                "chosen": winner.label,
                "move": how,
            }
        )
        ctx.timings["selection"] = ctx.timings.get("selection", 0.0) + time.perf_counter() - start
        return Selection(
            prompt=moved,
            loss=result.loss,
            stop=stop,
            reason=reason,
            evaluated=tuple(evaluated),
        )

    def _stop(self, wb: WhiteBox, winner: Candidate, result: PromptLoss) -> tuple[bool, str]:
        if result.loss < self.opts.loss_threshold:
            return True, f"loss {result.loss:.4f} < {self.opts.loss_threshold}"
        if self.since_improvement >= self.opts.patience:
            return True, f"no improvement for {self.opts.patience} steps"
        pos = winner.prompt.position
        token = candidate_token(winner, pos)
        half = (self.initial_length or 0) / 2
        if self.opts.stop_on_period and wb.decode([token]).strip() == "." and pos >= half:
            return True, f"'.' chosen at position {pos} >= half the initial length"
        return False, ""

    def _keep(self, item: PromptLoss) -> None:
        key = (item.prompt.prefix, item.prompt.tokens or (), item.prompt.text)
        for i, kept in enumerate(self.kept):
            if (kept.prompt.prefix, kept.prompt.tokens or (), kept.prompt.text) == key:
                if item.loss < kept.loss:
                    self.kept[i] = item
                break
        else:
            self.kept.append(item)
        self.kept.sort(key=lambda k: k.loss)  # stable: earlier-found first among equals
        del self.kept[self.opts.keep :]

    def best_prompts(self) -> list[PromptLoss]:
        return list(self.kept)

    # ----------------------------------------------------------------- checkpointing

    def state_dict(self) -> dict[str, Any]:
        return {
            "kept": [k.to_dict() for k in self.kept],
            "best_loss": self.best_loss,
            "since_improvement": self.since_improvement,
            "initial_length": self.initial_length,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept = [PromptLoss.from_dict(k) for k in state.get("kept", [])]
        self.best_loss = state.get("best_loss")
        self.since_improvement = int(state.get("since_improvement", 0))
        self.initial_length = state.get("initial_length")
