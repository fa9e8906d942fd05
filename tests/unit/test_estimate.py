"""Design-weighted and unweighted prevalence against hand-computed values (pure)."""

import math
import random

import pytest

from trainset.corpus.estimate import Z95, Observation, per_keyword, unweighted, weighted


def wilson(p, se):
    """Wilson's interval at the effective sample size p(1 - p) / se^2, by its textbook
    formula."""
    n = p * (1 - p) / se**2
    center = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    return center - half, center + half


def obs(stratum, values):
    return [Observation(f"{stratum}{i}", stratum, stratum, v) for i, v in enumerate(values)]


def test_stratified_estimate_by_hand():
    # Stratum a: N=100, 4 sampled, 3 positive. Stratum b: N=300, 4 sampled, 1 positive.
    data = obs("a", [1, 1, 1, 0]) + obs("b", [1, 0, 0, 0])
    result = weighted(data, {"a": 100, "b": 300})
    # 0.25 * 0.75 + 0.75 * 0.25 = 0.375
    assert result.value == pytest.approx(0.375)
    # s^2 = 0.25 in both strata; var = sum W^2 (1 - n/N) s^2 / n
    var = 0.25**2 * (1 - 4 / 100) * 0.25 / 4 + 0.75**2 * (1 - 4 / 300) * 0.25 / 4
    low, high = wilson(0.375, math.sqrt(var))
    assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))
    assert result.n == 8
    # The unweighted mean ignores the design: 4 of 8.
    assert unweighted(data).value == pytest.approx(0.5)


def test_census_has_no_sampling_error():
    result = weighted(obs("a", [1, 0, 1, 0]), {"a": 4})
    assert result.value == 0.5 and result.low == result.high == 0.5


def test_soft_values_and_missing_strata():
    data = obs("a", [0.5, 1.0])
    result = weighted(data, {"a": 10, "b": 1000})  # b has no labels yet: left out
    assert result.value == pytest.approx(0.75)
    assert weighted([], {"a": 10}).value is None
    assert unweighted([]).value is None


def test_per_keyword_uses_the_finite_population_correction():
    data = obs("a", [1, 0])
    est = per_keyword(data, {"a": 2})["a"]
    assert est.value == 0.5 and est.low == est.high == 0.5


def test_a_rare_label_gets_an_interval_that_reaches_further_up_than_down():
    data = obs("a", [1] * 3 + [0] * 297)  # 1% of 300 posts
    result = weighted(data, {"a": 100_000})
    assert result.value == pytest.approx(0.01)
    assert 0.0 < result.low < result.value < result.high
    assert result.high - result.value > 1.5 * (result.value - result.low)
    none = weighted(obs("a", [0] * 50), {"a": 1000})  # no positives: no sampling spread
    assert none.value == none.low == none.high == 0.0
    # A middling share in a large sample: about value +- 1.96 se.
    wide = weighted(obs("a", [1] * 400 + [0] * 600), {"a": 100_000})
    se = math.sqrt((1 - 1000 / 100_000) * 0.4 * 0.6 / 999)
    assert wide.high - wide.low == pytest.approx(2 * Z95 * se, rel=0.01)


def test_rare_labels_are_covered_95_times_in_100():
    """Simple random samples of 500 posts where 1% carry the label (five expected): the
    interval holds the true share in about 95% of samples; value +- 1.96 se in 88%."""
    rng = random.Random(7)
    population, true_share, n, draws = 100_000, 0.01, 500, 2000
    covered = symmetric = 0
    for _ in range(draws):
        positives = sum(rng.random() < true_share for _ in range(n))
        est = weighted(obs("a", [1] * positives + [0] * (n - positives)), {"a": population})
        covered += est.low <= true_share <= est.high
        se = math.sqrt((1 - n / population) * est.value * (1 - est.value) * n / (n - 1) / n)
        symmetric += est.value - Z95 * se <= true_share <= est.value + Z95 * se
    assert covered / draws >= 0.93
    assert symmetric / draws < covered / draws - 0.05
