"""SQL behind the labeling services: leases, labels, skips, coders, progress.

Each method is one or a few parameterised statements on a pg8000 native connection. Callers own
transactions (see ``trainset.store.db.transaction``); nothing here commits by itself.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pg8000.native

from trainset.errors import Conflict, DuplicateSubmission
from trainset.store.db import Connection, sqlstate, transaction

LEASE_LIMITS = ("tasks_one_lease_per_coder", "gold_leases_one_per_coder",
                "one_work_lease_per_coder")


class LeaseRace(Exception):
    """The database refused a second lease for a coder and family: another request of the same
    coder leased first. The transaction is aborted; roll back and read the current lease."""


@contextlib.contextmanager
def _lease_races() -> Iterator[None]:
    """Turn a one-lease-per-coder violation into ``LeaseRace``; other errors pass through."""
    try:
        yield
    except pg8000.native.DatabaseError as exc:
        if sqlstate(exc) == "23505" and any(n in _constraint(exc) for n in LEASE_LIMITS):
            raise LeaseRace(_constraint(exc)) from None
        raise


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

    # ``imported``: the coder only holds labels imported from another tool (``labels
    # import``): such a coder can never sign in or get a token.

    def coder_by_id(self, coder_id: int) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT c.id, c.name, c.role, c.status, EXISTS (SELECT 1 FROM source_coders s"
            " WHERE s.coder_id = c.id) AS imported FROM coders c WHERE c.id = :id",
            id=coder_id)
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

    def coder_by_name(self, name: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT c.id, c.name, c.role, c.status, EXISTS (SELECT 1 FROM source_coders s"
            " WHERE s.coder_id = c.id) AS imported FROM coders c WHERE c.name = :name",
            name=name)
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
        """Change a coder's status and/or role and release the leases the new status may not
        hold: task slots and QA gold unless certified, practice too when revoked. Run inside the
        caller's transaction, so the change and the release commit together.

        The release is a second statement on purpose: at READ COMMITTED it takes a fresh
        snapshot after the coder row is locked, so it also sees a lease that a concurrent
        ``next_task`` (holding the coder row FOR SHARE) committed while this update waited.
        The row carries ``released_tasks`` and ``released_gold`` counts for the audit trail.
        """
        rows = self.conn.run(
            "UPDATE coders SET status = COALESCE(:status, status), role = COALESCE(:role, role),"
            " status_changed_at = CASE WHEN :status IS NULL OR :status = status"
            "   THEN status_changed_at ELSE now() END"
            " WHERE id = :id RETURNING id, name, role, status",
            id=coder_id,
            status=status,
            role=role,
        )
        if not rows:
            return None
        row = _rows_as_dicts(self.conn, rows)[0]
        released = self.conn.run(
            "WITH t AS ("
            "  UPDATE tasks SET status = 'open', coder_id = NULL, leased_at = NULL,"
            "    lease_expires_at = NULL"
            "  WHERE coder_id = :id AND status = 'leased' AND :status <> 'certified'"
            "  RETURNING id),"
            " g AS ("
            "  DELETE FROM gold_leases WHERE coder_id = :id AND done_at IS NULL"
            "    AND (:status = 'revoked' OR (:status <> 'certified' AND purpose = 'qa'))"
            "  RETURNING post_id)"
            " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM g)",
            id=coder_id,
            status=row["status"],
        )
        return {**row, "released_tasks": released[0][0], "released_gold": released[0][1]}

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

    def lock_leases(self, coder_id: int, family: str) -> tuple[str | None, bool]:
        """Take the coder's lease lock for ``family`` (held to the end of the transaction) and
        return their status as committed now (None when the coder does not exist) and whether
        they hold an expired lease there, so freeing costs a statement only when needed.

        The advisory lock queues the same coder's concurrent lease requests in a family, so the
        later one sees the lease the earlier one committed. The coder row is read FOR SHARE: a
        status change waits for this transaction, or this one sees the new status. (Should a
        lease expire between this statement's snapshot and the lease, the one-lease index
        refuses the new one and the caller retries, freeing it then.)
        """
        rows = self.conn.run(
            "SELECT c.status, EXISTS (SELECT 1 FROM tasks t WHERE t.coder_id = :coder"
            "   AND t.family = :family AND t.status = 'leased' AND t.lease_expires_at <= now())"
            " OR EXISTS (SELECT 1 FROM gold_leases g WHERE g.coder_id = :coder"
            "   AND g.family = :family AND g.done_at IS NULL AND g.lease_expires_at <= now())"
            " FROM lock_coder_leases(:coder, :family) AS lock, coders c"
            " WHERE c.id = :coder FOR SHARE OF c",
            coder=coder_id,
            family=family,
        )
        return (rows[0][0], bool(rows[0][1])) if rows else (None, False)

    def free_expired_leases(self, coder_id: int, family: str) -> None:
        """Release the coder's own expired leases in ``family`` (task slots back to open, gold
        leases dropped), so the one-lease-per-coder indexes leave room for a new lease."""
        self.conn.run(
            "WITH t AS ("
            "  UPDATE tasks SET status = 'open', coder_id = NULL, leased_at = NULL,"
            "    lease_expires_at = NULL"
            "  WHERE coder_id = :coder AND family = :family AND status = 'leased'"
            "    AND lease_expires_at <= now() RETURNING id),"
            " g AS ("
            "  DELETE FROM gold_leases WHERE coder_id = :coder AND family = :family"
            "    AND done_at IS NULL AND lease_expires_at <= now() RETURNING post_id)"
            " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM g)",
            coder=coder_id,
            family=family,
        )

    def current_work_lease(self, coder_id: int, family: str) -> dict[str, Any] | None:
        """The coder's unexpired work lease in ``family`` (a task slot or a QA gold post; the
        database allows only one), so a reload gets the same post."""
        rows = self.conn.run(
            "SELECT p.id, p.text, p.image_key, p.keyword, w.lease_expires_at, w.kind FROM ("
            "  SELECT t.post_id, t.lease_expires_at, 'task' AS kind, 0 AS ord FROM tasks t"
            "  WHERE t.coder_id = :coder AND t.family = :family AND t.status = 'leased'"
            "    AND t.lease_expires_at > now()"
            "  UNION ALL"
            "  SELECT g.post_id, g.lease_expires_at, 'qa', 1 FROM gold_leases g"
            "  WHERE g.coder_id = :coder AND g.family = :family AND g.purpose = 'qa'"
            "    AND g.done_at IS NULL AND g.lease_expires_at > now()"
            " ) w JOIN posts p ON p.id = w.post_id ORDER BY w.ord, w.lease_expires_at LIMIT 1",
            coder=coder_id,
            family=family,
        )
        if not rows:
            return None
        post_id, text, image_key, keyword, expires, kind = rows[0]
        return _lease(post_id, text, image_key, keyword, family, expires, kind)

    def lease_work(
        self, coder_id: int, family: str, lease_seconds: int, day_start: datetime
    ) -> dict[str, Any] | None:
        """The coder's unexpired task or QA-gold lease in ``family``, else a newly leased free
        slot, with the coder's label counts for today; None when nothing is left.

        Call it inside a transaction after ``lock_leases`` and ``free_expired_leases``: the lock
        makes it race-free for one coder, and the unique index on leased slots (plus the
        trigger keeping task and QA leases apart) refuses a second lease whatever the path;
        that refusal surfaces as ``LeaseRace``. A slot is free when open or its lease expired;
        the coder must not hold or have done another slot of the post, nor have labeled or
        skipped it before. ``SKIP LOCKED`` lets coders pass each other's candidates.
        """
        with _lease_races():
            rows = self._lease_work(coder_id, family, lease_seconds, day_start)
        if not rows:
            return None
        post_id, text, image_key, keyword, expires, kind, today, today_family = rows[0]
        lease = _lease(post_id, text, image_key, keyword, family, expires, kind)
        return {**lease, "done_today": today, "done_today_in_family": today_family}

    def _lease_work(
        self, coder_id: int, family: str, lease_seconds: int, day_start: datetime
    ) -> list[list[Any]]:
        return self.conn.run(
            "WITH current_task AS ("
            "  SELECT t.post_id, t.lease_expires_at FROM tasks t"
            "  WHERE t.coder_id = :coder AND t.family = :family AND t.status = 'leased'"
            "    AND t.lease_expires_at > now() ORDER BY t.leased_at LIMIT 1),"
            " current_gold AS ("
            "  SELECT g.post_id, g.lease_expires_at FROM gold_leases g"
            "  WHERE g.coder_id = :coder AND g.family = :family AND g.purpose = 'qa'"
            "    AND g.done_at IS NULL AND g.lease_expires_at > now()"
            "  ORDER BY g.leased_at LIMIT 1),"
            " pick AS ("
            "  SELECT t.id FROM tasks t"
            "  WHERE NOT EXISTS (SELECT 1 FROM current_task)"
            "    AND NOT EXISTS (SELECT 1 FROM current_gold)"
            "    AND t.family = :family AND t.status <> 'done'"
            "    AND (t.status = 'open' OR t.lease_expires_at <= now())"
            "    AND NOT EXISTS (SELECT 1 FROM tasks o WHERE o.post_id = t.post_id"
            "                    AND o.coder_id = :coder AND o.family = t.family)"
            "    AND NOT EXISTS (SELECT 1 FROM labels l WHERE l.post_id = t.post_id"
            "                    AND l.coder_id = :coder AND l.family = t.family)"
            "    AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.post_id = t.post_id"
            "                    AND s.coder_id = :coder AND s.family = t.family)"
            "  ORDER BY t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED),"
            " leased AS ("
            "  UPDATE tasks t SET status = 'leased', coder_id = :coder, leased_at = now(),"
            "    lease_expires_at = now() + make_interval(secs => :secs)"
            "  FROM pick WHERE t.id = pick.id RETURNING t.post_id, t.lease_expires_at),"
            " chosen AS ("
            "  SELECT post_id, lease_expires_at, 'task' AS kind, 0 AS ord FROM current_task"
            "  UNION ALL SELECT post_id, lease_expires_at, 'qa', 1 FROM current_gold"
            "  UNION ALL SELECT post_id, lease_expires_at, 'task', 2 FROM leased)"
            " SELECT p.id, p.text, p.image_key, p.keyword, c.lease_expires_at, c.kind,"
            "  (SELECT count(*) FROM labels l WHERE l.coder_id = :coder AND l.revision = 1"
            "     AND l.kind IN ('task', 'qa') AND l.created_at >= :day),"
            "  (SELECT count(*) FROM labels l WHERE l.coder_id = :coder AND l.revision = 1"
            "     AND l.kind IN ('task', 'qa') AND l.created_at >= :day AND l.family = :family)"
            " FROM chosen c JOIN posts p ON p.id = c.post_id ORDER BY c.ord LIMIT 1",
            coder=coder_id,
            family=family,
            secs=lease_seconds,
            day=day_start,
        )

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
        """Lease a gold post of ``purpose`` the coder has not answered yet; None when all done.

        Same conditions as ``lease_work``: inside the transaction holding ``lock_leases``; a
        second undone lease of the purpose, or a QA lease beside a task lease, is refused by the
        database and raised as ``LeaseRace``."""
        with _lease_races():
            rows = self._lease_gold(coder_id, family, purpose, lease_seconds)
        if not rows:
            return None
        return self.current_gold_lease(coder_id, family, (purpose,))

    def _lease_gold(
        self, coder_id: int, family: str, purpose: str, lease_seconds: int
    ) -> list[list[Any]]:
        return self.conn.run(
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

    def release_task(self, task_id: int, coder_id: int) -> None:
        self.conn.run(
            "UPDATE tasks SET status = 'open', coder_id = NULL, leased_at = NULL,"
            " lease_expires_at = NULL WHERE id = :id AND coder_id = :coder AND status = 'leased'",
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

    def submission_state(
        self, submission_id: str, coder_id: int, post_id: str, family: str
    ) -> dict[str, Any]:
        """Everything ``submit`` must know, in one read: the label already stored under this
        submission id, the coder's latest revision for the post, how long ago they first
        labeled it, their open leases, and their status as committed now.

        The coder row is read FOR SHARE: inside the caller's transaction a status change waits
        until the label is stored, or this read already sees the new status."""
        rows = self.conn.run(
            "SELECT s.id, s.submission_id, s.post_id, s.family, s.coder_id, s.revision,"
            " s.kind, s.answers, s.created_at,"
            " last.revision AS last_revision, last.kind AS last_kind,"
            " last.task_id AS last_task_id,"
            " (SELECT CAST(EXTRACT(EPOCH FROM now() - min(f.created_at)) AS double precision)"
            "    FROM labels f WHERE f.post_id = :post AND f.family = :family"
            "    AND f.coder_id = :coder) AS first_label_age_seconds,"
            " (SELECT c.status FROM coders c WHERE c.id = :coder FOR SHARE) AS coder_status,"
            " (SELECT t.id FROM tasks t WHERE t.post_id = :post AND t.family = :family"
            "    AND t.coder_id = :coder AND t.status = 'leased' LIMIT 1) AS leased_task_id,"
            " (SELECT g.purpose FROM gold_leases g WHERE g.coder_id = :coder"
            "    AND g.post_id = :post AND g.family = :family AND g.done_at IS NULL)"
            "    AS gold_purpose"
            " FROM (SELECT 1) AS one"
            " LEFT JOIN labels s ON s.submission_id = CAST(:sid AS uuid)"
            " LEFT JOIN LATERAL (SELECT l.revision, l.kind, l.task_id FROM labels l"
            "   WHERE l.post_id = :post AND l.family = :family AND l.coder_id = :coder"
            "   ORDER BY l.revision DESC LIMIT 1) AS last ON true",
            sid=submission_id,
            post=post_id,
            family=family,
            coder=coder_id,
        )
        state = _rows_as_dicts(self.conn, rows)[0]
        stored_keys = ("id", "submission_id", "post_id", "family", "coder_id", "revision",
                       "kind", "answers", "created_at")
        stored = {k: state[k] for k in stored_keys} if state["id"] is not None else None
        return {
            "stored": stored,
            "last_revision": state["last_revision"],
            "last_kind": state["last_kind"],
            "last_task_id": state["last_task_id"],
            "first_label_age_seconds": state["first_label_age_seconds"],
            "coder_status": state["coder_status"],
            "leased_task_id": state["leased_task_id"],
            "gold_purpose": state["gold_purpose"],
        }

    def store_label(self, label: dict[str, Any], finish: str | None) -> dict[str, Any] | None:
        """Insert a label; with ``finish`` = 'task' or 'gold', close that lease in the same
        statement (None when the lease is no longer the coder's: nothing is written then).

        Raises DuplicateSubmission when the submission id is stored already (a concurrent
        retry) and Conflict when the same revision was stored concurrently.
        """
        params = {
            "sid": label["submission_id"],
            "post": label["post_id"],
            "family": label["family"],
            "coder": label["coder_id"],
            "revision": label["revision"],
            "kind": label["kind"],
            "task": label["task_id"],
            "answers": json.dumps(label["answers"]),
            "coder_status": label["coder_status"],
            "seconds": label["seconds_spent"],
        }
        try:
            if finish == "task":
                rows = self.conn.run(
                    "WITH done AS (UPDATE tasks SET status = 'done', done_at = now()"
                    "  WHERE id = :task AND coder_id = :coder AND status = 'leased'"
                    "  RETURNING id)"
                    " INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
                    " kind, task_id, answers, coder_status, seconds_spent)"
                    " SELECT CAST(:sid AS uuid), :post, :family, :coder, :revision, :kind,"
                    " done.id, CAST(:answers AS jsonb), :coder_status, :seconds FROM done"
                    " RETURNING id, submission_id, post_id, family, coder_id, revision, kind,"
                    " answers, created_at",
                    **params,
                )
            elif finish == "gold":
                rows = self.conn.run(
                    "WITH done AS (UPDATE gold_leases SET done_at = now()"
                    "  WHERE coder_id = :coder AND post_id = :post AND family = :family"
                    "    AND done_at IS NULL AND purpose = :kind RETURNING purpose)"
                    " INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
                    " kind, task_id, answers, coder_status, seconds_spent)"
                    " SELECT CAST(:sid AS uuid), :post, :family, :coder, :revision,"
                    " done.purpose, CAST(:task AS bigint), CAST(:answers AS jsonb),"
                    " :coder_status, :seconds FROM done"
                    " RETURNING id, submission_id, post_id, family, coder_id, revision, kind,"
                    " answers, created_at",
                    **params,
                )
            else:
                rows = self.conn.run(
                    "INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
                    " kind, task_id, answers, coder_status, seconds_spent)"
                    " VALUES (CAST(:sid AS uuid), :post, :family, :coder, :revision, :kind,"
                    " :task, CAST(:answers AS jsonb), :coder_status, :seconds)"
                    " RETURNING id, submission_id, post_id, family, coder_id, revision, kind,"
                    " answers, created_at",
                    **params,
                )
        except pg8000.native.DatabaseError as exc:
            if sqlstate(exc) == "23505" and "submission_id" in _constraint(exc):
                raise DuplicateSubmission(label["submission_id"]) from None
            if sqlstate(exc) == "23505":
                raise Conflict(
                    "another revision of this label was saved at the same moment; reload and "
                    "try again"
                ) from None
            raise
        return _rows_as_dicts(self.conn, rows)[0] if rows else None

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

    def practice_answers_all(self) -> list[dict[str, Any]]:
        """Every coder's first answer to each practice post, with the gold answers (for the
        managers' table)."""
        rows = self.conn.run(
            "SELECT l.coder_id, l.family, l.answers, g.answers AS gold FROM labels l"
            " JOIN gold_posts g ON g.post_id = l.post_id AND g.family = l.family"
            " WHERE l.kind = 'practice' AND l.revision = 1 ORDER BY l.id",
        )
        return _rows_as_dicts(self.conn, rows)

    def release_leases(self, coder_id: int, family: str | None) -> dict[str, int]:
        """Release the coder's live leases (of one family, or all): task slots back to open,
        unanswered gold and practice leases dropped. Returns how many of each."""
        rows = self.conn.run(
            "WITH t AS ("
            "  UPDATE tasks SET status = 'open', coder_id = NULL, leased_at = NULL,"
            "    lease_expires_at = NULL"
            "  WHERE coder_id = :coder AND status = 'leased'"
            "    AND (CAST(:family AS text) IS NULL OR family = CAST(:family AS text))"
            "  RETURNING id),"
            " g AS ("
            "  DELETE FROM gold_leases WHERE coder_id = :coder AND done_at IS NULL"
            "    AND (CAST(:family AS text) IS NULL OR family = CAST(:family AS text))"
            "  RETURNING post_id)"
            " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM g)",
            coder=coder_id,
            family=family,
        )
        return {"tasks": int(rows[0][0]), "gold": int(rows[0][1])}

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
            " AND kind IN ('task', 'qa') AND created_at >= :since GROUP BY family",
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
            "   AND l.kind IN ('task', 'qa') AND l.created_at >= :week"
            " GROUP BY c.id ORDER BY c.id",
            day=day_start,
            week=week_start,
        )
        return _rows_as_dicts(self.conn, rows)


def _lease(post_id: str, text: str, image_key: str | None, keyword: str | None, family: str,
           expires: datetime, kind: str, task_id: int | None = None) -> dict[str, Any]:
    """A leased post as the service sees it, whatever kind of lease it is."""
    return {
        "post_id": post_id,
        "text": text,
        "image_key": image_key,
        "keyword": keyword,
        "family": family,
        "lease_expires_at": expires,
        "task_id": task_id,
        "kind": kind,
    }


def _gold_row(row: list[Any]) -> dict[str, Any]:
    post_id, text, image_key, keyword, family, expires, purpose = row
    return _lease(post_id, text, image_key, keyword, family, expires, purpose)


def _constraint(exc: Exception) -> str:
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return str(info.get("n", "")) + " " + str(info.get("M", ""))
