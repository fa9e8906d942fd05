"""An embedded PostgreSQL (PyPI ``pgserver``) for machines with no database configured.

The data lives in a project-local folder and survives restarts. pgserver keeps one server per
data folder running across processes, so a second start is fast.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_home() -> Path:
    """Where local state lives: ``TRAINSET_HOME`` or ``.trainset`` in the working directory."""
    return Path(os.environ.get("TRAINSET_HOME") or Path.cwd() / ".trainset").resolve()


def start_embedded(data_dir: Path) -> str:
    """Start (or reuse) the embedded server for ``data_dir`` and return its postgresql:// URL."""
    import pgserver  # imported here: only machines without a configured database need it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    return server.get_uri()


def resolve_database_url() -> str:
    """The configured database URL, or the embedded server's when none is configured."""
    url = os.environ.get("TRAINSET_DATABASE_URL")
    if url:
        return url
    return start_embedded(project_home() / "pgdata")
