"""PostgreSQL's binary COPY format, built from Arrow columns with no Python loop per row.

A binary COPY stream is a signature, then each row as a 16-bit field count and, per field, a
32-bit length (-1 for NULL) and the value's bytes, then a -1 trailer. Each field here is a few
pieces: bytes every row shares, equal-width bytes per row (a numpy array, one row each), or an
Arrow binary array. Neighbouring shared and equal-width pieces are packed into one, and
pyarrow's ``binary_join_element_wise`` lays the rows out one after another: its result's data
buffer is the stream's body. The server reads binary values without parsing text (no CSV
quoting, no timestamp parsing).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # no flags, no header extension
TRAILER = b"\xff\xff"
POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in microseconds since 1970
NULL = (-1).to_bytes(4, "big", signed=True)
CHUNK = 64 << 20  # one CopyData message per batch: each costs the sending thread the GIL

Piece = bytes | np.ndarray | pa.Array  # shared / equal-width per row (uint8, rows x width) / any


def stream(count: int, fields: Sequence[Sequence[Piece]]) -> list[bytes | memoryview]:
    """The whole COPY stream of ``count`` rows, in pieces for pg8000 (a CopyData message
    each, from pyarrow's buffer without a copy); ``fields`` as made by the functions below."""
    if count == 0:
        return [SIGNATURE + TRAILER]
    args: list[pa.Array | pa.Scalar] = []
    packed: list[bytes | np.ndarray] = [len(fields).to_bytes(2, "big")]
    for piece in (p for field in fields for p in field):
        if isinstance(piece, pa.Array):
            args.append(_pack(packed, count))
            packed = []
            args.append(piece)
        else:
            packed.append(piece)
    if packed:
        args.append(_pack(packed, count))
    if len(args) == 1:  # binary_join_element_wise wants an array
        args = [pa.array([b""] * count, pa.binary()), args[0]]
    rows = pc.binary_join_element_wise(*args, pa.scalar(b"", pa.binary()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32, count=len(rows) + 1,
                            offset=rows.offset * 4)
    body = memoryview(rows.buffers()[2])[int(offsets[0]):int(offsets[-1])]
    return [SIGNATURE, *(body[i:i + CHUNK] for i in range(0, len(body), CHUNK)), TRAILER]


def constant(value: bytes) -> list[Piece]:
    """The same non-null value in every row."""
    return [len(value).to_bytes(4, "big") + value]


def int4(values: np.ndarray) -> list[Piece]:
    rows = np.empty(len(values), dtype=[("length", ">i4"), ("value", ">i4")])
    rows["length"] = 4
    rows["value"] = values
    return [_per_row(rows)]


def text(values: pa.Array | pa.ChunkedArray) -> list[Piece]:
    """text (and varchar): the UTF-8 bytes."""
    values = _binary(values)
    if values.null_count == len(values):
        return [NULL]
    return [_lengths(values), values.fill_null(b"") if values.null_count else values]


def jsonb(values: pa.Array | pa.ChunkedArray) -> list[Piece]:
    """jsonb: a version byte (1), then the JSON text."""
    values = _binary(values)
    if values.null_count == len(values):
        return [NULL]
    if not values.null_count:
        return [_lengths(values, extra=1), b"\x01", values]
    version = pc.if_else(values.is_valid(), pa.scalar(b"\x01", pa.binary()),
                         pa.scalar(b"", pa.binary()))
    return [_lengths(values, extra=1), version, values.fill_null(b"")]


def timestamptz(values: pa.Array | pa.ChunkedArray) -> list[Piece]:
    """timestamptz from timestamp[us, UTC]: microseconds since 2000-01-01 UTC."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        return [NULL]
    rows = np.empty(len(values), dtype=[("length", ">i4"), ("value", ">i8")])
    rows["length"] = 8
    rows["value"] = values.cast(pa.int64()).fill_null(0).to_numpy() - POSTGRES_EPOCH_US
    if not values.null_count:
        return [_per_row(rows)]
    whole = _binary_rows(_per_row(rows))
    return [pc.if_else(values.is_valid(), whole, pa.scalar(NULL, pa.binary()))]


def _binary(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(pa.binary())


def _lengths(values: pa.Array, extra: int = 0) -> Piece:
    """Each value's 32-bit length (plus ``extra``), -1 for null."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1,
                            offset=values.offset * 4)
    lengths = np.diff(offsets) + extra
    if values.null_count:
        lengths = np.where(values.is_valid().to_numpy(zero_copy_only=False), lengths, -1)
    elif len(lengths) and (lengths == lengths[0]).all():
        return int(lengths[0]).to_bytes(4, "big")  # every value as long (hashes)
    return _per_row(lengths.astype(">i4"))


def _per_row(records: np.ndarray) -> np.ndarray:
    """Equal-width records as bytes, one row each (rows x width)."""
    return np.ascontiguousarray(records).view(np.uint8).reshape(len(records), -1)


def _pack(pieces: list[bytes | np.ndarray], count: int) -> pa.Array | pa.Scalar:
    """Neighbouring shared and equal-width pieces as one piece."""
    if all(isinstance(p, bytes) for p in pieces):
        return pa.scalar(b"".join(pieces), pa.binary())  # type: ignore[arg-type]
    columns = [np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (count, len(p)))
               if isinstance(p, bytes) else p for p in pieces]
    return _binary_rows(np.hstack(columns))


def _binary_rows(rows: np.ndarray) -> pa.Array:
    width = rows.shape[1]
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(rows), [None, pa.py_buffer(np.ascontiguousarray(rows))])
    return fixed.cast(pa.binary())
