"""Splitting one corpus file into batches of rows that import independently, in parallel.

Pure: no database, no storage. The import job (``trainset.services.imports``) plans a file once
(``plan_file``) and hands each batch (a ``Chunk``) to a task of its own, which turns its bytes
into a small file of the same format (``csv_chunk``, ``jsonl_chunk``, ``parquet_chunk``) and
imports that with the corpus import the command line uses. So a batch is read, checked and
stored by exactly the CLI's code, and the rejects it reports are mapped back to the lines of
the uploaded file (``Chunk.line_map``).

- **CSV** batches are byte ranges that start and end on record boundaries, found by the same
  ``csv`` reader over lines split the way ``open(newline="")`` splits them (``\\n``, ``\\r\\n``
  or a lone ``\\r``), so a quoted field with line breaks never straddles two batches and line
  numbers count as the CLI counts them. Each batch is imported with the file's header in front.
- **JSONL** batches are byte ranges of whole lines.
- **Parquet** batches are runs of row groups (a row group is never split).

**Ids given twice.** The CLI keeps the first row of an id repeated within one file and rejects
each later one, naming the first one's line. Across batches no task sees the others' rows, so the
plan finds repeated ids (a 64-bit hash per row, then the candidate rows read again and checked
by the CLI's own ``check_row``: a row that would be rejected anyway does not claim its id) and
gives each batch the lines it must reject as duplicates (``FilePlan.duplicates``); the batch
blanks them out before importing (blank lines are skipped, so line numbers stay right).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset.corpus.ingest import (
    DEFAULT_MAX_TEXT,
    FileProblem,
    Reject,
    cell_text,
    check_row,
    detect_format,
    read_rows,
)

BATCH_ROWS = 100_000
_BAD_BYTES = re.compile("[\udc80-\udcff]")  # undecodable bytes, as ingest reads them
_LINE_PARTS = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


@dataclass(frozen=True)
class Chunk:
    """One batch of a file: bytes ``[start, end)`` (CSV, JSONL) or row groups ``[start, end)``
    (Parquet); ``first_line`` is the file's line (Parquet: row) number where it begins."""

    batch: int
    start: int
    end: int
    first_line: int
    rows: int

    def as_dict(self) -> dict[str, int]:
        return {"batch": self.batch, "start": self.start, "end": self.end,
                "first_line": self.first_line, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        return cls(int(data["batch"]), int(data["start"]), int(data["end"]),
                   int(data["first_line"]), int(data["rows"]))


@dataclass
class FilePlan:
    """How a file is split. ``duplicates``: line of a later copy of an id -> (line of the row
    that is kept, the id). ``whole``: one batch over the whole file (a file the plan cannot
    split, e.g. one without an id column: its import reports why)."""

    format: str
    chunks: list[Chunk]
    rows: int = 0
    header_end: int = 0  # CSV: bytes [0, header_end) hold the header record (and a BOM)
    header_lines: int = 0
    duplicates: dict[int, tuple[int, str]] = field(default_factory=dict)
    whole: bool = False

    def duplicates_in(self, chunk: Chunk) -> dict[int, tuple[int, str]]:
        """The duplicate lines a batch must reject (its lines only)."""
        last = (self.chunks[chunk.batch].first_line if chunk.batch < len(self.chunks)
                else None)
        return {line: first for line, first in self.duplicates.items()
                if line >= chunk.first_line and (last is None or line < last)}


def duplicate_reason(first: int, parquet: bool) -> str:
    """The CLI's words for a later copy of an id (``trainset.corpus.ingest.FirstIdWins``)."""
    where = "row" if parquet else "line"
    return f"duplicate id (also at {where} {first} of this file, which is kept)"


# ---- planning --------------------------------------------------------------------------------


def plan_file(path: Path, batch_rows: int = BATCH_ROWS, *,
              max_text: int = DEFAULT_MAX_TEXT) -> FilePlan:
    """Split ``path`` into batches of about ``batch_rows`` rows and find its repeated ids."""
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    try:
        fmt = detect_format(path)
    except FileProblem:
        return _whole(path, "unknown")
    if fmt == "csv":
        return _plan_csv(path, batch_rows, max_text)
    if fmt == "jsonl":
        return _plan_jsonl(path, batch_rows, max_text)
    return _plan_parquet(path, batch_rows, max_text)


def _whole(path: Path, fmt: str) -> FilePlan:
    size = path.stat().st_size
    return FilePlan(fmt, [Chunk(1, 0, size, 1, 0)], whole=True)


def _universal_lines(handle: Iterable[bytes], position: list[int]) -> Iterator[str]:
    """Lines as ``open(newline="")`` gives them to the csv module, decoded as ingest decodes
    them; ``position[0]`` counts the bytes handed out so far."""
    for raw in handle:
        cr = raw.count(b"\r")
        if cr == 0 or (cr == 1 and raw.endswith(b"\r\n")):
            position[0] += len(raw)
            yield raw.decode("utf-8", "surrogateescape")
            continue
        for part in _LINE_PARTS.findall(raw):
            position[0] += len(part)
            yield part.decode("utf-8", "surrogateescape")


@dataclass
class _Record:
    line: int  # where the record starts
    start: int  # byte offsets in the file
    end: int
    cells: list[str]
    next_line: int  # where the next record starts


def _csv_records(handle: Any, offset: int, first_line: int) -> Iterator[_Record]:
    """Every record from ``offset`` on, with its first line and byte range."""
    position = [offset]
    reader = csv.reader(_universal_lines(handle, position))
    line, start = first_line, offset
    for cells in reader:
        end, following = position[0], first_line + reader.line_num
        yield _Record(line, start, end, cells, following)
        line, start = following, end


def _read_header(handle: Any) -> tuple[list[str], int, int] | None:
    """The header's cells, the bytes it takes (BOM included) and its lines; None if empty."""
    bom = handle.read(3)
    offset = 3 if bom == codecs.BOM_UTF8 else 0
    handle.seek(offset)
    position = [offset]
    reader = csv.reader(_universal_lines(handle, position))
    try:
        header = next(reader)
    except StopIteration:
        return None
    return [h.strip() for h in header], position[0], reader.line_num


class _Batcher:
    """Closes a chunk every ``batch_rows`` rows."""

    def __init__(self, batch_rows: int, start: int, first_line: int) -> None:
        self.batch_rows = batch_rows
        self.chunks: list[Chunk] = []
        self.start, self.first_line, self.rows, self.total = start, first_line, 0, 0

    def row(self) -> None:
        self.rows += 1
        self.total += 1

    def close(self, end: int, next_line: int) -> None:
        self.chunks.append(Chunk(len(self.chunks) + 1, self.start, end, self.first_line,
                                 self.rows))
        self.start, self.first_line, self.rows = end, next_line, 0

    def finish(self, end: int) -> list[Chunk]:
        if self.rows or not self.chunks:
            self.close(end, 0)
        elif self.chunks[-1].end < end:  # trailing blank lines belong to the last batch
            last = self.chunks[-1]
            self.chunks[-1] = Chunk(last.batch, last.start, end, last.first_line, last.rows)
        return self.chunks


class _Ids:
    """A 64-bit hash per keyed row (and its line), to find ids that may repeat."""

    def __init__(self) -> None:
        self.hashes = array("q")
        self.lines = array("q")

    def add(self, key: str, line: int) -> None:
        self.hashes.append(hash(key))
        self.lines.append(line)

    def candidate_lines(self) -> set[int]:
        """Lines of rows whose id hash occurs more than once."""
        if len(self.hashes) < 2:
            return set()
        try:
            import numpy as np
        except ImportError:  # pragma: no cover - numpy is everywhere the job runs
            first: dict[int, int] = {}
            found: set[int] = set()
            for value, line in zip(self.hashes, self.lines, strict=True):
                if value in first:
                    found.update((first[value], line))
                else:
                    first[value] = line
            return found
        values = np.frombuffer(self.hashes, dtype=np.int64)
        order = np.argsort(values, kind="stable")
        ordered = values[order]
        same = ordered[1:] == ordered[:-1]
        if not same.any():
            return set()
        mask = np.zeros(len(values), dtype=bool)
        mask[1:] |= same
        mask[:-1] |= same
        lines = np.frombuffer(self.lines, dtype=np.int64)
        return set(lines[order[mask]].tolist())


def _plan_csv(path: Path, batch_rows: int, max_text: int) -> FilePlan:
    with path.open("rb") as handle:
        found = _read_header(handle)
        if found is None:
            return _whole(path, "csv")
        header, header_end, header_lines = found
        if "id" not in header or "text" not in header:
            return _whole(path, "csv")  # the import reports the missing column
        width, id_at = len(header), header.index("id")
        handle.seek(header_end)
        batcher = _Batcher(batch_rows, header_end, header_lines + 1)
        ids = _Ids()
        end = header_end
        for record in _csv_records(handle, header_end, header_lines + 1):
            end = record.end
            cells = record.cells
            key = cells[id_at].strip() if len(cells) == width else ""
            if key:
                if len(key) <= 64 and not _BAD_BYTES.search(key):
                    ids.add(key, record.line)
            elif not any(c.strip() for c in cells):
                continue  # a blank line: ingest skips it
            batcher.row()
            if batcher.rows >= batch_rows:
                batcher.close(record.end, record.next_line)
        chunks = batcher.finish(end)
    plan = FilePlan("csv", chunks, batcher.total, header_end, header_lines)
    candidates = ids.candidate_lines()
    if candidates:
        plan.duplicates = _resolve(path, plan, candidates, max_text)
    return plan


def _plan_jsonl(path: Path, batch_rows: int, max_text: int) -> FilePlan:
    batcher = _Batcher(batch_rows, 0, 1)
    ids = _Ids()
    offset = line = 0
    with path.open("rb") as handle:
        for raw in handle:
            line += 1
            offset += len(raw)
            if not raw.strip():
                continue
            batcher.row()
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                value = None
            if isinstance(value, dict):
                key = cell_text(value.get("id"))
                if key and len(key) <= 64:
                    ids.add(key, line)
            if batcher.rows >= batch_rows:
                batcher.close(offset, line + 1)
    chunks = batcher.finish(offset)
    plan = FilePlan("jsonl", chunks, batcher.total)
    candidates = ids.candidate_lines()
    if candidates:
        plan.duplicates = _resolve(path, plan, candidates, max_text)
    return plan


def _plan_parquet(path: Path, batch_rows: int, max_text: int) -> FilePlan:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception:  # unreadable: the import says why
        return _whole(path, "parquet")
    if "id" not in parquet.schema_arrow.names or "text" not in parquet.schema_arrow.names:
        return _whole(path, "parquet")
    meta = parquet.metadata
    chunks: list[Chunk] = []
    start, first, rows = 0, 1, 0
    for group in range(meta.num_row_groups):
        rows += meta.row_group(group).num_rows
        if rows >= batch_rows:
            chunks.append(Chunk(len(chunks) + 1, start, group + 1, first, rows))
            start, first, rows = group + 1, first + rows, 0
    if rows or not chunks:
        chunks.append(Chunk(len(chunks) + 1, start, meta.num_row_groups, first, rows))
    plan = FilePlan("parquet", chunks, meta.num_rows)
    candidates = _parquet_candidates(parquet)
    if candidates:
        plan.duplicates = _resolve(path, plan, candidates, max_text)
    return plan


def _parquet_candidates(parquet: Any) -> set[int]:
    """Rows (1-based) whose id occurs more than once, by the id column alone."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = parquet.read(columns=["id"]).column("id")
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string(), safe=False)
    column = pc.utf8_trim_whitespace(column)
    counts = pc.value_counts(column)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    repeated = pc.filter(repeated, pc.and_(pc.is_valid(repeated),
                                           pc.not_equal(repeated, "")))
    if len(repeated) == 0:
        return set()
    rows = pc.indices_nonzero(pc.fill_null(pc.is_in(column, value_set=repeated), False))
    return {i + 1 for i in rows.to_pylist()}


# ---- repeated ids: the candidates, checked as the CLI checks them ---------------------------


def _resolve(path: Path, plan: FilePlan, candidates: set[int],
             max_text: int) -> dict[int, tuple[int, str]]:
    """Of the candidate rows, those that are valid posts, grouped by id: the first one is
    kept, each later one is a duplicate of it."""
    with tempfile.TemporaryDirectory(prefix="trainset-plan-") as folder:
        probe = Path(folder) / f"candidates.{plan.format}"
        lines = _write_candidates(path, plan, candidates, probe)
        valid: list[tuple[int, str]] = []
        for index, raw in enumerate(read_rows(probe)):
            checked = check_row(raw, max_text)
            if not isinstance(checked, Reject):
                valid.append((lines[index], checked.id))
    first: dict[str, int] = {}
    duplicates: dict[int, tuple[int, str]] = {}
    for line, post_id in sorted(valid):
        kept = first.setdefault(post_id, line)
        if kept != line:
            duplicates[line] = (kept, post_id)
    return duplicates


def _write_candidates(path: Path, plan: FilePlan, candidates: set[int], probe: Path) -> list[int]:
    """The candidate rows, in file order, as a file of the same format; their lines."""
    lines: list[int] = []
    if plan.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rows = sorted(candidates)
        pieces, seen = [], 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
            inside = [r - 1 - seen for r in rows if seen < r <= seen + batch.num_rows]
            if inside:
                pieces.append(batch.take(inside))
            seen += batch.num_rows
        pq.write_table(pa.Table.from_batches(pieces), probe)
        return rows
    with path.open("rb") as handle, path.open("rb") as again, probe.open("wb") as out:
        if plan.format == "csv":
            out.write(handle.read(plan.header_end))
            handle.seek(plan.header_end)
            for record in _csv_records(handle, plan.header_end, plan.header_lines + 1):
                if record.line in candidates:
                    again.seek(record.start)
                    data = again.read(record.end - record.start)
                    out.write(data if data.endswith((b"\n", b"\r")) else data + b"\n")
                    lines.append(record.line)
        else:
            for number, raw in enumerate(handle, 1):
                if number in candidates:
                    out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    lines.append(number)
    return lines


# ---- one batch as a file of its own ----------------------------------------------------------


LineMap = Callable[[int], int]


def csv_chunk(header: bytes, body: bytes, chunk: Chunk, header_lines: int,
              duplicates: Mapping[int, tuple[int, str]]) -> tuple[bytes, LineMap, list[Reject]]:
    """The batch as a CSV file (the header, then its records; each duplicate blanked out with
    as many line breaks as it spanned), the map from its lines to the file's, and the
    duplicates as rejects (``file`` left empty)."""
    rejects: list[Reject] = []
    if duplicates:
        out = io.BytesIO()
        handle = io.BytesIO(body)
        done = 0
        for record in _csv_records(handle, 0, chunk.first_line):
            if record.line in duplicates:
                first, post_id = duplicates[record.line]
                span = body[record.start:record.end]
                breaks = sum(1 for part in _LINE_PARTS.findall(span)
                             if part.endswith((b"\n", b"\r")))
                out.write(body[done:record.start])
                out.write(b"\n" * breaks)
                done = record.end
                rejects.append(Reject("", record.line, duplicate_reason(first, False), post_id,
                                      ",".join(record.cells)[:200]))
        out.write(body[done:])
        body = out.getvalue()
    offset = chunk.first_line - header_lines - 1
    return header + body, (lambda line: line + offset), rejects


def jsonl_chunk(body: bytes, chunk: Chunk, duplicates: Mapping[int, tuple[int, str]]
                ) -> tuple[bytes, LineMap, list[Reject]]:
    """The batch as a JSONL file (duplicates blanked out), its line map and the duplicates."""
    rejects: list[Reject] = []
    if duplicates:
        lines = io.BytesIO(body).readlines()  # split at \n only, as ingest numbers them
        for index, raw in enumerate(lines):
            line = chunk.first_line + index
            if line in duplicates:
                first, post_id = duplicates[line]
                rejects.append(Reject("", line, duplicate_reason(first, False), post_id,
                                      raw[:200].decode("utf-8", errors="replace").rstrip()))
                lines[index] = b"\n"
        body = b"".join(lines)
    offset = chunk.first_line - 1
    return body, (lambda line: line + offset), rejects


def parquet_chunk(source: Any, chunk: Chunk, duplicates: Mapping[int, tuple[int, str]],
                  out: Path) -> tuple[LineMap, list[Reject]]:
    """Write the batch's row groups (duplicates left out) to ``out``; its row map and the
    duplicates as rejects. ``source``: a path or a seekable file object."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(source).read_row_groups(list(range(chunk.start, chunk.end)))
    rows = list(range(chunk.first_line, chunk.first_line + table.num_rows))
    rejects: list[Reject] = []
    if duplicates:
        keep = [i for i, row in enumerate(rows) if row not in duplicates]
        for i, row in enumerate(rows):
            if row in duplicates:
                first, post_id = duplicates[row]
                values = table.slice(i, 1).to_pylist()[0]
                rejects.append(Reject("", row, duplicate_reason(first, True), post_id,
                                      json.dumps(values, default=str)[:200]))
        table = table.take(keep)
        rows = [rows[i] for i in keep]
    pq.write_table(table, out)
    return (lambda line: rows[line - 1]), rejects
