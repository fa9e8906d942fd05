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
        """The family's known truths: QA gold posts' answers, and for each adjudicated post
        its newest adjudication (``adjudicated_answers``). Practice posts are not here."""
        rows = self.conn.run(
            "SELECT post_id, answers FROM gold_posts WHERE family = :family AND purpose = 'qa'",
            family=family,
        )
        return {**self.adjudicated_answers(family), **{post_id: answers for post_id, answers
                                                      in rows}}

    def adjudicated_answers(self, family: str) -> dict[str, dict[str, Any]]:
        """Each adjudicated post of the family with its newest adjudication's answers."""
        rows = self.conn.run(
            "SELECT DISTINCT ON (post_id) post_id, answers FROM adjudications"
            " WHERE family = :family ORDER BY post_id, id DESC",
            family=family,
        )
        return {post_id: answers for post_id, answers in rows}

    def export_job_settings(self, job_id: str) -> dict[str, Any] | None:
        """The settings an export job was started with (None: a scheduled run, or none)."""
        rows = self.conn.run("SELECT settings FROM export_jobs WHERE id = :id", id=job_id)
        return rows[0][0] if rows else None

    # ---- review and adjudication ---------------------------------------------------------

    def add_adjudication(self, post_id: str, family: str, answers: dict[str, Any], note: str,
                         author_id: int) -> dict[str, Any]:
        rows = self.conn.run(
            "INSERT INTO adjudications (post_id, family, answers, note, author_id)"
            " VALUES (:post, :family, CAST(:answers AS jsonb), :note, :author)"
            " RETURNING id, post_id, family, answers, note, created_at,"
            " (SELECT name FROM coders WHERE id = :author) AS author",
            post=post_id, family=family, answers=json.dumps(answers), note=note,
            author=author_id,
        )
        return _dicts(self.conn, rows)[0]

    def post_adjudications(self, post_id: str, family: str) -> list[dict[str, Any]]:
        """Every adjudication of the post, newest first, with its author's name."""
        rows = self.conn.run(
            "SELECT a.id, a.post_id, a.family, a.answers, a.note, a.created_at,"
            " c.name AS author FROM adjudications a JOIN coders c ON c.id = a.author_id"
            " WHERE a.post_id = :post AND a.family = :family ORDER BY a.id DESC",
            post=post_id, family=family,
        )
        return _dicts(self.conn, rows)

    def post_overview(self, post_id: str) -> dict[str, Any] | None:
        """The post, the campaigns it is in (id, name, family) and its gold purposes."""
        rows = self.conn.run(
            "SELECT p.id, p.text, p.keyword, p.family, p.image_key, p.author, p.created_at,"
            " COALESCE((SELECT json_agg(json_build_object('id', c.id, 'name', c.name,"
            "   'family', c.family) ORDER BY c.id) FROM campaign_posts cp"
            "   JOIN campaigns c ON c.id = cp.campaign_id WHERE cp.post_id = p.id), '[]')"
            "   AS campaigns,"
            " COALESCE((SELECT json_agg(json_build_object('family', g.family,"
            "   'purpose', g.purpose)) FROM gold_posts g WHERE g.post_id = p.id), '[]') AS gold"
            " FROM posts p WHERE p.id = :post",
            post=post_id,
        )
        return _dicts(self.conn, rows)[0] if rows else None

    def post_labels(self, post_id: str, family: str) -> list[dict[str, Any]]:
        """Every label of the post in the family, every revision, oldest first: coder,
        revision, kind, answers, seconds, status at labeling time, whether it is the coder's
        current one, and the source of an imported label."""
        rows = self.conn.run(
            "SELECT l.id, c.name AS coder, l.revision, l.kind, l.answers, l.seconds_spent,"
            " l.coder_status, l.created_at, src.name AS source,"
            " l.revision = max(l.revision) OVER (PARTITION BY l.coder_id) AS current"
            " FROM labels l JOIN coders c ON c.id = l.coder_id"
            " LEFT JOIN label_imports li ON li.id = l.import_id"
            " LEFT JOIN label_sources src ON src.id = li.source_id"
            " WHERE l.post_id = :post AND l.family = :family ORDER BY l.id",
            post=post_id, family=family,
        )
        return _dicts(self.conn, rows)

    def post_skips(self, post_id: str, family: str) -> list[dict[str, Any]]:
        rows = self.conn.run(
            "SELECT c.name AS coder, s.reason, s.created_at FROM skips s"
            " JOIN coders c ON c.id = s.coder_id"
            " WHERE s.post_id = :post AND s.family = :family ORDER BY s.id",
            post=post_id, family=family,
        )
        return _dicts(self.conn, rows)

    def run_post(self, run_id: int, post_id: str) -> dict[str, Any] | None:
        """A run's verdict on one post: kept or not (and why), confidence, labels, and its
        consensus items ``{item: [value, posterior, confidence]}``; None when not judged."""
        rows = self.conn.run(
            "SELECT s.kept, s.reason, s.confidence, s.n_labels,"
            " (SELECT json_object_agg(c.item, json_build_array(c.value, c.posterior,"
            "   c.confidence)) FROM consensus_items c"
            "   WHERE c.run_id = :run AND c.post_id = :post) AS items"
            " FROM screened_posts s WHERE s.run_id = :run AND s.post_id = :post",
            run=run_id, post=post_id,
        )
        return _dicts(self.conn, rows)[0] if rows else None

    def review_page(self, family: str, run_id: int | None, campaign_id: int | None,
                    keyword: str | None, max_confidence: float | None, limit: int,
                    offset: int) -> list[dict[str, Any]]:
        """Posts of the family's campaigns with at least one real (task or imported) label,
        least certain first (by the run's confidence; not yet judged last), then by id; each
        with its newest campaign of the family, its labels, the run's verdict and whether it
        was adjudicated."""
        rows = self.conn.run(
            "WITH posts_in AS ("
            "  SELECT DISTINCT ON (cp.post_id) cp.post_id, c.id AS campaign_id,"
            "   c.name AS campaign FROM campaign_posts cp JOIN campaigns c"
            "   ON c.id = cp.campaign_id WHERE c.family = :family"
            "   AND (CAST(:campaign AS bigint) IS NULL OR c.id = CAST(:campaign AS bigint))"
            "  ORDER BY cp.post_id, c.id DESC)"
            " SELECT pi.post_id, p.text, p.keyword, pi.campaign_id, pi.campaign,"
            "  (SELECT count(*) FROM current_labels l WHERE l.post_id = pi.post_id"
            "   AND l.family = :family AND l.kind IN ('task', 'imported')) AS labels,"
            "  s.confidence, s.kept,"
            "  EXISTS (SELECT 1 FROM adjudications a WHERE a.post_id = pi.post_id"
            "   AND a.family = :family) AS adjudicated"
            " FROM posts_in pi JOIN posts p ON p.id = pi.post_id"
            " LEFT JOIN screened_posts s ON s.run_id = CAST(:run AS bigint)"
            "  AND s.post_id = pi.post_id"
            " WHERE (CAST(:keyword AS text) IS NULL OR p.keyword = CAST(:keyword AS text))"
            # real against real: a confidence the API showed, sent back, selects its post
            "  AND (CAST(:max_conf AS real) IS NULL OR s.confidence <= CAST(:max_conf AS real))"
            "  AND EXISTS (SELECT 1 FROM labels l WHERE l.post_id = pi.post_id"
            "   AND l.family = :family AND l.kind IN ('task', 'imported'))"
            " ORDER BY s.confidence ASC NULLS LAST, pi.post_id LIMIT :limit OFFSET :offset",
            family=family, run=run_id, campaign=campaign_id, keyword=keyword,
            max_conf=max_confidence, limit=limit, offset=offset,
        )
        return _dicts(self.conn, rows)

    def relabel_queue(self, family: str) -> list[dict[str, Any]]:
        """Task slots added beyond a campaign's labels per post (re-label requests) that are
        not done yet."""
        rows = self.conn.run(
            "SELECT t.post_id, t.slot, t.status, t.reason, t.campaign_id FROM tasks t"
            " WHERE t.family = :family AND t.reason IS NOT NULL AND t.status <> 'done'"
            " ORDER BY t.id",
            family=family,
        )
        return _dicts(self.conn, rows)

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
