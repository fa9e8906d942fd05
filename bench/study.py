"""Benchmark: a whole simulated study through the real commands and the real local server.

A corpus drawn from the study's real keyword yields (bench/data/child_keyword_yield.csv)
with a known truth per post is imported with `corpus import`; gold and practice sets of our
own with `gold import`; coders are added with `coders add`; a neyman campaign is drawn with
`sample`; then coders whose accuracies follow the study's (trainset/data/
coder_gold_accuracy.csv) plus one careless coder label concurrently over HTTP against
`python -m trainset run`; two quality rounds (the re-labels of the first are labeled before
the second); `estimate`, `export labels` and the export job (`pipeline run`) with a tf.data
read-back. Prints consensus accuracy against majority vote and the truth, each label's
weighted estimate and interval against the true prevalence, the share of exported answers
the codebook accepts, and labels per kept post. Then the same design and flow, smaller, 30
times through the service layer for the intervals' coverage (label, a quality round, its
re-labels, estimate).

    python bench/study.py [--keywords 40] [--per-keyword 500] [--budget 3000] [--reps 30]
                          [--rep-seed 100]

`tests/live/test_study.py` runs `run_study` small in `make test`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
YIELDS = ROOT / "bench" / "data" / "child_keyword_yield.csv"

sys.path.insert(0, str(ROOT / "bench"))
from harness import database as scratch_database  # noqa: E402
from harness import local_server  # noqa: E402

from trainset import codebook, simulate  # noqa: E402


@dataclass
class StudyResult:
    """What a simulated study produced, judged against its truth."""

    posts: int
    labels: int
    consensus_accuracy: float
    majority_accuracy: float
    estimates: list[dict[str, Any]] = field(default_factory=list)  # label, value, CI, truth
    exported: int = 0
    exported_valid: int = 0
    labels_per_kept_post: float = 0.0
    tfrecords: int = 0
    quality_rounds: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def keyword_yields(n: int) -> dict[str, float]:
    """The ``n`` keywords with the most labeled posts in the study, with their yields."""
    with YIELDS.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["keyword"] != "total"]
    rows.sort(key=lambda r: -int(r["count (n)"]))
    return {r["keyword"]: float(r["percent_true"]) / 100 for r in rows[:n]}


def cli(env: dict[str, str], *args: str) -> str:
    """Run ``python -m trainset ARGS`` as a user would; its output, or an error with it."""
    done = subprocess.run([sys.executable, "-m", "trainset", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"trainset {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout}\n{done.stderr}")
    return done.stdout


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def label_all(base: str, crowd: list[tuple[simulate.SimulatedCoder, str]],
              truth: dict[str, dict[str, Any]], seed: int) -> int:
    """Every coder labels concurrently until the queue is empty; labels acknowledged."""
    counts: list[int] = []
    errors: list[BaseException] = []

    def work(i: int, coder: simulate.SimulatedCoder, token: str) -> None:
        try:
            counts.append(simulate.label_over_http(base, token, coder, truth,
                                                   random.Random(seed * 1000 + i)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, c, t))
               for i, (c, t) in enumerate(crowd)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts)


def run_study(work: Path, database_url: str, *, keywords: int = 40, per_keyword: int = 500,
              budget: int = 3000, n_gold: int = 120, n_practice: int = 20, n_coders: int = 8,
              seed: int = 11, progress: Any = print, api_url: str | None = None
              ) -> StudyResult:
    """The whole study, through the commands and the server, on ``database_url``; with
    ``api_url``, through a server already running on that database."""
    clock: dict[str, float] = {}
    start = time.perf_counter()
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    # A user's shell: no stand-in endpoints left over from whatever ran this in-process.
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("AWS_ENDPOINT_URL", "MOTO_"))}
    env = {**inherited, "TRAINSET_DATABASE_URL": database_url, "TRAINSET_HOME": str(home),
           "TRAINSET_GOLD_RATE": "0.1", "PYTHONUNBUFFERED": "1"}
    yields = keyword_yields(keywords)
    posts = simulate.child_corpus(yields, per_keyword, seed)
    rng = random.Random(seed)
    rng.shuffle(posts)
    gold, practice = posts[:n_gold], posts[n_gold:n_gold + n_practice]
    corpus = posts[n_gold + n_practice:]
    truth = {p.row["id"]: p.truth for p in posts}

    progress(f"importing {len(corpus)} posts, {len(gold)} gold and {len(practice)} practice")
    cli(env, "corpus", "import", str(write_csv(work / "corpus.csv", [p.row for p in corpus])),
        "--rejects", str(work / "corpus-rejects.csv"))
    cli(env, "gold", "import", str(write_csv(work / "gold.csv", simulate.gold_set(gold, "qa"))),
        "--purpose", "qa", "--rejects", str(work / "gold-rejects.csv"))
    cli(env, "gold", "import",
        str(write_csv(work / "practice.csv", simulate.gold_set(practice, "practice"))),
        "--purpose", "practice", "--rejects", str(work / "practice-rejects.csv"))
    crowd_coders = simulate.load_coders("child")[:n_coders] + [simulate.careless_coder("child")]
    crowd = []
    for coder in crowd_coders:
        out = cli(env, "coders", "add", coder.name.replace("_", "-"), "--certified")
        crowd.append((coder, out.split("token: ", 1)[1].split()[0]))
    trainee = cli(env, "coders", "add", "trainee-one").split("token: ", 1)[1].split()[0]
    yields_file = write_csv(work / "yields.csv", [
        {"keyword": k, "percent_true": round(v * 100, 3)} for k, v in yields.items()])
    cli(env, "sample", "--family", "child", "--budget", str(budget), "--strategy", "neyman",
        "--yields", str(yields_file), "--seed", str(seed), "--labels-per-post", "2",
        "--name", "study", "--allocation-out", str(work / "allocation.csv"))
    clock["import and sample"] = time.perf_counter() - start

    labels = 0
    rounds = []
    with (nullcontext(api_url) if api_url else local_server(env, home)) as base:
        practised = simulate.label_over_http(base, trainee, crowd_coders[0], truth,
                                             random.Random(seed), mode="practice")
        progress(f"a trainee practised on {practised} posts; {len(crowd)} coders labeling...")
        start = time.perf_counter()
        labels += label_all(base, crowd, truth, seed)
        clock["labeling over HTTP"] = time.perf_counter() - start
        for round_number in (1, 2):
            out = cli(env, "quality", "run", "--family", "child")
            rounds.append(out)
            progress(f"quality round {round_number}: " + out.strip().splitlines()[-1])
            if round_number == 1:
                labels += label_all(base, crowd, truth, seed + round_number)

    estimate_csv = work / "estimate.csv"
    cli(env, "estimate", "--family", "child", "--campaign", "study", "--out", str(estimate_csv))
    cli(env, "export", "labels", "--family", "child", "--out", str(work / "labels"))
    start = time.perf_counter()
    cli(env, "pipeline", "run", "--family", "child", "--out", str(work / "exports"))
    clock["export job"] = time.perf_counter() - start
    result = judge(database_url, work, truth, corpus, estimate_csv, labels)
    result.quality_rounds = rounds
    result.seconds = clock
    return result


def judge(database_url: str, work: Path, truth: dict[str, dict[str, Any]],
          corpus: list[simulate.SimulatedPost], estimate_csv: Path, labels: int) -> StudyResult:
    """Score the study's outputs against the truth."""
    import pandas as pd

    from trainset.store.db import connect, parse_url

    conn = connect(parse_url(database_url))
    try:
        run_id = conn.run("SELECT max(id) FROM quality_runs WHERE family = 'child'")[0][0]
        consensus = dict(conn.run(
            "SELECT post_id, value FROM consensus_items WHERE run_id = :run"
            " AND item = 'is_child'", run=run_id))
        votes: dict[str, list[bool]] = {}
        for post_id, answers in conn.run(
                "SELECT post_id, answers FROM labels WHERE family = 'child' AND kind = 'task'"):
            votes.setdefault(post_id, []).append(answers.get("is_child") is True)
    finally:
        conn.close()
    judged = [p for p in consensus if p in truth]
    right = sum(consensus[p] == truth[p]["is_child"] for p in judged)
    majority = sum((sum(votes[p]) * 2 > len(votes[p])) == truth[p]["is_child"]
                   for p in judged if p in votes)
    fam = codebook.family("child")
    true_share = {name: sum(value_of(p.truth) for p in corpus) / len(corpus)
                  for name, value_of in fam.labels()}
    estimates = []
    with estimate_csv.open() as handle:
        for row in csv.DictReader(handle):
            if row["keyword"] in ("(all, weighted)", "(all, weighted, raw votes)"):
                estimates.append({
                    "label": row["label"], "kind": "consensus" if "raw" not in row["keyword"]
                    else "raw votes", "value": float(row["value"]), "low": float(row["low"]),
                    "high": float(row["high"]), "truth": true_share[row["label"]]})
    frame = pd.read_parquet(work / "labels" / "child_labels.parquet")
    valid = 0
    for row in frame.itertuples():
        import ast

        ages = [a for a in ast.literal_eval(row.age) if a]
        answers = {"is_child": bool(row.is_child), **({"age": ages} if row.is_child else {})}
        valid += not codebook.validate("child", answers)
    records = tfrecord_count(work / "exports")
    return StudyResult(
        posts=len(judged), labels=labels, consensus_accuracy=right / max(1, len(judged)),
        majority_accuracy=majority / max(1, len(judged)), estimates=estimates,
        exported=len(frame), exported_valid=valid,
        labels_per_kept_post=float(frame["n_coders"].mean()) if len(frame) else 0.0,
        tfrecords=records)


def tfrecord_count(folder: Path) -> int:
    """Records read back with tf.data, the way the README shows."""
    import tensorflow as tf

    features = next(folder.rglob("features.json"))
    spec = {name: tf.io.FixedLenFeature(f["shape"], getattr(tf, f["dtype"]), f["default"])
            for name, f in json.loads(features.read_text())["features"].items()}
    manifest = json.loads((features.parent / "dataset.json").read_text())
    dataset = tf.data.TFRecordDataset(
        [str(features.parent / s["file"]) for s in manifest["shards"]],
        compression_type=manifest["compression"] or "",
    ).map(lambda record: tf.io.parse_single_example(record, spec))
    count = 0
    for example in dataset:
        assert example["labels"].shape[0] == 6
        count += 1
    return count


def coverage(reps: int, keywords: int, per_keyword: int, budget: int, seed: int) -> dict:
    """The same design ``reps`` times through the service layer (no HTTP, a fresh database
    each time) and the same flow: label, a quality round (its uncertain posts go back for
    a third coder), label those, estimate. How often each label's weighted interval covers
    the truth, the bias, and how many labels the re-label round asked for."""
    from trainset.services import corpus as corpus_service
    from trainset.services.campaigns import SampleRequest, estimate_prevalence, sample
    from trainset.services.labeling import CoderAdmin, LabelingService, LabelingSettings
    from trainset.services.quality import run_quality
    from trainset.store.corpus import CorpusStore
    from trainset.store.db import connect, parse_url
    from trainset.store.labeling import LabelingStore
    from trainset.store.migrations import migrate
    from trainset.store.quality import QualityStore

    fam = codebook.family("child")
    covered: dict[str, int] = {name: 0 for name, _ in fam.labels()}
    errors: dict[str, list[float]] = {name: [] for name, _ in fam.labels()}
    relabels: list[int] = []
    yields = keyword_yields(keywords)
    for rep in range(reps):
        with database() as url:
            conn = connect(parse_url(url))
            migrate(conn)
            posts = simulate.child_corpus(yields, per_keyword, seed + rep)
            rng = random.Random(seed + rep)
            rng.shuffle(posts)
            gold, corpus = posts[:60], posts[60:]
            store = CorpusStore(conn)
            corpus_service.add_posts(store, (p.row for p in posts))
            for p in gold:
                corpus_service.add_gold(store, post_id=p.row["id"], family="child",
                                        purpose="qa", answers=p.truth, rationale="")
            pilot = Path(tempfile.mkstemp(suffix=".csv")[1])
            write_csv(pilot, [{"keyword": k, "percent_true": v * 100} for k, v in yields.items()])
            sample(store, SampleRequest("child", budget, "neyman", seed=rep, name="rep",
                                        labels_per_post=2, yields_file=pilot))
            pilot.unlink()
            admin = CoderAdmin(LabelingStore(conn))
            sims = simulate.load_coders("child")[:8] + [simulate.careless_coder("child")]
            coders = [admin.create(None, {"name": f"c{i}", "status": "certified"})
                      for i in range(len(sims))]
            service = LabelingService(LabelingStore(conn), LabelingSettings(gold_rate=0.1))
            truth = {p.row["id"]: p.truth for p in posts}
            crowd = list(zip(sims, coders, strict=True))
            simulate.label_in_process(service, crowd, truth, rng)
            relabels.append(run_quality(QualityStore(conn), "child")["relabel_requested"])
            simulate.label_in_process(service, crowd, truth, rng)
            result = estimate_prevalence(store, QualityStore(conn), "child", "rep")
            for item in result["labels"]:
                true = sum(value_of(p.truth) for p in corpus
                           for name, value_of in fam.labels() if name == item.label) / len(corpus)
                est = item.weighted
                covered[item.label] += est.low <= true <= est.high
                errors[item.label].append(est.value - true)
            conn.close()
    return {label: {"coverage": covered[label] / reps,
                    "bias_points": 100 * sum(errors[label]) / reps,
                    "relabels_per_rep": sum(relabels) / reps} for label in covered}


@contextmanager
def database() -> Iterator[str]:
    """A scratch PostgreSQL (``harness.database``) for the length of the block."""
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = scratch_database(Path(tmp))
        try:
            yield url
        finally:
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keywords", type=int, default=40)
    parser.add_argument("--per-keyword", type=int, default=500)
    parser.add_argument("--budget", type=int, default=3000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--rep-per-keyword", type=int, default=60)
    parser.add_argument("--rep-budget", type=int, default=600)
    parser.add_argument("--rep-seed", type=int, default=100,
                        help="the repetitions' first seed (repetition r uses seed + r)")
    args = parser.parse_args()
    print(f"study benchmark: {args.keywords} keywords x {args.per_keyword} posts, neyman "
          f"campaign of {args.budget} posts x 2 labels, 8 study coders + 1 careless")
    with tempfile.TemporaryDirectory() as tmp, database() as url:
        result = run_study(Path(tmp), url, keywords=args.keywords,
                           per_keyword=args.per_keyword, budget=args.budget,
                           progress=lambda m: print("  " + m, flush=True))
    print(f"  labels acknowledged over HTTP: {result.labels}; posts judged: {result.posts}")
    print(f"  is_child accuracy against the truth: consensus {result.consensus_accuracy:.1%}, "
          f"majority vote {result.majority_accuracy:.1%}")
    print("  weighted prevalence (95% CI) against the truth:")
    for e in result.estimates:
        inside = "covers" if e["low"] <= e["truth"] <= e["high"] else "MISSES"
        print(f"    {e['label']:<24} {e['kind']:<10} {100 * e['value']:5.1f}% "
              f"[{100 * e['low']:5.1f}, {100 * e['high']:5.1f}]  truth {100 * e['truth']:5.1f}%"
              f"  {inside}")
    print(f"  exported answers valid under the codebook: {result.exported_valid} of "
          f"{result.exported} ({result.exported_valid / max(1, result.exported):.1%}; "
          "target 100%)")
    print(f"  labels per kept post: {result.labels_per_kept_post:.2f}; TFRecords read back "
          f"with tf.data: {result.tfrecords}")
    print("  seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    if args.reps:
        print(f"  coverage over {args.reps} repetitions ({args.keywords} keywords x "
              f"{args.rep_per_keyword} posts, budget {args.rep_budget}, service layer):")
        figures = coverage(args.reps, args.keywords, args.rep_per_keyword, args.rep_budget,
                           args.rep_seed)
        for label, f in figures.items():
            print(f"    {label:<24} coverage {f['coverage']:.0%} (target >= 93%)   "
                  f"bias {f['bias_points']:+.2f} points (target |bias| < 1)")
        relabels = next(iter(figures.values()))["relabels_per_rep"]
        print(f"    third labels asked for by the quality round: {relabels:.0f} per "
              f"repetition ({relabels / args.rep_budget:.0%} of the sampled posts)")


if __name__ == "__main__":
    main()
