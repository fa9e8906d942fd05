"""Text normalisation shared by hashing and (later) de-duplication."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case-folded, NFKC-normalised text with runs of white space collapsed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_hash(text: str) -> str:
    """A stable hash of the normalised text: equal for posts that differ only in case/space."""
    return hashlib.sha256(normalize(text).encode("utf-8")).hexdigest()
