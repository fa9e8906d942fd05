"""The face-clip handler in-process against moto's S3, with the real MTCNN (loaded once)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.events import s3_event, sns_event
from tests.lambdas.images_s3 import BUCKET, get_json, jpeg, keys, upload
from trainset.images import keys as image_keys
from trainset.images.faces import MtcnnDetector
from trainset.local.images import LocalContext, load_handler


def Context():  # noqa: N802 - reads like the class it stands for
    return LocalContext("trainset-face-clip")


ASTRONAUT = jpeg(data.astronaut(), quality=92)
COFFEE = jpeg(data.coffee(), quality=92)
CORRUPT = ASTRONAUT[:800] + b"\x00" * 4000  # a JPEG header, then garbage


@pytest.fixture(scope="session")
def mtcnn() -> MtcnnDetector:
    return MtcnnDetector().load()


@pytest.fixture(scope="module")
def handler(mtcnn):
    module = load_handler("face_clip")
    module.detector = mtcnn
    return module


def test_astronaut_gets_one_face_crop_and_a_manifest(handler, s3):
    result = handler.lambda_handler(
        s3_event(BUCKET, [upload(s3, "uploads/astronaut.jpg", ASTRONAUT)]), Context())
    assert result["counts"]["processed"] == 1 and result["batchItemFailures"] == []
    digest = image_keys.content_hash(ASTRONAUT)
    assert keys(s3, "faces/") == [image_keys.face_key(digest, 0)]
    crop = s3.get_object(Bucket=BUCKET, Key=image_keys.face_key(digest, 0))
    assert crop["ContentType"] == "image/jpeg"
    assert Image.open(io.BytesIO(crop["Body"].read())).size == (200, 200)

    manifest = get_json(s3, image_keys.manifest_key("faces", digest))
    assert manifest["stage"] == "faces" and manifest["detector"] == "mtcnn"
    assert manifest["settings"]["min_size"] == 50 and manifest["settings"]["crop_size"] == 200
    (face,) = manifest["outputs"]
    assert face["key"] == image_keys.face_key(digest, 0)
    assert len(face["box"]) == 4 and min(face["box"][2:]) >= 50
    assert 0.95 < face["confidence"] <= 1
    assert {"left_eye", "right_eye", "nose"} <= set(face["keypoints"])


def test_a_photo_without_faces_is_marked_done(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/coffee.jpg", COFFEE)])
    assert handler.lambda_handler(event, Context())["counts"]["processed"] == 1
    manifest = get_json(s3, image_keys.manifest_key("faces", image_keys.content_hash(COFFEE)))
    assert manifest["outputs"] == [] and keys(s3, "faces/") == []
    assert handler.lambda_handler(event, Context())["counts"]["already_processed"] == 1


def test_redelivery_writes_nothing_new(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/astronaut.jpg", ASTRONAUT)])
    handler.lambda_handler(event, Context())
    before = s3.list_object_versions(Bucket=BUCKET)["Versions"]
    again = handler.lambda_handler(sns_event(event), Context())  # as SNS delivers it in AWS
    assert again["counts"]["already_processed"] == 1
    assert again["results"][0]["outputs"] == 1
    assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before


def test_corrupt_jpeg_is_quarantined_while_the_good_image_is_processed(handler, s3):
    event = s3_event(BUCKET, [upload(s3, "uploads/astronaut.jpg", ASTRONAUT),
                              upload(s3, "uploads/bad/broken.jpg", CORRUPT)])
    result = handler.lambda_handler(event, Context())
    assert result["batchItemFailures"] == [{"itemIdentifier": "uploads/bad/broken.jpg"}]
    assert len(keys(s3, "faces/")) == 1
    assert keys(s3, "quarantine/") == ["quarantine/bad/broken.jpg",
                                       "quarantine/bad/broken.jpg.faces.error.json"]
    record = get_json(s3, "quarantine/bad/broken.jpg.faces.error.json")
    assert record["error"] in ("corrupt_image", "truncated_image") and record["stage"] == "faces"


def test_url_encoded_keys_are_decoded(handler, s3):
    key = "uploads/class photo+2024 (été).jpg"
    result = handler.lambda_handler(s3_event(BUCKET, [upload(s3, key, ASTRONAUT)]), Context())
    assert result["results"][0]["key"] == key and result["counts"]["processed"] == 1
    manifest = get_json(s3, image_keys.manifest_key("faces", image_keys.content_hash(ASTRONAUT)))
    assert manifest["source_key"] == key


def test_greyscale_and_png_uploads_work(handler, s3):
    grey = io.BytesIO()
    Image.fromarray(np.asarray(data.camera())).save(grey, format="PNG")
    result = handler.lambda_handler(
        s3_event(BUCKET, [upload(s3, "uploads/camera.png", grey.getvalue())]), Context())
    assert result["counts"]["processed"] == 1 and len(keys(s3, "faces/")) == 1
