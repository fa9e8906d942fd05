"""Text normalisation shared by hashing and (later) de-duplication."""

from __future__ import annotations

import hashlib
import unicodedata


def normalize(text: str) -> str:
    """Case-folded, NFKC-normalised text with runs of white space collapsed."""
    if not unicodedata.is_normalized("NFKC", text):  # cheap check; most posts already are
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def text_hash(text: str) -> str:
    """A stable hash of the normalised text: equal for posts that differ only in case/space."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()
