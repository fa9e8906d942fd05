"""SQL for label quality: the labels and gold to judge, quality runs, consensus, re-labeling,
exports and coder reports."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from trainset.store.db import Connection, transaction


def _dicts(conn: Connection, rows: list[list[Any]]) -> list[dict[str, Any]]:
    names = [c["name"] for c in conn.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


class QualityStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return transaction(self.conn)

    def family_labels(self, family: str, since: datetime | None = None,
                      until: datetime | None = None) -> list[dict[str, Any]]:
        """Current labels of the family (latest revision per post and coder), every kind
        (imported prior labels too, with their ``source``; None for live labels), with the
        coder's name and status at labeling time.

        ``since``/``until`` select by the time of the first label (revision 1), which each row
        carries as ``first_labeled_at``: a post is counted once, on the day it was first
        labeled, however often it is revised later, the way the coder's own counter and the
        manager's table count it."""
        rows = self.conn.run(
            "SELECT l.id, l.post_id, l.family, l.coder_id, c.name AS coder, l.kind,"
            " l.coder_status, l.answers, l.created_at, l.seconds_spent, l.revision,"
            " f.created_at AS first_labeled_at, src.name AS source"
            " FROM current_labels l JOIN coders c ON c.id = l.coder_id"
            " LEFT JOIN label_imports li ON li.id = l.import_id"
            " LEFT JOIN label_sources src ON src.id = li.source_id"
            " JOIN labels f ON f.post_id = l.post_id AND f.family = l.family"
            "  AND f.coder_id = l.coder_id AND f.revision = 1"
            " WHERE l.family = :family"
            " AND (CAST(:since AS timestamptz) IS NULL OR f.created_at >= :since)"
            " AND (CAST(:until AS timestamptz) IS NULL OR f.created_at < :until)"
            " ORDER BY l.post_id, c.name",
            family=family, since=since, until=until,
        )
        return _dicts(self.conn, rows)

    def gold_answers(self, family: str) -> dict[str, dict[str, Any]]:
        rows = self.conn.run(
            "SELECT post_id, answers FROM gold_posts WHERE family = :family AND purpose = 'qa'",
            family=family,
        )
        return {post_id: answers for post_id, answers in rows}

    def save_run(self, family: str, rules: dict[str, Any], summary: dict[str, Any],
                 items: Sequence[Any]) -> int:
        """A quality run with its consensus items, in one transaction (screening follows)."""
        with transaction(self.conn):
            run_id = self.conn.run(
                "INSERT INTO quality_runs (family, rules, summary)"
                " VALUES (:family, CAST(:rules AS jsonb), CAST(:summary AS jsonb)) RETURNING id",
                family=family, rules=json.dumps(rules), summary=json.dumps(summary),
            )[0][0]
            self.conn.run(
                "INSERT INTO consensus_items (run_id, post_id, item, value, posterior,"
                " confidence, n_labels)"
                " SELECT :run, u.post_id, u.item, u.value, u.posterior, u.confidence, u.n"
                " FROM unnest(CAST(:posts AS text[]), CAST(:items AS text[]),"
                "   CAST(:values AS boolean[]), CAST(:posteriors AS float8[]),"
                "   CAST(:confidences AS float8[]), CAST(:ns AS int[]))"
                "   AS u(post_id, item, value, posterior, confidence, n)",
                run=run_id,
                posts=[i.post_id for i in items], items=[i.item for i in items],
                values=[i.value for i in items], posteriors=[i.posterior for i in items],
                confidences=[i.confidence for i in items], ns=[i.n_labels for i in items],
            )
        return run_id

    def run_items(self, run_id: int) -> list[list[Any]]:
        """(post_id, item, confidence, n_labels) of a run's consensus."""
        return self.conn.run(
            "SELECT post_id, item, confidence, n_labels FROM consensus_items"
            " WHERE run_id = :run ORDER BY post_id, item", run=run_id)

    def run_by_id(self, run_id: int) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, family, rules, summary, created_at FROM quality_runs WHERE id = :id",
            id=run_id)
        return _dicts(self.conn, rows)[0] if rows else None

    def save_screening(self, run_id: int, screened: Sequence[dict[str, Any]],
                       summary: dict[str, Any]) -> None:
        """A run's screening verdicts and its completed summary, in one transaction."""
        with transaction(self.conn):
            self.conn.run("DELETE FROM screened_posts WHERE run_id = :run", run=run_id)
            self.conn.run(
                "INSERT INTO screened_posts (run_id, post_id, kept, reason, confidence, n_labels)"
                " SELECT :run, u.post_id, u.kept, u.reason, u.confidence, u.n"
                " FROM unnest(CAST(:posts AS text[]), CAST(:kept AS boolean[]),"
                "   CAST(:reasons AS text[]), CAST(:confidences AS float8[]),"
                "   CAST(:ns AS int[])) AS u(post_id, kept, reason, confidence, n)",
                run=run_id,
                posts=[s["post_id"] for s in screened], kept=[s["kept"] for s in screened],
                reasons=[s["reason"] for s in screened],
                confidences=[s["confidence"] for s in screened],
                ns=[s["n_labels"] for s in screened],
            )
            self.conn.run("UPDATE quality_runs SET summary = CAST(:summary AS jsonb)"
                          " WHERE id = :run", run=run_id, summary=json.dumps(summary))

    def request_relabels(self, family: str, post_ids: Sequence[str], max_labels: int,
                         reason: str) -> int:
        """One more open task slot for each post (in its newest campaign of the family),
        unless it already has an open slot or ``max_labels`` slots. Returns slots added."""
        rows = self.conn.run(
            "WITH wanted AS ("
            "  SELECT DISTINCT ON (t.post_id) t.campaign_id, t.post_id"
            "  FROM tasks t WHERE t.family = :family AND t.post_id = ANY(:posts)"
            "  ORDER BY t.post_id, t.campaign_id DESC),"
            " slots AS ("
            "  SELECT w.campaign_id, w.post_id, count(t.id) AS n,"
            "   count(t.id) FILTER (WHERE t.status <> 'done') AS pending, max(t.slot) AS top"
            "  FROM wanted w JOIN tasks t ON t.campaign_id = w.campaign_id"
            "   AND t.post_id = w.post_id GROUP BY w.campaign_id, w.post_id)"
            " INSERT INTO tasks (campaign_id, post_id, family, slot, reason)"
            " SELECT campaign_id, post_id, :family, top + 1, :reason FROM slots"
            " WHERE pending = 0 AND n < :cap"
            " RETURNING post_id",
            family=family, posts=list(post_ids), cap=max_labels, reason=reason,
        )
        return len(rows)

    def latest_run(self, family: str) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, family, rules, summary, created_at FROM quality_runs"
            " WHERE family = :family ORDER BY id DESC LIMIT 1",
            family=family,
        )
        return _dicts(self.conn, rows)[0] if rows else None

    def judged_rows(self, run_id: int) -> list[dict[str, Any]]:
        """Every post a run judged (kept or screened out) with its consensus items and its
        newest design weight from a campaign of the run's family: the campaign, stratum,
        weight and the stratum's population (None for posts sampled without a design)."""
        rows = self.conn.run(
            "SELECT s.post_id, s.kept, p.text, p.keyword, p.image_key, p.author, s.confidence,"
            " s.n_labels, w.weight, w.campaign_id, w.stratum, cs.population,"
            " (SELECT json_object_agg(c.item, json_build_array(c.value, c.posterior))"
            "   FROM consensus_items c WHERE c.run_id = s.run_id AND c.post_id = s.post_id)"
            "   AS items"
            " FROM screened_posts s JOIN posts p ON p.id = s.post_id"
            " JOIN quality_runs r ON r.id = s.run_id"
            " LEFT JOIN LATERAL (SELECT pw.campaign_id, pw.stratum, pw.weight"
            "   FROM post_weights pw JOIN campaigns c ON c.id = pw.campaign_id"
            "   WHERE pw.post_id = s.post_id AND c.family = r.family"
            "   ORDER BY pw.campaign_id DESC LIMIT 1) w ON true"
            " LEFT JOIN campaign_strata cs ON cs.campaign_id = w.campaign_id"
            "   AND cs.stratum = w.stratum"
            " WHERE s.run_id = :run ORDER BY s.post_id",
            run=run_id,
        )
        return _dicts(self.conn, rows)

    def consensus_for_run(self, run_id: int) -> dict[tuple[str, str], bool]:
        return {(p, i): v for p, i, v in self.conn.run(
            "SELECT post_id, item, value FROM consensus_items WHERE run_id = :run", run=run_id)}
