"""Scoring coders on gold posts: per coder, label option and period, split into positive gold
(the option is in the gold answer) and negative gold (it is not), with Wilson 95% intervals.

Binary items come from the codebook: every yes/no question, and every option of every
multi-select question (present or absent). A question that was not asked counts as all of its
options absent, so a coder who says "no child" on a toddler post misses the toddler option.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from trainset import codebook
from trainset.estimate import Z95


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None when n is 0."""
    if n == 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def binary_items(family: str, answers: Mapping[str, Any]) -> dict[str, bool]:
    """Every binary item of a family's label: ``field`` for yes/no questions and
    ``field=option`` for each option of a multi-select question."""
    fam = codebook.family(family)
    items: dict[str, bool] = {}
    for q in fam.questions:
        value = answers.get(q.name)
        if q.kind == "yes_no":
            items[q.name] = value is True
        else:
            chosen = set(value or [])
            for option in q.values:
                items[f"{q.name}={option}"] = option in chosen
    return items


@dataclass(frozen=True)
class GoldAnswer:
    """A coder's answer to a QA gold post."""

    coder: str
    family: str
    post_id: str
    answered_at: datetime
    answers: Mapping[str, Any]
    gold: Mapping[str, Any]


@dataclass
class Score:
    positive_right: int = 0
    positive_n: int = 0
    negative_right: int = 0
    negative_n: int = 0

    def add(self, truth: bool, given: bool) -> None:
        if truth:
            self.positive_n += 1
            self.positive_right += given
        else:
            self.negative_n += 1
            self.negative_right += not given

    @property
    def right(self) -> int:
        return self.positive_right + self.negative_right

    @property
    def n(self) -> int:
        return self.positive_n + self.negative_n

    def as_dict(self) -> dict[str, Any]:
        def pct(right: int, n: int) -> float | None:
            return None if n == 0 else 100 * right / n

        def ci(right: int, n: int) -> list[float] | None:
            interval = wilson(right, n)
            return None if interval is None else [100 * interval[0], 100 * interval[1]]

        return {
            "pos_gold_correct_pct": pct(self.positive_right, self.positive_n),
            "pos_gold_n": self.positive_n,
            "pos_gold_ci": ci(self.positive_right, self.positive_n),
            "neg_gold_correct_pct": pct(self.negative_right, self.negative_n),
            "neg_gold_n": self.negative_n,
            "neg_gold_ci": ci(self.negative_right, self.negative_n),
            "correct_pct": pct(self.right, self.n),
            "n": self.n,
            "ci": ci(self.right, self.n),
        }


def period_start(moment: datetime, period: str) -> date:
    """The first day of the week (Monday) or month containing ``moment``; 'all' -> epoch."""
    day = moment.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "all":
        return date(1970, 1, 1)
    raise ValueError(f"unknown period {period!r}; use week, month or all")


def score(answers: Iterable[GoldAnswer], period: str = "all") -> list[dict[str, Any]]:
    """Rows of the gold-scoring table: per coder, family, item and period, plus per coder and
    family over all items ('(all)'), each with counts, percents and Wilson intervals."""
    cells: dict[tuple[str, str, str, date], Score] = defaultdict(Score)
    for a in answers:
        start = period_start(a.answered_at, period)
        truth = binary_items(a.family, a.gold)
        given = binary_items(a.family, a.answers)
        for item, value in truth.items():
            for key in ((a.coder, a.family, item, start), (a.coder, a.family, "(all)", start)):
                cells[key].add(value, given[item])
    return [
        {"coder": coder, "family": family, "label": item, "period": start.isoformat(),
         **s.as_dict()}
        for (coder, family, item, start), s in sorted(cells.items())
    ]


def cohort(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per family, label and period: how the coders did as a group (mean, median, min, max
    of their percent correct; coders counted)."""
    groups: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r["correct_pct"] is not None:
            groups[(r["family"], r["label"], r["period"])].append(r["correct_pct"])
    return [
        {"family": f, "label": item, "period": p, "coders": len(v),
         "mean_pct": statistics.fmean(v), "median_pct": statistics.median(v),
         "min_pct": min(v), "max_pct": max(v)}
        for (f, item, p), v in sorted(groups.items())
    ]
