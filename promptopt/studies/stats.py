"""Statistics of a study, in pure Python: bootstrap intervals, a paired comparison of two prompts
on the same examples (paired bootstrap of the accuracy difference, exact McNemar test) and the
spread of a value over seeds. Every resampling is seeded, so a report is reproducible."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

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


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the exact binomial test of the discordant pairs
    (``only_a`` examples right only under A, ``only_b`` right only under B) against p = 1/2."""
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must not be negative")
    n = only_a + only_b
    if n == 0:
        return 1.0
    k = min(only_a, only_b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class PairedComparison:
    """Prompt A against prompt B on the same examples: the 2x2 table, the accuracy difference
    A - B with its paired bootstrap interval, and the exact McNemar p-value."""

    n: int
    both_correct: int
    only_a: int
    only_b: int
    both_wrong: int
    delta: float
    ci_low: float
    ci_high: float
    p_value: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_comparison(
    a: Sequence[bool], b: Sequence[bool], *, samples: int = SAMPLES, seed: int = 0
) -> PairedComparison:
    """Compare per-example correctness ``a`` against ``b`` (same examples, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired outcomes differ in length: {len(a)} != {len(b)}")
    both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
    only_a = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
    n = len(a)
    low, high = paired_bootstrap_ci(a, b, samples=samples, seed=seed)
    return PairedComparison(
        n=n,
        both_correct=both,
        only_a=only_a,
        only_b=only_b,
        both_wrong=n - both - only_a - only_b,
        delta=(only_a - only_b) / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        p_value=mcnemar_exact(only_a, only_b),
    )


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
