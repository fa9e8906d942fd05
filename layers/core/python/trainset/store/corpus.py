"""SQL for posts, campaigns with their task slots, and gold posts."""

from __future__ import annotations

import contextlib
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

