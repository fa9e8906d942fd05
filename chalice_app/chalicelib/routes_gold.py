"""Routes for managers' gold and practice sets: import (CSV or JSONL text) and list."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import Inputs, current_coder, endpoint, require_manager, services
from trainset.api_schema import BY_NAME

bp = Blueprint(__name__)


@endpoint(bp, BY_NAME["import_gold"])
def import_gold(request: Request, inputs: Inputs) -> Any:
    """One transaction; a 400 listing the rejects when no row can be stored."""
    from trainset.services.gold import import_gold_text
    from trainset.store.corpus import CorpusStore

    body = inputs.body
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        summary = import_gold_text(CorpusStore(store.conn), body["content"], body["format"],
                                   body["purpose"])
    return summary.as_dict()


@endpoint(bp, BY_NAME["list_gold"])
def list_gold(request: Request, inputs: Inputs) -> Any:
    from trainset.services.gold import gold_page
    from trainset.store.corpus import CorpusStore

    query = inputs.query
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return gold_page(CorpusStore(store.conn), query.get("family"), query.get("purpose"),
                         query.get("limit", 50), query.get("before"))
