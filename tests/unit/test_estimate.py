"""Design-weighted and unweighted prevalence against hand-computed values (pure)."""

import math

import pytest

from trainset.corpus.estimate import Z95, Observation, per_keyword, unweighted, weighted


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
    assert result.low == pytest.approx(max(0.0, 0.375 - Z95 * math.sqrt(var)))
    assert result.high == pytest.approx(0.375 + Z95 * math.sqrt(var))
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
