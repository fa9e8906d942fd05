"""Filters that decide which posts may be sampled, each reporting how many posts it removed.

Order: exclusion phrases, minimum length, language, exact duplicates (normalised text hash),
near-duplicates (SimHash on normalised words). Of duplicates, the post with the smallest id is
kept, so the result does not depend on the order posts arrive in.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from trainset.text import normalize

# Spam phrases the study excluded from its child posts (case-insensitive substrings).
DEFAULT_EXCLUDE_PHRASES = ("19th child", "songs for babies")
_URL = re.compile(r"https?://\S+|www\.\S+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Candidate:
    id: str
    text: str
    text_hash: str
    keyword: str | None
    language: str | None = None


@dataclass(frozen=True)
class FilterSettings:
    exclude_phrases: tuple[str, ...] = DEFAULT_EXCLUDE_PHRASES
    min_length: int = 20  # characters of normalised text without links
    near_duplicate_bits: int | None = 3  # SimHash Hamming distance; None turns it off
    language: str | None = None  # keep posts in this language (posts without one are kept)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FilterStep:
    name: str
    removed: int
    note: str = ""
    examples: list[str] = field(default_factory=list)  # a few removed ids, for checking


def apply_filters(
    candidates: Sequence[Candidate], settings: FilterSettings
) -> tuple[list[Candidate], list[FilterStep]]:
    """The posts that pass every filter (in id order) and what each filter removed."""
    posts = sorted(candidates, key=lambda c: c.id)
    steps: list[FilterStep] = []

    def keep(name: str, kept: list[Candidate], note: str = "") -> None:
        kept_ids = {c.id for c in kept}
        removed = [c.id for c in posts if c.id not in kept_ids]
        steps.append(FilterStep(name, len(removed), note, removed[:5]))
        posts[:] = kept

    phrases = [normalize(p) for p in settings.exclude_phrases if p.strip()]
    if phrases:
        keep("exclusion phrases",
             [c for c in posts if not any(p in normalize(c.text) for p in phrases)],
             "; ".join(settings.exclude_phrases))
    keep(f"shorter than {settings.min_length} characters",
         [c for c in posts if len(_URL.sub("", normalize(c.text)).strip()) >= settings.min_length])
    if settings.language:
        wanted = settings.language.lower()
        unknown = sum(1 for c in posts if not c.language)
        keep(f"language other than {wanted}",
             [c for c in posts if not c.language or c.language.lower() == wanted],
             f"{unknown} posts have no language and were kept")
    seen: set[str] = set()
    unique = []
    for c in posts:
        if c.text_hash not in seen:
            seen.add(c.text_hash)
            unique.append(c)
    keep("exact duplicates", unique)
    if settings.near_duplicate_bits is not None:
        hashes = simhashes([c.text for c in posts])
        drop = near_duplicates(hashes, settings.near_duplicate_bits)
        keep(f"near-duplicates (SimHash within {settings.near_duplicate_bits} bits)",
             [c for i, c in enumerate(posts) if i not in drop])
    return list(posts), steps


def features(text: str) -> list[bytes]:
    """Words and word pairs of the normalised text, links removed."""
    words = _WORD.findall(_URL.sub(" ", normalize(text)))
    pairs = [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return [w.encode() for w in words + pairs]


def simhashes(texts: Sequence[str], chunk: int = 20_000) -> np.ndarray:
    """64-bit SimHash of each text (blake2b feature hashes; stable across runs)."""
    out = np.zeros(len(texts), dtype=np.uint64)
    for start in range(0, len(texts), chunk):
        part = [features(t) for t in texts[start:start + chunk]]
        counts = np.array([len(f) for f in part], dtype=np.int64)
        flat = [hashlib.blake2b(f, digest_size=8).digest() for fs in part for f in fs]
        if not flat:
            continue
        raw = np.frombuffer(b"".join(flat), dtype=np.uint8).reshape(-1, 8)
        bits = np.unpackbits(raw, axis=1, bitorder="little")  # one row of 64 bits per feature
        nonempty = counts > 0
        offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))[nonempty]
        votes = np.add.reduceat(bits.astype(np.int32), offsets, axis=0)
        majority = (votes * 2 > counts[nonempty, None]).astype(np.uint8)
        packed = np.packbits(majority, axis=1, bitorder="little").view("<u8").ravel()
        out[start:start + len(part)][nonempty] = packed
    return out


def near_duplicates(hashes: np.ndarray, max_bits: int) -> set[int]:
    """Indexes to drop: each is within ``max_bits`` of an earlier kept hash. Blocks of the
    64 bits are compared exactly first (two hashes that close share at least one of
    ``max_bits + 1`` blocks), so only likely pairs are checked bit by bit."""
    blocks = max_bits + 1
    width = 64 // blocks
    pairs: dict[int, set[int]] = defaultdict(set)
    for b in range(blocks):
        shift = np.uint64(b * width)
        mask = np.uint64((1 << width) - 1) if b < blocks - 1 else np.uint64(
            (1 << (64 - b * width)) - 1)
        keys = (hashes >> shift) & mask
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for s, e in zip(starts, ends, strict=True):
            if e - s < 2:
                continue
            group = np.sort(order[s:e])
            for i, a in enumerate(group[:-1]):
                rest = group[i + 1:]
                distance = _popcount(hashes[rest] ^ hashes[a])
                for j in rest[distance <= max_bits]:
                    pairs[int(j)].add(int(a))
    dropped: set[int] = set()
    for j in sorted(pairs):
        if any(a not in dropped for a in pairs[j]):
            dropped.add(j)
    return dropped


def _popcount(values: np.ndarray) -> np.ndarray:
    as_bytes = values.astype("<u8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(as_bytes, axis=1).sum(axis=1)
