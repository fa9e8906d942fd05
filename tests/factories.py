"""Small builders for test data, going through the same services the product uses."""

from __future__ import annotations

import random
import uuid

from trainset.models import Coder
from trainset.services import corpus
from trainset.services.labeling import CoderAdmin, LabelingService, LabelingSettings
from trainset.store.corpus import CorpusStore
from trainset.store.labeling import LabelingStore

CHILD_YES = {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}
CHILD_NO = {"is_child": False}


def make_coder(conn, name: str, status: str = "certified", role: str = "coder") -> Coder:
    return CoderAdmin(LabelingStore(conn)).create(None, {"name": name, "status": status,
                                                         "role": role})


def make_posts(conn, n: int, prefix: str = "p", family: str = "child") -> list[str]:
    ids = [f"{prefix}{i:05d}" for i in range(n)]
    corpus.add_posts(CorpusStore(conn), (
        {"id": i, "text": f"post {i} about a toddler at the park", "keyword": "toddler",
         "family": family} for i in ids))
    return ids


def make_campaign(conn, post_ids, family: str = "child", labels_per_post: int = 1,
                  name: str | None = None) -> int:
    return corpus.add_campaign(CorpusStore(conn), name=name or f"c-{uuid.uuid4().hex[:8]}",
                               family=family, post_ids=post_ids,
                               labels_per_post=labels_per_post)


def make_gold(conn, post_id: str, purpose: str, answers=None, family: str = "child") -> None:
    corpus.add_gold(CorpusStore(conn), post_id=post_id, family=family, purpose=purpose,
                    answers=answers or CHILD_YES, rationale="The photo shows a toddler.")


def service(conn, gold_rate: float = 0.0, lease_seconds: int = 600,
            seed: int | None = None) -> LabelingService:
    """The labeling service; with ``seed``, its draws of gold posts repeat run after run."""
    settings = LabelingSettings(gold_rate=gold_rate, lease_seconds=lease_seconds)
    if seed is not None:
        settings.rng = random.Random(seed)
    return LabelingService(LabelingStore(conn), settings)


def submission(post_id: str, answers=None, family: str = "child", sid: str | None = None):
    return {"submission_id": sid or str(uuid.uuid4()), "post_id": post_id, "family": family,
            "answers": answers or CHILD_YES}
