"""Candidate-set logic of the proposal: per-example top-k sets, intersections over random example
subsets, and their union (pure Python, so it is easy to test and to reason about)."""

from __future__ import annotations

import random
from collections.abc import Sequence


def intersect_union(
    sets: Sequence[frozenset[int]], rng: random.Random, *, topq: int, subset: int
) -> set[int]:
    """Union over ``topq`` draws of the intersection of ``subset`` randomly chosen sets.

    Tokens that many examples rank highly survive; each draw uses ``rng`` so runs repeat."""
    if not sets:
        return set()
    size = min(subset, len(sets))
    union: set[int] = set()
    for _ in range(topq):
        chosen = rng.sample(range(len(sets)), size)
        union |= frozenset.intersection(*(sets[i] for i in chosen))
    return union


def ordered_candidates(union: set[int], current: int) -> list[int]:
    """Candidate ids in a deterministic order: the current token first, then ascending ids."""
    return [current, *sorted(t for t in union if t != current)]
