"""The secret that signs local bearer tokens: TRAINSET_TOKEN_SECRET, or a file made once."""

from __future__ import annotations

import functools
import os
import secrets
from pathlib import Path

from trainset.local.embedded import project_home


def local_token_secret() -> str:
    """Checked on every request: read from the environment or, once per file, from disk."""
    env = os.environ.get("TRAINSET_TOKEN_SECRET")
    if env:
        return env
    return _secret_in(project_home() / "token_secret")


@functools.lru_cache(maxsize=8)
def _secret_in(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
