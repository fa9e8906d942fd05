"""The export job's steps (each one a task of the state machine in
``trainset/data/export_job.asl.json``): gold scoring and consensus, screening and re-label
queueing, TFRecord export to storage, verification from storage, and the summary."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.errors import InvalidInput
from trainset.export import tfrecords
from trainset.services.export_files import content_type, dataset_files
from trainset.services.quality import (
    ScreeningRules,
    kept_rows,
    score_and_find_consensus,
    screen_and_requeue,
)

ASL_PATH = Path(__file__).resolve().parents[1] / "data" / "export_job.asl.json"
FUNCTIONS = ("Quality", "Screen", "Export", "Verify", "Summary", "Failure")


class TransientError(Exception):
    """A failure worth retrying (the database or storage did not answer)."""


def new_job_id() -> str:
    return "export-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def check_families(families: Sequence[str] | None) -> list[str]:
    chosen = list(families or codebook.FAMILY_NAMES)
    unknown = [f for f in chosen if f not in codebook.FAMILIES]
    if unknown or not chosen:
        raise InvalidInput(f"families must be some of {', '.join(codebook.FAMILY_NAMES)}",
                           [{"field": "families", "message": f"unknown: {', '.join(unknown)}"}])
    return chosen


def definition(arns: dict[str, str]) -> str:
    """The state machine's definition with the tasks' function ARNs filled in."""
    text = ASL_PATH.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        text = text.replace("${" + name + "FunctionArn}", arns[name])
    return text


def quality_step(store: Any, event: dict) -> dict:
    """Gold, consensus and screening by the thresholds the job was started with (kept with
    the job; a scheduled run has none and uses the defaults)."""
    run = score_and_find_consensus(store, event["family"],
                                   rules_from(store.export_job_settings(event["job_id"])))
    return {"job_id": event["job_id"], "family": event["family"], "run_id": run["run_id"]}


def screen_step(store: Any, event: dict) -> dict:
    run = screen_and_requeue(store, event["run_id"])
    return {**event, "posts_kept": run["posts_kept"],
            "relabel_requested": run["relabel_requested"]}


def export_step(store: Any, blobs: Any, images: Any, event: dict) -> dict:
    """Write the family's TFRecords (verified locally) and upload them under
    ``exports/<job>/<family>/``."""
    family, run_id = event["family"], event["run_id"]
    rows, effect = kept_rows(store, family, run_id)
    prefix = f"exports/{event['job_id']}/{family}/"
    # Beside the shards: labels CSV/Parquet, the data card and the coder report.
    files, skipped = dataset_files(store, family, run_id, rows, effect)
    for name, data in files.items():
        blobs.put(prefix + name, data, content_type(name))

    def load_image(key: str) -> bytes | None:
        try:
            return images.get(key) if images is not None else None
        except Exception:  # a missing image is counted in the manifest, not fatal
            return None

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        out.mkdir()
        settings = tfrecords.ExportSettings(
            author_vectors=_author_vectors(blobs, Path(tmp), AUTHOR_VECTORS_VARIABLE))
        manifest = tfrecords.export_posts(
            rows, family, out, settings, load_image=load_image if images is not None else None,
            source={"quality_run": run_id, "job_id": event["job_id"],
                    "query": "screened_posts kept, consensus_items of the run"})
        for path in sorted(out.iterdir()):
            content = "application/json" if path.suffix == ".json" else "application/octet-stream"
            blobs.put(prefix + path.name, path.read_bytes(), content)
    return {**event, "prefix": prefix, "records": manifest["records"],
            "manifest_key": prefix + "dataset.json", "files": sorted(files),
            "files_skipped": skipped}


AUTHOR_VECTORS_VARIABLE = "TRAINSET_EXPORT_AUTHOR_VECTORS"


def _author_vectors(blobs: Any, tmp: Path, variable: str) -> str | None:
    """The author vectors file the export should join (``variable``: a local path, or a key
    in the exports bucket, fetched into ``tmp``); None when none is configured."""
    import os

    where = os.environ.get(variable)
    if not where:
        return None
    if Path(where).is_file():
        return where
    target = tmp / Path(where).name
    target.write_bytes(blobs.get(where))
    return str(target)


def verify_step(blobs: Any, event: dict) -> dict:
    """Download the family's shards and read every record back (checksums, counts, parse)."""
    manifest = json.loads(blobs.get(event["manifest_key"]))
    features = json.loads(blobs.get(event["prefix"] + "features.json"))
    spec = tfrecords.spec_from_description(features["features"])
    with tempfile.TemporaryDirectory() as tmp:
        for shard in manifest["shards"]:
            (Path(tmp) / shard["file"]).write_bytes(blobs.get(event["prefix"] + shard["file"]))
        records = tfrecords.verify(Path(tmp), manifest["shards"], spec,
                                   manifest["compression"] == "GZIP")
    return {**event, "verified": records}


def summary_step(jobs: Any, blobs: Any, event: dict) -> dict:
    families = event.get("families_done") or []
    summary = {
        "job_id": event["job_id"],
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "families": families,
        "records": sum(f.get("verified", 0) for f in families),
    }
    key = f"exports/{event['job_id']}/summary.json"
    blobs.put(key, json.dumps(summary, indent=2).encode(), "application/json")
    summary["summary_key"] = key
    jobs.finish(event["job_id"], "succeeded", summary,
                families=[f["family"] for f in families])
    return summary


def failure_step(jobs: Any, event: dict) -> dict:
    error = event.get("error") or {}
    cause = error.get("Cause") or ""
    try:
        detail = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        detail = cause
    message = f"{error.get('Error', 'error')}: {detail}"[:2000]
    jobs.finish(event["job_id"], "failed", {"error": error}, message)
    return {"job_id": event["job_id"], "error": message}


def rules_from(settings: Mapping[str, Any] | None) -> ScreeningRules:
    """The screening rules of a job's settings (``POST /exports``'s ``rules``: the thresholds
    ``quality run`` takes); the defaults for what is not given."""
    given = dict((settings or {}).get("rules") or {})
    rules: dict[str, Any] = {}
    if "min_confidence" in given:
        rules["min_confidence"] = float(given["min_confidence"])
    if "min_gold_accuracy" in given:
        value = float(given["min_gold_accuracy"])
        rules["min_gold_accuracy"] = None if value < 0 else value
    for name in ("min_gold_answers", "em_max_iterations", "max_labels_per_post"):
        if name in given:
            rules[name] = int(given[name])
    if "question_min_accuracy" in given:
        rules["question_min_accuracy"] = {q["question"]: float(q["percent"])
                                          for q in given["question_min_accuracy"]}
    if "allow_uncertified" in given:
        rules["require_certified"] = not given["allow_uncertified"]
    if "relabel" in given:
        rules["relabel"] = bool(given["relabel"])
    return ScreeningRules(**rules)


def check_rules(families: Sequence[str], settings: Mapping[str, Any] | None) -> None:
    """Refuse thresholds for a question none of the families has (before the job starts)."""
    given = (settings or {}).get("rules") or {}
    questions = {q.name for f in families for q in codebook.family(f).questions}
    unknown = [q["question"] for q in given.get("question_min_accuracy", ())
               if q["question"] not in questions]
    if unknown:
        raise InvalidInput("question_min_accuracy names questions the families do not have",
                           [{"field": "rules.question_min_accuracy",
                             "message": f"unknown: {', '.join(unknown)}; the questions are "
                                        f"{', '.join(sorted(questions))}"}])


def start_job(jobs: Any, launch: Any, families: Sequence[str] | None,
              started_by: int | None, settings: Mapping[str, Any] | None = None,
              ) -> dict[str, Any]:
    """Record a job with its settings and start the state machine for it
    (``launch(job_id, families)``)."""
    chosen = check_families(families)
    check_rules(chosen, settings)
    job_id = new_job_id()
    jobs.create(job_id, chosen, started_by, settings)
    try:
        launch(job_id, chosen)
    except Exception as exc:
        jobs.finish(job_id, "failed", None, f"the job could not start: {exc}")
        raise
    return {"job_id": job_id, "families": chosen, "status": "running"}
