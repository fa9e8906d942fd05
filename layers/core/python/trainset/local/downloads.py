"""Export files (and the rejects files of imports) on one machine, behind the same small
interface as the buckets in AWS (``list``, ``size``, ``url``, ``download_url``).

The local runner copies each finished export job from the S3 stand-in (which keeps objects in
memory) to ``$TRAINSET_HOME/exports/<job>/``. Keys are the bucket's (``exports/<job>/...``), so
the API answers the same listing either way. Links are served by the local server under
``/files/<key>`` and, like presigned S3 URLs, carry an expiry and a signature (HMAC-SHA256 with
the local token secret): a link works for its lifetime without a bearer token (a browser
download sends none), and nobody can make one for a file they were not given.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from urllib.parse import quote

from trainset.local.embedded import project_home

PREFIX = "exports/"
URL_PREFIX = "/files/"
LINK_SECONDS = 3600


def _signature(secret: str, key: str, expires: int) -> str:
    message = f"{key}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class LocalExportFiles:
    """Export files under ``root``: the key ``exports/<job>/<file>`` is ``root/<job>/<file>``."""

    KEY_PREFIX = PREFIX  # what a key has before the file's path under ``root``
    PREFIXES: tuple[str, ...] = (PREFIX,)  # the keys this folder serves start with one

    def __init__(self, root: Path, secret: str, link_seconds: int = LINK_SECONDS) -> None:
        self.root = root.resolve()
        self.secret = secret
        self.link_seconds = link_seconds

    def path(self, key: str) -> Path | None:
        """The file behind ``key``; None for a key outside the folder."""
        if not key.startswith(self.PREFIXES) or "\x00" in key:
            return None
        target = (self.root / key[len(self.KEY_PREFIX):]).resolve()
        return target if self.root in target.parents else None

    def list(self, prefix: str = "") -> list[str]:
        """Every key starting with ``prefix``, sorted; files being copied are not listed."""
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            relative = path.relative_to(self.root)
            key = self.KEY_PREFIX + relative.as_posix()
            if (path.is_file() and key.startswith(self.PREFIXES) and key.startswith(prefix)
                    and not any(p.startswith(".") for p in relative.parts)):
                keys.append(key)
        return sorted(keys)

    def size(self, key: str) -> int | None:
        target = self.path(key)
        return target.stat().st_size if target is not None and target.is_file() else None

    def url(self, key: str, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + self.link_seconds
        return (f"{URL_PREFIX}{quote(key)}?expires={expires}"
                f"&signature={_signature(self.secret, key, expires)}")

    def download_url(self, key: str) -> str:
        """The same link: the local server always sends export files as attachments."""
        return self.url(key)

    def open(self, key: str, expires: str, signature: str,
             now: float | None = None) -> Path | None:
        """The file a signed link names, if the link is genuine and unexpired and the file
        exists; None otherwise (the server answers 404 without saying which)."""
        if not expires.isdigit() or len(expires) > 12:
            return None
        if int(expires) < (now if now is not None else time.time()):
            return None
        if not hmac.compare_digest(_signature(self.secret, key, int(expires)), signature):
            return None
        target = self.path(key)
        return target if target is not None and target.is_file() else None


class LocalUploadFiles(LocalExportFiles):
    """The rejects files of imports, which the local import runner copies from the S3
    stand-in to ``$TRAINSET_HOME/imports/<key>``: keys are the bucket's (``corpus/...``,
    ``gold/...``), served under ``/files/<key>`` behind the same signed links."""

    KEY_PREFIX = ""
    PREFIXES = ("corpus/", "gold/")


def local_upload_files() -> LocalUploadFiles:
    """``$TRAINSET_HOME/imports`` (where ``trainset.local.imports`` keeps rejects files)."""
    from trainset.local.secrets import local_token_secret

    return LocalUploadFiles(project_home() / "imports", local_token_secret())


def local_files_for(key: str) -> LocalExportFiles:
    """The local adapter that serves ``key``: an import's rejects file, or an export's."""
    if key.startswith(LocalUploadFiles.PREFIXES):
        return local_upload_files()
    return local_export_files()


def local_export_files() -> LocalExportFiles:
    """``$TRAINSET_HOME/exports`` (where ``trainset.local.pipeline`` copies finished jobs)."""
    from trainset.local.secrets import local_token_secret

    return LocalExportFiles(project_home() / "exports", local_token_secret())
