"""Prevalence estimates that respect the sampling design, beside the naive unweighted ones.

For a stratified sample (strata = keywords, simple random sampling within each) the estimate
of a label's prevalence is the stratified mean sum_h W_h * mean_h with W_h = N_h / N — the
Horvitz-Thompson (Hajek) estimate with weights 1 / inclusion probability — and its variance
sum_h W_h^2 (1 - n_h / N_h) s_h^2 / n_h. A simple random sample is the one-stratum case.

A post's value is its consensus posterior P(label | all its answers) — or, for the raw-vote
figure shown beside it, the share of its coders who gave the label. With posteriors the true
labels are unknown, so the interval carries the labeling uncertainty too: each post's true
label is Bernoulli(p_i), the spread of the true labels within a stratum is
s_h^2 = var(p) + mean(p(1 - p)), and the estimate misses the sample's own true mean by a
labeling error of variance sum_i p_i(1 - p_i) / n_h^2 per stratum (never reduced by the
finite-population correction: it is not a sampling error).

The interval is Wilson's score interval at the effective sample size p(1 - p) / Var: as
wide as the variance says, but asymmetric near 0 and 1, where most labels' prevalences are
(a stratified sample's analogue of the Wilson interval; Korn and Graubard's effective sample
size). With few positives the plain value +- 1.96 se misses: a 1% label in a simple random
sample of 500 posts is covered in 88% of samples by it and in 96% by Wilson's.

The posteriors themselves come from a model fitted to the same sample (coder rates, option
priors), and a different sample would have fitted it differently. ``model_variance`` measures
that from bootstrap refits: the spread of the replicate estimates beyond what resampling the
fixed posteriors alone would give is added to the variance.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Z95 = 1.959963984540054
BOOTSTRAP_REFITS = 40  # model refits for ``model_variance``: its variance within about a quarter


@dataclass(frozen=True)
class Observation:
    post_id: str
    stratum: str  # the design stratum ("all" for a simple random sample)
    keyword: str  # for per-keyword figures
    value: float  # 0..1
    label_variance: float = 0.0  # Var(true label | answers): p(1 - p) for a posterior p


@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int

    def as_dict(self) -> dict[str, float | int | None]:
        return {"value": self.value, "low": self.low, "high": self.high, "n": self.n}


def _ci(value: float, se: float, n: int) -> Estimate:
    """The 95% interval of a proportion ``value`` with standard error ``se``: Wilson's score
    interval at the effective sample size p(1 - p) / se^2 (the design's and the labeling's
    variance both in ``se``). For a rare label (a few positives in the sample) the symmetric
    ``value +- 1.96 se`` reaches too little above and too far below: it misses the truth
    more often than 5% of the time, and mostly on one side. Where p is 0 or 1 with a
    non-zero error (soft values), the symmetric interval, clipped to [0, 1]."""
    if se <= 0.0:
        return Estimate(value, value, value, n)
    if not 0.0 < value < 1.0:
        return Estimate(value, max(0.0, value - Z95 * se), min(1.0, value + Z95 * se), n)
    effective = value * (1 - value) / (se * se)
    z2n = Z95 * Z95 / effective
    center = (value + z2n / 2) / (1 + z2n)
    half = Z95 / (1 + z2n) * math.sqrt(value * (1 - value) / effective + z2n / (4 * effective))
    return Estimate(value, max(0.0, center - half), min(1.0, center + half), n)


def _mean_var(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n > 1:
        return mean, sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, mean * (1 - mean)  # one observation: the binomial variance is all we have


def weighted(observations: Iterable[Observation], populations: Mapping[str, int],
             extra_variance: float = 0.0) -> Estimate:
    """The design-weighted prevalence with a 95% interval. Strata without observations are
    left out and the weights renormalised over the strata that have them.
    ``extra_variance``: more uncertainty to carry (``model_variance``)."""
    by_stratum: dict[str, list[Observation]] = defaultdict(list)
    for o in observations:
        by_stratum[o.stratum].append(o)
    covered = {s: populations[s] for s in by_stratum if populations.get(s)}
    total = sum(covered.values())
    n = sum(len(v) for v in by_stratum.values())
    if not total:
        return Estimate(None, None, None, n)
    value = variance = 0.0
    for s, obs in by_stratum.items():
        if s not in covered:
            continue
        w = covered[s] / total
        mean, between, labeling = _stratum(obs)
        fpc = max(0.0, 1 - len(obs) / covered[s])
        value += w * mean
        variance += w * w * (fpc * (between + labeling) + labeling) / len(obs)
    return _ci(value, math.sqrt(variance + extra_variance), n)


def model_variance(observations: Iterable[Observation], populations: Mapping[str, int],
                   replicates: Iterable[float]) -> float:
    """The variance a refitted model adds: the variance of bootstrap replicate estimates
    (posts resampled within strata, the model refitted to each) less the variance of
    resampling the fixed posteriors (sum_h W_h^2 var_h(p) / n_h), never below zero."""
    values = list(replicates)
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    spread = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    by_stratum: dict[str, list[float]] = defaultdict(list)
    for o in observations:
        by_stratum[o.stratum].append(o.value)
    covered = {s: populations[s] for s in by_stratum if populations.get(s)}
    total = sum(covered.values())
    if not total:
        return 0.0
    fixed = 0.0
    for s, vals in by_stratum.items():
        if s in covered and len(vals) > 1:
            fixed += (covered[s] / total) ** 2 * _mean_var(vals)[1] / len(vals)
    return max(0.0, spread - fixed)


def _stratum(obs: list[Observation]) -> tuple[float, float, float]:
    """(mean value, variance of the values, mean labeling variance) of one stratum."""
    mean, s2 = _mean_var([o.value for o in obs])
    labeling = sum(o.label_variance for o in obs) / len(obs)
    if len(obs) == 1:
        s2 = max(0.0, s2 - labeling)  # one post: its binomial variance is all labeling
    return mean, s2, labeling


def unweighted(observations: Iterable[Observation]) -> Estimate:
    """The plain mean over labeled posts, as if the sample were the population's mirror."""
    obs = list(observations)
    if not obs:
        return Estimate(None, None, None, 0)
    mean = sum(o.value for o in obs) / len(obs)
    labeling = sum(o.label_variance for o in obs) / len(obs)
    return _ci(mean, math.sqrt((mean * (1 - mean) + labeling) / len(obs)), len(obs))


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
        mean, between, labeling = _stratum(obs)
        fpc = max(0.0, 1 - len(obs) / population) if population else 1.0
        out[keyword] = _ci(mean, math.sqrt((fpc * (between + labeling) + labeling) / len(obs)),
                           len(obs))
    return out


def calibrate(rows: Iterable[tuple[str, str, float | None, bool]],
              populations: Mapping[str, int]) -> tuple[dict[str, float], dict[str, dict]]:
    """Weights for the posts kept after screening, from (post, stratum, design weight, kept)
    of every judged post: within each stratum, a kept post's design weight is scaled by
    N_h / (sum of the kept posts' design weights), so the kept posts' weights sum to the
    stratum's population N_h again (post-stratification; with equal weights within a stratum
    the factor is n_h / kept_h). Where N_h is unknown, the judged posts' weight total stands in.

    The assumption: within a stratum, the posts screened out (and the sampled posts not
    judged) are like the kept ones — screening is ignorable given the stratum. When it is
    not (the posts screened out are more often positive), no reweighting by stratum can
    repair it; ``compare`` shows how far the kept posts moved. Returns the weights and, per
    stratum, the population, posts judged and kept, and the factor."""
    by_stratum: dict[str, list[tuple[str, float, bool]]] = defaultdict(list)
    for post_id, stratum, weight, kept in rows:
        if weight is not None:
            by_stratum[stratum].append((post_id, float(weight), kept))
    weights: dict[str, float] = {}
    strata: dict[str, dict] = {}
    for stratum, members in sorted(by_stratum.items()):
        kept_total = sum(w for _, w, k in members if k)
        target = populations.get(stratum) or sum(w for _, w, _ in members)
        factor = target / kept_total if kept_total else None
        strata[stratum] = {"population": target, "judged": len(members),
                           "kept": sum(1 for *_, k in members if k), "factor": factor}
        for post_id, w, kept in members:
            if kept and factor is not None:
                weights[post_id] = w * factor
    return weights, strata


def compare(labeled: list[Observation], kept: list[Observation],
            populations: Mapping[str, int] | None) -> dict[str, object]:
    """A label's prevalence over every judged post and over the kept ones, design-weighted
    when every post has a stratum with a known population (else unweighted). ``shifted``:
    the kept estimate lies outside the judged sample's 95% interval."""
    strata = {o.stratum for o in labeled}
    use_weights = bool(populations) and bool(labeled) and all(
        populations.get(s) for s in strata)  # type: ignore[union-attr]
    if use_weights:
        before, after = weighted(labeled, populations), weighted(kept, populations)  # type: ignore[arg-type]
    else:
        before, after = unweighted(labeled), unweighted(kept)
    shifted = (before.value is not None and after.value is not None
               and not before.low <= after.value <= before.high)  # type: ignore[operator]
    return {"method": "design-weighted" if use_weights else "unweighted",
            "labeled": before.as_dict(), "kept": after.as_dict(),
            "shift": None if before.value is None or after.value is None
            else after.value - before.value,
            "shifted": shifted}
