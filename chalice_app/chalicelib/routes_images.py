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
from typing import Any

from chalice import Blueprint
from chalice.app import Request

from chalicelib.http import Inputs, current_coder, endpoint, require_manager, services
from trainset.api_schema import BY_NAME
from trainset.errors import ConfigurationError
from trainset.images.keys import UPLOADS_PREFIX

bp = Blueprint(__name__)

UPLOAD_URL_SECONDS = 900
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def images_store():
    """The images bucket as ``S3Blobs`` (one boto3 client per process)."""
    from trainset.blobs.s3 import s3_blobs

    bucket = os.environ.get("TRAINSET_IMAGES_BUCKET")
    if not bucket:
        raise ConfigurationError("no images bucket is configured (TRAINSET_IMAGES_BUCKET)")
    return s3_blobs(bucket)


def safe_name(filename: str | None) -> str:
    """A file name fit for a key: letters, digits, ``. _ -``; at most 100 characters."""
    if not filename:
        return "image"
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("-", base).strip(".-")[:100]
    return cleaned or "image"


@endpoint(bp, BY_NAME["create_upload"])
def create_upload(request: Request, inputs: Inputs) -> Any:
    with services() as (store, _, _admin):
        require_manager(current_coder(request, store))
    body = inputs.body or {}
    content_type = body.get("content_type", "image/jpeg")
    key = f"{UPLOADS_PREFIX}{uuid.uuid4().hex}/{safe_name(body.get('filename'))}"
    url = images_store().upload_url(key, content_type, UPLOAD_URL_SECONDS)
    return {
        "key": key,
        "url": url,
        "method": "PUT",
        "headers": {"Content-Type": content_type},
        "expires_in": UPLOAD_URL_SECONDS,
    }
