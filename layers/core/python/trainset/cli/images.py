"""``python -m trainset images ...``: the image pipeline from the command line.

    images augment SRC DST     the study's ten variants of every image under SRC, into DST
    images faces SRC DST       face crops of every image under SRC, into DST
    images upload FILE...      put images under uploads/ of the images bucket (the pipeline
                               then runs by itself: in AWS, and under `make run`)

SRC is a folder or ``s3://bucket/prefix``; DST a folder or ``s3://bucket``. Outputs, manifests
and quarantined files land in DST with the same layout as in the bucket (docs/images.md), and
an image already done with the same settings is not done again, so a backfill can be stopped
and re-run. ``cli.py`` calls ``register`` to add these commands.
"""

from __future__ import annotations

import argparse
import logging
import mimetypes
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainset.cli import _say
from trainset.errors import InvalidInput, TrainsetError

IMAGE_STATUSES = ("processed", "already_processed", "quarantined", "skipped", "failed")


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- where images are ----------------------------------------------------------------------


def _s3_client(endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url) if endpoint_url else boto3.client("s3")


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidInput(f"{url} names no bucket (expected s3://bucket/prefix)")
    return bucket, prefix


def _endpoint_for(bucket: str, explicit: str | None) -> str | None:
    """``--endpoint-url``, else boto3's own settings, else the local stand-in of a running
    ``python -m trainset run`` when it holds this bucket."""
    if explicit or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return explicit
    from trainset.local.images import LOCAL_CREDENTIALS, running_stand_in

    local = running_stand_in()
    if local and local["bucket"] == bucket:
        for name, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        _say(f"using the local S3 stand-in at {local['endpoint_url']}")
        return local["endpoint_url"]
    return None


def _source(src: str, endpoint_url: str | None, exclude: Path | None) -> tuple[Any, list[Any]]:
    """The store holding SRC, and the uploads under it (hidden files left out)."""
    from trainset.blobs.local import LocalBlobs
    from trainset.blobs.s3 import S3Blobs
    from trainset.services.images import Upload

    if src.startswith("s3://"):
        bucket, prefix = _split_s3(src)
        store = S3Blobs(_s3_client(_endpoint_for(bucket, endpoint_url)), bucket)
        keys = [k for k in store.list(prefix) if not k.endswith("/")]
        return store, [Upload(k, None, bucket) for k in keys]
    folder = Path(src)
    if not folder.is_dir():
        raise InvalidInput(f"{src} is not a folder (or an s3://bucket/prefix)")
    store = LocalBlobs(folder)
    found = []
    for key in store.list(""):
        path = store.root / key
        if any(part.startswith(".") for part in Path(key).parts):
            continue
        if exclude is not None and (path == exclude or exclude in path.parents):
            continue
        found.append(Upload(key, path.stat().st_size))
    return store, found


def _destination(dst: str, endpoint_url: str | None) -> tuple[Any, Path | None]:
    from trainset.blobs.local import LocalBlobs
    from trainset.blobs.s3 import S3Blobs

    if dst.startswith("s3://"):
        bucket, prefix = _split_s3(dst)
        if prefix.strip("/"):
            raise InvalidInput(f"DST must be a bucket (s3://{bucket}), not a prefix in it: "
                               "outputs always go under variants/, faces/, manifests/")
        return S3Blobs(_s3_client(_endpoint_for(bucket, endpoint_url)), bucket), None
    folder = Path(dst)
    if folder.exists() and not folder.is_dir():
        raise InvalidInput(f"{dst} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return LocalBlobs(folder), folder.resolve()


def _aws_errors(action: Callable[[], int]) -> int:
    """Run ``action``; AWS errors (no credentials, no such bucket, no network) become one line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return action()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise TrainsetError(f"S3 refused: {error.get('Code', '?')}: "
                            f"{error.get('Message', exc)}") from None
    except BotoCoreError as exc:
        raise TrainsetError(f"S3 call failed: {exc}") from None


# --- augment and faces ---------------------------------------------------------------------


def _limits(args: argparse.Namespace) -> Any:
    from trainset.images.augment import ImageLimits

    try:
        return ImageLimits(max_bytes=args.max_bytes, max_pixels=args.max_pixels)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _run_backfill(args: argparse.Namespace, stage: str,
                  make_handler: Callable[[Any], Callable[[Any], Any]]) -> int:
    from tqdm import tqdm

    from trainset.services.images import process_uploads

    # Each quarantined file gets one line below; the service's own warning would repeat it.
    logging.getLogger("trainset.images").setLevel(logging.ERROR)

    def action() -> int:
        dest, dest_folder = _destination(args.dst, args.endpoint_url)
        source, uploads = _source(args.src, args.endpoint_url, dest_folder)
        if not uploads:
            _say(f"no files under {args.src}: nothing to do")
            return 0
        handle = make_handler(dest)
        counts = dict.fromkeys(IMAGE_STATUSES, 0)
        bar = tqdm(total=len(uploads), desc=stage, unit=" images", disable=None,
                   dynamic_ncols=True)

        def progress(outcome: Any) -> None:
            counts[outcome.status] += 1
            bar.update(1)
            if outcome.failed:
                bar.write(f"{outcome.status} {outcome.key}: {outcome.error['code']}: "
                          f"{outcome.error['message']}", file=sys.stderr)

        try:
            process_uploads(uploads, lambda u: handle(u, source), stage=stage,
                            uploads_only=False, progress=progress)
        finally:
            bar.close()
        done = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n)
        _say(f"{stage}: {len(uploads)} file(s): {done}; written to {args.dst}")
        return 2 if counts["quarantined"] or counts["failed"] else 0

    return _aws_errors(action)


def cmd_images_augment(args: argparse.Namespace) -> int:
    from trainset.images.augment import AugmentSettings
    from trainset.services.images import augment_upload

    try:
        settings = AugmentSettings(size=args.size, colour_jitter=args.colour_jitter,
                                   seed=args.seed)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    limits = _limits(args)

    def make(dest: Any) -> Callable[[Any, Any], Any]:
        return lambda upload, source: augment_upload(dest, upload, settings=settings,
                                                     limits=limits, source=source)

    return _run_backfill(args, "augment", make)


def cmd_images_faces(args: argparse.Namespace) -> int:
    from trainset.images.faces import FaceSettings, MtcnnDetector
    from trainset.services.images import clip_faces_upload

    try:
        settings = FaceSettings(min_size=args.min_size, crop_size=args.crop_size,
                                min_confidence=args.min_confidence, margin=args.margin)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    limits = _limits(args)
    detector = MtcnnDetector()

    def make(dest: Any) -> Callable[[Any, Any], Any]:
        _say("loading MTCNN (TensorFlow)...")
        detector.load()
        return lambda upload, source: clip_faces_upload(dest, upload, detector=detector,
                                                        settings=settings, limits=limits,
                                                        source=source)

    return _run_backfill(args, "faces", make)


# --- upload --------------------------------------------------------------------------------


def upload_key(path: Path, prefix: str = "") -> str:
    """``uploads/<prefix>/<file name>``."""
    from trainset.images.keys import UPLOADS_PREFIX

    folder = prefix.strip("/")
    return UPLOADS_PREFIX + (folder + "/" if folder else "") + path.name


def cmd_images_upload(args: argparse.Namespace) -> int:
    from trainset.blobs.s3 import S3Blobs
    from trainset.local.images import LOCAL_CREDENTIALS, running_stand_in

    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise InvalidInput(f"not a file: {', '.join(missing)}; nothing was uploaded")
    bucket = args.bucket or os.environ.get("TRAINSET_IMAGES_BUCKET")
    endpoint = args.endpoint_url
    local = None
    if not bucket:
        local = running_stand_in()
        if local is None:
            raise TrainsetError("no images bucket: start `python -m trainset run` (local), or "
                                "pass --bucket / set TRAINSET_IMAGES_BUCKET")
        bucket, endpoint = local["bucket"], local["endpoint_url"]
        for name, value in LOCAL_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    def action() -> int:
        store = S3Blobs(_s3_client(endpoint), bucket)
        for path in paths:
            key = upload_key(path, args.prefix)
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            store.put(key, path.read_bytes(), ctype)
            _say(f"uploaded {path} -> s3://{bucket}/{key}")
        where = f"the local stand-in ({endpoint})" if local else f"s3://{bucket}"
        _say(f"{len(paths)} file(s) uploaded to {where}; their variants and face crops "
             "appear under variants/ and faces/ once the pipeline has run")
        return 0

    return _aws_errors(action)


# --- argparse ------------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    from trainset.images.augment import ImageLimits

    parser.add_argument("src", metavar="SRC", help="a folder, or s3://bucket/prefix")
    parser.add_argument("dst", metavar="DST", help="a folder, or s3://bucket")
    parser.add_argument("--max-bytes", type=int, default=ImageLimits().max_bytes,
                        help="larger files are quarantined unread (default: %(default)s)")
    parser.add_argument("--max-pixels", type=int, default=ImageLimits().max_pixels,
                        help="images with more pixels are quarantined, a guard against "
                        "decompression bombs (default: %(default)s)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (default: boto3's; the local "
                        "stand-in of a running `trainset run` for its bucket)")


def register(subparsers: Any) -> None:
    """Add ``images augment|faces|upload`` to the ``python -m trainset`` parser."""
    from trainset.images.augment import AugmentSettings
    from trainset.images.faces import FaceSettings

    images = subparsers.add_parser(
        "images", help="augment images, clip faces (backfills), upload images",
        description="The image pipeline by hand. In AWS and under `trainset run`, uploads "
        "under uploads/ are augmented and face-clipped automatically.")
    sub = images.add_subparsers(dest="images_command", required=True, metavar="ACTION")

    aug = sub.add_parser(
        "augment", help="make the study's ten variants of every image under SRC",
        description="Original, rotations by +-20 and +-40 degrees, the horizontal flip and the "
        "flip rotated +-20/+-40, letterboxed to a square. Writes variants/, manifests/augment/ "
        "and quarantine/ under DST; images done before with the same settings are skipped.")
    _common(aug)
    aug.add_argument("--size", type=int, default=AugmentSettings().size,
                     help="output square in pixels (default: %(default)s)")
    aug.add_argument("--colour-jitter", type=float, default=0.0,
                     help="random brightness/contrast/saturation of +-this fraction, seeded "
                     "per image and variant (default: off)")
    aug.add_argument("--seed", type=int, default=0, help="varies the colour jitter")
    aug.set_defaults(func=cmd_images_augment)

    fac = sub.add_parser(
        "faces", help="clip the faces in every image under SRC (MTCNN)",
        description="Faces at least --min-size pixels with at least --min-confidence are cut "
        "square and resized to --crop-size. Writes faces/, manifests/faces/ and quarantine/ "
        "under DST; images done before with the same settings are skipped.")
    _common(fac)
    defaults = FaceSettings()
    fac.add_argument("--min-size", type=int, default=defaults.min_size,
                     help="smallest face kept, in pixels (default: %(default)s)")
    fac.add_argument("--crop-size", type=int, default=defaults.crop_size,
                     help="crop square in pixels (default: %(default)s)")
    fac.add_argument("--min-confidence", type=float, default=defaults.min_confidence,
                     help="(default: %(default)s)")
    fac.add_argument("--margin", type=float, default=defaults.margin,
                     help="context around the face box, as a fraction of its size "
                     "(default: %(default)s)")
    fac.set_defaults(func=cmd_images_faces)

    up = sub.add_parser(
        "upload", help="upload image files under uploads/ of the images bucket",
        description="Uploads to --bucket, else TRAINSET_IMAGES_BUCKET, else the local S3 "
        "stand-in of a running `python -m trainset run`. Keys are uploads/[PREFIX/]NAME.")
    up.add_argument("files", nargs="+", metavar="FILE")
    up.add_argument("--bucket", help="the images bucket (default: TRAINSET_IMAGES_BUCKET, or "
                    "the local stand-in)")
    up.add_argument("--prefix", default="", help="a folder under uploads/ for these files")
    up.add_argument("--endpoint-url", help="S3 endpoint (default: boto3's)")
    up.set_defaults(func=cmd_images_upload)
