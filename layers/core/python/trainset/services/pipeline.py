"""The export job's steps (each one a task of the state machine in
``trainset/data/export_job.asl.json``): gold scoring and consensus, screening and re-label
queueing (per family); the plan of every family's shards (``trainset.export.shards``), one
child of a Distributed Map per shard (build, write, verify, upload, check the stored bytes),
the merge of each family's manifest; and the summary."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.errors import InvalidInput
from trainset.export import shards, tfrecords
from trainset.services.export_files import content_type, dataset_files
from trainset.services.quality import (
    ScreeningRules,
    kept_rows,
    score_and_find_consensus,
    screen_and_requeue,
)

ASL_PATH = Path(__file__).resolve().parents[1] / "data" / "export_job.asl.json"
FUNCTIONS = ("Quality", "Screen", "Plan", "Shard", "Merge", "Summary", "Failure")
# Each shard's input, its piece of the manifest, the family's plan and the Map's item list,
# beside (not under) the job's files: exports/<job>/ holds only what is handed out.
WORK = "export-work/"


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


def plan_step(store: Any, blobs: Any, images_available: bool, event: dict) -> dict:
    """Every screened family: its files beside the shards (labels CSV/Parquet, data card,
    coder report) written under ``exports/<job>/<family>/``; its shards planned by the
    stable hash, each shard's input (its record columns, author figures computed over the
    whole family, tokens: ``shards.shard_payload``) stored under ``export-work/<job>/
    <family>/``; and one list of every shard, the item list the Distributed Map reads
    (``items_key``)."""
    job_id = event["job_id"]
    items: list[dict[str, Any]] = []
    families = []
    for done in event.get("families") or []:
        family, run_id = done["family"], done["run_id"]
        rows, effect = kept_rows(store, family, run_id)
        prefix = f"exports/{job_id}/{family}/"
        work = f"{WORK}{job_id}/{family}/"
        files, skipped = dataset_files(store, family, run_id, rows, effect)
        for name, data in files.items():
            blobs.put(prefix + name, data, content_type(name))
        with tempfile.TemporaryDirectory() as tmp:
            settings = tfrecords.ExportSettings(
                author_vectors=_author_vectors(blobs, Path(tmp), AUTHOR_VECTORS_VARIABLE))
            plan = shards.plan_family(rows, family, settings, images_available)
            meta = {**plan.meta(), "source": {
                "quality_run": run_id, "job_id": job_id,
                "query": "screened_posts kept, consensus_items of the run"}}
        for item in plan.items():
            key = f"{work}{item['file']}.npz"
            blobs.put(key, shards.shard_payload(plan, item), "application/octet-stream")
            items.append({"job_id": job_id, "family": family, "file": item["file"],
                          "input_key": key, "prefix": prefix, "work": work})
        blobs.put(work + "plan.json", json.dumps(meta).encode(), "application/json")
        families.append({**done, "prefix": prefix, "work": work,
                         "manifest_key": prefix + "dataset.json", "shards": len(meta["shards"]),
                         "files": sorted(files), "files_skipped": skipped})
        del plan, rows
    items_key = f"{WORK}{job_id}/shards.json"
    blobs.put(items_key, json.dumps(items).encode(), "application/json")
    return {"bucket": getattr(blobs, "bucket", None), "items_key": items_key,
            "shards": len(items), "families": families}


def shard_step(blobs: Any, images: Any, event: dict) -> dict:
    """One shard (an item of the plan): built from its stored input with its images fetched
    concurrently, written, every record read back and parsed, uploaded; the stored object's
    SHA-256 checked against the verified file's; its piece of the manifest stored."""
    failure_key = f"{event['work']}{event['file']}.piece.json"
    try:
        return _shard(blobs, images, event, failure_key)
    except TransientError:
        raise
    except Exception as exc:  # kept for the merge, which names the first failed shard
        blobs.put(failure_key, json.dumps({"file": event["file"], "error": type(exc).__name__,
                                           "message": str(exc)[:1000]}).encode(),
                  "application/json")
        raise


class ShardFailed(Exception):
    """A shard of the export could not be built, written or verified."""


def _shard(blobs: Any, images: Any, event: dict, piece_key: str) -> dict:
    part = shards.load_payload(blobs.get(event["input_key"]))

    def load_image(key: str) -> bytes | None:
        try:
            return images.get(key)
        except Exception:  # a missing image is counted in the manifest, not fatal
            return None

    with tempfile.TemporaryDirectory() as tmp:
        piece = shards.export_shard(part, Path(tmp), load_image if images is not None else None)
        key = event["prefix"] + piece["file"]
        blobs.put(key, (Path(tmp) / piece["file"]).read_bytes(), "application/octet-stream")
    if hashlib.sha256(blobs.get(key)).hexdigest() != piece["sha256"]:
        raise tfrecords.VerificationError(f"{piece['file']}: the stored object's checksum "
                                          "differs from the verified file's")
    blobs.put(piece_key, json.dumps(piece).encode(), "application/json")
    return {"file": piece["file"], "records": piece["records"]}


def merge_step(blobs: Any, event: dict) -> list[dict]:
    """Each family's ``dataset.json`` and ``features.json`` from its shards' pieces (every
    shard of the plan must have one); the families as the summary reports them."""
    done = []
    for family in event["plan"]["families"]:
        meta = json.loads(blobs.get(family["work"] + "plan.json"))
        pieces = []
        for shard in meta["shards"]:
            try:
                pieces.append(json.loads(blobs.get(f"{family['work']}{shard['file']}"
                                                   ".piece.json")))
            except Exception:
                raise tfrecords.VerificationError(
                    f"{shard['file']}: no verified shard was stored") from None
            if "error" in pieces[-1]:  # the shard's child failed: its error, as it was
                error = (tfrecords.VerificationError
                         if pieces[-1]["error"] == "VerificationError" else ShardFailed)
                raise error(pieces[-1]["message"] if error is not ShardFailed else
                            f"{pieces[-1]['error']}: {pieces[-1]['message']}")
        with tempfile.TemporaryDirectory() as tmp:
            manifest = shards.merge(meta, pieces, Path(tmp), meta["source"])
            for name in ("features.json", "dataset.json"):
                blobs.put(family["prefix"] + name, (Path(tmp) / name).read_bytes(),
                          "application/json")
        done.append({k: v for k, v in family.items() if k != "work"}
                    | {"records": manifest["records"], "verified": manifest["records"]})
    return done


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
