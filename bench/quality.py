"""Benchmark: consensus quality and speed on simulated crowds with known truth.

Coders are drawn from the study's gold accuracies (trainset/data/coder_gold_accuracy.csv:
per coder and label, percent right on positive and on negative gold posts). Each simulated
post gets 1-3 coders, each answering every label of the family; 5% of posts are gold. Prints,
for trainset's Dawid-Skene (with gold as known truths) beside majority vote and crowd-kit's
Dawid-Skene on the same crowd in the same process: accuracy against the truth, expected
calibration error, AUROC for flagging wrong consensus labels, the share of records kept at
>= 98% accuracy by a confidence threshold, and seconds. Also Krippendorff's alpha for
`is_child` on the study's real multiply-labeled posts when ../shared is present.

    python bench/quality.py [--labels 1000000] [--family child]
"""

from __future__ import annotations

import argparse
import ast
import csv
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from trainset.quality.agreement import krippendorff_alpha
from trainset.quality.consensus import encode, fit, majority_vote

DATA = resources.files("trainset") / "data" / "coder_gold_accuracy.csv"
STUDY_LABELS = Path(__file__).resolve().parents[2] / "shared" / "seed-data" / \
    "labeled_tweets_child.csv"
PREVALENCE = 0.2  # share of posts where a label is present


def load_coders(family: str) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(coders, labels, sensitivity[c, l], specificity[c, l]) for the family."""
    rows = [r for r in csv.DictReader(DATA.open()) if r["family"] == family]
    coders = sorted({r["coder"] for r in rows})
    labels = sorted({r["label"] for r in rows})
    sens = np.full((len(coders), len(labels)), 0.75)
    spec = np.full((len(coders), len(labels)), 0.75)
    for r in rows:
        c, lab = coders.index(r["coder"]), labels.index(r["label"])
        # Clip away exact 0/100: a real coder is never perfectly right or wrong.
        sens[c, lab] = min(max(float(r["pos_gold_correct_pct"]) / 100, 0.02), 0.98)
        spec[c, lab] = min(max(float(r["neg_gold_correct_pct"]) / 100, 0.02), 0.98)
    return coders, labels, sens, spec


def simulate(n_labels: int, sens: np.ndarray, spec: np.ndarray, rng: np.random.Generator):
    """Units (post x label), their truth, and the crowd's binary labels."""
    n_coders, n_kinds = sens.shape
    per_post = rng.integers(1, 4, size=max(1, n_labels // (2 * n_kinds)))  # 1-3 coders
    posts = len(per_post)
    truth = rng.random((posts, n_kinds)) < PREVALENCE
    unit_ids, kinds, coders, values = [], [], [], []
    for k in (1, 2, 3):
        chosen = np.flatnonzero(per_post == k)
        picks = np.argsort(rng.random((len(chosen), n_coders)), axis=1)[:, :k]
        for j in range(k):
            c = picks[:, j]
            for kind in range(n_kinds):
                t = truth[chosen, kind]
                p_yes = np.where(t, sens[c, kind], 1 - spec[c, kind])
                unit_ids.append(chosen * n_kinds + kind)
                kinds.append(np.full(len(chosen), kind))
                coders.append(c)
                values.append(rng.random(len(chosen)) < p_yes)
    unit = np.concatenate(unit_ids)
    data = encode(unit, np.concatenate(kinds), np.concatenate(coders), np.concatenate(values))
    gold_posts = rng.random(posts) < 0.05
    gold_mask = np.repeat(gold_posts, n_kinds)
    return data, truth.ravel(), gold_mask


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.mean() * abs(confidence[mask].mean() - correct[mask].mean())
    return total


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney), ties counted half."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    n_pos = positive.sum()
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def kept_at(confidence: np.ndarray, correct: np.ndarray, target: float = 0.98) -> float:
    """Largest share of records whose most confident part is at least ``target`` accurate."""
    order = np.argsort(-confidence, kind="mergesort")
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= target)
    return float((ok[-1] + 1) / len(order)) if len(ok) else 0.0


def evaluate(name: str, posterior: np.ndarray, truth: np.ndarray, scored: np.ndarray,
             seconds: float) -> dict:
    p = posterior[scored]
    t = truth[scored]
    value = p >= 0.5
    confidence = np.maximum(p, 1 - p)
    correct = value == t
    return {"name": name, "accuracy": correct.mean(), "ece": ece(confidence, correct),
            "auroc": auroc(1 - confidence, ~correct), "kept98": kept_at(confidence, correct),
            "seconds": seconds}


def run_crowdkit(data, truth) -> tuple[np.ndarray, float] | None:
    try:
        import pandas as pd
        from crowdkit.aggregation import DawidSkene
    except ImportError:
        return None
    posterior = np.zeros(data.n_units)
    start = time.perf_counter()
    for kind in range(data.n_kinds):
        mask = data.kind == kind
        frame = pd.DataFrame({"worker": data.coder[mask], "task": data.unit[mask],
                              "label": data.value[mask].astype(int)})
        proba = DawidSkene(n_iter=100).fit_predict_proba(frame)
        yes = proba[1] if 1 in proba.columns else 0.0
        posterior[proba.index.to_numpy()] = np.asarray(yes, dtype=float)
    return posterior, time.perf_counter() - start


def study_alpha() -> str:
    if not STUDY_LABELS.exists():
        return "skipped (../shared not present)"
    units: dict[str, list[bool]] = {}
    with STUDY_LABELS.open() as handle:
        for row in csv.DictReader(handle):
            units.setdefault(row["id"], []).append(row["is_child"] == "True")
    multi = {k: v for k, v in units.items() if len(v) > 1}
    alpha = krippendorff_alpha(list(multi.values()))
    agree = np.mean([len(set(v)) == 1 for v in multi.values()])
    ages = sum(1 for row in csv.DictReader(STUDY_LABELS.open())
               if ast.literal_eval(row["age"]) != [""])
    return (f"{alpha:.3f} over {len(multi):,} posts with 2+ labels (full agreement "
            f"{100 * agree:.0f}%; {ages:,} labels name an age group)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--family", default="child", choices=["place", "child", "health"])
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    coders, kinds, sens, spec = load_coders(args.family)
    data, truth, gold_mask = simulate(args.labels, sens, spec, rng)
    scored = ~gold_mask  # judge on posts whose truth was not given away
    start = time.perf_counter()
    posterior, *_ = fit(data, gold_mask, truth.astype(float))
    ours = evaluate("trainset Dawid-Skene", posterior, truth, scored, time.perf_counter() - start)
    rng_tie = np.random.default_rng(1)
    start = time.perf_counter()
    mv = majority_vote(data)
    mv = np.where(mv == 0.5, rng_tie.random(len(mv)) * 0.02 + 0.49, mv)
    vote = evaluate("majority vote", mv, truth, scored, time.perf_counter() - start)
    results = [ours, vote]
    crowd = run_crowdkit(data, truth)
    if crowd is not None:
        results.append(evaluate("crowd-kit Dawid-Skene", crowd[0], truth, scored, crowd[1]))
    print(f"quality benchmark: {len(data.value):,} labels, {data.n_units:,} post-labels "
          f"({args.family}: {', '.join(kinds)}), {len(coders)} coders from the study's gold "
          f"accuracies, 1-3 coders per post, 5% gold")
    print(f"  {'method':<24}{'accuracy':>9}{'ECE':>8}{'AUROC':>8}{'kept@98%':>10}{'seconds':>9}")
    for r in results:
        print(f"  {r['name']:<24}{100 * r['accuracy']:>8.2f}%{r['ece']:>8.3f}{r['auroc']:>8.3f}"
              f"{100 * r['kept98']:>9.1f}%{r['seconds']:>9.2f}")
    print(f"  trainset vs majority vote: {100 * (ours['accuracy'] - vote['accuracy']):+.2f} "
          f"points" + (f"; vs crowd-kit: {100 * (ours['accuracy'] - results[2]['accuracy']):+.2f}"
                       f" points, {results[2]['seconds'] / ours['seconds']:.1f}x faster"
                       if crowd else "; crowd-kit not installed (pip install -r "
                       "bench/requirements.txt)"))
    print(f"  Krippendorff's alpha, is_child, the study's real labels: {study_alpha()}")
    print("  (targets: accuracy >= majority + 3 points and >= crowd-kit, AUROC >= crowd-kit, "
          "ECE <= 0.03, 1M labels < 10 s)")


if __name__ == "__main__":
    sys.exit(main())
