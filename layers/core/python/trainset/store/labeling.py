"""SQL behind the labeling services: leases, labels, skips, coders, progress.

Each method is one or a few parameterised statements on a pg8000 native connection. Callers own
transactions (see ``trainset.store.db.transaction``); nothing here commits by itself.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from typing import Any

import pg8000.native

from trainset.errors import Conflict
from trainset.store.db import Connection, transaction


def _rows_as_dicts(conn: Connection, rows: list[list[Any]]) -> list[dict[str, Any]]:
    names = [c["name"] for c in conn.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


class LabelingStore:
    """Persistence for labeling, bound to one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        """One transaction around the block: committed on success, rolled back on error."""
        return transaction(self.conn)

    # ---- coders ---------------------------------------------------------------------------

    def coder_by_id(self, coder_id: int) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, name, role, status FROM coders WHERE id = :id", id=coder_id
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def coder_by_name(self, name: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, name, role, status FROM coders WHERE name = :name", name=name
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def insert_coder(self, name: str, role: str, status: str) -> dict[str, Any] | None:
        """The new coder, or None when the name is taken."""
        rows = self.conn.run(
            "INSERT INTO coders (name, role, status) VALUES (:name, :role, :status)"
            " ON CONFLICT (name) DO NOTHING RETURNING id, name, role, status",
            name=name,
            role=role,
            status=status,
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def update_coder(self, coder_id: int, status: str | None, role: str | None) -> dict | None:
        rows = self.conn.run(
            "UPDATE coders SET status = COALESCE(:status, status), role = COALESCE(:role, role),"
            " status_changed_at = CASE WHEN :status IS NULL OR :status = status"
            "   THEN status_changed_at ELSE now() END"
            " WHERE id = :id RETURNING id, name, role, status",
            id=coder_id,
            status=status,
            role=role,
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def list_coders(self) -> list[dict[str, Any]]:
        rows = self.conn.run(
            "SELECT id, name, role, status, created_at, status_changed_at FROM coders ORDER BY id"
        )
        return _rows_as_dicts(self.conn, rows)

    def audit(self, actor_id: int | None, action: str, target: str, details: dict) -> None:
        self.conn.run(
            "INSERT INTO audit_log (actor_id, action, target, details)"
            " VALUES (:actor, :action, :target, CAST(:details AS jsonb))",
            actor=actor_id,
            action=action,
            target=target,
            details=json.dumps(details),
        )

    # ---- leases ---------------------------------------------------------------------------

    def current_task_lease(self, coder_id: int, family: str) -> dict[str, Any] | None:
        """The coder's unexpired task lease in ``family``, so a reload gets the same post."""
        rows = self.conn.run(
            "SELECT p.id, p.text, p.image_key, p.keyword, t.family, t.lease_expires_at, t.id"
            " FROM tasks t JOIN posts p ON p.id = t.post_id"
            " WHERE t.coder_id = :coder AND t.family = :family AND t.status = 'leased'"
            "   AND t.lease_expires_at > now()"
            " ORDER BY t.leased_at LIMIT 1",
            coder=coder_id,
            family=family,
        )
        return _task_row(rows[0]) if rows else None

    def lease_next_task(
        self, coder_id: int, family: str, lease_seconds: int
    ) -> dict[str, Any] | None:
        """Atomically lease the oldest free slot this coder may take; None when none is left.

        A slot is free when open or its lease expired. The coder must not hold or have done
        another slot of the same post, nor have labeled or skipped the post before.
        ``SKIP LOCKED`` lets concurrent coders pass each other's candidates instead of waiting.
        """
        rows = self.conn.run(
            "WITH pick AS ("
            "  SELECT t.id FROM tasks t"
            "  WHERE t.family = :family AND t.status <> 'done'"
            "    AND (t.status = 'open' OR t.lease_expires_at <= now())"
            "    AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.post_id = t.post_id"
            "                    AND o.coder_id = :coder AND o.family = t.family)"
            "    AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.post_id = t.post_id"
            "                    AND l.coder_id = :coder AND l.family = t.family)"
            "    AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.post_id = t.post_id"
            "                    AND s.coder_id = :coder AND s.family = t.family)"
            "  ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED)"
            " UPDATE tasks t SET status = 'leased', coder_id = :coder, leased_at = now(),"
            "   lease_expires_at = now() + make_interval(secs => :secs)"
            " FROM pick, posts p WHERE t.id = pick.id AND p.id = t.post_id"
            " RETURNING p.id, p.text, p.image_key, p.keyword, t.family, t.lease_expires_at, t.id",
            coder=coder_id,
            family=family,
            secs=lease_seconds,
        )
        return _task_row(rows[0]) if rows else None

    def current_gold_lease(
        self, coder_id: int, family: str, purposes: tuple[str, ...]
    ) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT p.id, p.text, p.image_key, p.keyword, g.family, g.lease_expires_at, g.purpose"
            " FROM gold_leases g JOIN posts p ON p.id = g.post_id"
            " WHERE g.coder_id = :coder AND g.family = :family AND g.done_at IS NULL"
            "   AND g.lease_expires_at > now() AND g.purpose = ANY(:purposes)"
            " ORDER BY g.leased_at LIMIT 1",
            coder=coder_id,
            family=family,
            purposes=list(purposes),
        )
        return _gold_row(rows[0]) if rows else None

    def lease_gold(
        self, coder_id: int, family: str, purpose: str, lease_seconds: int
    ) -> dict[str, Any] | None:
        """Lease a gold post of ``purpose`` the coder has not answered yet; None when all done."""
        rows = self.conn.run(
            "WITH pick AS ("
            "  SELECT g.post_id FROM gold_posts g"
            "  WHERE g.family = :family AND g.purpose = :purpose"
            "    AND NOT EXISTS (SELECT 1 FROM gold_leases d WHERE d.coder_id = :coder"
            "                    AND d.post_id = g.post_id AND d.family = g.family"
            "                    AND d.done_at IS NOT NULL)"
            "  ORDER BY md5(g.post_id || ':' || CAST(:coder AS text)) LIMIT 1)"
            " INSERT INTO gold_leases (coder_id, post_id, family, purpose, lease_expires_at)"
            " SELECT :coder, pick.post_id, :family, :purpose,"
            "        now() + make_interval(secs => :secs) FROM pick"
            " ON CONFLICT (coder_id, post_id, family) DO UPDATE"
            "   SET leased_at = now(), lease_expires_at = EXCLUDED.lease_expires_at"
            " RETURNING post_id",
            coder=coder_id,
            family=family,
            purpose=purpose,
            secs=lease_seconds,
        )
        if not rows:
            return None
        return self.current_gold_lease(coder_id, family, (purpose,))

    def find_lease(self, coder_id: int, post_id: str, family: str) -> dict[str, Any] | None:
        """The coder's open lease on this post: a task slot (locked) or a gold lease."""
        rows = self.conn.run(
            "SELECT id FROM tasks WHERE post_id = :post AND family = :family"
            " AND coder_id = :coder AND status = 'leased' FOR UPDATE",
            post=post_id,
            family=family,
            coder=coder_id,
        )
        if rows:
            return {"kind": "task", "task_id": rows[0][0]}
        rows = self.conn.run(
            "SELECT purpose FROM gold_leases WHERE coder_id = :coder AND post_id = :post"
            " AND family = :family AND done_at IS NULL FOR UPDATE",
            post=post_id,
            family=family,
            coder=coder_id,
        )
        if rows:
            return {"kind": rows[0][0], "task_id": None}
        return None

    def post_exists(self, post_id: str) -> bool:
        return bool(self.conn.run("SELECT 1 FROM posts WHERE id = :id", id=post_id))

    def task_lease_owner(self, post_id: str, family: str) -> list[list[Any]]:
        """Slots of the post in ``family``: status and whether their lease has expired."""
        return self.conn.run(
            "SELECT status, coder_id, lease_expires_at <= now() FROM tasks"
            " WHERE post_id = :post AND family = :family",
            post=post_id,
            family=family,
        )

    def release_task(self, task_id: int, coder_id: int) -> None:
        self.conn.run(
            "UPDATE tasks SET status = 'open', coder_id = NULL, leased_at = NULL,"
            " lease_expires_at = NULL WHERE id = :id AND coder_id = :coder AND status = 'leased'",
            id=task_id,
            coder=coder_id,
        )

    def finish_task(self, task_id: int, coder_id: int) -> None:
        self.conn.run(
            "UPDATE tasks SET status = 'done', done_at = now()"
            " WHERE id = :id AND coder_id = :coder",
            id=task_id,
            coder=coder_id,
        )

    def finish_gold(self, coder_id: int, post_id: str, family: str) -> None:
        self.conn.run(
            "UPDATE gold_leases SET done_at = now() WHERE coder_id = :coder"
            " AND post_id = :post AND family = :family AND done_at IS NULL",
            coder=coder_id,
            post=post_id,
            family=family,
        )

    def insert_skip(self, coder_id: int, post_id: str, family: str, reason: str) -> None:
        self.conn.run(
            "INSERT INTO skips (coder_id, post_id, family, reason)"
            " VALUES (:coder, :post, :family, :reason)",
            coder=coder_id,
            post=post_id,
            family=family,
            reason=reason,
        )

    # ---- labels ---------------------------------------------------------------------------

    def label_by_submission(self, submission_id: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, submission_id, post_id, family, coder_id, revision, kind, answers,"
            " created_at FROM labels WHERE submission_id = CAST(:sid AS uuid)",
            sid=submission_id,
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def latest_label(self, coder_id: int, post_id: str, family: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, revision, kind, task_id FROM labels WHERE post_id = :post"
            " AND family = :family AND coder_id = :coder ORDER BY revision DESC LIMIT 1",
            post=post_id,
            family=family,
            coder=coder_id,
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def insert_label(
        self,
        *,
        submission_id: str,
        post_id: str,
        family: str,
        coder_id: int,
        revision: int,
        kind: str,
        task_id: int | None,
        answers: dict[str, Any],
        coder_status: str,
        seconds_spent: float | None,
    ) -> dict[str, Any] | None:
        """The stored label, or None when this submission id is already stored."""
        try:
            rows = self._insert_label_row(
                submission_id, post_id, family, coder_id, revision, kind, task_id, answers,
                coder_status, seconds_spent,
            )
        except pg8000.native.DatabaseError as exc:
            if _sqlstate(exc) == "23505":  # a revision with this number was stored meanwhile
                raise Conflict(
                    "another revision of this label was saved at the same moment; reload and "
                    "try again"
                ) from None
            raise
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def _insert_label_row(
        self, submission_id, post_id, family, coder_id, revision, kind, task_id, answers,
        coder_status, seconds_spent,
    ) -> list[list[Any]]:
        return self.conn.run(
            "INSERT INTO labels (submission_id, post_id, family, coder_id, revision, kind,"
            " task_id, answers, coder_status, seconds_spent)"
            " VALUES (CAST(:sid AS uuid), :post, :family, :coder, :revision, :kind, :task,"
            " CAST(:answers AS jsonb), :coder_status, :seconds)"
            " ON CONFLICT (submission_id) DO NOTHING"
            " RETURNING id, submission_id, post_id, family, coder_id, revision, kind, answers,"
            " created_at",
            sid=submission_id,
            post=post_id,
            family=family,
            coder=coder_id,
            revision=revision,
            kind=kind,
            task=task_id,
            answers=json.dumps(answers),
            coder_status=coder_status,
            seconds=seconds_spent,
        )

    def gold_answers(self, post_id: str, family: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT answers, rationale, purpose FROM gold_posts"
            " WHERE post_id = :post AND family = :family",
            post=post_id,
            family=family,
        )
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def practice_answers(self, coder_id: int) -> list[dict[str, Any]]:
        """The coder's first answer to each practice post, with the gold answers."""
        rows = self.conn.run(
            "SELECT l.family, l.answers, g.answers AS gold FROM labels l"
            " JOIN gold_posts g ON g.post_id = l.post_id AND g.family = l.family"
            " WHERE l.coder_id = :coder AND l.kind = 'practice' AND l.revision = 1"
            " ORDER BY l.id",
            coder=coder_id,
        )
        return _rows_as_dicts(self.conn, rows)

    def history(self, coder_id: int, limit: int, before_id: int | None) -> list[dict[str, Any]]:
        rows = self.conn.run(
            "SELECT c.id AS label_id, c.post_id, c.family, c.revision, c.kind, c.answers,"
            " c.created_at, p.text, p.image_key"
            " FROM current_labels c JOIN posts p ON p.id = c.post_id"
            " WHERE c.coder_id = :coder AND (CAST(:before AS bigint) IS NULL"
            "   OR c.id < CAST(:before AS bigint))"
            " ORDER BY c.id DESC LIMIT :limit",
            coder=coder_id,
            before=before_id,
            limit=limit,
        )
        return _rows_as_dicts(self.conn, rows)

    # ---- progress -------------------------------------------------------------------------

    def coder_counts(self, coder_id: int, since: datetime) -> dict[str, int]:
        rows = self.conn.run(
            "SELECT family, count(*) FROM labels WHERE coder_id = :coder AND revision = 1"
            " AND kind <> 'practice' AND created_at >= :since GROUP BY family",
            coder=coder_id,
            since=since,
        )
        return {family: count for family, count in rows}

    def remaining(self, family: str) -> int:
        rows = self.conn.run(
            "SELECT count(*) FROM tasks WHERE family = :family AND status <> 'done'",
            family=family,
        )
        return int(rows[0][0])

    def family_progress(self) -> list[list[Any]]:
        return self.conn.run(
            "SELECT family,"
            " count(*) FILTER (WHERE status = 'open' OR (status = 'leased'"
            "   AND lease_expires_at <= now())),"
            " count(*) FILTER (WHERE status = 'leased' AND lease_expires_at > now()),"
            " count(*) FILTER (WHERE status = 'done')"
            " FROM tasks GROUP BY family ORDER BY family"
        )

    def coder_progress(self, day_start: datetime, week_start: datetime) -> list[dict]:
        rows = self.conn.run(
            "SELECT c.id, c.name, c.role, c.status,"
            " count(l.id) FILTER (WHERE l.created_at >= :day) AS today,"
            " count(l.id) FILTER (WHERE l.created_at >= :week) AS this_week"
            " FROM coders c LEFT JOIN labels l ON l.coder_id = c.id AND l.revision = 1"
            "   AND l.kind <> 'practice' AND l.created_at >= :week"
            " GROUP BY c.id ORDER BY c.id",
            day=day_start,
            week=week_start,
        )
        return _rows_as_dicts(self.conn, rows)


def _task_row(row: list[Any]) -> dict[str, Any]:
    post_id, text, image_key, keyword, family, expires, task_id = row
    return {
        "post_id": post_id,
        "text": text,
        "image_key": image_key,
        "keyword": keyword,
        "family": family,
        "lease_expires_at": expires,
        "task_id": task_id,
        "kind": "task",
    }


def _gold_row(row: list[Any]) -> dict[str, Any]:
    post_id, text, image_key, keyword, family, expires, purpose = row
    return {
        "post_id": post_id,
        "text": text,
        "image_key": image_key,
        "keyword": keyword,
        "family": family,
        "lease_expires_at": expires,
        "task_id": None,
        "kind": purpose,
    }


def _sqlstate(exc: Exception) -> str | None:
    """PostgreSQL's error code (e.g. 23505 unique violation) from a pg8000 error."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return info.get("C")
