"""Imports of corpus and gold files uploaded to storage: the upload request, the import job's
steps and what managers see of them.

A manager asks for an upload (``request_upload``: a presigned PUT under ``corpus/`` or
``gold/<purpose>/``, the size signed, at most ``MAX_BYTES``) and the page PUTs the file
straight to the imports bucket. The object's creation starts the **import job** (a Step
Functions state machine, ``trainset/data/import_job.asl.json``; ``start_from_event`` names the
execution after the object, so a repeated event starts nothing new):

1. ``plan_step`` finds or records the import, reads the file once and splits it into batches
   (``trainset.corpus.chunks``): byte ranges of whole records (CSV, JSONL) or runs of row groups
   (Parquet), and the lines that repeat an earlier row's id. A gold file is one batch: its ids are
   checked across the whole file and it is stored in one transaction, as the CLI does.
2. ``batch_step`` imports one batch with the CLI's own code (``services.ingest.import_files``,
   ``services.gold.import_gold``) and keeps its rejects under ``work/``; one batch runs as a
   task, several as a Distributed Map over the plan's list of batches.
3. ``finish_step`` merges every batch's rejects (file, line, reason, id, raw) into
   ``<key>.rejects.csv`` beside the upload and records the totals; ``failure_step`` records an
   error. Progress (batches done, rows read) and counts are in the ``imports`` tables.

Importing is idempotent: posts are upserted by id, so running the job on the same upload again
updates changed posts and never duplicates one.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from trainset.corpus import chunks
from trainset.corpus.ingest import DEFAULT_MAX_TEXT, FORMATS, Reject
from trainset.errors import InvalidInput

ASL_PATH = Path(__file__).resolve().parents[1] / "data" / "import_job.asl.json"
FUNCTIONS = ("Plan", "Batch", "Finish", "Failure")
KINDS = ("corpus", "gold")
PURPOSES = ("practice", "qa")
MAX_BYTES = {"corpus": 5 * 1024**3, "gold": 100 * 1024**2}  # 5 GiB: one PUT's limit
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson",
                 "parquet": "application/octet-stream"}
UPLOAD_URL_SECONDS = 3600
REJECTS_SUFFIX = ".rejects.csv"
REJECT_COLUMNS = ("file", "line", "reason", "id", "raw")
WORK_PREFIX = "work/"
BATCH_ROWS_VARIABLE = "TRAINSET_IMPORT_BATCH_ROWS"
LIST_LIMIT = 50
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_ID = re.compile(r"^[0-9a-f]{32}$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class ImportFailed(Exception):
    """The file cannot be imported (a whole-file problem): retrying will not help."""


class TransientError(Exception):
    """A failure worth retrying (the database or storage did not answer, a deadlock)."""


def definition(arns: Mapping[str, str]) -> str:
    """The state machine's definition with the tasks' function ARNs filled in."""
    text = ASL_PATH.read_text(encoding="utf-8")
    for name in FUNCTIONS:
        text = text.replace("${" + name + "FunctionArn}", arns[name])
    return text


# ---- keys ------------------------------------------------------------------------------------


def safe_filename(filename: str) -> str:
    """A file name fit for a key: letters, digits, ``. _ -``; its extension kept."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _SAFE.sub("-", stem).strip(".-")[:100] or "upload"
    ext = _SAFE.sub("", ext).lower()[:10]
    return f"{stem}.{ext}" if ext else stem


def upload_key(kind: str, purpose: str | None, import_id: str, filename: str) -> str:
    """``corpus/<id>/<name>`` or ``gold/<purpose>/<id>/<name>``."""
    name = safe_filename(filename)
    if kind == "gold":
        return f"gold/{purpose}/{import_id}/{name}"
    return f"corpus/{import_id}/{name}"


def parse_key(key: str) -> dict[str, Any] | None:
    """What an object key says about an upload (kind, purpose, import id when it is one of
    ours, file name); None for keys that are not uploads (rejects files, work files)."""
    if key.endswith(REJECTS_SUFFIX) or key.endswith("/"):
        return None
    parts = key.split("/")
    if parts[0] == "corpus" and len(parts) >= 2:
        rest = parts[1:]
        purpose = None
    elif parts[0] == "gold" and len(parts) >= 2:
        purpose = parts[1] if parts[1] in PURPOSES else None
        rest = parts[2:] if purpose else parts[1:]
        if not rest:
            return None
    else:
        return None
    import_id = rest[0] if len(rest) >= 2 and _ID.match(rest[0]) else None
    return {"kind": parts[0], "purpose": purpose, "import_id": import_id,
            "filename": rest[-1] or "upload"}


def file_format(filename: str) -> str | None:
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return FORMATS.get(suffix)


def execution_name(key: str, etag: str | None, again: str | None = None) -> str:
    """The import job's execution for one version of one object: the same object and ETag
    always give the same name (Step Functions then starts nothing new); ``again`` names a
    deliberate re-run. At most 80 characters of ``[A-Za-z0-9_-]``."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]
    tag = _NAME_UNSAFE.sub("", (etag or "").strip('"'))[:40] or "noetag"
    name = f"import-{digest}-{tag}"
    if again:
        name += "-" + _NAME_UNSAFE.sub("", again)[:8]
    return name[:80]


def work_prefix(import_id: str, run: str) -> str:
    return f"{WORK_PREFIX}{import_id}/{run}/"


# ---- the upload request (POST /uploads) ------------------------------------------------------


def request_upload(store: Any, presign: Callable[[str, str, int, int], str], *, kind: str,
                   filename: str, size: int, purpose: str | None,
                   created_by: int | None) -> dict[str, Any]:
    """Record an import (waiting for its file) and hand out a presigned PUT for exactly
    ``size`` bytes. ``presign(key, content_type, size, seconds)`` makes the URL."""
    problems = []
    if kind not in KINDS:
        problems.append({"field": "kind", "message": f"must be one of: {', '.join(KINDS)}"})
    fmt = file_format(filename)
    if fmt is None:
        problems.append({"field": "filename", "message": "must end in .csv, .jsonl, .ndjson "
                         "or .parquet (the file's format)"})
    if kind == "gold" and purpose not in PURPOSES:
        problems.append({"field": "purpose", "message": "a gold file needs a purpose: "
                         "practice or qa"})
    if kind == "corpus" and purpose is not None:
        problems.append({"field": "purpose", "message": "only gold files have a purpose"})
    limit = MAX_BYTES.get(kind)
    if limit is not None and size > limit:
        problems.append({"field": "size", "message": f"at most {limit} bytes "
                         f"({_human(limit)}) for a {kind} file"})
    if size < 1:
        problems.append({"field": "size", "message": "the file is empty"})
    if problems:
        raise InvalidInput("the upload cannot be accepted: "
                           + "; ".join(f"{p['field']} {p['message']}" for p in problems),
                           problems)
    import_id = uuid.uuid4().hex
    key = upload_key(kind, purpose, import_id, filename)
    store.create(import_id, kind=kind, purpose=purpose, filename=filename[:255], key=key,
                 size=size, created_by=created_by)
    content_type = CONTENT_TYPES[fmt]
    return {
        "import_id": import_id, "key": key, "method": "PUT",
        "url": presign(key, content_type, size, UPLOAD_URL_SECONDS),
        "headers": {"Content-Type": content_type},
        "expires_in": UPLOAD_URL_SECONDS, "max_bytes": limit,
    }


def _human(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:g} {unit}"
    return f"{size} bytes"


# ---- starting the job from the upload's event ------------------------------------------------


def uploads_in_event(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The created objects of an S3 event notification that are uploads to import (keys
    URL-decoded); rejects files and other keys are left out."""
    found = []
    for record in event.get("Records") or []:
        if record.get("eventSource") != "aws:s3":
            continue
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        key = unquote_plus(str(obj.get("key", "")))
        if parse_key(key) is None:
            continue
        found.append({"bucket": (s3.get("bucket") or {}).get("name"), "key": key,
                      "etag": obj.get("eTag"), "size": obj.get("size")})
    return found


def start_from_event(event: Mapping[str, Any],
                     launch: Callable[[str, dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Start the import job once per uploaded object (``launch(execution name, input)``)."""
    started = []
    for upload in uploads_in_event(event):
        name = execution_name(upload["key"], upload["etag"])
        launch(name, upload)
        started.append({"key": upload["key"], "execution": name})
    return started


# ---- the job's steps -------------------------------------------------------------------------


def batch_rows_setting(env: Mapping[str, str] | None = None) -> int:
    raw = (os.environ if env is None else env).get(BATCH_ROWS_VARIABLE)
    return int(raw) if raw and raw.isdigit() and int(raw) > 0 else chunks.BATCH_ROWS


def _import_row(store: Any, key: str, size: int | None) -> dict[str, Any]:
    """The import of ``key``: the one the upload request recorded, or a new one for an object
    put there some other way (kind and purpose from the key)."""
    row = store.by_key(key)
    if row is not None:
        return row
    parsed = parse_key(key)
    if parsed is None:
        raise ImportFailed(f"{key} is not an upload (corpus/... or gold/<purpose>/...)")
    store.create(parsed["import_id"] or uuid.uuid4().hex, kind=parsed["kind"],
                 purpose=parsed["purpose"], filename=parsed["filename"][:255], key=key,
                 size=size, created_by=None)
    return store.by_key(key)


def plan_step(store: Any, files: Any, event: Mapping[str, Any], *, workdir: Path,
              batch_rows: int | None = None) -> dict[str, Any]:
    """Take the import over for this run and split its file into batches; the list of
    batches goes to ``work/<import>/<run>/batches.json`` (the Distributed Map reads it)."""
    key, run = event["key"], event["run"]
    size = event.get("size")
    row = _import_row(store, key, size)
    store.begin_run(row["id"], run, size)
    base = {"import_id": row["id"], "run": run, "bucket": files.bucket, "key": key,
            "kind": row["kind"], "purpose": row["purpose"], "filename": row["filename"]}
    if row["kind"] == "gold" and row["purpose"] not in PURPOSES:
        raise ImportFailed("a gold file needs a purpose: upload it with practice or qa "
                           "(gold/practice/... or gold/qa/...)")
    fmt = file_format(row["filename"]) or file_format(key)
    if fmt is None:
        raise ImportFailed(f"{row['filename']}: unknown file type; use .csv, .jsonl or "
                           ".parquet")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ImportFailed(f"{row['filename']}: Parquet files need pyarrow where the import "
                           "job runs, and it is not installed there; upload CSV or JSONL")
    stored = files.size(key)
    if stored is None:
        raise ImportFailed(f"{key} is not in the bucket (deleted since it was uploaded?)")
    if row["kind"] == "gold":
        items = [{**base, "format": fmt, **chunks.Chunk(1, 0, stored, 1, 0).as_dict(),
                  "header_end": 0, "header_lines": 0, "whole": True, "duplicates_key": None}]
        rows_total = None
    else:
        local = workdir / f"upload.{fmt}"
        files.download(key, local)
        try:
            plan = chunks.plan_file(local, batch_rows or batch_rows_setting())
        finally:
            local.unlink(missing_ok=True)
        items = []
        for chunk in plan.chunks:
            duplicates = plan.duplicates_in(chunk)
            dup_key = None
            if duplicates:
                dup_key = f"{work_prefix(row['id'], run)}duplicates-{chunk.batch:06d}.json"
                files.put(dup_key, json.dumps(
                    [[line, first, post_id] for line, (first, post_id)
                     in sorted(duplicates.items())]).encode(), "application/json")
            items.append({**base, "format": plan.format, **chunk.as_dict(),
                          "header_end": plan.header_end, "header_lines": plan.header_lines,
                          "whole": plan.whole, "duplicates_key": dup_key})
        rows_total = None if plan.whole else plan.rows
    items_key = f"{work_prefix(row['id'], run)}batches.json"
    files.put(items_key, json.dumps(items).encode(), "application/json")
    store.planned(row["id"], run, len(items), rows_total)
    return {"import_id": row["id"], "run": run, "bucket": files.bucket, "key": key,
            "items_key": items_key, "batches": len(items), "rows": rows_total,
            "distributed": len(items) > 1, "first": items[0]}


def batch_step(store: Any, corpus: Any, merge: Any, files: Any, item: Mapping[str, Any], *,
               workdir: Path) -> dict[str, Any]:
    """Import one batch with the CLI's code (``corpus``, ``merge``: corpus stores on two
    connections, as the CLI uses them); keep its rejects; record its counts in ``store``."""
    chunk = chunks.Chunk.from_dict(item)
    if item["kind"] == "gold":
        counts, rejects = _gold_batch(corpus, files, item, workdir)
    else:
        counts, rejects = _corpus_batch(corpus, merge, files, item, chunk, workdir)
    if rejects:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for r in rejects:
            writer.writerow((item["filename"], r.line, r.reason, r.id or "",
                             r.raw.encode("utf-8", errors="replace").decode("utf-8")))
        files.put(_rejects_part(item, chunk.batch), out.getvalue().encode("utf-8"), "text/csv")
    store.record_batch(item["import_id"], item["run"], chunk.batch, counts)
    return {"import_id": item["import_id"], "batch": chunk.batch, **counts}


def _rejects_part(item: Mapping[str, Any], batch: int) -> str:
    return f"{work_prefix(item['import_id'], item['run'])}rejects-{batch:06d}.csv"


def _corpus_batch(store: Any, merge_store: Any, files: Any, item: Mapping[str, Any],
                  chunk: chunks.Chunk, workdir: Path) -> tuple[dict[str, int], list[Reject]]:
    from trainset.services.ingest import import_files

    fmt = item["format"]
    duplicates: dict[int, tuple[int, str]] = {}
    if item.get("duplicates_key"):
        duplicates = {int(line): (int(first), str(post_id)) for line, first, post_id
                      in json.loads(files.get(item["duplicates_key"]))}
    path = workdir / f"batch-{chunk.batch:06d}.{_suffix(fmt, item)}"
    if item.get("whole") or fmt not in ("csv", "jsonl", "parquet"):
        files.download(item["key"], path)
        line_map, dup_rejects = (lambda line: line), []
    elif fmt == "parquet":
        with files.open(item["key"]) as source:
            line_map, dup_rejects = chunks.parquet_chunk(source, chunk, duplicates, path)
    else:
        body = files.get_range(item["key"], chunk.start, chunk.end)
        if fmt == "csv":
            header = files.get_range(item["key"], 0, int(item["header_end"]))
            data, line_map, dup_rejects = chunks.csv_chunk(
                header, body, chunk, int(item["header_lines"]), duplicates)
        else:
            data, line_map, dup_rejects = chunks.jsonl_chunk(body, chunk, duplicates)
        path.write_bytes(data)
    rejects_path = workdir / f"rejects-{chunk.batch:06d}.csv"
    try:
        summary = import_files(store, [path], rejects_path=rejects_path,
                               merge_store=merge_store, max_text=DEFAULT_MAX_TEXT)
    except Exception as exc:
        raise _transient_or(exc) from exc
    finally:
        path.unlink(missing_ok=True)
    if summary.file_problems:
        rejects_path.unlink(missing_ok=True)
        raise ImportFailed("; ".join(p.replace(str(path), item["filename"])
                                     for p in summary.file_problems))
    rejects = _read_rejects(rejects_path, line_map, fmt == "parquet")
    rejects_path.unlink(missing_ok=True)
    rejects = sorted(rejects + dup_rejects, key=lambda r: r.line)
    counts = {"rows_read": summary.rows_read + len(dup_rejects), "inserted": summary.inserted,
              "updated": summary.updated, "unchanged": summary.unchanged,
              "rejected": summary.rejected_total + len(dup_rejects), "posts_created": 0}
    return counts, rejects


def _suffix(fmt: str, item: Mapping[str, Any]) -> str:
    name = str(item.get("filename") or item["key"])
    return name.rsplit(".", 1)[-1].lower() if "." in name else fmt


_LINE_IN_REASON = re.compile(r"\b(line|row) (\d+)")


def _read_rejects(path: Path, line_map: Callable[[int], int], parquet: bool) -> list[Reject]:
    """The rejects the CLI's import wrote for a batch file, at the uploaded file's lines."""
    if not path.exists():
        return []
    out = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for file, line, reason, post_id, raw in reader:
            reason = _LINE_IN_REASON.sub(
                lambda m: f"{m.group(1)} {line_map(int(m.group(2)))}", reason)
            out.append(Reject(file, line_map(int(line)), reason, post_id or None, raw))
    return out


def _gold_batch(store: Any, files: Any, item: Mapping[str, Any],
                workdir: Path) -> tuple[dict[str, int], list[Reject]]:
    from trainset.services.gold import import_gold

    path = workdir / f"gold.{_suffix(item['format'], item)}"
    files.download(item["key"], path)
    try:
        summary = import_gold(store, [path], purpose=item["purpose"])
    except InvalidInput as exc:
        raise ImportFailed(exc.message.replace(str(path), item["filename"])) from None
    except Exception as exc:
        raise _transient_or(exc) from exc
    finally:
        path.unlink(missing_ok=True)
    counts = {"rows_read": summary.rows_read, "inserted": summary.new,
              "updated": summary.updated, "unchanged": summary.unchanged,
              "rejected": len(summary.rejects), "posts_created": summary.posts_created}
    rejects = [Reject(r.file, r.line, r.reason.replace(str(path), item["filename"]), r.id,
                      r.raw) for r in summary.rejects]
    return counts, rejects


def _transient_or(exc: BaseException) -> BaseException:
    """A database that did not answer, or a deadlock between concurrent batches (each batch
    is idempotent), is worth a retry; anything else is what it is."""
    from trainset.store.db import is_unavailable, sqlstate

    if is_unavailable(exc) or sqlstate(exc) in ("40001", "40P01"):
        return TransientError(f"{type(exc).__name__}: {exc}")
    return exc


def finish_step(store: Any, files: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the batches' rejects into ``<key>.rejects.csv`` (always written, so a re-run
    replaces an older one) and record the totals."""
    import_id, run, key = event["import_id"], event["run"], event["key"]
    row = store.get(import_id)
    if row is None or row["run"] != run:
        return {"import_id": import_id, "run": run, "superseded": True}
    batches = store.batches_of(import_id, run)
    if len(batches) != (row["batches"] or 0):
        raise ImportFailed(f"{len(batches)} of {row['batches']} batches were imported")
    rejects_key = key + REJECTS_SUFFIX
    with tempfile.TemporaryDirectory(prefix="trainset-rejects-") as folder:
        merged = Path(folder) / "rejects.csv"
        with merged.open("wb") as out:
            out.write((",".join(REJECT_COLUMNS) + "\n").encode("utf-8"))
            for batch in batches:
                if batch["rejected"]:
                    out.write(files.get(_rejects_part(event, batch["batch"])))
        files.upload(rejects_key, merged, "text/csv")
    rejected = sum(b["rejected"] for b in batches)
    store.finish(import_id, run, rejects_key if rejected else None)
    return {"import_id": import_id, "run": run, "batches": len(batches), "rejected": rejected,
            "rejects_key": rejects_key}


def failure_step(store: Any, event: Mapping[str, Any]) -> dict[str, Any]:
    """Record why a run failed (the step's error, as Step Functions caught it)."""
    error = event.get("error") or {}
    cause = error.get("Cause") or ""
    try:
        detail = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        detail = cause
    message = f"{error.get('Error', 'error')}: {detail}"[:2000]
    row = store.by_key(event["key"]) if event.get("key") else None
    if row is not None:
        store.fail(row["id"], event.get("run"), message)
    return {"key": event.get("key"), "run": event.get("run"), "error": message}


# ---- what managers see (GET /imports) --------------------------------------------------------


def list_imports(store: Any, files: Any, limit: int = LIST_LIMIT,
                 check_files: bool = False) -> dict[str, Any]:
    """The newest imports with progress, counts and, when rows were rejected, a download
    link to the rejects file (``files``: presigned S3 URLs in AWS, signed /files/ links
    locally). A finished import's rejects file exists (the job wrote it before it recorded
    the import as finished); with ``check_files`` (locally, where the file is copied out of
    the stand-in just after) a link is given only once the file is there, with its size."""
    out = []
    for row in store.newest(limit):
        rejects = None
        if row["rejects_key"]:
            size = files.size(row["rejects_key"]) if check_files else None
            if size is not None or not check_files:
                rejects = {"key": row["rejects_key"], "rows": int(row["rejected"]),
                           "size": size, "url": files.download_url(row["rejects_key"])}
        running = row["status"] in ("planning", "importing", "finishing")
        out.append({
            "id": row["id"], "kind": row["kind"], "purpose": row["purpose"],
            "filename": row["filename"], "key": row["key"], "size": row["size"],
            "status": row["status"], "error": row["error"],
            "running": running,
            "progress": {"batches": row["batches"], "batches_done": int(row["batches_done"]),
                         "rows_total": row["rows_total"], "rows_done": int(row["rows_done"])},
            "counts": {name: int(row[name]) for name in
                       ("rows_read", "inserted", "updated", "unchanged", "rejected",
                        "posts_created")},
            "rejects": rejects,
            "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
            "finished_at": _iso(row["finished_at"]),
        })
    return {"imports": out, "limits": dict(MAX_BYTES)}


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def rejects_rows(data: bytes) -> list[dict[str, str]]:
    """A rejects file's rows (tests and tools)."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
