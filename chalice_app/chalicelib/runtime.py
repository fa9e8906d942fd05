"""Per-process wiring: the connection pool, auth mode and settings, built once on first use."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

from trainset.services.labeling import LabelingSettings
from trainset.store.config import database_url
from trainset.store.db import Pool, parse_url

AUTH_MODE = os.environ.get("TRAINSET_AUTH", "local")  # "local" tokens or "cognito"

_lock = threading.Lock()
_pool: Pool | None = None
_overrides: dict[str, Any] = {}
_remaining_cache: dict[str, tuple[float, int]] = {}  # shared by the requests of this process
_settings: LabelingSettings | None = None


def pool() -> Pool:
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = Pool(parse_url(database_url()))
    return _pool


def configure(*, database_pool: Pool | None = None, **overrides: Any) -> None:
    """Let the local server and tests supply the pool and settings (gold_rate, lease_seconds,
    image_url) instead of the environment's."""
    global _pool, _settings
    with _lock:
        if database_pool is not None:
            _pool = database_pool
        _overrides.update(overrides)
        _remaining_cache.clear()
        _settings = None


def settings() -> LabelingSettings:
    """The labeling settings, built once per process (and again after ``configure``)."""
    global _settings
    current = _settings
    if current is None:
        with _lock:
            current = _settings
            if current is None:
                current = _settings = LabelingSettings(
                    gold_rate=_overrides.get(
                        "gold_rate", float(os.environ.get("TRAINSET_GOLD_RATE", "0.1"))),
                    lease_seconds=_overrides.get(
                        "lease_seconds",
                        int(os.environ.get("TRAINSET_LEASE_SECONDS", str(15 * 60)))),
                    revision_window=_overrides.get("revision_window", timedelta(
                        days=float(os.environ.get("TRAINSET_REVISION_DAYS", "7")))),
                    image_url=_overrides.get("image_url", _default_image_url()),
                    remaining_cache=_remaining_cache,
                )
    return current  # never None, even if configure() clears the global meanwhile


def _default_image_url():
    """Presigned S3 URLs when an images bucket is configured (in AWS), else no image URLs.
    Signed for the region's own endpoint: the page's Content-Security-Policy allows images
    from ``*.s3.<region>.amazonaws.com`` (boto3 would otherwise sign ``<bucket>.s3.amazonaws
    .com``, which it refuses)."""
    bucket = os.environ.get("TRAINSET_IMAGES_BUCKET")
    if not bucket:
        return lambda key: None
    from trainset.blobs.s3 import regional_s3_blobs

    return regional_s3_blobs(bucket).url
