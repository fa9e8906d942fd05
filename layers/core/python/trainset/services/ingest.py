"""Importing corpus files: read, check, store good rows in batches, report every rejected row."""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset.ingest import (
    DEFAULT_MAX_TEXT,
    FileProblem,
    PostRow,
    Reject,
    check_row,
    detect_format,
    read_rows,
)

REJECT_COLUMNS = ("file", "line", "reason", "id", "raw")


@dataclass
class ImportSummary:
    files: int = 0
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: Counter = field(default_factory=Counter)
    file_problems: list[str] = field(default_factory=list)
    rejects_path: Path | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def lines(self) -> list[str]:
        out = [
            f"files: {self.files} read, {len(self.file_problems)} skipped",
            f"rows: {self.rows_read} read, {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected_total} rejected",
        ]
        for reason, count in self.rejected.most_common():
            out.append(f"  rejected ({reason}): {count}")
        if self.rejects_path is not None:
            out.append(f"rejected rows, with file, line and reason: {self.rejects_path}")
        out.extend(f"skipped file: {p}" for p in self.file_problems)
        return out


def reason_kind(reason: str) -> str:
    """A reject reason without its specifics, for counting ("bad created_at '…'" -> kind)."""
    return re.split(r"[:('\"]| \d", reason, maxsplit=1)[0].strip()


def count_rows(path: Path) -> int | None:
    """About how many rows a file has (for the progress bar); None when unknown."""
    try:
        fmt = detect_format(path)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
        with path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        return max(lines - (1 if fmt == "csv" else 0), 0)
    except (OSError, FileProblem):
        return None
    except Exception:  # an unreadable Parquet file is reported when it is read
        return None


class _RejectWriter:
    """Writes rejected rows to a CSV, created on the first reject only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None
        self.writer: Any = None

    def write(self, reject: Reject) -> None:
        if self.handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = self.path.open("w", newline="", encoding="utf-8")
            self.writer = csv.writer(self.handle)
            self.writer.writerow(REJECT_COLUMNS)
        raw = reject.raw.encode("utf-8", errors="replace").decode("utf-8")
        self.writer.writerow((reject.file, reject.line, reject.reason, reject.id or "", raw))

    def close(self) -> Path | None:
        if self.handle is None:
            return None
        self.handle.close()
        return self.path


def import_files(
    store: Any,
    paths: Iterable[Path],
    *,
    rejects_path: Path,
    batch_size: int = 50_000,
    max_text: int = DEFAULT_MAX_TEXT,
    progress: Callable[[Path, int | None], Callable[[int], None]] | None = None,
) -> ImportSummary:
    """Import every file; good rows are upserted by id (re-importing never duplicates), bad
    rows go to ``rejects_path``. A file that cannot be read at all is reported and skipped."""
    summary = ImportSummary()
    rejects = _RejectWriter(rejects_path)
    try:
        for path in paths:
            advance = progress(path, count_rows(path)) if progress else (lambda n: None)
            batch: list[PostRow] = []
            unreported = 0  # rows read since the progress bar last moved
            try:
                if not path.is_file():
                    raise FileProblem(f"{path}: no such file")
                for raw in read_rows(path):
                    summary.rows_read += 1
                    unreported += 1
                    checked = check_row(raw, max_text)
                    if isinstance(checked, Reject):
                        summary.rejected[reason_kind(checked.reason)] += 1
                        rejects.write(checked)
                    else:
                        batch.append(checked)
                    if len(batch) >= batch_size:
                        _store(store, batch, summary)
                        advance(unreported)
                        batch, unreported = [], 0
            except FileProblem as problem:
                summary.file_problems.append(str(problem))
            if batch:
                _store(store, batch, summary)
            advance(unreported)
            summary.files += 1
    finally:
        summary.rejects_path = rejects.close()
    summary.files -= len(summary.file_problems)
    return summary


def _store(store: Any, batch: list[PostRow], summary: ImportSummary) -> None:
    inserted, updated, unchanged = store.copy_posts(batch)
    summary.inserted += inserted
    summary.updated += updated
    summary.unchanged += unchanged
