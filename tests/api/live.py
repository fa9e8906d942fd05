"""The API behind a real HTTP server (trainset.local.server.LocalServer) on a free port, for
tests that must cross the wire: what a browser or schemathesis sees."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chalicelib import runtime
from trainset.blobs.local import LocalBlobs
from trainset.cli import repo_root
from trainset.local.server import LocalServer, make_gateway


@contextlib.contextmanager
def serve_site(pool: Any, tmp: Path, **server_options: Any) -> Iterator[tuple[str, LocalBlobs]]:
    """Serve the app, the page and the images on 127.0.0.1 with ``pool``; yields the base URL
    and the image store."""
    from app import app

    blobs = LocalBlobs(tmp / "blobs")
    runtime.configure(database_pool=pool, gold_rate=0.0, lease_seconds=600, image_url=blobs.url)
    server = LocalServer(("127.0.0.1", 0), gateway=make_gateway(app),
                         site_dir=repo_root() / "static_site", blobs=blobs, **server_options)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", blobs
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def serve(pool: Any, tmp: Path) -> Iterator[str]:
    """Serve the app on 127.0.0.1 with ``pool``; yields the API's base URL (``.../api``)."""
    with serve_site(pool, tmp) as (base, _):
        yield base + "/api"


def fetch(url: str, method: str = "GET", body: bytes | None = None,
          headers: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, Any, bytes]:
    """(status, headers, body) of one request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()
