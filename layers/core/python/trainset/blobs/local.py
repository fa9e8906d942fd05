"""Blobs in a local folder, served by the local server under ``/blobs/``.

Same methods as ``S3Blobs`` (the image pipeline and its command line work on either): put, get,
exists, url, and size, list, copy; ``upload_url`` needs S3 (or the local S3 stand-in).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from trainset.errors import ConfigurationError, InvalidInput


class LocalBlobs:
    def __init__(self, root: Path, url_prefix: str = "/blobs/") -> None:
        self.root = root.resolve()
        self.url_prefix = url_prefix

    def path(self, key: str) -> Path:
        """The file for ``key``; keys that would escape the folder are refused."""
        target = (self.root / key).resolve()
        if not key or self.root not in target.parents:
            raise InvalidInput(f"bad blob key {key!r}")
        return target

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except InvalidInput:
            return False

    def url(self, key: str) -> str:
        return self.url_prefix + quote(key)

    def size(self, key: str) -> int | None:
        """Bytes stored under ``key``; None when there is no such blob."""
        try:
            target = self.path(key)
            return target.stat().st_size if target.is_file() else None
        except (InvalidInput, OSError):
            return None

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix`` (a plain string prefix, as in S3), sorted."""
        folder = prefix.rpartition("/")[0]
        base = (self.root / folder) if folder else self.root
        if not base.is_dir() or (folder and self.root not in base.resolve().parents):
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".part-"):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def copy(self, source_key: str, dest_key: str) -> None:
        self.put(dest_key, self.get(source_key))

    def upload_url(self, key: str, content_type: str, seconds: int = 900) -> str:
        raise ConfigurationError(
            "upload URLs need S3: locally, `python -m trainset run` starts an S3 stand-in"
        )
