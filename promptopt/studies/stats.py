"""Statistics of a study, in pure Python: bootstrap intervals, a paired comparison of two prompts
on the same examples (paired bootstrap of the mean score difference; the exact McNemar test for
right-or-wrong scores, a paired sign-flip permutation test for graded ones) and the spread of a
value over seeds. Every resampling is seeded, so a report is reproducible. The significance
tests themselves live in the core (:mod:`promptopt.stats`), which a run's acceptance rule uses
too."""

from __future__ import annotations

import math
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


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _beta_inc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """The cumulative distribution function of Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _beta_inc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t (bisection on :func:`t_cdf`)."""
    low, high = -1e3, 1e3
    for _ in range(200):
        mid = (low + high) / 2.0
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


@dataclass(frozen=True)
class SeedSummary:
    """A paired difference over seeds (one value per run): its mean with a Student-t interval
    (None for one run), and the sign test of the runs that got better against those that got
    worse (``unchanged``: a difference of exactly 0)."""

    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    better: int
    worse: int
    unchanged: int
    sign_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_interval(values: Sequence[float], *, level: float = LEVEL) -> tuple[float, float] | None:
    """The Student-t interval of the mean of ``values`` (None for fewer than two)."""
    n = len(values)
    if n < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(1.0 - (1.0 - level) / 2.0, n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean - half, mean + half


def sign_test(better: int, worse: int) -> float:
    """Two-sided exact sign test of ``better`` against ``worse`` runs (ties left out)."""
    return mcnemar_exact(better, worse)


def seed_summary(deltas: Sequence[float], *, level: float = LEVEL) -> SeedSummary:
    """:class:`SeedSummary` of per-run differences; a ValueError for none."""
    if not deltas:
        raise ValueError("seed summary of no runs")
    values = [float(d) for d in deltas]
    interval = t_interval(values, level=level)
    better = sum(1 for d in values if d > 0)
    worse = sum(1 for d in values if d < 0)
    return SeedSummary(
        n=len(values),
        mean=statistics.fmean(values),
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        better=better,
        worse=worse,
        unchanged=len(values) - better - worse,
        sign_p=sign_test(better, worse),
    )


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (same order), capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def cluster_bootstrap_ci(
    clusters: Sequence[Sequence[float]],
    *,
    samples: int = SAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of the mean of all values, resampling whole clusters (an example
    with its values under every seed), so that seeds sharing examples are not counted as
    independent evidence; ``(0, 0)`` for none."""
    sums = [sum(float(v) for v in c) for c in clusters if c]
    counts = [len(c) for c in clusters if c]
    n = len(sums)
    if n == 0:
        return (0.0, 0.0)
    rng = random.Random(seed)
    means = []
    for _ in range(samples):
        picks = [rng.randrange(n) for _ in range(n)]
        means.append(sum(sums[i] for i in picks) / sum(counts[i] for i in picks))
    means.sort()
    return _percentiles(means, level)
