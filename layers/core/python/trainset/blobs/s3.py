"""Blobs in an S3 bucket; readers get short-lived presigned URLs, uploaders presigned PUTs.

Same methods as ``LocalBlobs``: put, get, exists, url, and size, list, copy, upload_url.
"""

from __future__ import annotations

import io
import threading
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

    def download_url(self, key: str) -> str:
        """A presigned GET that downloads the object as a file (``Content-Disposition:
        attachment`` with the key's last part as its name)."""
        name = key.rsplit("/", 1)[-1].replace('"', "")
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key,
                                  "ResponseContentDisposition": f'attachment; filename="{name}"'},
            ExpiresIn=self.url_seconds)

    def size(self, key: str) -> int | None:
        """Bytes stored under ``key``; None when there is no such object."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted (S3 lists in key order)."""
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def copy(self, source_key: str, dest_key: str) -> None:
        """A server-side copy inside the bucket (objects up to 5 GB, the most one PUT
        uploads)."""
        self.client.copy_object(
            Bucket=self.bucket, Key=dest_key, CopySource={"Bucket": self.bucket, "Key": source_key}
        )

    def upload_url(self, key: str, content_type: str, seconds: int = 900,
                   size: int | None = None) -> str:
        """A presigned PUT for ``key``; the uploader must send the same Content-Type, and with
        ``size`` exactly that many bytes (the Content-Length is signed: S3 refuses others)."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ContentType": content_type}
        if size is not None:
            params["ContentLength"] = size
        return self.client.generate_presigned_url("put_object", Params=params,
                                                  ExpiresIn=seconds)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of an object (ranged GET); empty when the range is."""
        if end <= start:
            return b""
        return self.client.get_object(Bucket=self.bucket, Key=key,
                                      Range=f"bytes={start}-{end - 1}")["Body"].read()

    def download(self, key: str, path: Any) -> None:
        """The whole object into a local file (streamed, multipart for large objects)."""
        self.client.download_file(self.bucket, key, str(path))

    def upload(self, key: str, path: Any, content_type: str) -> None:
        """A local file as an object (streamed, multipart for large files)."""
        self.client.upload_file(str(path), self.bucket, key,
                                ExtraArgs={"ContentType": content_type})

    def open(self, key: str) -> Any:
        """A read-only, seekable file over the object: each read is a ranged GET (Parquet
        readers fetch only the footer and the row groups they need)."""
        size = self.size(key)
        if size is None:
            raise FileNotFoundError(key)
        return io.BufferedReader(_RangeReader(self, key, size), buffer_size=1 << 20)


class _RangeReader(io.RawIOBase):
    """The raw side of ``S3Blobs.open``: a seekable stream of ranged GETs."""

    def __init__(self, blobs: S3Blobs, key: str, size: int) -> None:
        super().__init__()
        self.blobs, self.key, self.size, self.position = blobs, key, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: Any) -> int:
        end = min(self.size, self.position + len(buffer))
        data = self.blobs.get_range(self.key, self.position, end)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


_by_bucket: dict[str, S3Blobs] = {}
_lock = threading.Lock()


def s3_blobs(bucket: str) -> S3Blobs:
    """One S3Blobs per bucket for the life of a process or Lambda container. Signature V4:
    the only kind every region accepts, and it signs the Content-Type of presigned PUTs."""
    with _lock:
        if bucket not in _by_bucket:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", config=Config(signature_version="s3v4"))
            _by_bucket[bucket] = S3Blobs(client, bucket)
        return _by_bucket[bucket]


def regional_s3_blobs(bucket: str) -> S3Blobs:
    """Like ``s3_blobs``, for URLs a browser calls with ``fetch``: presigned for the
    region's own virtual-hosted endpoint (``<bucket>.s3.<region>.amazonaws.com``), the origin
    the page's Content-Security-Policy allows (boto3 otherwise signs for the global
    ``<bucket>.s3.amazonaws.com``). With a local stand-in (``AWS_ENDPOINT_URL_S3``), the
    stand-in's own client."""
    import os

    if os.environ.get("AWS_ENDPOINT_URL_S3"):
        return s3_blobs(bucket)
    key = "regional:" + bucket
    with _lock:
        if key not in _by_bucket:
            import boto3
            from botocore.config import Config

            region = (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                      or "us-east-1")
            client = boto3.client(
                "s3", region_name=region, endpoint_url=f"https://s3.{region}.amazonaws.com",
                config=Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))
            _by_bucket[key] = S3Blobs(client, bucket)
        return _by_bucket[key]


def use_blobs(bucket: str, blobs: S3Blobs) -> None:
    """Make ``s3_blobs(bucket)`` return ``blobs`` (the local stand-in's client)."""
    with _lock:
        _by_bucket[bucket] = blobs


def forget_clients() -> None:
    """Drop the cached clients (tests and the local stand-in change endpoints)."""
    with _lock:
        _by_bucket.clear()
