"""Paired significance tests in pure Python, for the run's acceptance rule
(:mod:`promptopt.acceptance`) and a study's report: the exact McNemar test for right-or-wrong
scores and a paired sign-flip permutation test for graded ones, each two-sided or one-sided."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Literal

#: ``two-sided``: A and B differ; ``greater``: A scores higher than B (one-sided).
Alternative = Literal["two-sided", "greater"]
#: The tests a paired comparison may use: right-or-wrong scores, graded scores.
MCNEMAR, PERMUTATION = "mcnemar", "permutation"


def mcnemar_exact(only_a: int, only_b: int, *, alternative: Alternative = "two-sided") -> float:
    """Exact McNemar p-value: the exact binomial test of the discordant pairs (``only_a``
    examples right only under A, ``only_b`` right only under B) against p = 1/2; two-sided, or
    one-sided (``greater``: P(at least ``only_a`` of the discordant pairs favour A))."""
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must not be negative")
    n = only_a + only_b
    if n == 0:
        return 1.0
    if alternative == "greater":
        return sum(math.comb(n, i) for i in range(only_a, n + 1)) / 2**n
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


#: Nonzero paired differences up to which the permutation test enumerates every sign pattern
#: (2**16 sums); beyond it, :data:`PERMUTATIONS` seeded random sign flips.
EXACT_LIMIT = 16
PERMUTATIONS = 10000


def sign_flip_p(
    differences: Sequence[float],
    *,
    alternative: Alternative = "two-sided",
    exact_limit: int = EXACT_LIMIT,
    samples: int = PERMUTATIONS,
    seed: int = 0,
) -> tuple[float, bool]:
    """P-value of the paired permutation (sign-flip) test that the per-example differences
    (A - B) are centred on 0, and whether it is exact.

    Under the null each difference is as likely to have either sign, so the observed sum is
    compared with ``sum(s_i d_i)`` over sign patterns ``s``: by absolute value (two-sided) or
    as is (``greater``: patterns at least as large). Every pattern is counted (exact; zero
    differences flip to themselves and are left out) when at most ``exact_limit`` differences
    are nonzero, else ``samples`` seeded random patterns, with p = (1 + hits) / (1 + samples)
    so a sampled p is never 0."""
    nonzero = [float(d) for d in differences if d != 0]
    if not nonzero:
        return 1.0, True
    total = sum(nonzero)
    observed = total if alternative == "greater" else abs(total)
    slack = 1e-9 * max(1.0, abs(total))  # sums of the same numbers in another order

    def extreme(value: float) -> bool:
        shown = value if alternative == "greater" else abs(value)
        return shown >= observed - slack

    if len(nonzero) <= exact_limit:
        sums = [0.0]  # every subset's sum: flipping subset F turns sum(d) into sum - 2 sum(F)
        for d in nonzero:
            sums += [x + d for x in sums]
        hits = sum(1 for x in sums if extreme(total - 2.0 * x))
        return hits / len(sums), True
    rng = random.Random(seed)
    hits = 0
    for _ in range(samples):
        hits += extreme(sum(d if rng.random() < 0.5 else -d for d in nonzero))
    return (1 + hits) / (1 + samples), False
