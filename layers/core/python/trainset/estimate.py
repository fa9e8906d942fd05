"""Prevalence estimates that respect the sampling design, beside the naive unweighted ones.

For a stratified sample (strata = keywords, simple random sampling within each) the estimate
of a label's prevalence is the stratified mean sum_h W_h * mean_h with W_h = N_h / N — the
Horvitz-Thompson (Hajek) estimate with weights 1 / inclusion probability — and its variance
sum_h W_h^2 (1 - n_h / N_h) s_h^2 / n_h. A simple random sample is the one-stratum case. A
post's value is the share of its coders who gave the label (1 or 0 with one coder).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Observation:
    post_id: str
    stratum: str  # the design stratum ("all" for a simple random sample)
    keyword: str  # for per-keyword figures
    value: float  # 0..1


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _ci(value: float, se: float, n: int) -> Estimate:
    return Estimate(value, max(0.0, value - Z95 * se), min(1.0, value + Z95 * se), n)


def _mean_var(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n > 1:
        return mean, sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, mean * (1 - mean)  # one observation: the binomial variance is all we have


def weighted(observations: Iterable[Observation], populations: Mapping[str, int]) -> Estimate:
    """The design-weighted prevalence with a 95% interval. Strata without observations are
    left out and the weights renormalised over the strata that have them."""
    by_stratum: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        by_stratum[o.stratum].append(o.value)
    covered = {s: populations[s] for s in by_stratum if populations.get(s)}
    total = sum(covered.values())
    n = sum(len(v) for v in by_stratum.values())
    if not total:
        return Estimate(None, None, None, n)
    value = variance = 0.0
    for s, values in by_stratum.items():
        if s not in covered:
            continue
        w = covered[s] / total
        mean, s2 = _mean_var(values)
        fpc = max(0.0, 1 - len(values) / covered[s])
        value += w * mean
        variance += w * w * fpc * s2 / len(values)
    return _ci(value, math.sqrt(variance), n)


def unweighted(observations: Iterable[Observation]) -> Estimate:
    """The plain mean over labeled posts, as if the sample were the population's mirror."""
    values = [o.value for o in observations]
    if not values:
        return Estimate(None, None, None, 0)
    mean = sum(values) / len(values)
    return _ci(mean, math.sqrt(mean * (1 - mean) / len(values)), len(values))


def per_keyword(observations: Iterable[Observation],
                populations: Mapping[str, int]) -> dict[str, Estimate]:
    """Prevalence within each keyword. With keyword strata this is the stratum mean (with its
    finite-population correction); in a simple random sample it is the domain mean."""
    by_keyword: dict[str, list[Observation]] = defaultdict(list)
    for o in observations:
        by_keyword[o.keyword].append(o)
    out = {}
    for keyword, obs in sorted(by_keyword.items()):
        population = populations.get(keyword)
        values = [o.value for o in obs]
        mean, s2 = _mean_var(values)
        fpc = max(0.0, 1 - len(values) / population) if population else 1.0
        out[keyword] = _ci(mean, math.sqrt(fpc * s2 / len(values)), len(values))
    return out
