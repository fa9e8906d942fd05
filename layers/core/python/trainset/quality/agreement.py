"""Inter-coder agreement: Krippendorff's alpha, Cohen's kappa, percent agreement, and
bootstrap intervals.

Alpha works on *units* (posts), each with the values its coders gave. Yes/no answers use the
nominal distance; multi-select answers are sets compared with the MASI distance (Passonneau
2006), which counts a partial overlap as partial agreement. Callers pass, for a conditional
question, only the coders who were asked it (e.g. ``age`` only from coders who saw a child).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from itertools import combinations
from typing import Any

Distance = Callable[[Any, Any], float]


def nominal(a: Hashable, b: Hashable) -> float:
    return 0.0 if a == b else 1.0


def masi(a: frozenset, b: frozenset) -> float:
    """MASI distance between two answer sets: 1 - Jaccard x monotonicity."""
    if a == b:
        return 0.0
    union = len(a | b)
    jaccard = len(a & b) / union if union else 1.0
    if a <= b or b <= a:
        monotonicity = 2 / 3
    elif a & b:
        monotonicity = 1 / 3
    else:
        monotonicity = 0.0
    return 1.0 - jaccard * monotonicity


def jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return 0.0 if not union else 1.0 - len(a & b) / union


def krippendorff_alpha(units: Sequence[Sequence[Hashable]],
                       distance: Distance = nominal) -> float | None:
    """Alpha over units with two or more values; None when there is no variation at all."""
    pairable = [Counter(u) for u in units if len(u) >= 2]
    n = sum(sum(c.values()) for c in pairable)
    if n < 2:
        return None
    cache: dict[tuple[Hashable, Hashable], float] = {}

    def d(a: Hashable, b: Hashable) -> float:
        key = (a, b)
        if key not in cache:
            cache[key] = distance(a, b)
        return cache[key]

    observed = 0.0
    for counts in pairable:
        m = sum(counts.values())
        within = sum(ca * cb * d(a, b) for a, ca in counts.items() for b, cb in counts.items()
                     if a != b)
        observed += within / (m - 1)
    observed /= n
    totals: Counter = Counter()
    for counts in pairable:
        totals.update(counts)
    expected = sum(ca * cb * d(a, b) for a, ca in totals.items() for b, cb in totals.items()
                   if a != b) / (n * (n - 1))
    if expected == 0:
        return None
    return 1.0 - observed / expected


def percent_agreement(units: Sequence[Sequence[Hashable]]) -> float | None:
    """Share of units (with two or more values) whose coders all agree."""
    pairable = [u for u in units if len(u) >= 2]
    if not pairable:
        return None
    return sum(1 for u in pairable if len(set(u)) == 1) / len(pairable)


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float | None:
    """Cohen's kappa for two coders' answers on the same items (nominal)."""
    n = len(first)
    if n == 0 or n != len(second):
        return None
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    ca, cb = Counter(first), Counter(second)
    expected = sum(ca[v] * cb[v] for v in set(ca) | set(cb)) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def pairwise_kappa(ratings: dict[str, dict[str, Hashable]],
                   min_common: int = 5) -> list[tuple[str, str, float | None, int]]:
    """Kappa for every pair of coders with ``min_common`` items in common.
    ``ratings`` maps coder -> {item: value}."""
    out = []
    for a, b in combinations(sorted(ratings), 2):
        common = sorted(set(ratings[a]) & set(ratings[b]))
        if len(common) >= min_common:
            kappa = cohen_kappa([ratings[a][i] for i in common], [ratings[b][i] for i in common])
            out.append((a, b, kappa, len(common)))
    return out


def bootstrap_interval(units: Sequence[Sequence[Hashable]],
                       statistic: Callable[[Sequence[Sequence[Hashable]]], float | None],
                       rounds: int = 200, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of ``statistic`` over units resampled with replacement."""
    pairable = [u for u in units if len(u) >= 2]
    if len(pairable) < 2:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(rounds):
        sample = [pairable[rng.randrange(len(pairable))] for _ in pairable]
        value = statistic(sample)
        if value is not None:
            values.append(value)
    if not values:
        return None
    values.sort()
    low = values[int((1 - level) / 2 * (len(values) - 1))]
    high = values[int((1 + level) / 2 * (len(values) - 1))]
    return low, high
