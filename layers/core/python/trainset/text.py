"""Text normalisation shared by hashing and (later) de-duplication; file checksums."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path


def normalize(text: str) -> str:
    """Case-folded, NFKC-normalised text with runs of white space collapsed."""
    if not unicodedata.is_normalized("NFKC", text):  # cheap check; most posts already are
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def text_hash(text: str) -> str:
    """A stable hash of the normalised text: equal for posts that differ only in case/space."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks (shards and imports are large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
