"""SQL for posts, campaigns with their task slots, and gold posts."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Any

from trainset.store.db import Connection, transaction


class CorpusStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractContextManager[Connection]:
        return transaction(self.conn)

    def upsert_posts(self, posts: Iterable[dict[str, Any]]) -> int:
        """Insert or update posts by id; returns how many were written."""
        count = 0
        for p in posts:
            self.conn.run(
                "INSERT INTO posts (id, text, image_key, keyword, family, author, created_at,"
                " text_hash, extra) VALUES (:id, :text, :image_key, :keyword, :family, :author,"
                " :created_at, :text_hash, CAST(:extra AS jsonb))"
                " ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text,"
                " image_key = EXCLUDED.image_key, keyword = EXCLUDED.keyword,"
                " family = EXCLUDED.family, author = EXCLUDED.author,"
                " created_at = EXCLUDED.created_at, text_hash = EXCLUDED.text_hash,"
                " extra = EXCLUDED.extra",
                id=p["id"],
                text=p["text"],
                image_key=p.get("image_key"),
                keyword=p.get("keyword"),
                family=p.get("family"),
                author=p.get("author"),
                created_at=p.get("created_at"),
                text_hash=p["text_hash"],
                extra=json.dumps(p.get("extra") or {}),
            )
            count += 1
        return count

    @staticmethod
    def copy_payload(import_id: str, batch: int, rows: Sequence[Any]) -> io.BytesIO:
        """The COPY data (CSV) for a batch of checked posts (``trainset.ingest.PostRow``)."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for seq, r in enumerate(rows):
            writer.writerow((
                import_id, batch, seq, r.id, r.text, r.image_key, r.keyword, r.family,
                r.author, r.created_at.isoformat() if r.created_at else None, r.text_hash,
                json.dumps(r.extra) if r.extra else "{}",
            ))
        return io.BytesIO(buffer.getvalue().encode("utf-8"))

    def stage_batch(self, payload: io.BytesIO) -> None:
        """COPY a batch into the staging table (committed at once, so another connection can
        merge it)."""
        self.conn.run(
            "COPY import_staging (import_id, batch, seq, id, text, image_key, keyword, family,"
            " author, created_at, text_hash, extra) FROM STDIN WITH (FORMAT csv)",
            stream=payload,
        )

    def merge_batch(self, import_id: str, batch: int, count: int) -> tuple[int, int, int]:
        """Upsert a staged batch into posts and remove it from staging, in one transaction;
        returns (inserted, updated, unchanged), adding up to ``count``. Within a batch the last
        row with an id wins; an unchanged post is not rewritten."""
        with transaction(self.conn):
            rows_out = self.conn.run(
                "WITH latest AS ("
                "  SELECT DISTINCT ON (id) id, text, image_key, keyword, family, author,"
                "  created_at, text_hash, extra FROM import_staging"
                "  WHERE import_id = CAST(:import_id AS uuid) AND batch = :batch"
                "  ORDER BY id, seq DESC),"
                " written AS ("
                "  INSERT INTO posts AS p (id, text, image_key, keyword, family, author,"
                "   created_at, text_hash, extra)"
                "  SELECT * FROM latest"
                "  ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text,"
                "   image_key = EXCLUDED.image_key, keyword = EXCLUDED.keyword,"
                "   family = EXCLUDED.family, author = EXCLUDED.author,"
                "   created_at = EXCLUDED.created_at, text_hash = EXCLUDED.text_hash,"
                "   extra = EXCLUDED.extra, imported_at = now()"
                "  WHERE (p.text, p.image_key, p.keyword, p.family, p.author, p.created_at,"
                "   p.extra) IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.image_key,"
                "   EXCLUDED.keyword, EXCLUDED.family, EXCLUDED.author, EXCLUDED.created_at,"
                "   EXCLUDED.extra)"
                "  RETURNING (xmax = 0) AS inserted)"
                " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
                " FROM written",
                import_id=import_id,
                batch=batch,
            )
            self.conn.run(
                "DELETE FROM import_staging WHERE import_id = CAST(:import_id AS uuid)"
                " AND batch = :batch",
                import_id=import_id,
                batch=batch,
            )
        inserted, updated = rows_out[0]
        # Unchanged: rows equal to what is stored, and earlier rows of an id repeated here.
        return inserted, updated, count - inserted - updated

    def discard_import(self, import_id: str) -> None:
        """Drop what an interrupted import left in staging."""
        self.conn.run("DELETE FROM import_staging WHERE import_id = CAST(:import_id AS uuid)",
                      import_id=import_id)

    def create_campaign(
        self,
        *,
        name: str,
        family: str,
        labels_per_post: int,
        post_ids: Sequence[str],
        inclusion_probs: Sequence[float | None] | None = None,
        strategy: str = "manual",
        params: dict[str, Any] | None = None,
        seed: int | None = None,
        budget: int | None = None,
    ) -> int:
        """A campaign over ``post_ids`` with ``labels_per_post`` task slots per post."""
        rows = self.conn.run(
            "INSERT INTO campaigns (name, family, labels_per_post, strategy, params, seed, budget)"
            " VALUES (:name, :family, :k, :strategy, CAST(:params AS jsonb), :seed, :budget)"
            " RETURNING id",
            name=name,
            family=family,
            k=labels_per_post,
            strategy=strategy,
            params=json.dumps(params or {}),
            seed=seed,
            budget=budget,
        )
        campaign_id = rows[0][0]
        probs = list(inclusion_probs) if inclusion_probs is not None else [None] * len(post_ids)
        self.conn.run(
            "INSERT INTO campaign_posts (campaign_id, post_id, inclusion_prob)"
            " SELECT :cid, u.post_id, u.prob"
            " FROM unnest(CAST(:ids AS text[]), CAST(:probs AS float8[])) AS u(post_id, prob)",
            cid=campaign_id,
            ids=list(post_ids),
            probs=probs,
        )
        self.conn.run(
            "INSERT INTO tasks (campaign_id, post_id, family, slot)"
            " SELECT :cid, cp.post_id, :family, s.slot"
            " FROM campaign_posts cp CROSS JOIN generate_series(1, :k) AS s(slot)"
            " WHERE cp.campaign_id = :cid ORDER BY cp.post_id, s.slot",
            cid=campaign_id,
            family=family,
            k=labels_per_post,
        )
        return campaign_id

    def family_candidates(self, family: str) -> list[list[Any]]:
        """Posts of ``family`` that may be sampled: not gold posts, not in another campaign of
        the family. Rows: id, text, text_hash, keyword, language (from extra->>'lang')."""
        return self.conn.run(
            "SELECT p.id, p.text, p.text_hash, p.keyword, p.extra->>'lang' FROM posts p"
            " WHERE p.family = :family"
            "   AND NOT EXISTS (SELECT 1 FROM gold_posts g WHERE g.post_id = p.id)"
            "   AND NOT EXISTS (SELECT 1 FROM campaign_posts cp JOIN campaigns c"
            "                   ON c.id = cp.campaign_id WHERE cp.post_id = p.id"
            "                   AND c.family = :family)"
            " ORDER BY p.id",
            family=family,
        )

    def family_counts(self, family: str) -> dict[str, int]:
        """Posts in the family, and how many are gold or already in one of its campaigns."""
        rows = self.conn.run(
            "SELECT count(*),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM gold_posts g WHERE g.post_id = p.id)),"
            " count(*) FILTER (WHERE EXISTS (SELECT 1 FROM campaign_posts cp JOIN campaigns c"
            "   ON c.id = cp.campaign_id WHERE cp.post_id = p.id AND c.family = :family)),"
            " max(p.imported_at)"
            " FROM posts p WHERE p.family = :family",
            family=family,
        )
        total, gold, in_campaigns, newest = rows[0]
        return {"posts": total, "gold": gold, "in_campaigns": in_campaigns,
                "newest_import": newest.isoformat() if newest else None}

    def labeled_answers_by_keyword(self, family: str) -> list[list[Any]]:
        """Current real-task labels of the family: keyword and answers, for pilot yields."""
        return self.conn.run(
            "SELECT p.keyword, l.answers FROM current_labels l JOIN posts p ON p.id = l.post_id"
            " WHERE l.family = :family AND l.kind = 'task'",
            family=family,
        )

    def create_sampled_campaign(
        self, *, name: str, family: str, labels_per_post: int, strategy: str,
        params: dict[str, Any], seed: int, budget: int, snapshot: dict[str, Any],
        filters: dict[str, Any], strata: Sequence[Any], sampled: Sequence[Any],
    ) -> int:
        """A campaign with its strata, its sampled posts (stratum, inclusion probability) and
        their task slots, in one transaction."""
        with transaction(self.conn):
            campaign_id = self.conn.run(
                "INSERT INTO campaigns (name, family, labels_per_post, strategy, params, seed,"
                " budget, snapshot, filters) VALUES (:name, :family, :k, :strategy,"
                " CAST(:params AS jsonb), :seed, :budget, CAST(:snapshot AS jsonb),"
                " CAST(:filters AS jsonb)) RETURNING id",
                name=name, family=family, k=labels_per_post, strategy=strategy,
                params=json.dumps(params), seed=seed, budget=budget,
                snapshot=json.dumps(snapshot), filters=json.dumps(filters),
            )[0][0]
            self.conn.run(
                "INSERT INTO campaign_strata (campaign_id, stratum, population, sampled,"
                " pilot_yield, expected_positives)"
                " SELECT :cid, u.stratum, u.population, u.sampled, u.pilot, u.expected"
                " FROM unnest(CAST(:strata AS text[]), CAST(:populations AS int[]),"
                "   CAST(:counts AS int[]), CAST(:pilots AS float8[]),"
                "   CAST(:expected AS float8[]))"
                "   AS u(stratum, population, sampled, pilot, expected)",
                cid=campaign_id,
                strata=[s.stratum for s in strata],
                populations=[s.population for s in strata],
                counts=[s.sampled for s in strata],
                pilots=[s.pilot_yield for s in strata],
                expected=[s.expected_positives for s in strata],
            )
            self.conn.run(
                "INSERT INTO campaign_posts (campaign_id, post_id, inclusion_prob, stratum)"
                " SELECT :cid, u.post_id, u.prob, u.stratum"
                " FROM unnest(CAST(:ids AS text[]), CAST(:probs AS float8[]),"
                "   CAST(:strata AS text[])) AS u(post_id, prob, stratum)",
                cid=campaign_id,
                ids=[p.post_id for p in sampled],
                probs=[p.inclusion_prob for p in sampled],
                strata=[p.stratum for p in sampled],
            )
            self.conn.run(
                "INSERT INTO tasks (campaign_id, post_id, family, slot)"
                " SELECT :cid, cp.post_id, :family, s.slot"
                " FROM campaign_posts cp CROSS JOIN generate_series(1, :k) AS s(slot)"
                " WHERE cp.campaign_id = :cid ORDER BY cp.post_id, s.slot",
                cid=campaign_id, family=family, k=labels_per_post,
            )
        return campaign_id

    def find_campaign(self, family: str, name: str | None) -> dict[str, Any] | None:
        """The named campaign of the family, or its newest one."""
        rows = self.conn.run(
            "SELECT id, name, family, strategy, seed, budget, labels_per_post, created_at"
            " FROM campaigns WHERE family = :family"
            " AND (CAST(:name AS text) IS NULL OR name = CAST(:name AS text))"
            " ORDER BY id DESC LIMIT 1",
            family=family, name=name,
        )
        if not rows:
            return None
        keys = ("id", "name", "family", "strategy", "seed", "budget", "labels_per_post",
                "created_at")
        return dict(zip(keys, rows[0], strict=True))

    def campaign_name_taken(self, name: str) -> bool:
        return bool(self.conn.run("SELECT 1 FROM campaigns WHERE name = :name", name=name))

    def campaign_strata(self, campaign_id: int) -> dict[str, int]:
        return {s: n for s, n in self.conn.run(
            "SELECT stratum, population FROM campaign_strata WHERE campaign_id = :cid",
            cid=campaign_id)}

    def campaign_frame_keywords(self, campaign_id: int) -> dict[str, int]:
        """Posts per keyword in the frame the campaign drew from (from its snapshot)."""
        rows = self.conn.run(
            "SELECT snapshot->'keyword_populations' FROM campaigns WHERE id = :cid",
            cid=campaign_id)
        return dict(rows[0][0] or {}) if rows else {}

    def campaign_labels(self, campaign_id: int) -> list[list[Any]]:
        """Current real-task and imported (prior) labels of the campaign's posts: post,
        stratum, keyword, answers. Gold and practice answers score coders and are left out."""
        return self.conn.run(
            "SELECT cp.post_id, cp.stratum, p.keyword, l.answers"
            " FROM campaign_posts cp JOIN posts p ON p.id = cp.post_id"
            " JOIN campaigns c ON c.id = cp.campaign_id"
            " JOIN current_labels l ON l.post_id = cp.post_id AND l.family = c.family"
            "   AND l.kind IN ('task', 'imported')"
            " WHERE cp.campaign_id = :cid ORDER BY cp.post_id",
            cid=campaign_id,
        )

    def upsert_gold(
        self, post_id: str, family: str, purpose: str, answers: dict[str, Any], rationale: str
    ) -> None:
        self.conn.run(
            "INSERT INTO gold_posts (post_id, family, purpose, answers, rationale)"
            " VALUES (:post, :family, :purpose, CAST(:answers AS jsonb), :rationale)"
            " ON CONFLICT (post_id, family) DO UPDATE SET purpose = EXCLUDED.purpose,"
            " answers = EXCLUDED.answers, rationale = EXCLUDED.rationale",
            post=post_id,
            family=family,
            purpose=purpose,
            answers=json.dumps(answers),
            rationale=rationale,
        )

    def count_posts(self) -> int:
        return int(self.conn.run("SELECT count(*) FROM posts")[0][0])

