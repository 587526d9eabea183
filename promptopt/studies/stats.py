"""Statistics of a study, in pure Python: bootstrap intervals, a paired comparison of two prompts
on the same examples (paired bootstrap of the mean score difference; the exact McNemar test for
right-or-wrong scores, a paired sign-flip permutation test for graded ones) and the spread of a
value over seeds. Every resampling is seeded, so a report is reproducible. The significance
tests themselves live in the core (:mod:`promptopt.stats`), which a run's acceptance rule uses
too."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from promptopt.stats import (
    EXACT_LIMIT,
    MCNEMAR,
    PERMUTATION,
    PERMUTATIONS,
    mcnemar_exact,
    sign_flip_p,
)

__all__ = [
    "EXACT_LIMIT",
    "LEVEL",
    "MCNEMAR",
    "PERMUTATION",
    "PERMUTATIONS",
    "SAMPLES",
    "PairedComparison",
    "Spread",
    "bootstrap_ci",
    "mcnemar_exact",
    "paired_bootstrap_ci",
    "paired_comparison",
    "sign_flip_p",
    "spread",
]

#: Bootstrap resamples per interval: enough for a stable 95% percentile interval.
SAMPLES = 2000
LEVEL = 0.95


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    """The two-sided percentile interval of already sorted ``values``."""
    tail = (1.0 - level) / 2.0
    last = len(values) - 1
    return values[int(tail * last)], values[round((1.0 - tail) * last)]


def bootstrap_ci(
    outcomes: Sequence[bool | float],
    *,
    samples: int = SAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``outcomes`` (0/1 correctness or any values);
    deterministic for a seed; ``(0, 0)`` for no outcomes."""
    n = len(outcomes)
    if n == 0:
        return (0.0, 0.0)
    values = [float(v) for v in outcomes]
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(values, k=n)) / n for _ in range(samples))
    return _percentiles(means, level)


def paired_bootstrap_ci(
    a: Sequence[bool | float],
    b: Sequence[bool | float],
    *,
    samples: int = SAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(a) - mean(b)`` resampling examples as pairs
    (the same examples for both), which is what makes the comparison paired."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} != {len(b)}")
    differences = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    return bootstrap_ci(differences, samples=samples, level=level, seed=seed)


@dataclass(frozen=True)
class PairedComparison:
    """Prompt A against prompt B on the same examples: the mean score difference A - B with
    its paired bootstrap interval and a p-value from ``test``: the exact McNemar test when
    every score is 0 or 1 (with the 2x2 table: ``both_correct``...), else the paired
    sign-flip permutation test (``exact`` says whether every sign pattern was counted)."""

    n: int
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    both_correct: int | None = None
    only_a: int | None = None
    only_b: int | None = None
    both_wrong: int | None = None
    exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Every field; the 2x2 table only for right-or-wrong scores."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def paired_comparison(
    a: Sequence[bool | float], b: Sequence[bool | float], *, samples: int = SAMPLES, seed: int = 0
) -> PairedComparison:
    """Compare per-example scores ``a`` against ``b`` (same examples, same order; 0/1
    correctness or graded scores in [0, 1])."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} != {len(b)}")
    n = len(a)
    low, high = paired_bootstrap_ci(a, b, samples=samples, seed=seed)
    differences = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    delta = sum(differences) / n if n else 0.0
    if all(float(v) in (0.0, 1.0) for v in (*a, *b)):
        both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
        only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
        only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
        return PairedComparison(
            n=n,
            delta=(only_a - only_b) / n if n else 0.0,
            ci_low=low,
            ci_high=high,
            p_value=mcnemar_exact(only_a, only_b),
            test=MCNEMAR,
            both_correct=both,
            only_a=only_a,
            only_b=only_b,
            both_wrong=n - both - only_a - only_b,
        )
    p_value, exact = sign_flip_p(differences, seed=seed)
    return PairedComparison(n, delta, low, high, p_value, PERMUTATION, exact=exact)


@dataclass(frozen=True)
class Spread:
    """Mean, sample standard deviation (0 for one value), minimum and maximum over seeds."""

    n: int
    mean: float
    std: float
    min: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(values: Sequence[float]) -> Spread:
    """The :class:`Spread` of ``values``; a ValueError for none."""
    if not values:
        raise ValueError("spread of no values")
    data = [float(v) for v in values]
    std = statistics.stdev(data) if len(data) > 1 else 0.0
    return Spread(len(data), statistics.fmean(data), std, min(data), max(data))
