"""The augment handler in-process against moto's S3: event in, variants and manifest out."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from skimage import data

from tests.events import load_event, s3_event, sns_event
from tests.lambdas.images_s3 import BUCKET, get_json, jpeg, keys, upload
from trainset.images import keys as image_keys
from trainset.images.augment import ImageLimits
from trainset.local.images import LocalContext, load_handler


def Context():  # noqa: N802 - reads like the class it stands for
    return LocalContext("trainset-augment")


GOOD = jpeg(data.coffee())
CORRUPT = GOOD[: len(GOOD) // 3]  # a truncated JPEG: the header is fine, the data stops


@pytest.fixture(scope="module")
def handler():
    return load_handler("augment")


def versions(client) -> int:
    listing = client.list_object_versions(Bucket=BUCKET)
    return len(listing.get("Versions", []))


def test_upload_gets_ten_variants_and_a_manifest(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/coffee.jpg", GOOD)])
    result = handler.lambda_handler(event, Context())

    assert result["batchItemFailures"] == []
    assert result["counts"]["processed"] == 1
    digest = image_keys.content_hash(GOOD)
    variants = keys(s3, "variants/")
    assert len(variants) == 10
    assert all(k.startswith(f"variants/{digest[:2]}/{digest[2:4]}/{digest}/") for k in variants)
    rotated = s3.get_object(Bucket=BUCKET, Key=image_keys.variant_key(digest, "rot+20"))
    assert rotated["ContentType"] == "image/jpeg"
    assert Image.open(io.BytesIO(rotated["Body"].read())).size == (280, 280)

    manifest = get_json(s3, image_keys.manifest_key("augment", digest))
    assert manifest["sha256"] == digest and manifest["source_key"] == "uploads/coffee.jpg"
    assert manifest["stage"] == "augment" and manifest["settings"]["size"] == 280
    assert manifest["source"] == {"sha256": digest, "format": "JPEG", "width": 600,
                                  "height": 400, "bytes": len(GOOD)}
    assert [o["name"] for o in manifest["outputs"]][:3] == ["original", "rot+20", "rot-20"]
    assert sorted(o["key"] for o in manifest["outputs"]) == variants
    assert keys(s3, "quarantine/") == []


def test_redelivery_writes_nothing_new(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/coffee.jpg", GOOD)])
    handler.lambda_handler(event, Context())
    before = versions(s3)
    again = handler.lambda_handler(event, Context())
    assert again["counts"]["already_processed"] == 1 and again["counts"]["processed"] == 0
    assert versions(s3) == before  # not a single object version written
    # The same photo uploaded under another name is recognised by its content too.
    copy = s3_event(BUCKET, [upload(s3, "uploads/copy-of-coffee.jpg", GOOD)])
    assert handler.lambda_handler(copy, Context())["counts"]["already_processed"] == 1
    assert versions(s3) == before + 1  # only the new upload itself


def test_corrupt_file_is_quarantined_and_the_good_one_processed(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/broken.jpg", CORRUPT),
                              upload(s3, "uploads/coffee.jpg", GOOD)])
    result = handler.lambda_handler(event, Context())  # does not raise: no retry for bad files

    assert result["batchItemFailures"] == [{"itemIdentifier": "uploads/broken.jpg"}]
    assert result["counts"]["processed"] == 1 and result["counts"]["quarantined"] == 1
    assert len(keys(s3, "variants/")) == 10
    assert keys(s3, "quarantine/") == ["quarantine/broken.jpg",
                                       "quarantine/broken.jpg.augment.error.json"]
    copied = s3.get_object(Bucket=BUCKET, Key="quarantine/broken.jpg")["Body"].read()
    assert copied == CORRUPT
    record = get_json(s3, "quarantine/broken.jpg.augment.error.json")
    assert record["error"] == "truncated_image" and "truncated" in record["message"]
    assert record["source_key"] == "uploads/broken.jpg" and record["stage"] == "augment"
    assert record["sha256"] == image_keys.content_hash(CORRUPT)
    assert record["bytes"] == len(CORRUPT)


def test_non_image_and_oversized_files_are_quarantined(handler, s3, monkeypatch):
    monkeypatch.setattr(handler, "LIMITS", ImageLimits(max_bytes=len(GOOD) - 1))
    event = s3_event(BUCKET, [upload(s3, "uploads/notes.txt", b"a caption, not a photo"),
                              upload(s3, "uploads/huge.jpg", GOOD)])
    result = handler.lambda_handler(event, Context())
    errors = {r["key"]: r["error"]["code"] for r in result["results"]}
    assert errors == {"uploads/notes.txt": "not_an_image", "uploads/huge.jpg": "image_too_large"}
    huge = get_json(s3, "quarantine/huge.jpg.augment.error.json")
    assert huge["sha256"] is None  # refused by its size in the event, never downloaded
    assert keys(s3, "variants/") == []


def test_url_encoded_keys_are_decoded(handler, s3):
    key = "uploads/field trip/kids + café (1).jpg"
    event = s3_event(BUCKET, [upload(s3, key, GOOD)])
    assert event["Records"][0]["s3"]["object"]["key"] == (
        "uploads/field+trip/kids+%2B+caf%C3%A9+%281%29.jpg")
    result = handler.lambda_handler(event, Context())
    assert result["counts"]["processed"] == 1
    manifest = get_json(s3, image_keys.manifest_key("augment", image_keys.content_hash(GOOD)))
    assert manifest["source_key"] == key


def test_s3_events_wrapped_in_sns_are_unwrapped(handler, s3):
    inner = s3_event(BUCKET, [upload(s3, "uploads/coffee.jpg", GOOD)])
    result = handler.lambda_handler(sns_event(inner), Context())
    assert result["counts"]["processed"] == 1
    # S3's test message (sent when notifications are configured) is no upload.
    test_message = sns_event(load_event("s3_test_event"))
    assert handler.lambda_handler(test_message, Context())["results"] == []


def test_keys_outside_uploads_and_deletions_are_ignored(handler, s3):
    s3.put_object(Bucket=BUCKET, Key="variants/x.jpg", Body=GOOD)
    result = handler.lambda_handler(s3_event(BUCKET, [("variants/x.jpg", len(GOOD))]), Context())
    assert result["counts"]["skipped"] == 1 and result["batchItemFailures"] == []
    removed = s3_event(BUCKET, [("uploads/gone.jpg", 0)], event_name="ObjectRemoved:Delete")
    assert handler.lambda_handler(removed, Context())["results"] == []


def test_an_s3_outage_raises_so_lambda_retries(handler, s3):
    event = s3_event("no-such-bucket", [("uploads/coffee.jpg", len(GOOD))])
    with pytest.raises(RuntimeError, match="worth retrying"):
        handler.lambda_handler(event, Context())
