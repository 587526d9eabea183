"""The ``gpo`` selector: the best-scoring candidate that is not yet in the trajectory joins it,
even when it scores below the current prompt (the reference's update); the final choice is the
history's best on the dev split."""

from __future__ import annotations

from collections.abc import Sequence

from promptopt.components import Selector, StepContext
from promptopt.history import History, Scored, prompt_key
from promptopt.types import Candidate, Prompt, Selection
from promptopt_gpo.retrieval import SCORE_SPLIT, trajectory


def best_new(
    candidates: Sequence[Candidate], scores: Sequence[float], taken: set[object]
) -> int | None:
    """Index of the lowest-loss candidate whose prompt is not in ``taken``; ties go to the
    earlier candidate (the order the optimizer wrote them in), so a seed gives one answer."""
    eligible = [i for i, c in enumerate(candidates) if prompt_key(c.prompt) not in taken]
    if not eligible:
        return None
    return min(eligible, key=lambda i: (scores[i], i))


class GpoSelector(Selector):
    """Appends the best never-picked candidate to the trajectory; keeps the current prompt (with
    its real score, and the reason) when a step has none."""

    name = "gpo"
    description = "best never-picked candidate joins the trajectory; final = best on dev (GPO)"

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
        evaluated = (
            tuple(ctx.loss_extractor.evaluate(ctx, fresh, split=SCORE_SPLIT)) if fresh else ()
        )
        taken: set[object] = {prompt_key(p.prompt) for p in trajectory(ctx.history)}
        taken |= {prompt_key(p) for p in ctx.history.picked_prompts()}
        taken.add(prompt_key(prompt))
        best = best_new(candidates, scores, taken)
        if best is None:
            why = "no valid candidate" if not candidates else "every candidate was picked before"
            current = ctx.history.lookup(prompt, split=SCORE_SPLIT)
            ctx.note("pick", None)
            ctx.note("kept_current", why)
            return Selection(
                prompt=prompt,
                loss=current.loss if current else None,
                reason=f"kept the current prompt: {why}",
                evaluated=evaluated,
            )
        chosen = candidates[best]
        ctx.note("pick", chosen.prompt.text)
        ctx.note("pick_loss", scores[best])
        return Selection(prompt=chosen.prompt, loss=scores[best], evaluated=evaluated)

    def finalists(self, history: History) -> list[Scored]:
        """Every prompt scored on the dev split, best first (ties: the earlier, so the initial
        prompt wins a tie)."""
        return history.best(len(history), split=SCORE_SPLIT)
