"""Blobs in an S3 bucket; readers get short-lived presigned URLs."""

from __future__ import annotations

from typing import Any


class S3Blobs:
    def __init__(self, client: Any, bucket: str, url_seconds: int = 3600) -> None:
        self.client = client
        self.bucket = bucket
        self.url_seconds = url_seconds

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return False
        return True

    def url(self, key: str) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.url_seconds
        )
