"""SQL for imports of uploaded corpus and gold files: one row per object, one per batch run."""

from __future__ import annotations

from typing import Any

from trainset.store.db import Connection

_COUNTS = ("rows_read", "inserted", "updated", "unchanged", "rejected", "posts_created")


class ImportStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, rows: list[list[Any]]) -> list[dict[str, Any]]:
        names = [c["name"] for c in self.conn.columns]
        return [dict(zip(names, r, strict=True)) for r in rows]

    def create(self, import_id: str, *, kind: str, purpose: str | None, filename: str, key: str,
               size: int | None, created_by: int | None) -> None:
        self.conn.run(
            "INSERT INTO imports (id, kind, purpose, filename, key, size, created_by)"
            " VALUES (:id, :kind, :purpose, :filename, :key, :size, :by)",
            id=import_id, kind=kind, purpose=purpose, filename=filename, key=key, size=size,
            by=created_by)

    def by_key(self, key: str) -> dict[str, Any] | None:
        rows = self._rows(self.conn.run(
            "SELECT id, kind, purpose, filename, key, size, status, run, batches, rows_total,"
            " rows_read, inserted, updated, unchanged, rejected, posts_created, rejects_key,"
            " error, created_by, created_at, started_at, finished_at FROM imports"
            " WHERE key = :key", key=key))
        return rows[0] if rows else None

    def get(self, import_id: str) -> dict[str, Any] | None:
        rows = self._rows(self.conn.run(
            "SELECT id, kind, purpose, filename, key, size, status, run, batches, rows_total,"
            " rows_read, inserted, updated, unchanged, rejected, posts_created, rejects_key,"
            " error, created_by, created_at, started_at, finished_at FROM imports"
            " WHERE id = :id", id=import_id))
        return rows[0] if rows else None

    def begin_run(self, import_id: str, run: str, size: int | None) -> None:
        """A new run of the job takes the import over: counts start again from zero."""
        self.conn.run(
            "UPDATE imports SET run = :run, status = 'planning', size = COALESCE(:size, size),"
            " batches = NULL, rows_total = NULL, rows_read = 0, inserted = 0, updated = 0,"
            " unchanged = 0, rejected = 0, posts_created = 0, rejects_key = NULL, error = NULL,"
            " started_at = now(), finished_at = NULL WHERE id = :id",
            id=import_id, run=run, size=size)

    def planned(self, import_id: str, run: str, batches: int, rows_total: int) -> bool:
        """Record the plan; False when a newer run has taken the import over."""
        self.conn.run(
            "UPDATE imports SET status = 'importing', batches = :batches,"
            " rows_total = :rows_total WHERE id = :id AND run = :run",
            id=import_id, run=run, batches=batches, rows_total=rows_total)
        return self.conn.row_count == 1

    def record_batch(self, import_id: str, run: str, batch: int,
                     counts: dict[str, int]) -> None:
        """A batch's counts (replacing an earlier attempt's: a retried batch counts once)."""
        self.conn.run(
            "INSERT INTO import_batches (import_id, run, batch, rows_read, inserted, updated,"
            " unchanged, rejected, posts_created)"
            " VALUES (:id, :run, :batch, :rows_read, :inserted, :updated, :unchanged,"
            " :rejected, :posts_created)"
            " ON CONFLICT (import_id, run, batch) DO UPDATE SET rows_read = EXCLUDED.rows_read,"
            " inserted = EXCLUDED.inserted, updated = EXCLUDED.updated,"
            " unchanged = EXCLUDED.unchanged, rejected = EXCLUDED.rejected,"
            " posts_created = EXCLUDED.posts_created, finished_at = now()",
            id=import_id, run=run, batch=batch,
            **{name: int(counts.get(name, 0)) for name in _COUNTS})

    def batches_of(self, import_id: str, run: str) -> list[dict[str, Any]]:
        return self._rows(self.conn.run(
            "SELECT batch, rows_read, inserted, updated, unchanged, rejected, posts_created"
            " FROM import_batches WHERE import_id = :id AND run = :run ORDER BY batch",
            id=import_id, run=run))

    def finish(self, import_id: str, run: str, rejects_key: str | None) -> bool:
        """Totals from the run's batches; the import succeeded. False for a superseded run."""
        self.conn.run(
            "UPDATE imports i SET status = 'succeeded', finished_at = now(),"
            " rejects_key = :rejects_key,"
            " rows_read = t.rows_read, inserted = t.inserted, updated = t.updated,"
            " unchanged = t.unchanged, rejected = t.rejected, posts_created = t.posts_created"
            " FROM (SELECT COALESCE(sum(rows_read), 0) AS rows_read,"
            " COALESCE(sum(inserted), 0) AS inserted, COALESCE(sum(updated), 0) AS updated,"
            " COALESCE(sum(unchanged), 0) AS unchanged, COALESCE(sum(rejected), 0) AS rejected,"
            " COALESCE(sum(posts_created), 0) AS posts_created"
            " FROM import_batches WHERE import_id = :id AND run = :run) t"
            " WHERE i.id = :id AND i.run = :run",
            id=import_id, run=run, rejects_key=rejects_key)
        return self.conn.row_count == 1

    def fail(self, import_id: str, run: str | None, error: str) -> None:
        """The run failed (a run that was superseded meanwhile leaves the import alone)."""
        self.conn.run(
            "UPDATE imports SET status = 'failed', error = :error, finished_at = now()"
            " WHERE id = :id AND (CAST(:run AS text) IS NULL OR run = :run)",
            id=import_id, run=run, error=error[:2000])

    def newest(self, limit: int) -> list[dict[str, Any]]:
        """The newest imports, with the current run's batch totals while it runs."""
        return self._rows(self.conn.run(
            "SELECT i.id, i.kind, i.purpose, i.filename, i.key, i.size, i.status, i.run, i.batches,"
            " i.rows_total, i.rows_read, i.inserted, i.updated, i.unchanged, i.rejected,"
            " i.posts_created, i.rejects_key, i.error, i.created_by, i.created_at,"
            " i.started_at, i.finished_at,"
            " COALESCE(b.batches_done, 0) AS batches_done,"
            " COALESCE(b.rows_done, 0) AS rows_done"
            " FROM imports i LEFT JOIN LATERAL ("
            " SELECT count(*) AS batches_done, sum(rows_read) AS rows_done"
            " FROM import_batches WHERE import_id = i.id AND run = i.run) b ON true"
            " ORDER BY i.created_at DESC, i.id LIMIT :limit", limit=limit))
