"""Importing corpus files: read, check, store good rows in batches, report every rejected row."""

from __future__ import annotations

import csv
import queue
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset.corpus.ingest import DEFAULT_MAX_TEXT, FileProblem, Reject, detect_format

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


class _Merger:
    """Writes batches into posts. With a second store (its own connection) it runs on a
    background thread: while the database writes batch k, this thread reads and checks batch
    k+1. At most ``depth`` batches wait; an error while writing stops the import."""

    def __init__(self, store: Any, summary: ImportSummary, import_id: str,
                 background: bool, depth: int = 2) -> None:
        self.store = store
        self.summary = summary
        self.import_id = import_id
        self.error: BaseException | None = None
        self.queue: queue.Queue[tuple[int, int] | None] = queue.Queue(maxsize=depth)
        self.thread = None
        if background:
            self.thread = threading.Thread(target=self._run, name="trainset-merge", daemon=True)
            self.thread.start()

    def _merge(self, batch: int, count: int) -> None:
        inserted, updated, unchanged = self.store.merge_batch(self.import_id, batch, count)
        self.summary.inserted += inserted
        self.summary.updated += updated
        self.summary.unchanged += unchanged

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._merge(*item)
                except BaseException as exc:
                    self.error = exc

    def submit(self, batch: int, rows: Any) -> None:
        self._raise()
        self.store.stage_batch(self.import_id, batch, rows)
        if self.thread is None:
            self._merge(batch, rows.num_rows)
        else:
            self.queue.put((batch, rows.num_rows))

    def finish(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        self._raise()

    def _raise(self) -> None:
        if self.error is not None:
            raise self.error


def import_files(
    store: Any,
    paths: Iterable[Path],
    *,
    rejects_path: Path,
    merge_store: Any = None,
    batch_size: int = 50_000,
    max_text: int = DEFAULT_MAX_TEXT,
    progress: Callable[[Path, int | None], Callable[[int], None]] | None = None,
) -> ImportSummary:
    """Import every file; good rows are upserted by id (re-importing never duplicates), bad
    rows go to ``rejects_path``. An id given twice in one file keeps its first row; later
    rows are rejected naming the first one's line (across files, the later file updates).
    A file that cannot be read at all is reported and skipped.
    Files are read and checked in columnar blocks (``trainset.corpus.columnar``: the row
    checker's answers) and written ``batch_size`` posts at a time by binary COPY, each batch
    in one transaction: an interruption leaves whole batches only.
    Give ``merge_store`` (a second connection) to write on it, in the background, while the
    next batch is read; ``store`` is then left alone."""
    import pyarrow as pa  # the bulk import's own dependency (not the API's)

    from trainset.corpus.columnar import read_checked

    summary = ImportSummary()
    rejects = _RejectWriter(rejects_path)
    import_id = str(uuid.uuid4())
    merger = _Merger(merge_store or store, summary, import_id, background=merge_store is not None)
    batch_no = 0

    def flush(batch: Any) -> None:
        nonlocal batch_no
        batch_no += 1
        merger.submit(batch_no, batch)

    try:
        for path in paths:
            advance = progress(path, count_rows(path)) if progress else (lambda n: None)
            pending: list[Any] = []  # checked posts not yet in a batch, and how many
            waiting = 0
            try:
                if not path.is_file():
                    raise FileProblem(f"{path}: no such file")
                for block in read_checked(path, max_text):
                    summary.rows_read += block.rows
                    for reject in block.rejects:
                        summary.rejected[reason_kind(reject.reason)] += 1
                        rejects.write(reject)
                    pending.append(block.posts)
                    waiting += block.posts.num_rows
                    while waiting >= batch_size:
                        posts = pa.concat_tables(pending)
                        flush(posts.slice(0, batch_size))
                        pending, waiting = [posts.slice(batch_size)], waiting - batch_size
                    advance(block.rows)
            except FileProblem as problem:
                summary.file_problems.append(str(problem))
            if waiting:
                flush(pa.concat_tables(pending))
            summary.files += 1
        merger.finish()
    except BaseException:
        _discard(merger, import_id)
        raise
    finally:
        summary.rejects_path = rejects.close()
    summary.files -= len(summary.file_problems)
    return summary


def _discard(merger: _Merger, import_id: str) -> None:
    """After a failure: stop the merger and remove this import's unmerged batches."""
    try:
        if merger.thread is not None:
            merger.queue.put(None)
            merger.thread.join()
        merger.store.discard_import(import_id)
    except Exception:  # the original error matters more; leftovers are keyed by import id
        pass
