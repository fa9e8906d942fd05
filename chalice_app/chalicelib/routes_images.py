"""Routes for the image pipeline: managers get presigned upload URLs under uploads/.

The client PUTs the image bytes straight to S3 (never through the API, so no 64 KiB body limit
and no Lambda time spent on bytes); the upload then triggers augmentation and face clipping.
The bucket is ``TRAINSET_IMAGES_BUCKET`` (set by CDK in AWS; by the local S3 stand-in under
``python -m trainset run``, which also sets ``AWS_ENDPOINT_URL_S3``).
"""

from __future__ import annotations

import os
import re
import uuid

from chalice import Blueprint

from chalicelib.http import (
    AUTHORIZER,
    api,
    current_coder,
    json_body,
    json_response,
    require_manager,
    services,
)
from trainset.errors import ConfigurationError, InvalidInput
from trainset.image_keys import UPLOADS_PREFIX

bp = Blueprint(__name__)

UPLOAD_URL_SECONDS = 900
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp",
                 "image/tiff")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

def images_store():
    """The images bucket as ``S3Blobs`` (one boto3 client per process)."""
    from trainset.blobs.s3 import s3_blobs

    bucket = os.environ.get("TRAINSET_IMAGES_BUCKET")
    if not bucket:
        raise ConfigurationError("no images bucket is configured (TRAINSET_IMAGES_BUCKET)")
    return s3_blobs(bucket)


def safe_name(filename: object) -> str:
    """A file name fit for a key: letters, digits, ``. _ -``; at most 100 characters."""
    if filename is None:
        return "image"
    if not isinstance(filename, str):
        raise InvalidInput("filename must be a string",
                           [{"field": "filename", "message": "must be a string"}])
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("-", base).strip(".-")[:100]
    return cleaned or "image"


def _request_fields(body: object) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise InvalidInput("the body must be a JSON object")
    problems = []
    unknown = sorted(set(body) - {"filename", "content_type"})
    problems += [{"field": name, "message": "is not a known field"} for name in unknown]
    content_type = body.get("content_type", "image/jpeg")
    if content_type not in CONTENT_TYPES:
        problems.append({"field": "content_type",
                         "message": "must be one of " + ", ".join(CONTENT_TYPES)})
    if problems:
        raise InvalidInput("the upload request is not valid", problems)
    return safe_name(body.get("filename")), content_type


@bp.route("/images/uploads", methods=["POST"], authorizer=AUTHORIZER)
@api
def create_upload():
    with services() as (store, _, _admin):
        require_manager(current_coder(bp.current_request, store))
    raw = bp.current_request.raw_body or b""
    body = json_body(bp.current_request) if raw.strip() else {}
    name, content_type = _request_fields(body)
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}/{name}"
    url = images_store().upload_url(key, content_type, UPLOAD_URL_SECONDS)
    return json_response({
        "key": key,
        "url": url,
        "method": "PUT",
        "headers": {"Content-Type": content_type},
        "expires_in": UPLOAD_URL_SECONDS,
    }, 201)
