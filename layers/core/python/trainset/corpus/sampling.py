"""Sampling posts into a campaign, honestly: every sampled post gets its inclusion probability.

Strata are keywords. Strategies:

- ``equal``: the same number per keyword (the study's design);
- ``proportional``: in proportion to each keyword's population;
- ``neyman``: in proportion to N_h * S_h, where S_h = sqrt(p_h (1 - p_h)) from a pilot yield
  p_h per keyword: the allocation that minimises the variance of the prevalence estimate, and
  which spends more labels where positives are;
- ``random``: a simple random sample of the whole frame (no strata).

Within a stratum posts are drawn without replacement, so a post's inclusion probability is
n_h / N_h (n / N for ``random``); the probabilities sum to the budget. Every stratum with posts
gets at least ``MIN_PER_STRATUM`` (when it has that many), so no post has probability zero and
every stratum's variance can be estimated. The same frame, settings and seed give the same
sample.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STRATEGIES = ("equal", "proportional", "neyman", "random")
MIN_PER_STRATUM = 2
YIELD_FLOOR = 0.01  # a pilot yield of 0 would starve a stratum: no estimate could reach it
NO_KEYWORD = "(no keyword)"


class SamplingError(ValueError):
    """The request cannot be sampled as asked (explained in the message)."""


@dataclass(frozen=True)
class StratumPlan:
    stratum: str
    population: int
    sampled: int
    pilot_yield: float | None

    @property
    def inclusion_prob(self) -> float:
        return self.sampled / self.population if self.population else 0.0

    @property
    def expected_positives(self) -> float | None:
        return None if self.pilot_yield is None else self.sampled * self.pilot_yield


@dataclass(frozen=True)
class SampledPost:
    post_id: str
    stratum: str
    inclusion_prob: float


def allocate(
    populations: Mapping[str, int],
    budget: int,
    strategy: str,
    yields: Mapping[str, float] | None = None,
) -> list[StratumPlan]:
    """How many posts to draw from each stratum (for ``random``: one stratum, the frame)."""
    if strategy not in STRATEGIES:
        raise SamplingError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if budget < 1:
        raise SamplingError("the budget must be at least 1 post")
    total = sum(populations.values())
    if total == 0:
        raise SamplingError("no posts are left to sample from (after the filters)")
    budget = min(budget, total)
    names = sorted(s for s, n in populations.items() if n > 0)
    yields = dict(yields or {})
    known = [yields[s] for s in names if s in yields]
    fallback = sum(known) / len(known) if known else None
    pilot = {s: yields.get(s, fallback) for s in names}
    if strategy == "random":
        return [StratumPlan("all", total, budget, None)]
    if strategy == "neyman" and fallback is None:
        raise SamplingError("neyman allocation needs pilot yields: label some posts first, or "
                            "pass a yields file (keyword, percent_true)")
    if strategy == "equal":
        weights = {s: 1.0 for s in names}
    elif strategy == "proportional":
        weights = {s: float(populations[s]) for s in names}
    else:
        weights = {}
        for s in names:
            p = min(max(pilot[s], YIELD_FLOOR), 1 - YIELD_FLOOR)
            weights[s] = populations[s] * math.sqrt(p * (1 - p))
    counts = _water_fill({s: populations[s] for s in names}, weights, budget)
    return [StratumPlan(s, populations[s], counts[s], pilot[s]) for s in names]


def _water_fill(caps: dict[str, int], weights: dict[str, float], budget: int) -> dict[str, int]:
    """Integer counts close to ``budget`` * weight share, each within [floor, cap], summing to
    ``budget``: strata whose share is over their cap (or under the floor) are fixed there and
    the rest of the budget is shared again by weight among the others."""
    floor = {s: min(MIN_PER_STRATUM, caps[s]) for s in caps}
    if sum(floor.values()) > budget:
        raise SamplingError(
            f"a budget of {budget} cannot give every one of the {len(caps)} keywords at least "
            f"{MIN_PER_STRATUM} posts; raise the budget to {sum(floor.values())} or use random"
        )
    fixed: dict[str, float] = {}
    while True:
        free = sorted(s for s in caps if s not in fixed)
        remaining = budget - sum(fixed.values())
        total = sum(weights[s] for s in free)
        share = {s: remaining * (weights[s] / total if total else 1 / len(free)) for s in free}
        over = [s for s in free if share[s] > caps[s]]
        under = [s for s in free if share[s] < floor[s]]
        if over:
            fixed.update({s: float(caps[s]) for s in over})
        elif under:
            fixed.update({s: float(floor[s]) for s in under})
        else:
            share.update(fixed)
            break
        if len(fixed) == len(caps):
            share = fixed
            break
    counts = {s: int(math.floor(share[s] + 1e-9)) for s in caps}
    leftover = budget - sum(counts.values())
    # Largest remainders first; ties by name, so the result is deterministic.
    order = sorted(caps, key=lambda s: (-round(share[s] - counts[s], 9), s))
    for s in order:
        if leftover <= 0:
            break
        if counts[s] < caps[s]:
            counts[s] += 1
            leftover -= 1
    return counts


def draw(
    frame: Mapping[str, Sequence[str]], plan: Sequence[StratumPlan], seed: int
) -> list[SampledPost]:
    """Draw the planned number of posts from each stratum, without replacement."""
    rng = np.random.Generator(np.random.PCG64(seed))
    sampled: list[SampledPost] = []
    for stratum in plan:
        if stratum.stratum == "all" and len(plan) == 1 and "all" not in frame:
            ids = sorted(i for members in frame.values() for i in members)
        else:
            ids = sorted(frame[stratum.stratum])
        if stratum.sampled > len(ids):
            raise SamplingError(f"stratum {stratum.stratum!r} has only {len(ids)} posts")
        chosen = rng.choice(len(ids), size=stratum.sampled, replace=False)
        prob = stratum.sampled / len(ids)
        sampled.extend(SampledPost(ids[i], stratum.stratum, prob) for i in sorted(chosen))
    return sampled


def load_yields_csv(path: Path) -> dict[str, float]:
    """Pilot yields per keyword from a CSV with ``keyword`` and ``percent_true`` (0-100) or
    ``yield`` (0-1) columns; a ``total`` row is ignored. Errors name the line."""
    yields: dict[str, float] = {}
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise SamplingError(f"cannot read yields file {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        if "keyword" not in columns or not ({"percent_true", "yield"} & set(columns)):
            raise SamplingError(f"{path}: needs a keyword column and a percent_true or yield "
                                f"column (found: {', '.join(columns) or 'nothing'})")
        scale = 100.0 if "percent_true" in columns else 1.0
        column = "percent_true" if "percent_true" in columns else "yield"
        for row in reader:
            keyword = (row.get("keyword") or "").strip()
            if not keyword or keyword.lower() == "total":
                continue
            try:
                value = float(row[column]) / scale
            except (TypeError, ValueError):
                raise SamplingError(f"{path}, line {reader.line_num}: {column} "
                                    f"{row.get(column)!r} is not a number") from None
            if not 0 <= value <= 1:
                raise SamplingError(f"{path}, line {reader.line_num}: yield {value:.3f} is "
                                    "outside 0-1")
            yields[keyword] = value
    return yields


def stratum_of(keyword: str | None) -> str:
    return keyword or NO_KEYWORD
