"""What the image-function tests share: the bucket's name, JPEGs, uploads and listings
(the ``s3`` fixture, a versioned bucket in moto, is in this folder's conftest)."""

from __future__ import annotations

import io
import json

from PIL import Image

BUCKET = "trainset-images-test"


def jpeg(array, quality: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def upload(client, key: str, body: bytes) -> tuple[str, int]:
    client.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key, len(body)


def keys(client, prefix: str = "") -> list[str]:
    found = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found)


def get_json(client, key: str):
    return json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
