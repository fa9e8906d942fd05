"""An embedded PostgreSQL (PyPI ``pgserver``) for machines with no database configured.

The data lives in a project-local folder and survives restarts. pgserver counts the processes
using a data folder and stops the server when the last one lets go.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

_servers: list[Any] = []


def project_home() -> Path:
    """Where local state lives: ``TRAINSET_HOME`` or ``.trainset`` in the working directory."""
    return Path(os.environ.get("TRAINSET_HOME") or Path.cwd() / ".trainset").resolve()


def start_embedded(data_dir: Path) -> str:
    """Start (or join) the embedded server for ``data_dir`` and return its postgresql:// URL."""
    # pgserver's platformdirs warns about XDG_RUNTIME_DIR on headless machines; harmless here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver  # imported here: only machines without a configured database need it

    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(str(data_dir), cleanup_mode="stop")
    _servers.append(server)
    return server.get_uri()


def stop_embedded() -> None:
    """Let go of the embedded server; it stops when no other process still uses it."""
    while _servers:
        _servers.pop().cleanup()
