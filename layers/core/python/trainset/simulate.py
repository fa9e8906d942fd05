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


# Age groups among the study's child posts (single-group labels in labeled_tweets_child.csv:
# baby 6,880, general 4,082, toddler 4,019, high 3,184, middle 1,685, elementary 1,221,
# unsure 756, school age 404), so simulated children are as old as the study's were.
AGE_SHARES = (
    (codebook.AGE_BABY, 6880), (codebook.AGE_GENERAL, 4082), (codebook.AGE_TODDLER, 4019),
    (codebook.AGE_HIGH, 3184), (codebook.AGE_MIDDLE, 1685), (codebook.AGE_ELEMENTARY, 1221),
    (codebook.AGE_UNSURE, 756), (codebook.AGE_SCHOOL, 404),
)
_WORDS = ("park", "morning", "school", "rain", "air", "smoke", "heat", "walk", "bus", "lunch",
          "garden", "river", "clinic", "yard", "street", "story", "week", "summer", "noise",
          "water", "dust", "field", "city", "home", "trip", "game", "class", "day", "night")


@dataclass
class SimulatedPost:
    """A corpus row with its true answers (what a perfect coder would say)."""

    row: dict[str, Any]
    truth: dict[str, Any]


def child_truth(rng: random.Random, yield_share: float) -> dict[str, Any]:
    """True child answers for a post of a keyword whose share of child posts is known."""
    if rng.random() >= yield_share:
        return {"is_child": False}
    ages = [a for a, _ in AGE_SHARES]
    weights = [w for _, w in AGE_SHARES]
    return {"is_child": True, "age": [rng.choices(ages, weights)[0]]}


def child_corpus(yields: Mapping[str, float], per_keyword: int, seed: int,
                 prefix: str = "s") -> list[SimulatedPost]:
    """``per_keyword`` posts for each keyword, true answers drawn from its yield (share of
    child posts, 0..1), texts unique enough to pass the near-duplicate filter, and authors
    who write several posts (for the author features)."""
    rng = random.Random(seed)
    posts = []
    for k, (keyword, share) in enumerate(sorted(yields.items())):
        for i in range(per_keyword):
            words = " ".join(rng.choice(_WORDS) for _ in range(8))
            post_id = f"{prefix}{k:03d}-{i:05d}"
            posts.append(SimulatedPost(
                {"id": post_id, "text": f"{keyword}: {words} {rng.randrange(10**9)}",
                 "keyword": keyword, "family": "child",
                 "author": f"author{rng.randrange(max(1, per_keyword * len(yields) // 4))}"},
                child_truth(rng, share)))
    return posts


def gold_set(posts: list[SimulatedPost], purpose: str) -> list[dict[str, Any]]:
    """Gold rows (``gold import``'s columns) from posts whose truth is known."""
    import json

    return [{"id": p.row["id"], "text": p.row["text"], "family": "child",
             "keyword": p.row["keyword"], "answers": json.dumps(p.truth),
             "rationale": f"{purpose} post: "
             + ("a child is shown" if p.truth["is_child"] else "no child")} for p in posts]


def label_over_http(base_url: str, token: str, coder: SimulatedCoder,
                    truth: Mapping[str, Mapping[str, Any]], rng: random.Random,
                    mode: str = "work", limit: int | None = None) -> int:
    """Label through the API as a coder would, until the queue is empty (or ``limit``):
    next task, answer with the coder's error rates, submit (resending the same submission
    on a 503). Returns how many labels the server acknowledged."""
    import http.client
    import json
    import time
    import uuid
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        for _ in range(60):
            conn.request(method, parts.path + path, headers=headers,
                         body=None if body is None else json.dumps(body))
            response = conn.getresponse()
            data = json.loads(response.read() or b"null")
            if response.status != 503:
                return response.status, data
            time.sleep(0.5)
        raise RuntimeError(f"{method} {path}: the server stayed unavailable")

    done = 0
    try:
        while limit is None or done < limit:
            status, body = call("GET", f"/tasks/next?family={coder.family}&mode={mode}")
            if status != 200:
                raise RuntimeError(f"next task: {status} {body}")
            task = body["task"]
            if task is None:
                break
            answers = coder.answer(truth[task["post_id"]], rng)
            status, body = call("POST", "/labels", {
                "submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                "family": coder.family, "answers": answers,
                "seconds_spent": round(rng.uniform(3, 40), 1)})
            if status != 200:
                raise RuntimeError(f"submit: {status} {body}")
            done += 1
    finally:
        conn.close()
    return done


def label_in_process(service: Any, pairs: list[tuple[SimulatedCoder, Any]],
                     truth: Mapping[str, Mapping[str, Any]], rng: random.Random,
                     family: str = "child") -> int:
    """Each simulated coder (with their coder row) takes tasks in turn from the labeling
    service until none is left for anyone; returns how many labels were stored."""
    import uuid

    active = list(pairs)
    done = 0
    while active:
        for pair in list(active):
            sim, coder = pair
            task = service.next_task(coder, family)["task"]
            if task is None:
                active.remove(pair)
                continue
            service.submit(coder, {"submission_id": str(uuid.uuid4()),
                                   "post_id": task["post_id"], "family": family,
                                   "answers": sim.answer(truth[task["post_id"]], rng)})
            done += 1
    return done
