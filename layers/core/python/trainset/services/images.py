"""The image pipeline's use cases: an upload in, variants or face crops and a manifest out.

Each stage (``augment``, ``faces``) handles one upload at a time against a blob store (S3 in
AWS and under ``make run``; a folder or a bucket from the command line):

1. The size comes from the event (or the store); over the limit, the file is quarantined
   without being read.
2. The bytes are read and hashed. If the stage's manifest for that hash exists with the same
   settings, nothing is written: the upload is reported ``already_processed`` (a redelivered
   event, or the same photo uploaded twice).
3. The image is checked and processed (``trainset.images.augment`` / ``trainset.images.faces``). A
   file that cannot be used (not an image, truncated, corrupt, too many pixels), or that the
   processing itself fails on, is copied to ``quarantine/`` beside a JSON error record, and reported
   as a failure of that record only: retrying would fail the same way.
4. Outputs are written, the manifest last, so a manifest always describes a finished job.

Errors talking to the store are not caught per image: they are worth retrying, and the Lambda
handlers raise so that Lambda retries the event (twice) and then sends it to the function's
on-failure destination. Every write is keyed by content, so a retry is harmless.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import unquote_plus

from trainset.errors import InvalidInput
from trainset.images import keys as image_keys
from trainset.images.augment import (
    AugmentSettings,
    ImageLimits,
    ImageRejected,
    ImageTooLarge,
    ProcessingFailed,
    augment_bytes,
)

logger = logging.getLogger("trainset.images")

AUGMENT = "augment"
FACES = "faces"
MANIFEST_VERSION = 1

PROCESSED = "processed"
ALREADY_PROCESSED = "already_processed"
QUARANTINED = "quarantined"
SKIPPED = "skipped"
FAILED = "failed"
STATUSES = (PROCESSED, ALREADY_PROCESSED, QUARANTINED, SKIPPED, FAILED)


class ImageStore(Protocol):
    """What the pipeline needs of a blob store (``LocalBlobs`` and ``S3Blobs`` have it)."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int | None: ...
    def copy(self, source_key: str, dest_key: str) -> None: ...


@dataclass(frozen=True)
class Upload:
    """One object to process: its key (decoded), and its size when the event gave it."""

    key: str
    size: int | None = None
    bucket: str | None = None


@dataclass
class Outcome:
    key: str
    stage: str
    status: str
    sha256: str | None = None
    manifest_key: str | None = None
    outputs: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status in (QUARANTINED, FAILED)

    def as_dict(self) -> dict[str, Any]:
        out = {"key": self.key, "stage": self.stage, "status": self.status,
               "sha256": self.sha256, "manifest_key": self.manifest_key,
               "outputs": len(self.outputs)}
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class BatchReport:
    """What happened to each record of an event: the partial-failure report handlers return
    (``batchItemFailures`` names the records that failed; the others succeeded)."""

    outcomes: list[Outcome]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def retry_needed(self) -> bool:
        """True when some record failed for a reason worth retrying (not a bad file)."""
        return any(o.status == FAILED for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "batchItemFailures": [{"itemIdentifier": o.key} for o in self.outcomes if o.failed],
            "counts": {status: self.count(status) for status in STATUSES},
            "results": [o.as_dict() for o in self.outcomes],
        }


# --- settings from the environment (Lambda and the local stand-in) -------------------------


def _env_number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, not {raw!r}") from None


def limits_from_env(env: Mapping[str, str] | None = None) -> ImageLimits:
    env = os.environ if env is None else env
    base = ImageLimits()
    return ImageLimits(
        max_bytes=_env_number(env, "TRAINSET_IMAGE_MAX_BYTES", int, base.max_bytes),
        max_pixels=_env_number(env, "TRAINSET_IMAGE_MAX_PIXELS", int, base.max_pixels),
    )


def augment_settings_from_env(env: Mapping[str, str] | None = None) -> AugmentSettings:
    env = os.environ if env is None else env
    base = AugmentSettings()
    return AugmentSettings(
        size=_env_number(env, "TRAINSET_AUGMENT_SIZE", int, base.size),
        colour_jitter=_env_number(env, "TRAINSET_AUGMENT_COLOUR_JITTER", float,
                                  base.colour_jitter),
        seed=_env_number(env, "TRAINSET_AUGMENT_SEED", int, base.seed),
    )


def face_settings_from_env(env: Mapping[str, str] | None = None) -> Any:
    from trainset.images.faces import FaceSettings

    env = os.environ if env is None else env
    base = FaceSettings()
    return FaceSettings(
        min_size=_env_number(env, "TRAINSET_FACE_MIN_SIZE", int, base.min_size),
        crop_size=_env_number(env, "TRAINSET_FACE_CROP_SIZE", int, base.crop_size),
        min_confidence=_env_number(env, "TRAINSET_FACE_MIN_CONFIDENCE", float,
                                   base.min_confidence),
    )


# --- events ----------------------------------------------------------------------------------


def uploads_from_event(event: Mapping[str, Any]) -> list[Upload]:
    """The created objects named by an S3 event notification, or by S3 notifications wrapped
    in SNS messages (how one upload reaches both functions in AWS). Keys arrive URL-encoded
    (a space as ``+``); they are decoded here. Other records (deletions, S3's test event) are
    left out."""
    from aws_lambda_powertools.utilities.data_classes import S3Event, SNSEvent

    uploads: list[Upload] = []
    records = list(event.get("Records") or [])
    sns_records = [r for r in records if r.get("EventSource") == "aws:sns"]
    if sns_records:
        for record in SNSEvent({"Records": sns_records}).records:
            try:
                inner = json.loads(record.sns.message)
            except (TypeError, json.JSONDecodeError):
                logger.warning("SNS message is not an S3 event; ignored")
                continue
            if isinstance(inner, dict):
                uploads += uploads_from_event(inner)
    s3_records = [r for r in records if r.get("eventSource") == "aws:s3"]
    if s3_records:
        for record in S3Event({"Records": s3_records}).records:
            if not record.event_name.startswith("ObjectCreated"):
                continue
            obj = record.s3.get_object
            size = obj.get("size")
            uploads.append(Upload(unquote_plus(obj.key), None if size is None else int(size),
                                  record.s3.bucket.name))
    return uploads


def process_uploads(uploads: Iterable[Upload], handle: Callable[[Upload], Outcome], *,
                    stage: str, uploads_only: bool = True,
                    progress: Callable[[Outcome], None] | None = None) -> BatchReport:
    """Run ``handle`` on every upload; one record's failure never stops the others. With
    ``uploads_only`` (events), keys outside ``uploads/`` are skipped (a notification filter
    gone wrong); backfills from the command line process any key."""
    outcomes = []
    for upload in uploads:
        if uploads_only and not image_keys.is_upload(upload.key):
            outcome = Outcome(upload.key, stage, SKIPPED, error={
                "code": "not_an_upload",
                "message": f"only keys under {image_keys.UPLOADS_PREFIX} are processed"})
        else:
            try:
                outcome = handle(upload)
            except Exception as exc:  # a store or network error: worth retrying
                logger.exception("%s failed for %s", stage, upload.key)
                outcome = Outcome(upload.key, stage, FAILED, error={
                    "code": "internal_error", "message": f"{type(exc).__name__}: {exc}"})
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
    return BatchReport(outcomes)


# --- the two stages ------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True).encode("utf-8")


def read_manifest(store: ImageStore, key: str) -> dict[str, Any] | None:
    if not store.exists(key):
        return None
    try:
        manifest = json.loads(store.get(key))
    except (ValueError, UnicodeDecodeError):
        return None  # unreadable: do the work again and rewrite it
    return manifest if isinstance(manifest, dict) else None


@dataclass(frozen=True)
class _Job:
    stage: str
    settings: dict[str, Any]
    # bytes -> (outputs as (key, bytes), manifest fields); raises ImageRejected for bad input
    run: Callable[[bytes, str], tuple[list[tuple[str, bytes]], dict[str, Any]]]


def _process(job: _Job, store: ImageStore, upload: Upload, limits: ImageLimits,
             source: ImageStore | None) -> Outcome:
    source = store if source is None else source
    size = upload.size if upload.size is not None else source.size(upload.key)
    if size is None:
        return Outcome(upload.key, job.stage, SKIPPED, error={
            "code": "not_found", "message": "the object no longer exists"})
    try:
        limits.check_size(size)
    except ImageTooLarge as exc:
        return _quarantine(job.stage, store, source, upload, exc, None, size)
    data = source.get(upload.key)
    digest = image_keys.content_hash(data)
    manifest_key = image_keys.manifest_key(job.stage, digest)
    existing = read_manifest(store, manifest_key)
    if (existing and existing.get("sha256") == digest
            and existing.get("version") == MANIFEST_VERSION
            and existing.get("settings") == job.settings):
        return Outcome(upload.key, job.stage, ALREADY_PROCESSED, digest, manifest_key,
                       [o["key"] for o in existing.get("outputs", [])])
    try:
        outputs, fields = job.run(data, digest)
    except ImageRejected as exc:
        return _quarantine(job.stage, store, source, upload, exc, data, size)
    except (ImportError, MemoryError):
        raise  # the function is broken or too small, not the file: retry, then alarm
    except Exception as exc:  # the processing itself failed on these bytes: not retryable
        logger.exception("%s could not process %s", job.stage, upload.key)
        rejected = ProcessingFailed(f"processing failed: {type(exc).__name__}: {exc}")
        return _quarantine(job.stage, store, source, upload, rejected, data, size)
    for key, body in outputs:
        store.put(key, body, "image/jpeg")
    manifest = {
        "version": MANIFEST_VERSION,
        "stage": job.stage,
        "sha256": digest,
        "source_key": upload.key,
        "settings": job.settings,
        "processed_at": _now(),
        **fields,
    }
    store.put(manifest_key, _json(manifest), "application/json")
    return Outcome(upload.key, job.stage, PROCESSED, digest, manifest_key,
                   [key for key, _ in outputs])


def _quarantine(stage: str, store: ImageStore, source: ImageStore, upload: Upload,
                exc: ImageRejected, data: bytes | None, size: int) -> Outcome:
    """Copy the rejected file to ``quarantine/`` and write why beside it."""
    copy_key, record_key = image_keys.quarantine_keys(upload.key, stage)
    if source is store:
        store.copy(upload.key, copy_key)
    elif data is not None:
        store.put(copy_key, data, "application/octet-stream")
    else:
        copy_key = None  # too large to carry between stores; the record still names it
    digest = image_keys.content_hash(data) if data is not None else None
    record = {
        "version": MANIFEST_VERSION,
        "stage": stage,
        "source_key": upload.key,
        "quarantine_key": copy_key,
        "error": exc.code,
        "message": exc.message,
        "details": exc.details,
        "sha256": digest,
        "bytes": size,
        "quarantined_at": _now(),
    }
    store.put(record_key, _json(record), "application/json")
    logger.warning("%s quarantined %s: %s", stage, upload.key, exc.message)
    return Outcome(upload.key, stage, QUARANTINED, digest, None,
                   [k for k in (copy_key, record_key) if k],
                   {"code": exc.code, "message": exc.message, "record": record_key})


def augment_upload(store: ImageStore, upload: Upload, *,
                   settings: AugmentSettings = AugmentSettings(),
                   limits: ImageLimits = ImageLimits(),
                   source: ImageStore | None = None) -> Outcome:
    """Write the upload's variants and its augment manifest to ``store`` (reading the upload
    from ``source``, by default the same store)."""

    def run(data: bytes, digest: str) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
        result = augment_bytes(data, settings, limits)
        outputs, described = [], []
        for v in result.variants:
            key = image_keys.variant_key(digest, v.variant.name)
            outputs.append((key, v.data))
            described.append({"name": v.variant.name, "key": key, "angle": v.variant.angle,
                              "flip": v.variant.flip, "width": v.width, "height": v.height,
                              "bytes": len(v.data)})
        return outputs, {"source": result.source.as_dict(), "outputs": described}

    return _process(_Job(AUGMENT, settings.as_dict(), run), store, upload, limits, source)


def clip_faces_upload(store: ImageStore, upload: Upload, *, detector: Any,
                      settings: Any = None, limits: ImageLimits = ImageLimits(),
                      source: ImageStore | None = None) -> Outcome:
    """Write the upload's face crops and its faces manifest (an empty list of faces is a
    result too: the photo is marked done)."""
    from trainset.images.faces import FaceSettings, clip_faces_bytes

    settings = settings or FaceSettings()

    def run(data: bytes, digest: str) -> tuple[list[tuple[str, bytes]], dict[str, Any]]:
        result = clip_faces_bytes(data, detector, settings, limits)
        outputs, described = [], []
        for face in result.faces:
            key = image_keys.face_key(digest, face.index)
            outputs.append((key, face.data))
            described.append({
                "index": face.index, "key": key, "box": list(face.detection.box),
                "confidence": round(face.detection.confidence, 4),
                "keypoints": {k: list(v) for k, v in sorted(face.detection.keypoints.items())},
                "crop_box": list(face.crop_box), "width": face.width, "height": face.height,
            })
        return outputs, {"source": result.source.as_dict(), "detector": detector.name,
                         "outputs": described}

    described_settings = {**settings.as_dict(), "detector": detector.name}
    return _process(_Job(FACES, described_settings, run), store, upload, limits, source)


def handle_event(event: Mapping[str, Any], handle: Callable[[Upload], Outcome], stage: str,
                 count: Callable[[str, int], None], log: Any) -> dict[str, Any]:
    """What both image functions do with an S3 (or SNS-wrapped) event: process each upload,
    count outcomes, log, and raise when a failure is worth Lambda's retry."""
    report = process_uploads(uploads_from_event(event), handle, stage=stage)
    for status in STATUSES:
        count(f"Images_{status}", report.count(status))
    if stage == FACES:
        count("FacesFound", sum(len(o.outputs) for o in report.outcomes
                                if o.status == PROCESSED))
    result = report.as_dict()
    log.info(f"{stage} done", extra={"counts": result["counts"],
                                     "failures": result["batchItemFailures"]})
    if report.retry_needed:
        raise RuntimeError(f"{report.count(FAILED)} upload(s) failed for a reason worth "
                           "retrying; see the log")
    return result
