"""SQL for export jobs: one row per run of the export state machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from trainset.store.db import Connection


class JobStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def create(self, job_id: str, families: Sequence[str], started_by: int | None,
               settings: Any = None) -> None:
        self.conn.run(
            "INSERT INTO export_jobs (id, status, families, started_by, settings)"
            " VALUES (:id, 'running', CAST(:families AS text[]), :by, CAST(:settings AS jsonb))",
            id=job_id, families=list(families), by=started_by,
            settings=None if settings is None else json.dumps(settings))

    def finish(self, job_id: str, status: str, output: Any = None,
               error: str | None = None, families: Sequence[str] = ()) -> None:
        """Record how a job ended; a scheduled run has no row yet and gets one here."""
        self.conn.run(
            "INSERT INTO export_jobs (id, status, families, finished_at, output, error)"
            " VALUES (:id, :status, CAST(:families AS text[]), now(), CAST(:output AS jsonb),"
            " :error)"
            " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, finished_at = now(),"
            " output = EXCLUDED.output, error = EXCLUDED.error",
            id=job_id, status=status, output=json.dumps(output), error=error,
            families=list(families))

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, status, families, started_by, started_at, finished_at, output, error,"
            " settings FROM export_jobs WHERE id = :id", id=job_id)
        if not rows:
            return None
        names = [c["name"] for c in self.conn.columns]
        return dict(zip(names, rows[0], strict=True))

    def newest(self, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.run(
            "SELECT id, status, families, started_at, finished_at, error FROM export_jobs"
            " ORDER BY started_at DESC, id DESC LIMIT :limit", limit=limit)
        names = [c["name"] for c in self.conn.columns]
        return [dict(zip(names, r, strict=True)) for r in rows]
