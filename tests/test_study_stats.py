"""The study's statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from promptopt.studies import stats


@pytest.mark.parametrize(
    ("only_a", "only_b", "expected"),
    [
        (0, 0, 1.0),  # no discordant pairs: no evidence either way
        (0, 5, 2 / 32),  # n=5, k=0: 2 * 0.5^5
        (5, 0, 2 / 32),  # symmetric
        (1, 9, 2 * 11 / 1024),  # n=10, k=1: 2 * (1 + 10) / 2^10
        (2, 8, 2 * 56 / 1024),  # n=10, k=2: 2 * (1 + 10 + 45) / 2^10
        (3, 3, 1.0),  # 2 * P(X <= 3 | n=6) = 2 * 42/64 > 1, capped
        (1, 2, 1.0),  # 2 * (1 + 3) / 8 = 1
        (0, 1, 1.0),  # 2 * 0.5
    ],
)
def test_mcnemar_exact_small_tables(only_a: int, only_b: int, expected: float) -> None:
    assert stats.mcnemar_exact(only_a, only_b) == pytest.approx(expected, abs=1e-12)


def test_mcnemar_exact_larger_table_matches_binomial_tail() -> None:
    # n = 30 discordant pairs, 8 one way: 2 * sum_{i<=8} C(30, i) / 2^30
    tail = sum(math.comb(30, i) for i in range(9)) / 2**30
    assert stats.mcnemar_exact(22, 8) == pytest.approx(2 * tail)
    assert stats.mcnemar_exact(22, 8) == pytest.approx(0.016124801710247993)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        stats.mcnemar_exact(-1, 3)


def test_bootstrap_is_deterministic_for_a_seed_and_depends_on_it() -> None:
    outcomes = [True, False, True, True, False, True, False, True, True, False] * 3
    first = stats.bootstrap_ci(outcomes, seed=7)
    assert stats.bootstrap_ci(outcomes, seed=7) == first
    assert any(stats.bootstrap_ci(outcomes, seed=s) != first for s in range(8, 14))
    low, high = first
    assert low <= sum(outcomes) / len(outcomes) <= high
    assert 0.0 <= low < high <= 1.0


def test_bootstrap_of_constant_outcomes_is_a_point() -> None:
    assert stats.bootstrap_ci([True] * 12) == (1.0, 1.0)
    assert stats.bootstrap_ci([False] * 5) == (0.0, 0.0)
    assert stats.bootstrap_ci([]) == (0.0, 0.0)


def test_paired_comparison_counts_and_interval_contain_observed_difference() -> None:
    a = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1]
    b = [1, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0]
    result = stats.paired_comparison([bool(x) for x in a], [bool(y) for y in b])
    assert (result.both_correct, result.only_a, result.only_b, result.both_wrong) == (4, 5, 1, 2)
    assert result.n == 12
    assert result.delta == pytest.approx((9 - 5) / 12)
    assert result.ci_low <= result.delta <= result.ci_high
    assert result.p_value == pytest.approx(2 * (1 + 6) / 64)  # n=6 discordant, k=1


def test_paired_interval_is_narrower_than_unpaired_for_correlated_outcomes() -> None:
    # b is a with two extra wrong answers: the pairing makes the difference almost certain
    a = [True] * 20 + [False] * 20
    b = list(a)
    b[0] = b[1] = False
    low, high = stats.paired_bootstrap_ci(a, b)
    assert 0.0 <= low <= 2 / 40 <= high
    assert high - low < 0.15
    unpaired_width = stats.bootstrap_ci(a)[1] - stats.bootstrap_ci(a)[0]
    assert high - low < unpaired_width


def test_paired_inputs_must_have_equal_length() -> None:
    with pytest.raises(ValueError):
        stats.paired_bootstrap_ci([True], [True, False])
    with pytest.raises(ValueError):
        stats.paired_comparison([True], [])


def test_spread_over_seeds() -> None:
    result = stats.spread([0.5, 0.7, 0.6])
    assert result.n == 3
    assert result.mean == pytest.approx(0.6)
    assert result.std == pytest.approx(0.1)  # sample std of 0.5, 0.6, 0.7
    assert (result.min, result.max) == (0.5, 0.7)
    single = stats.spread([0.4])
    assert (single.mean, single.std, single.min, single.max) == (0.4, 0.0, 0.4, 0.4)
    with pytest.raises(ValueError):
        stats.spread([])


def test_holm_adjusts_step_down_and_keeps_order() -> None:
    # sorted 0.01, 0.02, 0.04 -> 3*0.01, max(0.03, 2*0.02), max(0.04, 1*0.04)
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([]) == []


@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.7062), (4, 2.7764), (10, 2.2281), (30, 2.0423)]
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert stats.t_quantile(0.975, df) == pytest.approx(expected, abs=1e-3)
    assert stats.t_cdf(expected, df) == pytest.approx(0.975, abs=1e-5)


def test_seed_summary_mean_t_interval_and_sign_test() -> None:
    summary = stats.seed_summary([0.1, 0.2, 0.3, 0.0, -0.1])
    assert summary.mean == pytest.approx(0.1)
    half = 2.7764 * math.sqrt(0.025) / math.sqrt(5)  # stdev of the five values = sqrt(0.025)
    assert summary.ci_low == pytest.approx(0.1 - half, abs=1e-4)
    assert summary.ci_high == pytest.approx(0.1 + half, abs=1e-4)
    assert (summary.better, summary.worse, summary.unchanged) == (3, 1, 1)
    assert summary.sign_p == pytest.approx(2 * 5 / 16)  # two-sided binomial, n=4, k=1
    single = stats.seed_summary([0.2])
    assert single.ci_low is None and single.ci_high is None


def test_cluster_bootstrap_resamples_examples_with_all_their_seeds() -> None:
    # every example has the same value under both seeds: no spread within a cluster
    same = [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]] * 5
    low, high = stats.cluster_bootstrap_ci(same)
    flat_low, flat_high = stats.bootstrap_ci([v for c in same for v in c])
    # counting the seeds as independent examples gives a narrower (overconfident) interval
    assert high - low > flat_high - flat_low
    assert low <= 0.5 <= high
    assert stats.cluster_bootstrap_ci([[0.3, 0.3]]) == (pytest.approx(0.3), pytest.approx(0.3))
    assert stats.cluster_bootstrap_ci([]) == (0.0, 0.0)
