"""Routes for uploading corpus and gold files, and the imports they start (managers).

``POST /uploads`` records the import and answers a presigned PUT to the imports bucket
(``TRAINSET_IMPORTS_BUCKET``: set by CDK in AWS, by the local stand-in under
``python -m trainset run``); the browser sends the file there, never through the API. The
object's creation starts the import job. ``GET /imports`` lists imports with progress, counts
and a link to each rejects file.
"""

from __future__ import annotations

import os
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
from trainset.api_schema import BY_NAME
from trainset.errors import ConfigurationError

bp = Blueprint(__name__)


def imports_bucket() -> str:
    bucket = os.environ.get("TRAINSET_IMPORTS_BUCKET")
    if not bucket:
        raise ConfigurationError("no imports bucket is configured (TRAINSET_IMPORTS_BUCKET)")
    return bucket


def upload_target() -> Any:
    """The imports bucket, presigning for the URL a browser may call (the region's own)."""
    from trainset.blobs.s3 import regional_s3_blobs

    return regional_s3_blobs(imports_bucket())


def rejects_files() -> tuple[Any, bool]:
    """Where rejects files are, behind one adapter (size, download_url), and whether to
    check that a file is there: the imports bucket in AWS (presigned downloads; no check, so
    no call to S3); locally the folder the import runner copies them to, served by the local
    server under signed links."""
    if os.environ.get("TRAINSET_IMPORT_STATE_MACHINE_ARN"):
        from trainset.blobs.s3 import s3_blobs

        return s3_blobs(imports_bucket()), False
    from trainset.local.downloads import local_upload_files

    return local_upload_files(), True


@endpoint(bp, BY_NAME["create_file_upload"])
def create_file_upload(request: Request, inputs: Inputs) -> Any:
    from trainset.services.imports import request_upload
    from trainset.store.imports import ImportStore

    body = inputs.body
    with services() as (store, _, _admin):
        actor = current_coder(request, store)
        require_manager(actor)
        target = upload_target()
        answer = request_upload(
            ImportStore(store.conn),
            lambda key, content_type, size, seconds: target.upload_url(
                key, content_type, seconds, size=size),
            kind=body["kind"], filename=body["filename"], size=body["size"],
            purpose=body.get("purpose"), created_by=actor.id)
    return json_response(answer, 201)


@endpoint(bp, BY_NAME["list_imports"])
def list_imports(request: Request, inputs: Inputs) -> Any:
    from trainset.services.imports import list_imports as newest
    from trainset.store.imports import ImportStore

    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
        files, check = rejects_files()
        return newest(ImportStore(store.conn), files, check_files=check)
