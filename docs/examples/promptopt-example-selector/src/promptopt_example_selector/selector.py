"""``greedy-score``: trust the cheap candidate scores, check only the winner, move on.

GReaTer's own selector evaluates a shortlist of three candidates exactly (three full
regenerations of the reasoning per step). This one takes the lowest-scored candidate as it is,
evaluates only that prompt (to log a loss and rank the prompts it visited), and moves the edit
position like GReaTer: the next token, back to the first after the last.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.types import Candidate, Prompt, PromptLoss, Selection
from pydantic import Field


def lowest(scores: Sequence[float]) -> int:
    """Index of the lowest score; the earlier candidate wins a tie."""
    return min(range(len(scores)), key=lambda i: (scores[i], i))


def move_position(prompt: Prompt) -> Prompt:
    """``prompt`` set to edit its next token, wrapping to 0 after the last one.
    Text-only prompts (no tokens) keep their position."""
    if not prompt.tokens:
        return prompt
    position = (prompt.position + 1) % len(prompt.tokens)
    return Prompt(prompt.text, prompt.tokens, position, prompt.prefix)


class GreedyScoreOptions(ComponentOptions):
    """The selector's options. Names are prefixed because one flat ``-o key=value`` dict
    reaches every component of a run."""

    greedy_keep: int = Field(
        default=10, ge=1
    )  # how many of the best visited prompts the final choice sees


class GreedyScoreSelector(Selector):
    """The lowest-scored candidate wins; one exact evaluation per step instead of a shortlist."""

    name = "greedy-score"
    description = "lowest cheap score wins; evaluates only the winner, then moves the position"

    Options = GreedyScoreOptions

    def __init__(self, options: ComponentOptions | None = None) -> None:
        super().__init__(options)
        self.kept: list[PromptLoss] = []  # best first

    @property
    def opts(self) -> GreedyScoreOptions:
        return cast(GreedyScoreOptions, self.options)

    def select(
        self,
        ctx: StepContext,
        prompt: Prompt,
        candidates: Sequence[Candidate],
        scores: Sequence[float],
    ) -> Selection:
        if not candidates:
            return Selection(move_position(prompt), None, reason="no candidates")
        winner = candidates[lowest(scores)]
        (checked,) = ctx.loss_extractor.evaluate(ctx, [winner.prompt])
        self._keep(checked)
        return Selection(
            prompt=move_position(winner.prompt),
            loss=checked.loss,
            reason=f"lowest score: {winner.label!r}",
            evaluated=(checked,),
        )

    def _keep(self, entry: PromptLoss) -> None:
        others = [k for k in self.kept if k.prompt.text != entry.prompt.text]
        ranked = sorted([*others, entry], key=lambda k: k.loss)  # stable: older first on ties
        self.kept = ranked[: self.opts.greedy_keep]

    def best_prompts(self) -> list[PromptLoss]:
        return list(self.kept)

    # Checkpointing: plain JSON values, so a run can resume after any step.

    def state_dict(self) -> dict[str, Any]:
        return {"kept": [k.to_dict() for k in self.kept]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.kept = [PromptLoss.from_dict(k) for k in state.get("kept", [])]
