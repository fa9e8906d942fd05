"""What several benchmarks share: a scratch PostgreSQL and the real local server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from trainset.store.db import connect, parse_url

ROOT = Path(__file__).resolve().parents[1]


def database(tmp: Path) -> tuple[str, Callable[[], None]]:
    """A scratch database: a new one on TRAINSET_DATABASE_URL's server, or an embedded
    PostgreSQL in ``tmp``; and how to drop it."""
    configured = os.environ.get("TRAINSET_DATABASE_URL")
    if configured:
        settings = parse_url(configured)
        name = f"trainset_bench_{uuid.uuid4().hex[:8]}"
        admin = connect(settings)
        admin.run('CREATE DATABASE "' + name + '"')
        url = configured.replace(f"/{settings.database}", f"/{name}", 1)
        return url, lambda: admin.run('DROP DATABASE "' + name + '" WITH (FORCE)')
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    server = pgserver.get_server(str(tmp / "pg"), cleanup_mode="delete")
    return server.get_uri(), server.cleanup


@contextmanager
def local_server(env: dict[str, str], home: Path) -> Iterator[str]:
    """``python -m trainset run --no-demo`` on a free port with ``env``; yields the API's
    base URL (``http://127.0.0.1:PORT/api``) once it answers, and stops it afterwards."""
    import http.client

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "trainset", "run", "--no-demo",
                               "--port", str(port)], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/api/health")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    tail = (home / "server.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"the local server did not start:\n{tail}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/api"
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
