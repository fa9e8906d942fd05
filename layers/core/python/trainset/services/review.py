"""What a manager reviews: the latest quality run of a family, campaign posts by consensus
confidence, one post's labels, skips and consensus, and adjudication.

An adjudication is a manager's answer for a post, stored append-only with its author and time.
The store counts the newest one as the post's known truth (``QualityStore.gold_answers``), so
the next quality run fixes the post's consensus to it and rates the coders against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from trainset import codebook
from trainset.errors import Conflict, InvalidInput, NotFound


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _family(family: str) -> codebook.Family:
    try:
        return codebook.family(family)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def latest_quality(store: Any, family: str) -> dict[str, Any]:
    """The family's latest quality run as the manager's console shows it: gold accuracy per
    coder and option with Wilson intervals, agreement, the screening log, EM, and the re-label
    queue (slots added for re-labeling, not done yet)."""
    _family(family)
    run = store.latest_run(family)
    if run is None:
        raise NotFound(f"no quality run for family {family} yet: run an export, or "
                       f"'python -m trainset quality run --family {family}'")
    summary = run["summary"]
    return {
        "run_id": run["id"], "family": family, "created_at": _iso(run["created_at"]),
        "rules": run["rules"], "labels": summary.get("labels"),
        "labels_used": summary.get("labels_used"), "posts": summary.get("posts"),
        "posts_kept": summary.get("posts_kept"),
        "relabel_requested": summary.get("relabel_requested"),
        "em": {"iterations": summary.get("em_iterations"),
               "converged": summary.get("em_converged")},
        "gold": summary.get("gold", []), "gold_cohort": summary.get("gold_cohort", []),
        "agreement": summary.get("agreement", {}), "screening": summary.get("screening", []),
        "relabel_queue": store.relabel_queue(family),
    }


def review_page(store: Any, family: str, *, campaign: int | None = None,
                keyword: str | None = None, max_confidence: float | None = None,
                limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Campaign posts of the family that have labels, least certain first by the family's
    latest quality run (posts it has not judged yet come last, without a confidence)."""
    _family(family)
    run = store.latest_run(family)
    run_id = run["id"] if run else None
    rows = store.review_page(family, run_id, campaign, keyword, max_confidence, limit + 1,
                             offset)
    items = [{**r, "confidence": None if r["confidence"] is None else float(r["confidence"])}
             for r in rows[:limit]]
    return {"run_id": run_id, "items": items,
            "next_offset": offset + limit if len(rows) > limit else None}


def post_detail(store: Any, post_id: str, family: str | None = None) -> dict[str, Any]:
    """One post: its text and campaigns, every label (coder, revision, seconds), the skips
    with their reasons, the latest quality run's consensus with each item's posterior, and the
    adjudications, newest first."""
    post = store.post_overview(post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    family = family or post["family"]
    if family is None:
        raise InvalidInput(f"post {post_id} has no family; say which with ?family=")
    _family(family)
    run = store.latest_run(family)
    verdict = store.run_post(run["id"], post_id) if run else None
    consensus = None
    if verdict is not None:
        items = verdict["items"] or {}
        consensus = {
            "run_id": run["id"], "kept": verdict["kept"], "reason": verdict["reason"],
            "confidence": verdict["confidence"], "n_labels": verdict["n_labels"],
            "answers": codebook.consistent_answers(
                family, {k: float(v[1]) for k, v in items.items()}),
            "items": [{"item": k, "value": v[0], "posterior": v[1], "confidence": v[2]}
                      for k, v in sorted(items.items())],
        }
    return {
        "post": {**post, "created_at": _iso(post["created_at"])},
        "family": family,
        "labels": [{**lab, "created_at": _iso(lab["created_at"])}
                   for lab in store.post_labels(post_id, family)],
        "skips": [{**s, "created_at": _iso(s["created_at"])}
                  for s in store.post_skips(post_id, family)],
        "consensus": consensus,
        "adjudications": [{**a, "created_at": _iso(a["created_at"])}
                          for a in store.post_adjudications(post_id, family)],
    }


def adjudicate(store: Any, actor_id: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """Store a manager's answer for a campaign post (``body``: post_id, family, answers, note),
    append-only. Gold and practice posts have their answers already (409); a post outside the
    family's campaigns is not labeled work (409)."""
    post_id, family = body["post_id"], body["family"]
    _family(family)
    errors = codebook.validate(family, body["answers"])
    if errors:
        raise InvalidInput(f"the answers are not a valid {family} label",
                           [e.as_dict() for e in errors])
    post = store.post_overview(post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    if any(g["family"] == family for g in post["gold"]):
        raise Conflict(f"post {post_id} is a gold or practice post of {family}: its answers are "
                       "the gold set's; change them with a gold import")
    if not any(c["family"] == family for c in post["campaigns"]):
        raise Conflict(f"post {post_id} is in no campaign of family {family}: only labeled "
                       "work can be adjudicated")
    with store.transaction():
        row = store.add_adjudication(post_id, family,
                                     codebook.normalize(family, body["answers"]),
                                     body.get("note", ""), actor_id)
    return {**row, "created_at": _iso(row["created_at"])}
