"""Post records for a batch of posts, built column by column (``trainset.export.wire``).

``PostColumns.from_rows`` turns a batch of dataset rows (``kept_rows``' dictionaries) into one
array per feature, with the same conversions the per-row ``tfrecords.post_example`` applies
(``str``, ``int``, ``float``; float32 as ``struct.pack`` rounds); ``records(gate)`` serialises
them, byte for byte what ``post_example`` gives row by row. Rows that do not fit columns
(a label list of another length than its neighbours', an integer beyond int64) raise
``IrregularRows``; ``tfrecords.post_records`` then builds that batch row by row.

Any batch works: a whole family, or one shard of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from itertools import chain
from operator import itemgetter, methodcaller
from typing import Any

import numpy as np

from trainset.export import wire


class IrregularRows(ValueError):
    """The batch does not fit fixed-width columns; build its records row by row."""


@dataclass(frozen=True)
class AuthorColumns:
    """Each row's author features (``trainset.export.author_features``)."""

    stats: np.ndarray  # (N, statistics) shares of the author's other posts
    other_posts: np.ndarray  # (N,)
    vectors: np.ndarray | None = None  # (N, size); None: no vectors file was given
    has_vector: np.ndarray | None = None  # (N,) bool

    def take(self, order: Sequence[int]) -> AuthorColumns:
        """The rows in another order (``order``: row indices)."""
        index = np.asarray(order, np.int64)
        return AuthorColumns(*(None if v is None else v[index] for v in
                               (self.stats, self.other_posts, self.vectors, self.has_vector)))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The figures as named arrays (``authors__<field>``, compact types: ``_compact``)."""
        return {f"authors__{f.name}": _compact(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> AuthorColumns | None:
        """The figures ``to_arrays`` gave (None when there are none)."""
        found = {f.name: _widened(arrays[f"authors__{f.name}"]) for f in fields(cls)
                 if f"authors__{f.name}" in arrays}
        return cls(**found) if found else None


@dataclass(frozen=True)
class PostColumns:
    """A batch of N post records, one array (or list of bytes) per feature."""

    post_id: list[bytes]
    text: list[bytes]
    keyword: list[bytes]
    gate: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N, study slots) int64
    soft_labels: np.ndarray  # (N, study slots) float64
    detail_labels: np.ndarray  # (N, codebook slots) int64
    detail_soft_labels: np.ndarray  # (N, codebook slots) float64
    confidence: np.ndarray  # (N,) float64
    sampling_weight: np.ndarray
    calibrated_weight: np.ndarray
    n_coders: np.ndarray  # (N,) int64
    images: list[bytes] | None = None  # b"" for a post without an image
    image_sizes: np.ndarray | None = None  # (N, 3): height, width, channels
    token_ids: np.ndarray | None = None  # (N, max_length)
    attention_mask: np.ndarray | None = None
    authors: AuthorColumns | None = None

    def __len__(self) -> int:
        return len(self.post_id)

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]], *,
                  images: Sequence[bytes | None] | None = None,
                  image_sizes: Sequence[tuple[int, int, int]] | None = None,
                  tokens: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
                  authors: AuthorColumns | None = None,
                  post_ids: list[bytes] | None = None) -> PostColumns:
        """The columns of a batch of rows, in the rows' order. ``images``: each row's encoded
        image or None (None for the batch: no image features), with their ``image_sizes``
        (read from the images' headers when not given); ``tokens``: each row's (token ids,
        attention mask); ``post_ids``: the rows' ids as UTF-8, when already encoded."""
        n = len(rows)
        if images is not None and len(images) != n or tokens is not None and len(tokens) != n:
            raise ValueError("images and tokens must have one entry per row")
        f = _fields(rows, _REQUIRED, _OPTIONAL)
        try:
            return cls(
                post_id=_utf8(f["post_id"]) if post_ids is None else post_ids,
                text=_utf8(f["text"]),
                keyword=_utf8([v or "" for v in f["keyword"]]),
                gate=_ints(f["gate"]),
                labels=_int_lists(f["study_labels"]),
                soft_labels=_float_lists(f["study_soft_labels"]),
                detail_labels=_int_lists(f["multi_hot"]),
                detail_soft_labels=_float_lists(f["soft_labels"]),
                confidence=_floats(f["confidence"]),
                sampling_weight=_floats([v or 0.0 for v in f["sampling_weight"]]),
                calibrated_weight=_floats([v or 0.0 for v in f["calibrated_weight"]]),
                n_coders=_ints(f["n_coders"]),
                images=None if images is None else [image or b"" for image in images],
                image_sizes=None if images is None else _image_sizes(images, image_sizes),
                token_ids=None if tokens is None else _int_lists([t[0] for t in tokens]),
                attention_mask=None if tokens is None else _int_lists([t[1] for t in tokens]),
                authors=authors,
            )
        except OverflowError as exc:  # an integer beyond int64
            raise IrregularRows(str(exc)) from None

    def take(self, order: Sequence[int]) -> PostColumns:
        """The rows in another order (``order``: row indices)."""
        index = np.asarray(order, np.int64)

        def pick(column: Any) -> Any:
            if column is None:
                return None
            if isinstance(column, np.ndarray):
                return column[index]
            return list(map(column.__getitem__, order))

        return PostColumns(**{f.name: pick(getattr(self, f.name)) for f in fields(self)
                              if f.name != "authors"},
                           authors=None if self.authors is None else self.authors.take(order))

    def rows(self, start: int, stop: int) -> PostColumns:
        """Rows ``start`` to ``stop`` (a batch of a shard), without copying the arrays."""
        def cut(column: Any) -> Any:
            return None if column is None else column[start:stop]

        authors = self.authors
        return PostColumns(**{f.name: cut(getattr(self, f.name)) for f in fields(self)
                              if f.name != "authors"},
                           authors=None if authors is None else AuthorColumns(
                               *(cut(v) for v in (authors.stats, authors.other_posts,
                                                  authors.vectors, authors.has_vector))))

    def with_images(self, images: Sequence[bytes | None]) -> PostColumns:
        """The columns with each row's encoded image (None: the post has none), their sizes
        read from the images' headers."""
        if len(images) != len(self):
            raise ValueError("images must have one entry per row")
        return replace(self, images=[image or b"" for image in images],
                       image_sizes=_image_sizes(images, None))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The columns as named arrays (``from_arrays`` reads them back): each bytes column
        as its values' concatenation and their end offsets, numbers in the smallest type
        that gives the records the same bytes (``_compact``). What a shard's stored input
        carries, read without a Python object per row but for the bytes values."""
        out: dict[str, np.ndarray] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "authors" or value is None:
                continue
            if isinstance(value, np.ndarray):
                out[f.name] = _compact(value)
            else:
                data, ends = pack_bytes(value)
                out[f"{f.name}__bytes"], out[f"{f.name}__ends"] = data, _compact(ends)
        if self.authors is not None:
            out.update(self.authors.to_arrays())
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> PostColumns:
        """The columns ``to_arrays`` gave (any mapping of its names, as ``np.load`` gives),
        in the columns' own types again (int64, float64)."""
        names = set(arrays)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in names:
                values[f.name] = _widened(arrays[f.name])
            elif f"{f.name}__bytes" in names:
                values[f.name] = unpack_bytes(arrays[f"{f.name}__bytes"],
                                              arrays[f"{f.name}__ends"])
        return cls(**values, authors=AuthorColumns.from_arrays(arrays))

    def features(self, gate: str) -> dict[str, Any]:
        """The record's features by name, as ``wire.examples`` takes them."""
        features: dict[str, Any] = {
            "post_id": self.post_id, "text": self.text, "keyword": self.keyword,
            gate: self.gate, "labels": self.labels, "soft_labels": self.soft_labels,
            "detail_labels": self.detail_labels,
            "detail_soft_labels": self.detail_soft_labels, "confidence": self.confidence,
            "sampling_weight": self.sampling_weight,
            "calibrated_weight": self.calibrated_weight, "n_coders": self.n_coders,
        }
        if self.images is not None and self.image_sizes is not None:
            features.update({"image/encoded": self.images,
                             "image/height": self.image_sizes[:, 0],
                             "image/width": self.image_sizes[:, 1],
                             "image/channels": self.image_sizes[:, 2]})
        if self.token_ids is not None:
            features["token_ids"] = self.token_ids
            features["attention_mask"] = self.attention_mask
        if self.authors is not None:
            features["user_stats"] = self.authors.stats
            features["user_posts"] = self.authors.other_posts
            if self.authors.vectors is not None:
                features["vectors"] = self.authors.vectors
                features["vectors_mask"] = self.authors.has_vector.astype(np.int64)
        return features

    def records(self, gate: str) -> list[bytes]:
        """One serialised post record per row (the gate feature named ``gate``)."""
        return wire.examples(self.features(gate), len(self))


def _compact(values: np.ndarray) -> np.ndarray:
    """The array in the smallest type that gives the records the same bytes: floats as
    float32, which is what a record holds (float64 where a finite value is too large for
    float32, so that building the record still refuses it), non-negative integers in the
    fewest unsigned bytes that hold them. A shard's stored input is a third of the size."""
    if values.dtype.kind == "f":
        with np.errstate(over="ignore"):
            single = values.astype(np.float32)
        return single if np.array_equal(np.isinf(single), np.isinf(values)) else values
    if values.dtype.kind in "iu" and values.size and int(values.min()) >= 0:
        top = int(values.max())
        for kind in (np.uint8, np.uint16, np.uint32):
            if top <= np.iinfo(kind).max:
                return values.astype(kind)
    return values


def _widened(values: np.ndarray) -> np.ndarray:
    """A stored array in its column's type again (int64, float64; exact for both)."""
    if values.dtype.kind == "f":
        return values.astype(np.float64)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    return values


def pack_bytes(values: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Bytes values as one uint8 array of their concatenation and their end offsets."""
    ends = np.cumsum(np.fromiter(map(len, values), np.int64, count=len(values)))
    return np.frombuffer(b"".join(values), np.uint8), ends


def unpack_bytes(data: np.ndarray, ends: np.ndarray) -> list[bytes]:
    """The values ``pack_bytes`` packed."""
    blob = data.tobytes()
    stops = ends.tolist()
    return [blob[a:b] for a, b in zip([0, *stops][:len(stops)], stops, strict=True)]


_REQUIRED = ("post_id", "text", "gate", "study_labels", "study_soft_labels", "multi_hot",
             "soft_labels", "confidence", "n_coders")
_OPTIONAL = ("keyword", "sampling_weight", "calibrated_weight")


def _fields(rows: Sequence[Mapping[str, Any]], required: Sequence[str],
            optional: Sequence[str]) -> dict[str, list[Any]]:
    """Each key's values over the rows (None for a missing optional key), read in one pass
    when every row has every key."""
    keys = (*required, *optional)
    try:
        flat = list(chain.from_iterable(map(itemgetter(*keys), rows)))
    except KeyError:
        pass
    else:
        return {key: flat[i::len(keys)] for i, key in enumerate(keys)}
    flat = list(chain.from_iterable(map(itemgetter(*required), rows)))  # KeyError: as ever
    out = {key: flat[i::len(required)] for i, key in enumerate(required)}
    out.update({key: list(map(methodcaller("get", key), rows)) for key in optional})
    return out


def _utf8(values: Sequence[Any]) -> list[bytes]:
    """``str(v).encode()`` of each value."""
    return list(map(str.encode, map(str, values)))


def _ints(values: Sequence[Any]) -> np.ndarray:
    """``int(v)`` of each value, as int64."""
    return np.fromiter(values, np.int64, count=len(values))


def _floats(values: Sequence[Any]) -> np.ndarray:
    """``float(v)`` of each value. numpy reads None as NaN where ``float`` refuses it: a NaN
    is checked against ``float`` (which raises as the per-row records always did)."""
    out = np.fromiter(values, np.float64, count=len(values))
    if np.isnan(out).any():
        out = np.array([float(v) for v in values], np.float64)
    return out


def _width(lists: Sequence[Sequence[Any]]) -> int:
    widths = set(map(len, lists))
    if len(widths) > 1:
        raise IrregularRows(f"lists of different lengths {sorted(widths)}")
    return widths.pop() if widths else 0


def _int_lists(lists: Sequence[Sequence[Any]]) -> np.ndarray:
    width = _width(lists)
    flat = np.fromiter(chain.from_iterable(lists), np.int64, count=len(lists) * width)
    return flat.reshape(len(lists), width)


def _float_lists(lists: Sequence[Sequence[Any]]) -> np.ndarray:
    width = _width(lists)
    flat = np.fromiter(chain.from_iterable(lists), np.float64, count=len(lists) * width)
    if np.isnan(flat).any():  # as in _floats
        flat = np.array([float(v) for v in chain.from_iterable(lists)], np.float64)
    return flat.reshape(len(lists), width)


def _image_sizes(images: Sequence[bytes | None],
                 sizes: Iterable[tuple[int, int, int]] | None) -> np.ndarray:
    if sizes is None:
        from trainset.export.tfrecords import image_size

        sizes = [image_size(image) if image else (0, 0, 0) for image in images]
    return np.array(list(sizes), np.int64).reshape(len(images), 3)
