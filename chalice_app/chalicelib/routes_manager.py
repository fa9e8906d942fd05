"""Routes for managers: coders (create, list, certify/revoke) and labeling progress."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import runtime
from chalicelib.http import (
    AUTHORIZER,
    api,
    current_coder,
    json_body,
    json_response,
    require_manager,
    services,
)

bp = Blueprint(__name__)


@bp.route("/coders", methods=["GET"], authorizer=AUTHORIZER)
@api
def list_coders():
    with services() as (store, _, admin):
        require_manager(current_coder(bp.current_request, store))
        return {"coders": admin.list()}


@bp.route("/coders", methods=["POST"], authorizer=AUTHORIZER)
@api
def create_coder():
    body = json_body(bp.current_request)
    with services() as (store, _, admin):
        actor = current_coder(bp.current_request, store)
        require_manager(actor)
        coder = admin.create(actor, body)
    result = {"coder": coder.as_dict()}
    if runtime.AUTH_MODE == "local":
        from trainset import tokens
        from trainset.local.secrets import local_token_secret

        result["token"] = tokens.mint(coder.id, coder.name, local_token_secret())
    return json_response(result, 201)


@bp.route("/coders/{coder_id}", methods=["PATCH"], authorizer=AUTHORIZER)
@api
def update_coder(coder_id):
    body = json_body(bp.current_request)
    with services() as (store, _, admin):
        actor = current_coder(bp.current_request, store)
        require_manager(actor)
        return {"coder": admin.update(actor, coder_id, body).as_dict()}


@bp.route("/progress", methods=["GET"], authorizer=AUTHORIZER)
@api
def progress():
    with services() as (store, _, admin):
        require_manager(current_coder(bp.current_request, store))
        return admin.progress()


@bp.route("/reports/coders", methods=["GET"], authorizer=AUTHORIZER)
@api
def coder_reports():
    """The coder report's views (the same numbers as `python -m trainset report`)."""
    from datetime import UTC, date, datetime, timedelta

    from trainset.errors import InvalidInput
    from trainset.services.quality import coder_report
    from trainset.store.quality import QualityStore

    params = bp.current_request.query_params or {}
    try:
        today = datetime.now(UTC).date()
        start = date.fromisoformat(params["from"]) if "from" in params else (
            today - timedelta(days=27))
        end = date.fromisoformat(params["to"]) if "to" in params else today
    except ValueError:
        raise InvalidInput("from and to are dates, YYYY-MM-DD") from None
    with services() as (store, _, _admin):
        require_manager(current_coder(bp.current_request, store))
        report = coder_report(
            QualityStore(store.conn),
            datetime(start.year, start.month, start.day, tzinfo=UTC),
            datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1),
            params.get("family"),
        )
    return {"from": start.isoformat(), "to": end.isoformat(), **report}


def _launcher():
    """Start export jobs on Step Functions in AWS, or on the local stand-in."""
    import os

    arn = os.environ.get("TRAINSET_EXPORT_STATE_MACHINE_ARN")
    if arn:
        import json

        import boto3

        client = boto3.client("stepfunctions")
        return lambda job_id, families: client.start_execution(
            stateMachineArn=arn, name=job_id,
            input=json.dumps({"job_id": job_id, "families": families}))
    from trainset.local import pipeline

    return pipeline.start


@bp.route("/exports", methods=["POST"], authorizer=AUTHORIZER)
@api
def start_export():
    """Start the export job (QA and TFRecord export) for some or all families."""
    from trainset.services.pipeline import start_job
    from trainset.store.jobs import JobStore

    raw = bp.current_request.raw_body
    body = json_body(bp.current_request) if raw and raw.strip() else {}
    families = body.get("families") if isinstance(body, dict) else None
    with services() as (store, _, _admin):
        actor = current_coder(bp.current_request, store)
        require_manager(actor)
        job = start_job(JobStore(store.conn), _launcher(), families, actor.id)
    return json_response(job, 202)


@bp.route("/exports/{job_id}", methods=["GET"], authorizer=AUTHORIZER)
@api
def get_export(job_id):
    from trainset.errors import NotFound
    from trainset.store.jobs import JobStore

    with services() as (store, _, _admin):
        require_manager(current_coder(bp.current_request, store))
        job = JobStore(store.conn).get(job_id)
    if job is None:
        raise NotFound(f"no export job {job_id}")
    return job
