"""Adding posts, campaigns and gold posts, with the checks that keep them consistent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from trainset import codebook
from trainset.errors import InvalidInput
from trainset.text import text_hash


def prepare_post(raw: dict[str, Any]) -> dict[str, Any]:
    """A post ready to store: required fields checked, text hash computed."""
    post_id, text = raw.get("id"), raw.get("text")
    if not isinstance(post_id, str) or not post_id or len(post_id) > 64:
        raise InvalidInput("a post needs an id of 1-64 characters", {"post": raw.get("id")})
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"post {post_id} has no text", {"post": post_id})
    family = raw.get("family")
    if family is not None:
        codebook.family(family)
    return {**raw, "text_hash": text_hash(text)}


def add_posts(store: Any, posts: Iterable[dict[str, Any]]) -> int:
    with store.transaction():
        return store.upsert_posts(prepare_post(p) for p in posts)


def add_campaign(
    store: Any, *, name: str, family: str, post_ids: Sequence[str], labels_per_post: int = 1
) -> int:
    codebook.family(family)
    if labels_per_post < 1:
        raise InvalidInput("labels_per_post must be at least 1")
    with store.transaction():
        gold = store.gold_among(post_ids)
        if gold:
            raise InvalidInput(
                f"{len(gold)} of these posts are gold or practice posts, which coders must not "
                f"label as work (e.g. {', '.join(sorted(gold)[:3])}); leave them out")
        return store.create_campaign(
            name=name, family=family, labels_per_post=labels_per_post, post_ids=post_ids
        )


def add_gold(
    store: Any, *, post_id: str, family: str, purpose: str, answers: dict, rationale: str
) -> None:
    """A gold post; its answers must be a valid label, so gold can never be unreachable."""
    if purpose not in ("practice", "qa"):
        raise InvalidInput("gold purpose must be 'practice' or 'qa'")
    errors = codebook.validate(family, answers)
    if errors:
        raise InvalidInput(
            f"gold answers for post {post_id} are not a valid {family} label",
            [e.as_dict() for e in errors],
        )
    with store.transaction():
        store.upsert_gold(post_id, family, purpose, codebook.normalize(family, answers), rationale)


def load_demo(store: Any, blobs: Any, per_family: int = 120,
              progress: Any = lambda message: None) -> dict[str, int]:
    """Load the demo corpus once: posts, their images, a campaign per family, gold posts."""
    from trainset import demo

    regular = list(demo.posts(per_family))
    gold = list(demo.gold())
    image_keys = sorted({p["image_key"] for p in regular if p["image_key"]})
    for i, key in enumerate(image_keys, 1):
        if not blobs.exists(key):
            blobs.put(key, demo.render_image(key), "image/jpeg")
        if i % 20 == 0 or i == len(image_keys):
            progress(f"images {i}/{len(image_keys)}")
    with store.transaction():
        store.upsert_posts(prepare_post(p) for p in regular + [g[0] for g in gold])
        for family in codebook.FAMILY_NAMES:
            ids = [p["id"] for p in regular if p["family"] == family]
            store.create_campaign(name=f"demo-{family}", family=family, labels_per_post=2,
                                  post_ids=ids, strategy="demo")
        for post, purpose, answers, rationale in gold:
            store.upsert_gold(post["id"], post["family"], purpose,
                              codebook.normalize(post["family"], answers), rationale)
    progress(f"posts {len(regular)} regular, {len(gold)} gold")
    return {"posts": len(regular), "gold": len(gold), "images": len(image_keys)}
