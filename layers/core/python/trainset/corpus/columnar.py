"""Corpus files read and checked in columnar blocks (pyarrow), for the bulk import.

The row reader and checker in ``trainset.corpus.ingest`` define what a post is and why a row is
rejected; this module gives the same answers a block of rows at a time. pyarrow's CSV, JSON and
Parquet readers parse the block, and compute functions check it: a row is taken here only when
every check says it is an ordinary good post. Every other row (a reject, or anything unusual: a
date in another format, a control character in an extra column, a number where text was
expected) is checked by ``check_row`` itself, so rejects and their reasons are exactly the row
checker's. Where pyarrow cannot see the rows as Python's readers do (a CSV record longer than a
block, a JSON block that mixes types or nests values), that stretch is read the row way.

Line numbers are the row reader's: the physical line where a CSV record starts (counting the
line breaks inside quoted values), the line of a JSONL row, the row of a Parquet file.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import operator
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from trainset.codebook import FAMILY_NAMES
from trainset.corpus.ingest import (
    DEFAULT_MAX_TEXT,
    KNOWN_COLUMNS,
    MAX_ID_LENGTH,
    FirstIdWins,
    PostRow,
    RawRow,
    Reject,
    _jsonable,
    _read_csv,
    _require_columns,
    check_row,
    csv_row,
    detect_format,
    jsonl_row,
    open_csv_text,
    open_parquet,
)
from trainset.text import text_hash

BLOCK_BYTES = 4 << 20  # bytes of CSV or JSONL parsed at a time
PARQUET_ROWS = 50_000
POSTS_SCHEMA = pa.schema([
    ("id", pa.string()), ("text", pa.string()), ("image_key", pa.string()),
    ("keyword", pa.string()), ("family", pa.string()), ("author", pa.string()),
    ("created_at", pa.timestamp("us", "UTC")), ("text_hash", pa.string()),
    ("extra", pa.string()),  # a JSON object
    ("line", pa.int64()),
])
# What str.strip() and str.split() take for white space (str.isspace), for pyarrow's trim.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
              "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# The created_at forms taken here; parse_created_at reads these exactly as pyarrow does, and
# reads every other form (row by row).
_ISO = (r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[T ](?:[01]\d|2[0-3]):[0-5]\d"
        r":[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$")
_ZONE = r"(?:Z|[+-]\d\d:\d\d)$"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_X_DATE = (r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?P<month>" + "|".join(_MONTHS) + r") "
           r"(?P<day>0[1-9]|[12]\d|3[01]) (?P<time>(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d) "
           r"(?P<zh>[+-](?:[01]\d|2[0-3]))(?P<zm>[0-5]\d) (?P<year>(?:19|20)\d\d)$")
_JSON_TEXT_COLUMNS = ("text", "keyword", "family", "image_key", "image_url", "author",
                      "created_at")


@dataclass
class CheckedBlock:
    rows: int  # rows read (blank lines are not rows)
    posts: pa.Table  # POSTS_SCHEMA: the rows taken, in file order
    rejects: list[Reject]  # in file order


class _Block(NamedTuple):
    """Rows as read: columns by name (a name given twice: its last column), each row's line,
    the rows (by index) as the row reader gives them, and rows read the row way."""

    columns: dict[str, pa.Array]
    lines: np.ndarray
    raw: Callable[[Sequence[int]], list[RawRow]]
    others: list[RawRow]


def read_checked(path: Path, max_text: int = DEFAULT_MAX_TEXT) -> Iterator[CheckedBlock]:
    """The file's rows, checked, a block at a time. An id given twice in the file keeps its
    first row. Raises ``FileProblem`` when the file cannot be read."""
    blocks = {"csv": _csv_blocks, "jsonl": _jsonl_blocks,
              "parquet": _parquet_blocks}[detect_format(path)](path)
    seen = _FileIds()
    for block in blocks:
        yield _first_ids(seen, _check(block, max_text))


# ---- checking ------------------------------------------------------------------------------


class _Checked(NamedTuple):
    rows: int
    posts: pa.Table
    rejects: list[Reject]
    raws: dict[int, RawRow]  # the rows taken by check_row, by line
    block: _Block


def _check(block: _Block, max_text: int) -> _Checked:
    rejects: list[Reject] = []
    slow: list[tuple[PostRow, RawRow]] = []

    def by_row(raws: list[RawRow]) -> None:
        for raw in raws:
            checked = check_row(raw, max_text)
            if isinstance(checked, Reject):
                rejects.append(checked)
            else:
                slow.append((checked, raw))

    by_row(block.others)
    tables = []
    count = len(block.lines)
    if count:
        good, posts = _vector_check(block.columns, count, max_text)
        by_row(block.raw(np.flatnonzero(~good)))
        if posts is not None:
            tables.append(posts.append_column("line", pa.array(block.lines[good])))
    if slow:
        tables.append(_posts_table([p for p, _ in slow], [r.line for _, r in slow]))
    posts = pa.concat_tables(tables) if tables else POSTS_SCHEMA.empty_table()
    if slow and len(tables) > 1:
        posts = posts.take(pc.sort_indices(posts["line"]))
    rejects.sort(key=lambda r: r.line)
    return _Checked(count + len(block.others), posts, rejects,
                    {raw.line: raw for _, raw in slow}, block)


class _FileIds:
    """The ids of one file's rows taken so far, each with the line that gave it first."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.blocks: list[pa.Table] = []  # (id, line) of the rows taken, block by block

    def first_lines(self, ids: pa.Array) -> pa.Array:
        """For each id, the line of the file's row that gave it first (null: none yet)."""
        if not self.blocks:
            return pa.nulls(len(ids), pa.int64())
        taken = pa.concat_tables(self.blocks).combine_chunks()
        return taken["line"].take(pc.index_in(ids, value_set=taken["id"]))


def _first_ids(seen: _FileIds, checked: _Checked) -> CheckedBlock:
    """Drop rows whose id an earlier row of the file already gave (the first one is kept,
    as ``FirstIdWins``)."""
    posts, rejects = checked.posts, checked.rejects
    ids = posts["id"].to_pylist()
    before = len(seen.ids)
    seen.ids.update(ids)
    if len(seen.ids) - before < len(ids):  # some id again: find the rows, keep the first
        first = seen.first_lines(posts["id"].combine_chunks()).to_pylist()
        lines = posts["line"].to_pylist()
        keep = np.ones(len(ids), dtype=bool)
        in_block: dict[str, int] = {}
        duplicates = []
        for i, (post_id, line) in enumerate(zip(ids, lines, strict=True)):
            earlier = first[i] if first[i] is not None else in_block.setdefault(post_id, line)
            if earlier != line:
                keep[i] = False
                duplicates.append(FirstIdWins.duplicate(_raw_at(checked, line), post_id,
                                                        earlier))
        posts = posts.filter(pa.array(keep))
        rejects = sorted(rejects + duplicates, key=lambda r: r.line)
    seen.blocks.append(posts.select(["id", "line"]))
    return CheckedBlock(checked.rows, posts, rejects)


def _raw_at(checked: _Checked, line: int) -> RawRow:
    if line in checked.raws:
        return checked.raws[line]
    index = int(np.searchsorted(checked.block.lines, line))
    return checked.block.raw([index])[0]


def _vector_check(columns: dict[str, pa.Array], count: int,
                  max_text: int) -> tuple[np.ndarray, pa.Table | None]:
    """Which rows are ordinary good posts, and those rows as posts (POSTS_SCHEMA but line)."""
    known = {name: _as_text(columns.get(name), count) for name in KNOWN_COLUMNS
             if name != "created_at"}
    created, created_ok = _created_at(columns.get("created_at"), count)
    text = _strings(columns.get("text"))  # text must be a string (a number is no text)
    if any(v is None for v in known.values()) or created is None or text is None:
        return np.zeros(count, dtype=bool), None  # unusual types: row by row
    post_id = _strip(known["id"])
    id_length = pc.utf8_length(post_id)
    family = _strip(known["family"])
    checks = [
        pc.greater(id_length, 0), pc.less_equal(id_length, MAX_ID_LENGTH),
        _at_most(text, max_text),
        pc.invert(_blank(text)),
        pc.is_in(family, value_set=pa.array(["", *FAMILY_NAMES])),
        created_ok,
    ]
    good = np.ones(count, dtype=bool)
    for check in checks:
        good &= check.fill_null(False).to_numpy(zero_copy_only=False)
    good &= ~_rows_with_bytes(text, lambda b: b == 0)  # NUL
    extras, escapes = _extra_fragments(columns, count)
    good &= ~escapes
    if not good.any():
        return good, None
    mask = pa.array(good)
    image_key = _strip(known["image_key"].filter(mask))
    image_url = _strip(known["image_url"].filter(mask))
    text = text.filter(mask)
    posts = pa.table({
        "id": post_id.filter(mask),
        "text": text,
        "image_key": _empty_as_null(pc.if_else(pc.greater(pc.utf8_length(image_key), 0),
                                               image_key, image_url)),
        "keyword": _empty_as_null(_strip(known["keyword"].filter(mask))),
        "family": _empty_as_null(family.filter(mask)),
        "author": _empty_as_null(_strip(known["author"].filter(mask))),
        "created_at": created.filter(mask),
        "text_hash": _text_hashes(text),
        "extra": _extra_json([f.filter(mask) for f in extras], int(good.sum())),
    })
    return good, posts


def _as_text(values: pa.Array | None, count: int) -> pa.Array | None:
    """A column as the text ``_text`` makes of it (nulls stay null): strings, or integers
    written out; None when that needs Python (floats, dates, ...)."""
    if values is None:
        return pa.nulls(count, pa.string())
    strings = _strings(values)
    if strings is None and pa.types.is_integer(values.type):
        return values.cast(pa.string())
    return strings


def _strings(values: pa.Array | None) -> pa.Array | None:
    """A column of strings (or of nulls) as a string array; None for any other column."""
    if values is None:
        return None
    if pa.types.is_dictionary(values.type):  # pandas' categories
        values = values.dictionary_decode()
    if pa.types.is_null(values.type) or pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    return values if pa.types.is_string(values.type) else None


def _strip(values: pa.Array) -> pa.Array:
    """str.strip() of each value; null as ''. Only values that start or end with a space, a
    control character or a non-ASCII character (some are white space) are trimmed."""
    values = values.fill_null("") if values.null_count else values
    edges = _edge_bytes(values)
    if edges is None:
        return values
    ragged = np.flatnonzero(((edges <= 0x20) | (edges >= 0x7f)).any(axis=1))
    if not len(ragged):
        return values
    if len(ragged) > len(values) // 4:
        return pc.utf8_trim(values, characters=WHITESPACE)
    mask = np.zeros(len(values), dtype=bool)
    mask[ragged] = True
    trimmed = pc.utf8_trim(values.take(pa.array(ragged)), characters=WHITESPACE)
    return pc.replace_with_mask(values, pa.array(mask), trimmed)


def _edge_bytes(values: pa.Array) -> np.ndarray | None:
    """Each value's first and last byte (rows x 2; an empty value: 'A'); None when every
    value is empty."""
    offsets, data = _bytes(values)
    if data is None:
        return None
    nonempty = offsets[1:] > offsets[:-1]
    edges = np.full((len(values), 2), ord("A"), dtype=np.uint8)
    edges[nonempty, 0] = data[offsets[:-1][nonempty]]
    edges[nonempty, 1] = data[offsets[1:][nonempty] - 1]
    return edges


def _at_most(text: pa.Array, characters: int) -> pa.Array:
    """Whether each text has at most ``characters`` characters (counted only for those with
    more bytes)."""
    within = pc.less_equal(pc.binary_length(text), characters).fill_null(True).to_numpy(
        zero_copy_only=False)
    longer = np.flatnonzero(~within)
    if len(longer):
        within[longer] = pc.less_equal(pc.utf8_length(text.take(pa.array(longer))),
                                       characters).to_numpy(zero_copy_only=False)
    return pa.array(within)


def _blank(values: pa.Array) -> pa.Array:
    """Whether each value is empty or white space only (null: blank)."""
    return pc.equal(pc.binary_length(_strip(values)), 0)


def _empty_as_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.greater(pc.utf8_length(values), 0), values, None)


def _created_at(values: pa.Array | None, count: int) -> tuple[pa.Array | None, pa.Array]:
    """(the times, which rows have a time taken here or none at all); (None, _) when the
    column's type needs Python."""
    kind = pa.timestamp("us", "UTC")
    every = pa.array(np.ones(count, dtype=bool))
    if values is None:
        return pa.nulls(count, kind), every
    if pa.types.is_timestamp(values.type) and values.type.unit in ("s", "ms", "us"):
        # Naive times are UTC, as in parse_created_at; pyarrow stores them that way.
        return values.cast(pa.timestamp(values.type.unit, "UTC")).cast(kind), every
    strings = _strings(values)
    if strings is None:
        return None, every
    text = _strip(strings)
    empty = pc.equal(pc.binary_length(text), 0)
    taken = pc.match_substring_regex(text, _ISO)
    rest = pc.invert(pc.or_(empty, taken))
    if pc.any(rest).as_py():  # other forms: X's is taken here too
        x_date = pc.and_(rest, pc.match_substring_regex(text, _X_DATE))
        if pc.any(x_date).as_py():
            text = pc.if_else(x_date, _x_as_iso(text), text)
            taken = pc.or_(taken, x_date)
    times = pc.if_else(taken, text, None)
    try:
        parsed = times.cast(kind)  # every time with its zone, as usual
    except pa.ArrowInvalid:
        zoned = pc.match_substring_regex(times, _ZONE)
        try:
            parsed = pc.if_else(zoned, times, pc.binary_join_element_wise(times, "Z", "")
                                ).cast(kind)  # no zone: UTC
        except pa.ArrowInvalid:  # a day that does not exist (2022-02-30): row by row
            return pa.nulls(count, kind), empty
    return parsed, pc.or_(empty, taken)


def _x_as_iso(text: pa.Array) -> pa.Array:
    """'Wed Oct 10 20:19:24 +0000 2018' as '2018-10-10T20:19:24+00:00' (other rows: junk)."""
    parts = pc.extract_regex(text, _X_DATE)
    month = pc.add(pc.index_in(parts.field("month"), value_set=pa.array(_MONTHS)), 1)
    month = pc.utf8_lpad(month.cast(pa.string()), 2, "0")
    return pc.binary_join_element_wise(
        parts.field("year"), "-", month, "-", parts.field("day"), "T", parts.field("time"),
        parts.field("zh"), ":", parts.field("zm"), "")


def _extra_fragments(columns: dict[str, pa.Array],
                     count: int) -> tuple[list[pa.Array], np.ndarray]:
    """Per extra column, each row's ', "name": value' for the extra JSON (null when the row
    leaves it out: null or ''); and which rows have a value that needs escaping beyond
    quotes and backslashes (check_row writes those)."""
    fragments, escapes = [], np.zeros(count, dtype=bool)
    for name, column in columns.items():
        if name in KNOWN_COLUMNS or pa.types.is_null(column.type):
            continue
        key = ", " + json.dumps(name) + ": "
        values = _strings(column)
        if values is not None:
            escapes |= _rows_with_bytes(values, lambda b: b < 0x20)
            escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"),
                                           '"', '\\"')
            fragment = pc.binary_join_element_wise(key + '"', escaped, '"', "")
            fragments.append(pc.if_else(pc.equal(values, ""), None, fragment))
        else:  # numbers, lists, ...: as the row checker writes them
            fragments.append(pa.array(
                [None if v is None else key + json.dumps(_jsonable(v))
                 for v in column.to_pylist()], pa.string()))
    return fragments, escapes


def _extra_json(fragments: list[pa.Array], count: int) -> pa.Array:
    if not fragments:
        return pa.array(np.full(count, "{}", dtype=object), pa.string())
    joined = pc.binary_join_element_wise("{", *fragments, "}", "", null_handling="replace",
                                         null_replacement="")
    return pc.replace_substring(joined, "{, ", "{", max_replacements=1)


def _text_hashes(text: pa.Array) -> pa.Array:
    """``trainset.text.text_hash`` of each text. Plain ASCII text with single spaces inside
    is its own normal form but for case: hashed here; other text by text_hash itself."""
    lowered = pc.ascii_lower(text)
    plain = pc.string_is_ascii(text).to_numpy(zero_copy_only=False)
    plain &= ~_rows_with_bytes(lowered, lambda b: b < 0x20, around_spaces=True)
    out = np.empty(len(text), dtype=object)
    out[plain] = list(map(_hexdigest, map(hashlib.sha256, lowered.filter(
        pa.array(plain)).cast(pa.binary()).to_pylist())))
    others = ~plain
    if others.any():
        out[others] = [text_hash(t) for t in text.filter(pa.array(others)).to_pylist()]
    return pa.array(out, pa.string())


_hexdigest = operator.methodcaller("hexdigest")


def _bytes(values: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """A string or binary array's offsets and its bytes (None when all are empty), as numpy
    views: value i is data[offsets[i]:offsets[i + 1]]."""
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=len(values) + 1,
                            offset=values.offset * 4)
    if values.buffers()[2] is None or offsets[-1] == offsets[0]:
        return offsets, None
    return offsets, np.frombuffer(values.buffers()[2], dtype=np.uint8, count=int(offsets[-1]))


def _rows_with_bytes(values: pa.Array, test: Callable[[np.ndarray], np.ndarray],
                     around_spaces: bool = False) -> np.ndarray:
    """Which rows of a string/binary array hold a byte passing ``test``; with
    ``around_spaces``, also those with two spaces in a row or one at either end."""
    count = len(values)
    found = np.zeros(count, dtype=bool)
    offsets, data = _bytes(values)
    if data is None:
        return found
    hits = [np.flatnonzero(test(data))]
    if around_spaces:
        space = data == 0x20
        hits.append(np.flatnonzero(space[:-1] & space[1:]))
        nonempty = offsets[1:] > offsets[:-1]
        found |= nonempty & (space[offsets[:-1].clip(max=len(data) - 1)]
                             | space[(offsets[1:] - 1).clip(min=0)])
    for positions in hits:
        if len(positions):
            rows = np.searchsorted(offsets, positions, side="right") - 1
            found[rows[(rows >= 0) & (rows < count)]] = True
    return found


def _posts_table(posts: list[PostRow], lines: list[int]) -> pa.Table:
    return pa.table({
        "id": [p.id for p in posts],
        "text": [p.text for p in posts],
        "image_key": [p.image_key for p in posts],
        "keyword": [p.keyword for p in posts],
        "family": [p.family for p in posts],
        "author": [p.author for p in posts],
        "created_at": pa.array([p.created_at for p in posts], pa.timestamp("us", "UTC")),
        "text_hash": [p.text_hash for p in posts],
        "extra": [json.dumps(p.extra) if p.extra else "{}" for p in posts],
        "line": pa.array(lines, pa.int64()),
    }, schema=POSTS_SCHEMA)


def _row_blocks(rows: Iterator[RawRow], size: int = 20_000) -> Iterator[_Block]:
    """Rows read the row way, in blocks."""
    batch: list[RawRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield _Block({}, np.empty(0, dtype=np.int64), _no_rows, batch)
            batch = []
    if batch:
        yield _Block({}, np.empty(0, dtype=np.int64), _no_rows, batch)


def _no_rows(indices: Sequence[int]) -> list[RawRow]:
    return []


# ---- CSV -------------------------------------------------------------------------------------


def _csv_blocks(path: Path) -> Iterator[_Block]:
    """CSV blocks parsed by pyarrow. Its parser numbers records (the header is record 1) and
    reports those with the wrong number of fields; a record's lines are one plus the line
    breaks inside its values, which gives each record's first line. Whatever pyarrow cannot
    read (a record longer than a block, say) is read by Python's csv from that record on."""
    import pyarrow.csv as pa_csv

    header = _csv_header(path)
    if header is None:
        return
    _require_columns(path, header)
    width = len(header)
    names = [f"c{i}" for i in range(width)]
    position = {name: i for i, name in enumerate(header)}  # a name twice: the last column
    invalid: list[int] = []  # the numbers of records without the header's width

    def on_invalid(row: Any) -> str:
        if row.number is None or (len(invalid) > 1000 and len(invalid) * 2 > row.number):
            raise _Unaligned  # so many short or long rows: the row way is faster
        invalid.append(row.number)
        return "skip"

    state = _CsvState(_Records(path))
    try:
        with _quiet_undecodable(on_invalid):
            reader = pa_csv.open_csv(
                path,
                read_options=pa_csv.ReadOptions(column_names=names, use_threads=False,
                                                block_size=BLOCK_BYTES),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True,
                                                  ignore_empty_lines=False,
                                                  invalid_row_handler=on_invalid),
                convert_options=pa_csv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.binary()), strings_can_be_null=False),
            )
            for batch in reader:
                block = _csv_block(str(path), header, position, batch, invalid, state)
                if block is None:
                    raise _Unaligned
                yield block
            if invalid:  # records after the last good one
                block = _csv_block(str(path), header, position, None, invalid, state)
                if block is None:
                    raise _Unaligned
                yield block
            return
    except (pa.ArrowException, _Unaligned):
        pass  # the rest the row way
    finally:
        state.records.close()
    yield from _row_blocks(_read_csv(path, first_record=state.next_record))


@contextlib.contextmanager
def _quiet_undecodable(handler: Callable[..., str]) -> Iterator[None]:
    """pyarrow decodes a bad record's text before calling ``handler``; when the record is not
    UTF-8 that fails, and pyarrow stops with a parse error (then the rest is read the row
    way), as when ``handler`` raises _Unaligned, but Python prints the error as unraisable.
    Keep those prints off the user's terminal."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if unraisable.object is not handler or not issubclass(
                unraisable.exc_type, UnicodeDecodeError | _Unaligned):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


class _Unaligned(Exception):
    """pyarrow's records do not line up with Python's: read the rest the row way."""


@dataclass
class _CsvState:
    records: _Records
    next_record: int = 1  # the first record not yet given
    next_line: int = 1  # where it starts
    good_rows: int = 0  # records pyarrow gave so far (the header included)


class _Records:
    """Python's csv reading of the records at given lines, moving forward through the file:
    for records pyarrow does not give as rows (its text of them can differ from the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: io.TextIOWrapper | None = None
        self.line = 1  # the line the handle reads next

    def at(self, line: int) -> tuple[list[str], int]:
        """The record starting at ``line``, and how many lines it takes."""
        if self.handle is None:
            self.handle = open_csv_text(self.path)
            self.reader = csv.reader(self._lines(self.handle))
        while self.line < line:
            self.handle.readline()
            self.line += 1
        start = self.line
        record = next(self.reader, [])
        return record, max(self.line - start, 1)

    def _lines(self, handle: io.TextIOWrapper) -> Iterator[str]:
        for text in handle:
            self.line += 1
            yield text

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _csv_header(path: Path) -> list[str] | None:
    with open_csv_text(path) as text:
        try:
            return [h.strip() for h in next(csv.reader(text))]
        except StopIteration:
            return None


def _csv_block(file: str, header: list[str], position: dict[str, int],
               batch: pa.RecordBatch | None, invalid: list[int], state: _CsvState) -> _Block | None:
    """One parsed block as rows with their lines; None if the records do not line up."""
    good = batch.num_rows if batch is not None else 0
    numbers = np.array(invalid, dtype=np.int64)
    # A good record's number: one more than the records before it, good or not.
    seen = np.arange(state.good_rows, state.good_rows + good)
    good_before = numbers - 1 - np.arange(len(numbers))
    good_numbers = seen + 1 + np.searchsorted(good_before, seen, side="right")
    if good:
        last = good_numbers[-1]
    elif batch is None:  # the end: every record left
        last = numbers.max() if len(numbers) else 0
    else:
        return _Block({}, np.empty(0, dtype=np.int64), _no_rows, [])
    bad = numbers[numbers <= last]
    record_numbers = np.concatenate([good_numbers, bad])
    order = np.argsort(record_numbers, kind="stable")
    if not np.array_equal(record_numbers[order],
                          np.arange(state.next_record, state.next_record + len(order))):
        return None
    columns = [batch.column(i) for i in range(batch.num_columns)] if good else []
    # pyarrow can drop the \n of a \r\n inside the quoted value of a record that starts in
    # one block and ends in the next (the first it gives of a block): Python reads that one.
    reread = np.zeros(len(order), dtype=bool)
    reread[:good] = state.good_rows > 0 and any(b"\r" in c[0].as_py() for c in columns)
    reread[:good] &= np.arange(good) == 0
    spans = np.ones(len(order), dtype=np.int64)  # lines per record, in file order
    in_order = np.argsort(order)[:good]  # where each good record is in file order
    for values in columns:
        if _rows_with_bytes(values, _line_break).any():
            spans[in_order] += _line_breaks(values)
    # Records pyarrow did not give (right) are read by Python's csv, which also tells how many
    # lines each takes: every later record starts that much further on.
    unread = np.flatnonzero((order >= good) | reread[order])
    spans[unread] = 1
    starts = state.next_line + np.concatenate([[0], np.cumsum(spans)[:-1]])
    records, further = [], 0
    for at, start in zip(unread.tolist(), starts[unread].tolist(), strict=True):
        record, span = state.records.at(start + further)
        records.append((start + further, record))
        further += span - 1
        spans[at] = span
    if further:
        starts = state.next_line + np.concatenate([[0], np.cumsum(spans)[:-1]])
    lines = np.empty(len(order), dtype=np.int64)
    lines[order] = starts
    invalid[:] = [n for n in invalid if n > last]
    state.next_record += len(order)
    state.next_line += int(spans.sum())
    state.good_rows += good
    good_lines = lines[:good]
    others = []
    for number, (line, record) in zip(record_numbers[order[unread]].tolist(), records,
                                      strict=True):
        row = csv_row(file, line, header, record) if number > 1 else None
        if row is not None:
            others.append(row)
    if not good:
        return _Block({}, np.empty(0, dtype=np.int64), _no_rows, others)
    texts, bad_encoding = _as_utf8(columns)
    keep = (good_numbers > 1) & ~bad_encoding & ~reread[:good]  # record 1 is the header
    keep &= ~_blank_rows(texts, keep)
    for i in np.flatnonzero(bad_encoding & (good_numbers > 1) & ~reread[:good]):
        record = [c[i].as_py().decode("utf-8", errors="surrogateescape") for c in columns]
        others.append(csv_row(file, int(good_lines[i]), header, record))
    if not keep.all():
        mask = pa.array(keep)
        texts = [t.filter(mask) for t in texts]
    lines = good_lines[keep]

    def raw(indices: Sequence[int]) -> list[RawRow]:
        index = pa.array(np.asarray(indices, dtype=np.int64))
        cells = [c.take(index).to_pylist() for c in texts]
        return [RawRow(file, int(lines[i]), dict(zip(header, record, strict=True)),
                       list(record))
                for i, record in zip(indices, zip(*cells, strict=True), strict=True)]

    others.sort(key=lambda r: r.line)
    return _Block({name: texts[i] for name, i in position.items()}, lines, raw, others)


def _line_break(data: np.ndarray) -> np.ndarray:
    low = data < 14  # rare in text: look closer only then
    return low if not low.any() else (data == 10) | (data == 13)


def _line_breaks(values: pa.Array) -> np.ndarray:
    """Line breaks (\\n, \\r, \\r\\n) inside each value, as Python's readers count lines."""
    counts = [pc.count_substring(values, pattern).to_numpy(zero_copy_only=False)
              for pattern in (b"\n", b"\r", b"\r\n")]
    return counts[0] + counts[1] - counts[2]


def _blank_rows(columns: list[pa.Array], rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` have every value empty or white space (skipped, as blank lines)."""
    blank = rows & _blank(columns[0]).to_numpy(zero_copy_only=False)
    for values in columns[1:]:
        candidates = np.flatnonzero(blank)
        if not len(candidates):
            break
        blank[candidates] = _blank(values.take(pa.array(candidates))).to_numpy(
            zero_copy_only=False)
    return blank


def _as_utf8(columns: list[pa.Array]) -> tuple[list[pa.Array], np.ndarray]:
    """The columns as strings, and which rows hold bytes that are not UTF-8 (empty there)."""
    texts, bad = [], np.zeros(len(columns[0]) if columns else 0, dtype=bool)
    for values in columns:
        try:
            texts.append(values.cast(pa.string()))
        except pa.ArrowInvalid:
            for i, value in enumerate(values.to_pylist()):
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    bad[i] = True
            texts.append(None)
    if bad.any():
        mask = pa.array(~bad)
        clean = [v.filter(mask).cast(pa.string()) for v in columns]
        texts = [_expand(v, ~bad) for v in clean]
    return texts, bad


def _expand(values: pa.Array, where: np.ndarray) -> pa.Array:
    """``values`` placed at the true rows of ``where``, '' elsewhere."""
    out = np.full(len(where), "", dtype=object)
    out[where] = values.to_pylist()
    return pa.array(out, pa.string())


# ---- JSONL -----------------------------------------------------------------------------------


def _jsonl_blocks(path: Path) -> Iterator[_Block]:
    """JSONL blocks: lines that are one JSON object each are parsed by pyarrow; a block it
    cannot give exactly as json.loads would (mixed or nested types, floats) and any line
    that does not start with '{' and end with '}' are read the row way."""
    number = 0
    with path.open("rb") as handle:
        while lines := handle.readlines(BLOCK_BYTES):
            yield _jsonl_block(str(path), lines, number + 1)
            number += len(lines)


def _jsonl_block(file: str, lines: list[bytes], first: int) -> _Block:
    import pyarrow.json as pa_json

    objects, others = [], []
    for i, data in enumerate(lines):
        body = data.rstrip(b"\r\n")
        if body[:1] == b"{" and body[-1:] == b"}":
            objects.append(i)
        elif (row := jsonl_row(file, first + i, data)) is not None:
            others.append(row)
    table = None
    if objects:
        schema = pa.schema([(name, pa.string()) for name in _JSON_TEXT_COLUMNS])
        data = b"".join(lines[i] if lines[i].endswith(b"\n") else lines[i] + b"\n"
                        for i in objects)
        try:
            table = pa_json.read_json(
                io.BytesIO(data),
                read_options=pa_json.ReadOptions(use_threads=False, block_size=len(data) + 1),
                parse_options=pa_json.ParseOptions(explicit_schema=schema,
                                                   unexpected_field_behavior="infer"))
        except pa.ArrowException:
            table = None
        if table is not None and (table.num_rows != len(objects) or not all(
                _json_type_ok(f.type) for f in table.schema)):
            table = None
    if table is None:  # the row way
        rows = [jsonl_row(file, first + i, lines[i]) for i in objects]
        others = sorted(others + [r for r in rows if r is not None], key=lambda r: r.line)
        return _Block({}, np.empty(0, dtype=np.int64), _no_rows, others)
    numbers = np.asarray(objects, dtype=np.int64) + first
    columns = {name: table.column(name).combine_chunks() for name in table.column_names}

    def raw(indices: Sequence[int]) -> list[RawRow]:
        return [jsonl_row(file, int(numbers[i]), lines[objects[i]]) for i in indices]

    return _Block(columns, numbers, raw, others)


def _json_type_ok(kind: pa.DataType) -> bool:
    """Types whose values are what json.loads gives: strings, ints (a float column may hold
    ints json.loads keeps as ints), booleans, nulls."""
    return (pa.types.is_string(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
            or pa.types.is_null(kind))


# ---- Parquet ---------------------------------------------------------------------------------


def _parquet_blocks(path: Path) -> Iterator[_Block]:
    parquet = open_parquet(path)
    number = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_ROWS):
        columns = {name: batch.column(i) for i, name in enumerate(batch.schema.names)}
        numbers = np.arange(number + 1, number + 1 + batch.num_rows, dtype=np.int64)
        number += batch.num_rows

        def raw(indices: Sequence[int], batch: pa.RecordBatch = batch,
                numbers: np.ndarray = numbers) -> list[RawRow]:
            rows = batch.take(pa.array(np.asarray(indices, dtype=np.int64))).to_pylist()
            return [RawRow(str(path), int(numbers[i]), values, values)
                    for i, values in zip(indices, rows, strict=True)]

        yield _Block(columns, numbers, raw, [])

