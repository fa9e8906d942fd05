"""Routes for managers' review: the latest quality run, posts by consensus confidence, one
post's labels, skips and consensus, and adjudication (append-only, the post's truth in the next
quality run)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import (
    Inputs,
    answer_problems,
    current_coder,
    endpoint,
    invalid,
    require_manager,
    services,
)
from trainset.api_schema import BY_NAME

bp = Blueprint(__name__)


@endpoint(bp, BY_NAME["latest_quality"])
def latest_quality(request: Request, inputs: Inputs) -> Any:
    from trainset.services.review import latest_quality as latest
    from trainset.store.quality import QualityStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return latest(QualityStore(store.conn), inputs.path["family"])


@endpoint(bp, BY_NAME["review_posts"])
def review_posts(request: Request, inputs: Inputs) -> Any:
    from trainset.services.review import review_page
    from trainset.store.quality import QualityStore

    q = inputs.query
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return review_page(QualityStore(store.conn), q["family"], campaign=q.get("campaign"),
                           keyword=q.get("keyword"), max_confidence=q.get("max_confidence"),
                           limit=q.get("limit", 50), offset=q.get("offset", 0))


@endpoint(bp, BY_NAME["post_labels"])
def post_labels(request: Request, inputs: Inputs) -> Any:
    from trainset.services.review import post_detail
    from trainset.store.quality import QualityStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return post_detail(QualityStore(store.conn), inputs.path["post_id"],
                           inputs.query.get("family"))


@endpoint(bp, BY_NAME["adjudicate"])
def adjudicate(request: Request, inputs: Inputs) -> Any:
    from trainset.services.review import adjudicate as store_adjudication
    from trainset.store.quality import QualityStore

    with services() as (store, _, _admin):
        actor = current_coder(request, store)
        require_manager(actor)
        problems = answer_problems(inputs.body)
        if problems:
            raise invalid(problems, "the adjudication")
        return store_adjudication(QualityStore(store.conn), actor.id, inputs.body)
