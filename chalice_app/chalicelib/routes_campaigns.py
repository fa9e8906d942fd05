"""Routes for managers' campaigns: draw one (or preview its allocation), list them with their
progress, and estimate prevalence from their labels. The same service code as the command line
(``python -m trainset sample`` / ``estimate``)."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import (
    Inputs,
    current_coder,
    endpoint,
    json_response,
    require_manager,
    services,
)
from trainset.api_schema import BY_NAME, ESTIMATE_SECONDS

bp = Blueprint(__name__)


def sample_request(body: dict[str, Any]) -> Any:
    """The CLI's ``SampleRequest`` from a checked ``POST /campaigns`` body."""
    from trainset.corpus.filters import FilterSettings
    from trainset.services.campaigns import SampleRequest, yields_from_rows

    given = body.get("filters") or {}
    defaults = FilterSettings()
    bits = given.get("near_duplicate_bits", defaults.near_duplicate_bits)
    filters = FilterSettings(
        exclude_phrases=tuple(given.get("exclude_phrases", defaults.exclude_phrases)),
        min_length=given.get("min_length", defaults.min_length),
        near_duplicate_bits=None if bits is not None and bits < 0 else bits,
        language=given.get("language"),
    )
    rows = body.get("pilot_yields")
    return SampleRequest(
        family=body["family"], budget=body["budget"], strategy=body.get("strategy", "equal"),
        seed=body.get("seed", 1), labels_per_post=body.get("labels_per_post", 1),
        name=body.get("name"), filters=filters, target=body.get("target"),
        yields=None if rows is None else yields_from_rows(rows),
        dry_run=body.get("dry_run", False),
    )


@endpoint(bp, BY_NAME["create_campaign"])
def create_campaign(request: Request, inputs: Inputs) -> Any:
    from trainset.services.campaigns import sample
    from trainset.store.corpus import CorpusStore

    wanted = sample_request(inputs.body)
    with services() as (store, _, _admin):
        actor = current_coder(request, store)
        require_manager(actor)
        result = sample(CorpusStore(store.conn), wanted)
        if not result.dry_run:
            store.audit(actor.id, "campaign.create", result.name,
                        {"campaign_id": result.campaign_id, "request": inputs.body})
    return json_response(result.as_dict(), 200 if result.dry_run else 201)


@endpoint(bp, BY_NAME["list_campaigns"])
def list_campaigns(request: Request, inputs: Inputs) -> Any:
    from trainset.services.campaigns import campaign_progress
    from trainset.store.corpus import CorpusStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return {"campaigns": campaign_progress(CorpusStore(store.conn),
                                               inputs.query.get("family"))}


@endpoint(bp, BY_NAME["campaign_estimate"])
def campaign_estimate(request: Request, inputs: Inputs) -> Any:
    from trainset.services.campaigns import campaign_estimate_document
    from trainset.store.corpus import CorpusStore
    from trainset.store.quality import QualityStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        return campaign_estimate_document(CorpusStore(store.conn), QualityStore(store.conn),
                                          inputs.path["campaign_id"],
                                          inputs.query.get("refits", 20), ESTIMATE_SECONDS)
