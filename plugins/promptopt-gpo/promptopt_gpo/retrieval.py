"""GPO's trajectory H (the initial prompt and every step's pick, with their dev scores) and the
update direction drawn from it: the current prompt plus its most similar earlier entries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from promptopt.history import History, Scored, prompt_key
from promptopt.types import Prompt, Split

#: The split GPO scores prompts on (the reference's eval split).
SCORE_SPLIT: Split = "dev"

Retrieval = Literal["relevance", "recency"]


@dataclass(frozen=True)
class Point:
    """A trajectory entry: the prompt, its dev accuracy (None if never scored) and the step that
    picked it (-1: the initial prompt)."""

    prompt: Prompt
    accuracy: float | None
    step: int


def accuracy_of(entry: Scored) -> float:
    """The entry's accuracy (its mean score under a graded metric), exactly ``score / n`` (or
    ``correct / n`` from evaluations before graded metrics) when the evaluation recorded sums."""
    n = entry.details.get("n")
    if n:
        return entry.details.get("score", entry.details.get("correct", 0.0)) / n
    return entry.accuracy


def trajectory(history: History) -> list[Point]:
    """H in order: the prompts scored before the first step, then each step's pick; a prompt
    appears once, where it first entered (a step that kept its prompt adds nothing)."""
    seen: set[object] = set()
    points: list[Point] = []
    starts = [(-1, e.prompt) for e in history.entries if e.step == -1 and e.split == SCORE_SPLIT]
    for step, prompt in [*starts, *history.picks]:
        key = prompt_key(prompt)
        if key in seen:
            continue
        seen.add(key)
        scored = history.lookup(prompt, split=SCORE_SPLIT)
        points.append(Point(prompt, accuracy_of(scored) if scored else None, step))
    return points


def retrieve(
    points: Sequence[Point],
    current: Prompt,
    k: int,
    *,
    method: Retrieval = "relevance",
    similarities: Callable[[str, Sequence[str]], list[float]] | None = None,
) -> tuple[list[Point], list[float | None]]:
    """The ``k`` entries the meta-prompt shows, and each one's similarity to the current prompt
    (None when nothing was ranked). ``relevance``: the ``k - 1`` earlier entries most similar to the
    current prompt, in ascending similarity (ties: the earlier entry counts as less similar),
    then the current prompt itself; ``recency``: the ``k - 1`` latest earlier entries, oldest
    first, then the current prompt."""
    key = prompt_key(current)
    own = [p for p in points if prompt_key(p.prompt) == key]
    here = own[-1] if own else Point(current, None, -1)
    others = [p for p in points if prompt_key(p.prompt) != key]
    want = max(0, k - 1)
    if method == "recency" or len(others) <= 1 or want == 0:
        # nothing to rank: no embedding is computed (the model is not even loaded)
        chosen = others[len(others) - want :] if want else []
        return [*chosen, here], [None] * (len(chosen) + 1)
    if similarities is None:
        raise ValueError("relevance retrieval needs a similarity function")
    sims = similarities(current.text, [p.prompt.text for p in others])
    # the most similar first; among equals the later entry ranks higher (is kept, shown last)
    ranked = sorted(range(len(others)), key=lambda i: (-sims[i], -i))[:want]
    ascending = sorted(ranked, key=lambda i: (sims[i], i))
    return [*(others[i] for i in ascending), here], [*(sims[i] for i in ascending), 1.0]
