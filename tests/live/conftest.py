"""The real local server, as `make run` starts it, for tests over HTTP.

One `python -m trainset run` process per test session, on the session's database (the
`db` fixture empties its tables between tests; the server keeps running). Tests talk to it
through real sockets from many threads, the way coders' browsers do.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bench.harness import local_server
from trainset import tokens
from trainset.local.secrets import local_token_secret


@dataclass
class LiveServer:
    """Where a running `trainset run` listens."""

    host: str
    port: int

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def serving(database_url: str, home: Path) -> Iterator[LiveServer]:
    """`python -m trainset run --no-demo` on ``database_url`` (bench.harness.local_server, as
    the benchmarks start it) for the block."""
    env = {**os.environ, "TRAINSET_DATABASE_URL": database_url, "TRAINSET_HOME": str(home),
           "PYTHONUNBUFFERED": "1"}
    with local_server(env, home) as api:
        parts = urlsplit(api)
        yield LiveServer(parts.hostname, parts.port)


class Client:
    """One keep-alive HTTP connection with one coder's token (one browser tab)."""

    def __init__(self, server: LiveServer, token: str | None, timeout: float = 30.0) -> None:
        self.server = server
        self.token = token
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Send one request; JSON answers come back parsed. Retries once on a connection
        the server closed while idle (as browsers do)."""
        payload = None if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        sent = dict(headers or {})
        if self.token:
            sent["Authorization"] = "Bearer " + self.token
        if payload is not None:
            sent.setdefault("Content-Type", "application/json")
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.server.host, self.server.port,
                                                        timeout=self.timeout)
            try:
                self._conn.request(method, path, body=payload, headers=sent)
                response = self._conn.getresponse()
                raw = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        if response.getheader("Connection", "").lower() == "close":
            self.close()
        ctype = response.getheader("Content-Type") or ""
        return response.status, json.loads(raw) if "json" in ctype and raw else raw

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def token_for(coder: Any) -> str:
    return tokens.mint(coder.id, coder.name, local_token_secret())


@pytest.fixture(scope="session")
def live_server(database_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[LiveServer]:
    with serving(database_url, tmp_path_factory.mktemp("live-home")) as server:
        yield server


def run_clients(workers: list[Any], target: Any) -> list[BaseException]:
    """Run ``target(worker)`` on a thread per worker; return the errors they raised."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(worker: Any) -> None:
        try:
            target(worker)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=body, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
