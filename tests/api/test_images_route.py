"""POST /images/uploads: a presigned PUT URL for managers (S3 through moto)."""

from __future__ import annotations

import json

import boto3
import pytest
import requests
from moto import mock_aws

from chalicelib import routes_images
from tests.api.conftest import auth
from tests.factories import make_coder
from trainset.blobs.s3 import forget_clients

BUCKET = "trainset-images-test"


@pytest.fixture()
def bucket(monkeypatch):
    monkeypatch.setenv("TRAINSET_IMAGES_BUCKET", BUCKET)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        forget_clients()
        yield client
        forget_clients()


def post(client, body, headers):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.http.post("/images/uploads", body=raw, headers=headers)


def test_manager_gets_a_presigned_put_that_works(client, manager, bucket):
    response = post(client, {"filename": "Class Photo (1).JPG", "content_type": "image/jpeg"},
                    auth(manager))
    assert response.status_code == 201, response.body
    answer = json.loads(response.body)
    assert answer["method"] == "PUT" and answer["expires_in"] == 900
    assert answer["headers"] == {"Content-Type": "image/jpeg"}
    key = answer["key"]
    assert key.startswith("uploads/") and key.endswith("/Class-Photo-1-.JPG")
    assert "X-Amz-Signature=" in answer["url"] and BUCKET in answer["url"]

    put = requests.put(answer["url"], data=b"\xff\xd8jpeg bytes", headers=answer["headers"],
                       timeout=10)
    assert put.status_code == 200, put.text
    stored = bucket.get_object(Bucket=BUCKET, Key=key)
    assert stored["Body"].read() == b"\xff\xd8jpeg bytes"
    assert stored["ContentType"] == "image/jpeg"


def test_each_request_gets_its_own_key(client, manager, bucket):
    first = json.loads(post(client, "", auth(manager)).body)["key"]
    second = json.loads(post(client, {}, auth(manager)).body)["key"]
    assert first != second and first.endswith("/image") and second.endswith("/image")


def test_only_managers_get_upload_urls(client, db, bucket):
    coder = make_coder(db, "ana")
    response = post(client, {}, auth(coder))
    assert response.status_code == 403 and json.loads(response.body)["error"] == "forbidden"
    response = client.http.post("/images/uploads", body="{}")
    assert response.status_code == 401


def test_bad_requests_are_explained(client, manager, bucket):
    response = post(client, {"content_type": "application/pdf", "colour": "red"}, auth(manager))
    assert response.status_code == 400
    details = json.loads(response.body)["details"]
    assert {d["field"] for d in details} == {"content_type", "colour"}
    assert post(client, "[1, 2]", auth(manager)).status_code == 400
    assert post(client, "{not json", auth(manager)).status_code == 400
    assert post(client, {"filename": 7}, auth(manager)).status_code == 400


def test_unknown_bucket_is_a_configuration_error(client, manager, monkeypatch):
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    response = post(client, {}, auth(manager))
    assert response.status_code == 500
    assert json.loads(response.body)["error"] == "configuration_error"


def test_file_names_are_made_safe():
    assert routes_images.safe_name("../../etc/passwd") == "passwd"
    assert routes_images.safe_name("C:\\photos\\kid 1.png") == "kid-1.png"
    assert routes_images.safe_name("...") == "image"
    assert len(routes_images.safe_name("x" * 500 + ".jpg")) == 100


def test_image_links_in_aws_are_signed_for_the_origin_the_page_may_load(monkeypatch):
    """The deployed page's CSP allows images from https://*.s3.<region>.amazonaws.com only."""
    from urllib.parse import urlsplit

    from chalicelib import runtime

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("TRAINSET_IMAGES_BUCKET", BUCKET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    forget_clients()
    try:
        url = urlsplit(runtime._default_image_url()("uploads/ab/photo.jpg"))
    finally:
        forget_clients()
    assert url.scheme == "https" and url.netloc == f"{BUCKET}.s3.eu-west-1.amazonaws.com"
    assert url.path == "/uploads/ab/photo.jpg" and "X-Amz-Signature" in url.query
