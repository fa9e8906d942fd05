"""Scoring a coder's answer against a gold answer, for practice feedback and certification."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from trainset import codebook

# What a trainee needs before a manager is advised to certify them.
CERTIFY_MIN_ANSWERS = 10
CERTIFY_MIN_SCORE = 0.8


@dataclass(frozen=True)
class FieldFeedback:
    field: str
    correct: bool
    missed: list[str]  # options in the gold answer the coder did not pick
    added: list[str]  # options the coder picked that the gold answer does not have
    expected: Any
    given: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "correct": self.correct,
            "missed": self.missed,
            "added": self.added,
            "expected": self.expected,
            "given": self.given,
        }


def compare(family: str, given: Mapping[str, Any], gold: Mapping[str, Any]) -> list[FieldFeedback]:
    """Per question of the family: right or wrong, and which options were missed or added."""
    fam = codebook.family(family)
    feedback = []
    for q in fam.questions:
        expected = gold.get(q.name)
        answer = given.get(q.name)
        if q.kind == "yes_no":
            feedback.append(FieldFeedback(q.name, answer == expected, [], [], expected, answer))
            continue
        want = set(expected or [])
        got = set(answer or [])
        missed = [v for v in q.values if v in want - got]
        added = [v for v in q.values if v in got - want]
        feedback.append(
            FieldFeedback(q.name, not missed and not added, missed, added, expected, answer)
        )
    return feedback


def is_correct(family: str, given: Mapping[str, Any], gold: Mapping[str, Any]) -> bool:
    return all(f.correct for f in compare(family, given, gold))


def summary(answers: Iterable[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> dict:
    """Practice score over (family, given, gold) triples, and what certification still needs."""
    total = correct = 0
    for family, given, gold in answers:
        total += 1
        correct += is_correct(family, given, gold)
    score = correct / total if total else None
    ready = total >= CERTIFY_MIN_ANSWERS and score is not None and score >= CERTIFY_MIN_SCORE
    return {
        "answered": total,
        "correct": correct,
        "score": score,
        "certification": {
            "min_answers": CERTIFY_MIN_ANSWERS,
            "min_score": CERTIFY_MIN_SCORE,
            "ready": ready,
        },
    }
