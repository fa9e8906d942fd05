"""Where the image pipeline keeps things: one bucket (or folder), one prefix per kind of object.

Every derived object is addressed by the SHA-256 of the source image's bytes, bucketed by its
first two bytes so no prefix grows without bound::

    uploads/<anything>                                   what people upload (the trigger)
    variants/ab/cd/<sha256>/rot+20.jpg                   augmented variants
    faces/ab/cd/<sha256>/face-00.jpg                     face crops
    manifests/augment/ab/cd/<sha256>.json                one manifest per source and stage
    manifests/faces/ab/cd/<sha256>.json
    quarantine/<key without uploads/>                    a copy of a rejected upload
    quarantine/<key without uploads/>.augment.error.json     why the stage rejected it

The same image therefore always maps to the same keys, wherever and however often it is
uploaded. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import re

UPLOADS_PREFIX = "uploads/"
VARIANTS_PREFIX = "variants/"
FACES_PREFIX = "faces/"
MANIFESTS_PREFIX = "manifests/"
QUARANTINE_PREFIX = "quarantine/"

STAGES = ("augment", "faces")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


def content_hash(data: bytes) -> str:
    """The hex SHA-256 of ``data``: the identity of an image everywhere in the pipeline."""
    return hashlib.sha256(data).hexdigest()


def hashed_prefix(root: str, digest: str) -> str:
    """``root`` + ``ab/cd/<digest>``: the first two bytes spread objects over 65,536 prefixes."""
    if not _SHA256.match(digest):
        raise ValueError(f"not a hex SHA-256: {digest!r}")
    return f"{root}{digest[:2]}/{digest[2:4]}/{digest}"


def variant_key(digest: str, name: str, extension: str = "jpg") -> str:
    """``variants/ab/cd/<digest>/<name>.jpg``, e.g. name ``rot+20``."""
    if not _NAME.match(name):
        raise ValueError(f"bad variant name {name!r}")
    return f"{hashed_prefix(VARIANTS_PREFIX, digest)}/{name}.{extension}"


def face_key(digest: str, index: int, extension: str = "jpg") -> str:
    """``faces/ab/cd/<digest>/face-00.jpg`` for the first face (by position, left to right)."""
    if index < 0:
        raise ValueError("a face index is never negative")
    return f"{hashed_prefix(FACES_PREFIX, digest)}/face-{index:02d}.{extension}"


def manifest_key(stage: str, digest: str) -> str:
    """``manifests/<stage>/ab/cd/<digest>.json``: written last, so it marks a finished job."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    return f"{hashed_prefix(MANIFESTS_PREFIX + stage + '/', digest)}.json"


def quarantine_keys(source_key: str, stage: str) -> tuple[str, str]:
    """(copy of the rejected file, its error record) for ``source_key`` rejected by ``stage``."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; known: {', '.join(STAGES)}")
    rest = source_key.removeprefix(UPLOADS_PREFIX).lstrip("/")
    if not rest:
        raise ValueError("an empty key cannot be quarantined")
    copy = QUARANTINE_PREFIX + rest
    return copy, f"{copy}.{stage}.error.json"


def is_upload(key: str) -> bool:
    """True for a key under ``uploads/`` that names an object, not a "folder" marker."""
    return key.startswith(UPLOADS_PREFIX) and len(key) > len(UPLOADS_PREFIX) and \
        not key.endswith("/")
