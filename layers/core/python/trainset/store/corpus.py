"""SQL for posts, campaigns with their task slots, and gold posts."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from pg8000.native import DatabaseError

from trainset.store.db import Connection, sqlstate, transaction

NO_KEYWORD = "(no keyword)"  # trainset.corpus.sampling.NO_KEYWORD: a post without a keyword


def _dicts(conn: Connection, rows: list[list[Any]]) -> list[dict[str, Any]]:
    names = [c["name"] for c in conn.columns]
    return [dict(zip(names, row, strict=True)) for row in rows]


class CorpusStore:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._staged: dict[tuple[str, int], Any] = {}  # import batches merge_batch writes

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

    # ---- the bulk import (trainset.services.ingest) --------------------------------------

    def stage_batch(self, import_id: str, batch: int, rows: Any) -> None:
        """Prepare a batch of checked posts (a ``pyarrow.Table`` as
        ``trainset.corpus.columnar.POSTS_SCHEMA``, each id once) for ``merge_batch``: its
        COPY data for posts, built here so a merging thread only has to send it."""
        self._staged[(import_id, batch)] = (rows, json.dumps(rows["id"].to_pylist()),
                                            _copy_data(rows, ()))

    def merge_batch(self, import_id: str, batch: int, count: int) -> tuple[int, int, int]:
        """Write a staged batch into posts in one transaction; returns (inserted, updated,
        unchanged), adding up to ``count``. When none of its ids is stored yet (a first
        import) the batch is COPied straight into posts. Otherwise it is COPied into the
        staging table and upserted from there, leaving unchanged posts as they are."""
        rows, ids, data = self._staged.pop((import_id, batch))
        try:
            with transaction(self.conn):
                if not self._any_stored(ids):
                    self.conn.run(
                        "COPY posts (id, text, image_key, keyword, family, author, created_at,"
                        " text_hash, extra) FROM STDIN WITH (FORMAT binary)",
                        stream=data)
                    return count, 0, 0
        except DatabaseError as exc:
            if sqlstate(exc) != "23505":  # another writer stored one of these ids meanwhile
                raise
        with transaction(self.conn):
            self.conn.run(
                "COPY import_staging (import_id, batch, seq, id, text, image_key, keyword,"
                " family, author, created_at, text_hash, extra) FROM STDIN WITH (FORMAT binary)",
                stream=_copy_data(rows, (import_id, batch)))
            rows_out = self.conn.run(
                "WITH written AS ("
                "  INSERT INTO posts AS p (id, text, image_key, keyword, family, author,"
                "   created_at, text_hash, extra)"
                "  SELECT id, text, image_key, keyword, family, author, created_at, text_hash,"
                "   extra FROM import_staging"
                "  WHERE import_id = CAST(:import_id AS uuid) AND batch = :batch"
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
        return inserted, updated, count - inserted - updated  # unchanged: equal to the stored

    def _any_stored(self, ids: str) -> bool:
        """Whether any of the ids (a JSON array) is a stored post. One index range scan from
        the batch's least to its greatest id answers for a first import whose ids do not
        interleave with stored ones; only when it finds some is each id looked up."""
        return self.conn.run(
            "WITH batch AS (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb)) AS id)"
            " SELECT EXISTS (SELECT 1 FROM posts WHERE id BETWEEN (SELECT min(id) FROM batch)"
            "  AND (SELECT max(id) FROM batch))"
            " AND EXISTS (SELECT 1 FROM posts WHERE id = ANY(ARRAY(SELECT id FROM batch)))",
            ids=ids,
        )[0][0]

    def discard_import(self, import_id: str) -> None:
        """Drop what an interrupted import left staged."""
        for key in [k for k in self._staged if k[0] == import_id]:
            del self._staged[key]
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

    def gold_among(self, post_ids: Sequence[str]) -> set[str]:
        """Which of ``post_ids`` are gold or practice posts (of any family)."""
        rows = self.conn.run(
            "SELECT DISTINCT post_id FROM gold_posts WHERE post_id = ANY(CAST(:ids AS text[]))",
            ids=list(post_ids))
        return {r[0] for r in rows}

    def labeled_answers_by_keyword(self, family: str) -> list[list[Any]]:
        """Current labels of real posts in the family (tasks, and labels imported from other
        tools): keyword and answers, for pilot yields."""
        return self.conn.run(
            "SELECT p.keyword, l.answers FROM current_labels l JOIN posts p ON p.id = l.post_id"
            " WHERE l.family = :family AND l.kind IN ('task', 'imported')",
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

    def campaign_by_id(self, campaign_id: int) -> dict[str, Any] | None:
        rows = self.conn.run(
            "SELECT id, name, family, strategy, seed, budget, labels_per_post, created_at"
            " FROM campaigns WHERE id = :id", id=campaign_id)
        if not rows:
            return None
        keys = ("id", "name", "family", "strategy", "seed", "budget", "labels_per_post",
                "created_at")
        return dict(zip(keys, rows[0], strict=True))

    def campaign_overview(self, family: str | None) -> list[dict[str, Any]]:
        """Campaigns (of a family, or all), newest first, with their task slots open (free,
        or leased but expired), leased, done, and their posts with every slot done."""
        rows = self.conn.run(
            "SELECT c.id, c.name, c.family, c.strategy, c.seed, c.budget, c.labels_per_post,"
            " c.status, c.created_at, c.params->>'target' AS target,"
            " c.params->>'yields_source' AS yields_source,"
            " (SELECT count(*) FROM campaign_posts cp WHERE cp.campaign_id = c.id) AS posts,"
            " COALESCE(t.slots, 0) AS slots, COALESCE(t.open, 0) AS open,"
            " COALESCE(t.leased, 0) AS leased, COALESCE(t.done, 0) AS done,"
            " COALESCE(t.posts_done, 0) AS posts_done"
            " FROM campaigns c LEFT JOIN LATERAL ("
            "  SELECT count(*) AS slots,"
            "   count(*) FILTER (WHERE s.status = 'open' OR (s.status = 'leased'"
            "    AND s.lease_expires_at <= now())) AS open,"
            "   count(*) FILTER (WHERE s.status = 'leased' AND s.lease_expires_at > now())"
            "    AS leased,"
            "   count(*) FILTER (WHERE s.status = 'done') AS done,"
            "   count(DISTINCT s.post_id) - count(DISTINCT s.post_id)"
            "    FILTER (WHERE s.status <> 'done') AS posts_done"
            "  FROM tasks s WHERE s.campaign_id = c.id) t ON true"
            " WHERE CAST(:family AS text) IS NULL OR c.family = CAST(:family AS text)"
            " ORDER BY c.id DESC",
            family=family,
        )
        return _dicts(self.conn, rows)

    def campaign_keyword_progress(self, campaign_ids: Sequence[int]) -> list[dict[str, Any]]:
        """Per campaign and keyword: posts, posts with every slot done, slots done and in all,
        and the keyword's population in the frame (None without a design)."""
        if not campaign_ids:
            return []
        rows = self.conn.run(
            "WITH per_post AS ("
            "  SELECT cp.campaign_id, COALESCE(p.keyword, :none) AS keyword, cp.post_id,"
            "   count(s.id) AS slots, count(s.id) FILTER (WHERE s.status = 'done') AS done"
            "  FROM campaign_posts cp JOIN posts p ON p.id = cp.post_id"
            "  LEFT JOIN tasks s ON s.campaign_id = cp.campaign_id AND s.post_id = cp.post_id"
            "  WHERE cp.campaign_id = ANY(CAST(:ids AS bigint[]))"
            "  GROUP BY cp.campaign_id, COALESCE(p.keyword, :none), cp.post_id)"
            " SELECT pp.campaign_id, pp.keyword, count(*) AS posts,"
            "  count(*) FILTER (WHERE pp.slots > 0 AND pp.done = pp.slots) AS posts_done,"
            "  sum(pp.done) AS slots_done, sum(pp.slots) AS slots,"
            "  max(cs.population) AS population"
            " FROM per_post pp LEFT JOIN campaign_strata cs"
            "  ON cs.campaign_id = pp.campaign_id AND cs.stratum = pp.keyword"
            " GROUP BY pp.campaign_id, pp.keyword ORDER BY pp.campaign_id DESC, pp.keyword",
            ids=list(campaign_ids), none=NO_KEYWORD,
        )
        return [{**r, "slots_done": int(r["slots_done"]), "slots": int(r["slots"])}
                for r in _dicts(self.conn, rows)]

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


    # ---- gold and practice sets (trainset.services.gold) ----------------------------------

    def campaigns_of_posts(self, post_ids: Sequence[str]) -> dict[str, str]:
        """Of ``post_ids``, those in a campaign of any family, with that campaign's name: such
        a post is labeled for real, so it may not become gold."""
        rows = self.conn.run(
            "SELECT DISTINCT ON (cp.post_id) cp.post_id, c.name FROM campaign_posts cp"
            " JOIN campaigns c ON c.id = cp.campaign_id"
            " WHERE cp.post_id = ANY(CAST(:ids AS text[])) ORDER BY cp.post_id, c.id",
            ids=list(post_ids),
        )
        return {post_id: name for post_id, name in rows}

    def upsert_gold_posts(self, posts: Sequence[Any]) -> tuple[set[str], set[str]]:
        """Create the posts (``trainset.corpus.ingest.PostRow``) not in the corpus yet; for the
        others take the row's text and whatever else the row gives (keyword, image, author, date,
        extra keys), keeping the stored values the row leaves empty and the stored family.
        Returns (created ids, changed ids); an equal post is not rewritten."""
        if not posts:
            return set(), set()
        rows = self.conn.run(
            "INSERT INTO posts AS p (id, text, image_key, keyword, family, author, created_at,"
            " text_hash, extra)"
            " SELECT u.id, u.text, u.image_key, u.keyword, u.family, u.author,"
            "  CAST(u.created_at AS timestamptz), u.text_hash, CAST(u.extra AS jsonb)"
            " FROM unnest(CAST(:ids AS text[]), CAST(:texts AS text[]),"
            "  CAST(:image_keys AS text[]), CAST(:keywords AS text[]), CAST(:families AS text[]),"
            "  CAST(:authors AS text[]), CAST(:created AS text[]), CAST(:hashes AS text[]),"
            "  CAST(:extras AS text[]))"
            "  AS u(id, text, image_key, keyword, family, author, created_at, text_hash, extra)"
            " ON CONFLICT (id) DO UPDATE SET text = EXCLUDED.text,"
            "  image_key = COALESCE(EXCLUDED.image_key, p.image_key),"
            "  keyword = COALESCE(EXCLUDED.keyword, p.keyword),"
            "  family = COALESCE(p.family, EXCLUDED.family),"
            "  author = COALESCE(EXCLUDED.author, p.author),"
            "  created_at = COALESCE(EXCLUDED.created_at, p.created_at),"
            "  text_hash = EXCLUDED.text_hash, extra = p.extra || EXCLUDED.extra,"
            "  imported_at = now()"
            " WHERE (p.text, p.image_key, p.keyword, p.family, p.author, p.created_at, p.extra)"
            "  IS DISTINCT FROM (EXCLUDED.text, COALESCE(EXCLUDED.image_key, p.image_key),"
            "  COALESCE(EXCLUDED.keyword, p.keyword), COALESCE(p.family, EXCLUDED.family),"
            "  COALESCE(EXCLUDED.author, p.author), COALESCE(EXCLUDED.created_at, p.created_at),"
            "  p.extra || EXCLUDED.extra)"
            " RETURNING p.id, (xmax = 0)",
            ids=[p.id for p in posts],
            texts=[p.text for p in posts],
            image_keys=[p.image_key for p in posts],
            keywords=[p.keyword for p in posts],
            families=[p.family for p in posts],
            authors=[p.author for p in posts],
            created=[p.created_at.isoformat() if p.created_at else None for p in posts],
            hashes=[p.text_hash for p in posts],
            extras=[json.dumps(p.extra or {}) for p in posts],
        )
        return {r[0] for r in rows if r[1]}, {r[0] for r in rows if not r[1]}

    def upsert_gold_rows(
        self, rows: Sequence[tuple[str, str, str, dict[str, Any], str]]
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """Gold rows (post id, family, purpose, answers, rationale), inserted or updated by
        (post, family); returns the keys (inserted, updated). An equal row is not rewritten."""
        if not rows:
            return set(), set()
        out = self.conn.run(
            "INSERT INTO gold_posts AS g (post_id, family, purpose, answers, rationale)"
            " SELECT u.post_id, u.family, u.purpose, CAST(u.answers AS jsonb), u.rationale"
            " FROM unnest(CAST(:ids AS text[]), CAST(:families AS text[]),"
            "  CAST(:purposes AS text[]), CAST(:answers AS text[]), CAST(:rationales AS text[]))"
            "  AS u(post_id, family, purpose, answers, rationale)"
            " ON CONFLICT (post_id, family) DO UPDATE SET purpose = EXCLUDED.purpose,"
            "  answers = EXCLUDED.answers, rationale = EXCLUDED.rationale"
            " WHERE (g.purpose, g.answers, g.rationale)"
            "  IS DISTINCT FROM (EXCLUDED.purpose, EXCLUDED.answers, EXCLUDED.rationale)"
            " RETURNING g.post_id, g.family, (xmax = 0)",
            ids=[r[0] for r in rows],
            families=[r[1] for r in rows],
            purposes=[r[2] for r in rows],
            answers=[json.dumps(r[3]) for r in rows],
            rationales=[r[4] for r in rows],
        )
        return ({(r[0], r[1]) for r in out if r[2]}, {(r[0], r[1]) for r in out if not r[2]})

    _GOLD_KEYS = ("id", "family", "purpose", "answers", "rationale", "gold_created_at", "text",
                  "keyword", "image_key", "author", "created_at")

    def gold_page(self, family: str | None, purpose: str | None, limit: int,
                  before: tuple[str, str] | None) -> list[dict[str, Any]]:
        """Gold posts with their post, newest key first: (family, post id) descending, those
        before the (family, post id) cursor when given."""
        rows = self.conn.run(
            "SELECT g.post_id, g.family, g.purpose, g.answers, g.rationale, g.created_at,"
            " p.text, p.keyword, p.image_key, p.author, p.created_at"
            " FROM gold_posts g JOIN posts p ON p.id = g.post_id"
            " WHERE (CAST(:family AS text) IS NULL OR g.family = CAST(:family AS text))"
            "  AND (CAST(:purpose AS text) IS NULL OR g.purpose = CAST(:purpose AS text))"
            "  AND (CAST(:before_family AS text) IS NULL OR (g.family, g.post_id)"
            "   < (CAST(:before_family AS text), CAST(:before_post AS text)))"
            " ORDER BY g.family DESC, g.post_id DESC LIMIT :limit",
            family=family, purpose=purpose, limit=limit,
            before_family=before[0] if before else None,
            before_post=before[1] if before else None,
        )
        return [dict(zip(self._GOLD_KEYS, r, strict=True)) for r in rows]

    def gold_all(self, family: str | None, purpose: str | None) -> list[dict[str, Any]]:
        """Every gold post (optionally of one family and purpose) with its post, by family
        and id: for listings and exports."""
        rows = self.conn.run(
            "SELECT g.post_id, g.family, g.purpose, g.answers, g.rationale, g.created_at,"
            " p.text, p.keyword, p.image_key, p.author, p.created_at"
            " FROM gold_posts g JOIN posts p ON p.id = g.post_id"
            " WHERE (CAST(:family AS text) IS NULL OR g.family = CAST(:family AS text))"
            "  AND (CAST(:purpose AS text) IS NULL OR g.purpose = CAST(:purpose AS text))"
            " ORDER BY g.family, g.purpose, g.post_id",
            family=family, purpose=purpose,
        )
        return [dict(zip(self._GOLD_KEYS, r, strict=True)) for r in rows]

    def gold_counts(self) -> list[list[Any]]:
        """(family, purpose, gold posts)."""
        return self.conn.run(
            "SELECT family, purpose, count(*) FROM gold_posts GROUP BY family, purpose")

    def trainees_out_of_practice(self) -> list[list[Any]]:
        """(coder id, family) for each trainee who has answered every practice post of a
        family that has some: they get no practice post there until a manager adds some."""
        return self.conn.run(
            "SELECT c.id, f.family FROM coders c CROSS JOIN"
            " (SELECT DISTINCT family FROM gold_posts WHERE purpose = 'practice') f"
            " WHERE c.status = 'trainee'"
            "  AND NOT EXISTS (SELECT 1 FROM gold_posts g WHERE g.family = f.family"
            "   AND g.purpose = 'practice' AND NOT EXISTS (SELECT 1 FROM gold_leases d"
            "    WHERE d.coder_id = c.id AND d.post_id = g.post_id AND d.family = g.family"
            "    AND d.done_at IS NOT NULL))"
            " ORDER BY c.id, f.family")


def _copy_data(rows: Any, staging: tuple[str, int] | tuple[()]) -> list[Any]:
    """Checked posts as binary COPY data for posts' columns; with ``staging`` (import id,
    batch), for import_staging's, which lead with the import, the batch and each row's seq."""
    import numpy as np

    from trainset.store import pgcopy

    count = rows.num_rows
    lead = [pgcopy.constant(uuid.UUID(staging[0]).bytes),
            pgcopy.constant(staging[1].to_bytes(4, "big")),
            pgcopy.int4(np.arange(count))] if staging else []
    return pgcopy.stream(count, [
        *lead,
        *(pgcopy.text(rows[name])
          for name in ("id", "text", "image_key", "keyword", "family", "author")),
        pgcopy.timestamptz(rows["created_at"]),
        pgcopy.text(rows["text_hash"]),
        pgcopy.jsonb(rows["extra"]),
    ])

