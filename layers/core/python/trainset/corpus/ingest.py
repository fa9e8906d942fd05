"""Reading corpus files (CSV, JSONL, Parquet) into checked post rows, and rows we must reject.

Pure: no database. Each input row becomes either a ``PostRow`` ready to store or a ``Reject``
that names the file, the line (or Parquet row) and the reason, so a bad row never stops the
good ones and never goes silently missing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, NamedTuple

from trainset.codebook import FAMILY_NAMES
from trainset.text import text_hash

MAX_ID_LENGTH = 64
DEFAULT_MAX_TEXT = 20_000
KNOWN_COLUMNS = ("id", "text", "keyword", "family", "image_key", "image_url", "author",
                 "created_at")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # how undecodable bytes show up (surrogateescape)


class FileProblem(Exception):
    """A whole file cannot be read (unknown format, missing columns); other files go on."""


class PostRow(NamedTuple):
    """A checked post (a NamedTuple: a million of them are made per import)."""

    id: str
    text: str
    keyword: str | None
    family: str | None
    image_key: str | None
    author: str | None
    created_at: datetime | None
    text_hash: str
    extra: dict[str, Any]


@dataclass(frozen=True)
class Reject:
    file: str
    line: int
    reason: str
    id: str | None
    raw: str


class RawRow(NamedTuple):
    file: str
    line: int
    values: dict[str, Any]
    source: Any  # the row as read (cells, bytes or values); shown only when it is rejected
    problem: str | None = None  # set when the row could not even be parsed

    @property
    def raw(self) -> str:
        """The start of the row as it was in the file, for the rejects file."""
        if isinstance(self.source, bytes):
            return self.source[:200].decode("utf-8", errors="replace").rstrip()
        if isinstance(self.source, list):
            return ",".join(self.source)[:200]
        return json.dumps(self.source, default=str)[:200]


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FileProblem(
            f"{path}: unknown file type {path.suffix or '(none)'}; use .csv, .jsonl or .parquet"
        )
    return fmt


def read_rows(path: Path) -> Iterator[RawRow]:
    """Raw rows of one file, in order, with their line (or row) numbers."""
    fmt = detect_format(path)
    if fmt == "csv":
        yield from _read_csv(path)
    elif fmt == "jsonl":
        yield from _read_jsonl(path)
    else:
        yield from _read_parquet(path)


def _read_csv(path: Path, first_record: int = 2) -> Iterator[RawRow]:
    """CSV rows from record ``first_record`` on (the header is record 1; a record is a line, or
    several when a quoted value holds line breaks)."""
    with open_csv_text(path) as text:
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            return
        header = [h.strip() for h in header]
        _require_columns(path, header)
        start = reader.line_num + 1
        name = str(path)
        for number, record in enumerate(reader, 2):
            line, start = start, reader.line_num + 1
            if number >= first_record and (row := csv_row(name, line, header, record)):
                yield row


def open_csv_text(path: Path) -> io.TextIOWrapper:
    """A CSV file as its rows are read: UTF-8 without a byte-order mark, bytes that are not
    UTF-8 kept (surrogate escapes), line ends as they are."""
    binary = path.open("rb")
    if binary.read(3) != codecs.BOM_UTF8:
        binary.seek(0)
    return io.TextIOWrapper(binary, encoding="utf-8", errors="surrogateescape", newline="")


def csv_row(file: str, line: int, header: list[str], record: list[str]) -> RawRow | None:
    """One CSV record as a raw row; None for a blank one."""
    if not any(cell.strip() for cell in record):
        return None
    if len(record) != len(header):
        problem = f"wrong number of fields ({len(record)}; the header has {len(header)})"
        return RawRow(file, line, {}, record, problem)
    values = dict(zip(header, record, strict=True))
    if _BAD_BYTES.search("\x1f".join(record)):
        return RawRow(file, line, values, record, "bad encoding: not valid UTF-8")
    return RawRow(file, line, values, record)


def _read_jsonl(path: Path) -> Iterator[RawRow]:
    with path.open("rb") as handle:
        for number, data in enumerate(handle, 1):
            row = jsonl_row(str(path), number, data)
            if row is not None:
                yield row


def jsonl_row(file: str, number: int, data: bytes) -> RawRow | None:
    """One JSONL line as a raw row; None for a blank one."""
    if not data.strip():
        return None
    try:
        value = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        return RawRow(file, number, {}, data, "bad encoding: not valid UTF-8")
    except json.JSONDecodeError as exc:
        return RawRow(file, number, {}, data, f"bad JSON: {exc.msg}")
    if not isinstance(value, dict):
        return RawRow(file, number, {}, data, "not a JSON object")
    return RawRow(file, number, value, data)


def open_parquet(path: Path) -> Any:
    """The file as a ``pyarrow.parquet.ParquetFile`` with the columns an import needs, or a
    ``FileProblem`` saying what is wrong with it."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise FileProblem(f"{path}: not a readable Parquet file ({exc})") from None
    _require_columns(path, parquet.schema_arrow.names)
    return parquet


def _read_parquet(path: Path) -> Iterator[RawRow]:
    parquet = open_parquet(path)
    number = 0
    for batch in parquet.iter_batches(batch_size=50_000):
        for values in batch.to_pylist():
            number += 1
            yield RawRow(str(path), number, values, values)


def _require_columns(path: Path, columns: list[str]) -> None:
    missing = [c for c in ("id", "text") if c not in columns]
    if missing:
        raise FileProblem(
            f"{path}: no {' or '.join(repr(m) for m in missing)} column "
            f"(found: {', '.join(columns) or 'nothing'})"
        )


def check_row(row: RawRow, max_text: int = DEFAULT_MAX_TEXT) -> PostRow | Reject:
    """The row as a post, or the first reason it cannot be one."""
    values = row.values

    def reject(reason: str) -> Reject:
        raw_id = values.get("id")
        return Reject(row.file, row.line, reason, None if raw_id is None else str(raw_id)[:64],
                      row.raw)

    if row.problem:
        return reject(row.problem)
    post_id = cell_text(values.get("id"))
    if not post_id:
        return reject("missing id")
    if len(post_id) > MAX_ID_LENGTH:
        return reject(f"id longer than {MAX_ID_LENGTH} characters")
    text = values.get("text")
    if not isinstance(text, str) or not text.strip():
        return reject("missing text")
    if len(text) > max_text:
        return reject(f"text longer than {max_text} characters ({len(text)})")
    if "\x00" in text:
        return reject("text contains a NUL character")
    family = cell_text(values.get("family"))
    if family and family not in FAMILY_NAMES:
        return reject(f"unknown family {family!r} (expected {', '.join(FAMILY_NAMES)})")
    created_raw = values.get("created_at")
    created = parse_created_at(created_raw)
    if created is None and cell_text(created_raw):
        return reject(f"bad created_at {str(created_raw)[:40]!r} (expected ISO 8601, e.g. "
                      "2022-03-01T12:00:00Z, or X's 'Wed Oct 10 20:19:24 +0000 2018')")
    extra = {k: v if isinstance(v, str) else _jsonable(v) for k, v in values.items()
             if v is not None and v != "" and k not in KNOWN_COLUMNS}
    return PostRow(
        id=post_id,
        text=text,
        keyword=cell_text(values.get("keyword")) or None,
        family=family or None,
        image_key=cell_text(values.get("image_key")) or cell_text(values.get("image_url")) or None,
        author=cell_text(values.get("author")) or None,
        created_at=created,
        text_hash=text_hash(text),
        extra=extra,
    )


class FirstIdWins:
    """Ids already seen in one file, with their line. A file that gives an id twice is
    ambiguous (which text is the post?), so the first row is kept and every later one is
    rejected naming the first one's line; the rejects file then shows both lines."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def check(self, post: PostRow, row: RawRow) -> Reject | None:
        first = self.lines.setdefault(post.id, row.line)
        if first == row.line:
            return None
        return self.duplicate(row, post.id, first)

    @staticmethod
    def duplicate(row: RawRow, post_id: str, first: int) -> Reject:
        where = "row" if row.file.endswith(".parquet") else "line"
        return Reject(row.file, row.line,
                      f"duplicate id (also at {where} {first} of this file, which is kept)",
                      post_id, row.raw)


def parse_created_at(value: Any) -> datetime | None:
    """ISO 8601 (naive times are UTC), X's classic format, or epoch seconds; else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = cell_text(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y")
        except ValueError:
            try:
                parsed = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cell_text(value: Any) -> str:
    """A cell as the importer reads it: stripped text; a whole float (Parquet, JSON) as its
    integer; nothing as ""."""
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
