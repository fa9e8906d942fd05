"""Blobs in a local folder, served by the local server under ``/blobs/``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import quote

from trainset.errors import InvalidInput


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
