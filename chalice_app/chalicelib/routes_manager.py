"""Routes for managers: coders (create, list, certify/revoke, a fresh token, releasing their
leases), progress, reports, exports (start, list, a job with its files' download links)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib import runtime
from chalicelib.http import (
    Inputs,
    current_coder,
    endpoint,
    invalid,
    json_response,
    require_manager,
    services,
)
from trainset.api_schema import BY_NAME
from trainset.errors import Conflict, NotFound
from trainset.validation import Problem

bp = Blueprint(__name__)


@endpoint(bp, BY_NAME["list_coders"])
def list_coders(request: Request, inputs: Inputs) -> Any:
    with services() as (store, _, admin):
        require_manager(current_coder(request, store))
        return {"coders": admin.list()}


@endpoint(bp, BY_NAME["create_coder"])
def create_coder(request: Request, inputs: Inputs) -> Any:
    with services() as (store, _, admin):
        actor = current_coder(request, store)
        require_manager(actor)
        coder = admin.create(actor, inputs.body)
    result = {"coder": coder.as_dict()}
    if runtime.AUTH_MODE == "local":
        from trainset import tokens
        from trainset.local.secrets import local_token_secret

        result["token"] = tokens.mint(coder.id, coder.name, local_token_secret())
    return json_response(result, 201)


@endpoint(bp, BY_NAME["update_coder"])
def update_coder(request: Request, inputs: Inputs) -> Any:
    with services() as (store, _, admin):
        actor = current_coder(request, store)
        require_manager(actor)
        return {"coder": admin.update(actor, inputs.path["coder_id"], inputs.body).as_dict()}


@endpoint(bp, BY_NAME["progress"])
def progress(request: Request, inputs: Inputs) -> Any:
    from trainset.services.gold import with_practice_overview
    from trainset.store.corpus import CorpusStore

    with services() as (store, _, admin):
        require_manager(current_coder(request, store))
        return with_practice_overview(admin.progress(), CorpusStore(store.conn))


def report_window(query: dict[str, Any], today: date) -> tuple[date, date, datetime, datetime]:
    """The report's days [from, to] and the instants bounding them; any date the schema
    allows works (to=9999-12-31 ends at the last representable instant), from after to is a
    400."""
    end = date.fromisoformat(query["to"]) if "to" in query else today
    if "from" in query:
        start = date.fromisoformat(query["from"])
    else:
        start = end - min(timedelta(days=27), end - date.min)
    if start > end:
        raise invalid([Problem("query.from", "must not be after to")])
    lower = datetime(start.year, start.month, start.day, tzinfo=UTC)
    upper = (datetime.max.replace(tzinfo=UTC) if end == date.max
             else datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1))
    return start, end, lower, upper


@endpoint(bp, BY_NAME["coder_reports"])
def coder_reports(request: Request, inputs: Inputs) -> Any:
    """The coder report's views (the same numbers as `python -m trainset report`)."""
    from trainset.services.quality import coder_report
    from trainset.store.quality import QualityStore

    start, end, lower, upper = report_window(inputs.query, datetime.now(UTC).date())
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        report = coder_report(QualityStore(store.conn), lower, upper,
                              inputs.query.get("family"))
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


@endpoint(bp, BY_NAME["start_export"])
def start_export(request: Request, inputs: Inputs) -> Any:
    """Start the export job (QA and TFRecord export) for some or all families, with the
    quality run's thresholds when given."""
    from trainset.services.pipeline import start_job
    from trainset.store.jobs import JobStore

    body = inputs.body or {}
    settings = {"rules": body["rules"]} if body.get("rules") else None
    with services() as (store, _, _admin):
        actor = current_coder(request, store)
        require_manager(actor)
        return start_job(JobStore(store.conn), _launcher(), body.get("families"), actor.id,
                         settings)


def export_files() -> Any:
    """Where finished jobs' files are, behind one adapter (list, size, download_url): the
    exports bucket in AWS (presigned URLs); locally the folder each finished job is copied
    to, served by the local server under signed links."""
    import os

    if os.environ.get("TRAINSET_EXPORT_STATE_MACHINE_ARN"):
        from trainset.blobs.s3 import s3_blobs

        return s3_blobs(os.environ.get("TRAINSET_EXPORTS_BUCKET")
                        or os.environ["TRAINSET_IMAGES_BUCKET"])
    from trainset.local.downloads import local_export_files

    return local_export_files()


@endpoint(bp, BY_NAME["list_exports"])
def list_exports(request: Request, inputs: Inputs) -> Any:
    from trainset.store.jobs import JobStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        jobs = JobStore(store.conn).newest(20)
    return {"jobs": [{**j, "started_at": _iso(j["started_at"]),
                      "finished_at": _iso(j["finished_at"])} for j in jobs]}


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


@endpoint(bp, BY_NAME["get_export"])
def get_export(request: Request, inputs: Inputs) -> Any:
    from trainset.services.export_files import job_files
    from trainset.store.jobs import JobStore

    job_id = inputs.path["job_id"]
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        job = JobStore(store.conn).get(job_id)
    if job is None:
        raise NotFound(f"no export job {job_id}")
    job["files"] = job_files(export_files(), job_id) if job["status"] == "succeeded" else []
    return job


@endpoint(bp, BY_NAME["reissue_token"])
def reissue_token(request: Request, inputs: Inputs) -> Any:
    """Locally: a fresh token for a coder. In AWS sign-in is Cognito's: 409."""
    with services() as (store, _, admin):
        actor = current_coder(request, store)
        require_manager(actor)
        if runtime.AUTH_MODE != "local":
            raise Conflict("sign-in is Cognito's here: reset the user's password in Cognito "
                           "(infra_cdk/README.md, 'Accounts for coders and managers')")
        from trainset import tokens
        from trainset.local.secrets import local_token_secret

        return admin.reissue_token(actor, inputs.path["coder_id"], lambda coder: tokens.mint(
            coder.id, coder.name, local_token_secret()))


@endpoint(bp, BY_NAME["release_leases"])
def release_leases(request: Request, inputs: Inputs) -> Any:
    with services() as (store, _, admin):
        actor = current_coder(request, store)
        require_manager(actor)
        return admin.release_leases(actor, inputs.path["coder_id"],
                                    (inputs.body or {}).get("family"))
