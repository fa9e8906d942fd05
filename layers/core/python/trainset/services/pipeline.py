"""The export job's steps (each one a task of the state machine in
``trainset/data/export_job.asl.json``): gold scoring and consensus, screening and re-label
queueing, TFRecord export to storage, verification from storage, and the summary."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.errors import InvalidInput
from trainset.export import tfrecords
from trainset.services.quality import kept_rows, score_and_find_consensus, screen_and_requeue

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
    run = score_and_find_consensus(store, event["family"])
    return {"job_id": event["job_id"], "family": event["family"], "run_id": run["run_id"]}


def screen_step(store: Any, event: dict) -> dict:
    run = screen_and_requeue(store, event["run_id"])
    return {**event, "posts_kept": run["posts_kept"],
            "relabel_requested": run["relabel_requested"]}


def export_step(store: Any, blobs: Any, images: Any, event: dict) -> dict:
    """Write the family's TFRecords (verified locally) and upload them under
    ``exports/<job>/<family>/``."""
    family, run_id = event["family"], event["run_id"]
    rows, _ = kept_rows(store, family, run_id)
    prefix = f"exports/{event['job_id']}/{family}/"

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
            "manifest_key": prefix + "dataset.json"}


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


def start_job(jobs: Any, launch: Any, families: Sequence[str] | None,
              started_by: int | None) -> dict[str, Any]:
    """Record a job and start the state machine for it (``launch(job_id, families)``)."""
    chosen = check_families(families)
    job_id = new_job_id()
    jobs.create(job_id, chosen, started_by)
    try:
        launch(job_id, chosen)
    except Exception as exc:
        jobs.finish(job_id, "failed", None, f"the job could not start: {exc}")
        raise
    return {"job_id": job_id, "families": chosen, "status": "running"}
