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
from datetime import UTC, date, datetime, timedelta
from typing import Any

from trainset import codebook
from trainset.corpus.estimate import Z95


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
    """The first day of the week (Monday) or month containing ``moment``. 'all' has no start
    of its own (``score`` names it by its first and last answer), so it is refused here."""
    day = moment.date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"unknown period {period!r}; use week or month ('all' is a span)")


def score(answers: Iterable[GoldAnswer], period: str = "all") -> list[dict[str, Any]]:
    """Rows of the gold-scoring table: per coder, family, item and period, plus per coder and
    family over all items ('(all)'), each with counts, percents and Wilson intervals.

    A week or month is named by its first day; 'all' by the span of the answers scored,
    ``first/last`` (ISO 8601 dates, UTC), never by a made-up start such as the epoch."""
    answers = list(answers)
    if period == "all":
        days = sorted(_utc_day(a.answered_at) for a in answers)
        span = f"{days[0].isoformat()}/{days[-1].isoformat()}" if days else "none"
    cells: dict[tuple[str, str, str, str], Score] = defaultdict(Score)
    for a in answers:
        start = span if period == "all" else period_start(a.answered_at, period).isoformat()
        truth = binary_items(a.family, a.gold)
        given = binary_items(a.family, a.answers)
        for item, value in truth.items():
            for key in ((a.coder, a.family, item, start), (a.coder, a.family, "(all)", start)):
                cells[key].add(value, given[item])
    return [
        {"coder": coder, "family": family, "label": item, "period": start, **s.as_dict()}
        for (coder, family, item, start), s in sorted(cells.items())
    ]


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def gold_period(answers: Iterable[GoldAnswer]) -> dict[str, Any]:
    """When the gold answers scored were given: first and last day (UTC) and how many."""
    days = sorted(_utc_day(a.answered_at) for a in answers)
    return {"from": days[0].isoformat() if days else None,
            "to": days[-1].isoformat() if days else None, "answers": len(days)}


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


# ---- per-question screening ------------------------------------------------------------------


def question_of(item: str) -> str:
    """The question a binary item belongs to: ``age=...`` -> ``age``; ``is_child`` itself."""
    return item.split("=", 1)[0]


@dataclass(frozen=True)
class QuestionScore:
    """How right a coder was on one question over their gold answers.

    ``right`` is a sum of per-post scores: 1/0 for a yes/no question, and for a multi-select
    question the share of its options right (present or absent), so each gold post counts
    once however many options the question has (its options are not independent trials)."""

    coder: str
    family: str
    question: str
    right: float
    n: int  # gold posts on which the question was scored

    @property
    def accuracy(self) -> float | None:
        return None if self.n == 0 else self.right / self.n

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.right, self.n)  # type: ignore[arg-type] - a share works as well


def question_scores(answers: Iterable[GoldAnswer]) -> list[QuestionScore]:
    """Per coder, family and question: the coder's score on gold posts where the gold answer
    asks the question (a conditional question, such as a child's age, is judged only on gold
    posts that have its condition; whether the condition holds is the gate question's
    score). A coder who was not asked a question the gold asks has all its options absent."""
    totals: dict[tuple[str, str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for a in answers:
        fam = codebook.family(a.family)
        given = binary_items(a.family, a.answers)
        truth = binary_items(a.family, a.gold)
        for q in fam.questions:
            if q.show_when is not None and not q.show_when.holds(a.gold):
                continue
            items = [q.name] if q.kind == "yes_no" else [f"{q.name}={v}" for v in q.values]
            share = sum(given[i] == truth[i] for i in items) / len(items)
            cell = totals[(a.coder, a.family, q.name)]
            cell[0] += share
            cell[1] += 1
    return [QuestionScore(coder, family, question, right, int(n))
            for (coder, family, question), (right, n) in sorted(totals.items())]


@dataclass(frozen=True)
class Verdict:
    """The screen's decision on one coder's answers to one question."""

    coder: str
    question: str
    verdict: str  # "kept", "dropped", "too few gold answers", "no gold answers"
    n: int
    accuracy_pct: float | None
    wilson_low_pct: float | None
    threshold_pct: float

    def as_dict(self) -> dict[str, Any]:
        return {"coder": self.coder, "question": self.question, "verdict": self.verdict,
                "gold_answers": self.n, "accuracy_pct": self.accuracy_pct,
                "wilson_low_pct": self.wilson_low_pct, "threshold_pct": self.threshold_pct}


def judge_questions(scores: Iterable[QuestionScore], coders: Iterable[str],
                    questions: Iterable[str], threshold_pct: float,
                    min_answers: int,
                    per_question: Mapping[str, float] | None = None) -> list[Verdict]:
    """Each (coder, question) verdict. A coder's answers to a question are dropped when the
    lower bound of the 95% Wilson interval of their accuracy on it is below the question's
    threshold (``per_question`` overrides ``threshold_pct``): the coder must show, with
    confidence, that they are at least that good. The point estimate alone would treat 4 of
    5 right like 80 of 100. Under ``min_answers`` gold answers a coder is not judged (kept)."""
    per_question = per_question or {}
    by_key = {(s.coder, s.question): s for s in scores}
    out = []
    for coder in sorted(set(coders)):
        for question in questions:
            threshold = float(per_question.get(question, threshold_pct))
            s = by_key.get((coder, question))
            if s is None or s.n == 0:
                out.append(Verdict(coder, question, "no gold answers", 0, None, None, threshold))
                continue
            accuracy = 100 * s.right / s.n
            low = 100 * s.interval[0]  # type: ignore[index] - n > 0
            if s.n < min_answers:
                verdict = "too few gold answers"
            else:
                verdict = "dropped" if low < threshold else "kept"
            out.append(Verdict(coder, question, verdict, s.n, round(accuracy, 2),
                               round(low, 2), threshold))
    return out
