"""``greedy-score``: trust the cheap candidate scores, check only the winner, move on.

GReaTer's own selector evaluates a shortlist of three candidates exactly (three full
regenerations of the reasoning per step). This one takes the lowest-scored candidate as it is,
evaluates only that prompt (its loss enters the run's history, among which the method makes its
final choice), and moves the edit position like GReaTer: the next token, back to the first after
the last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from promptopt.components import ComponentOptions, Selector, StepContext
from promptopt.types import Candidate, Prompt, Selection


def lowest(scores: Sequence[float]) -> int:
    """Index of the lowest score; the earlier candidate wins a tie."""
    return min(range(len(scores)), key=lambda i: (scores[i], i))


def move_position(prompt: Prompt) -> Prompt:
    """``prompt`` set to edit its next token, wrapping to 0 after the last one; everything
    else (text, tokens, prefix, separator) unchanged. Text-only prompts keep their position."""
    if not prompt.tokens:
        return prompt
    return dataclasses.replace(prompt, position=(prompt.position + 1) % len(prompt.tokens))


class GreedyScoreOptions(ComponentOptions):
    """The selector's options (``-o selector.evaluate_winner=false``)."""

    #: Evaluate the winner exactly, so its loss is logged and enters the history the final
    #: choice is made from. Off: one regeneration less per step, but nothing to choose among.
    evaluate_winner: bool = True


class GreedyScoreSelector(Selector[GreedyScoreOptions]):
    """The lowest-scored candidate wins; one exact evaluation per step instead of a shortlist."""

    name = "greedy-score"
    description = "lowest cheap score wins; evaluates only the winner, then moves the position"
    Options = GreedyScoreOptions  # Selector[GreedyScoreOptions]: self.options is one

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
        ctx.note("winner_score", scores[lowest(scores)])
        if not self.options.evaluate_winner:
            return Selection(move_position(winner.prompt), None, reason=f"{winner.label!r}")
        (checked,) = ctx.loss_extractor.evaluate(ctx, [winner.prompt])
        return Selection(
            prompt=move_position(winner.prompt),
            loss=checked.loss,
            reason=f"lowest score: {winner.label!r}",
            evaluated=(checked,),
        )
