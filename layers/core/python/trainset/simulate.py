"""Simulated coders who make mistakes at the study's measured rates.

The study scored each coder on gold posts, per label: the percent right on posts where the
label was absent (specificity) and present (sensitivity); ``data/coder_gold_accuracy.csv``
keeps those figures. A simulated coder answers a post whose true answers are known by
flipping each binary item (a yes/no question, or one option of a multi question) with its
own rates, then repairs the label so that it still obeys the codebook, as the page would
force a real coder to. Benchmarks and tests use them to judge consensus, estimates and
screening against a known truth rather than against perfect labels.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from trainset import codebook

# The study's per-label names, mapped to the codebook's items (the gate questions have no
# row of their own: a coder's rate on them is the mean over the family's labels).
STUDY_LABEL_ITEMS = {
    ("child", "baby"): f"age={codebook.AGE_BABY}",
    ("child", "toddler"): f"age={codebook.AGE_TODDLER}",
    ("child", "elementary"): f"age={codebook.AGE_ELEMENTARY}",
    ("child", "middle school"): f"age={codebook.AGE_MIDDLE}",
    ("child", "high school"): f"age={codebook.AGE_HIGH}",
    ("place", "school"): "location=School",
    ("place", "home"): "location=A home",
    ("place", "daycare"): "location=Childcare/daycare",
    ("place", "park"): "location=Park/playground/child sports center",
    ("health", "phys"): "health_type=Physical health",
    ("health", "emot"): "health_type=Emotional/social health",
    ("health", "cog"): "health_type=Cognitive health",
}
CLIP = (0.02, 0.98)  # a real coder is never perfectly right or perfectly wrong


@dataclass
class SimulatedCoder:
    """One coder's sensitivity and specificity per binary item of one family."""

    name: str
    family: str
    sensitivity: dict[str, float] = field(default_factory=dict)
    specificity: dict[str, float] = field(default_factory=dict)
    default: tuple[float, float] = (0.8, 0.8)

    def rates(self, item: str) -> tuple[float, float]:
        return (self.sensitivity.get(item, self.default[0]),
                self.specificity.get(item, self.default[1]))

    def answer(self, truth: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
        """A codebook-valid label for a post whose true answers are ``truth``."""
        fam = codebook.family(self.family)
        probabilities: dict[str, float] = {}
        for q in fam.questions:
            items = [(q.name, truth.get(q.name) is True)] if q.kind == "yes_no" else [
                (f"{q.name}={v}", v in (truth.get(q.name) or [])) for v in q.values]
            for item, present in items:
                sens, spec = self.rates(item)
                said_yes = rng.random() < (sens if present else 1 - spec)
                # An option the coder did not pick keeps a small weight (larger when it is
                # right), so a coder who must pick one (a child needs an age group) picks
                # what they most nearly saw.
                probabilities[item] = 1.0 if said_yes else (
                    0.2 if present else 0.1 * rng.random())
        return codebook.consistent_answers(self.family, probabilities)


def load_coders(family: str, path: Any = None) -> list[SimulatedCoder]:
    """The study's coders for ``family``, from ``coder_gold_accuracy.csv`` (the package's
    copy unless ``path`` is given)."""
    source = path or resources.files("trainset") / "data" / "coder_gold_accuracy.csv"
    with open(source, newline="", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["family"] == family]
    by_coder: dict[str, SimulatedCoder] = {}
    gate_rates: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        coder = by_coder.setdefault(r["coder"], SimulatedCoder(r["coder"], family))
        sens = min(max(float(r["pos_gold_correct_pct"]) / 100, CLIP[0]), CLIP[1])
        spec = min(max(float(r["neg_gold_correct_pct"]) / 100, CLIP[0]), CLIP[1])
        item = STUDY_LABEL_ITEMS.get((family, r["label"]))
        if item is not None:
            coder.sensitivity[item], coder.specificity[item] = sens, spec
        gate_rates[r["coder"]].append((sens, spec))
    gate = codebook.family(family).questions[0].name
    for name, coder in by_coder.items():
        pairs = gate_rates[name]
        mean = (sum(p[0] for p in pairs) / len(pairs), sum(p[1] for p in pairs) / len(pairs))
        coder.default = mean
        if codebook.family(family).questions[0].kind == "yes_no":
            coder.sensitivity[gate], coder.specificity[gate] = mean
    return [by_coder[n] for n in sorted(by_coder)]


def careless_coder(family: str, name: str = "careless") -> SimulatedCoder:
    """A coder who answers nearly at random (right 55% of the time on every item)."""
    return SimulatedCoder(name, family, default=(0.55, 0.55))
