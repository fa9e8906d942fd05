"""The real local server, as `make run` starts it, for tests over HTTP.

One `python -m trainset run` process per test session, on the session's database (the
`db` fixture empties its tables between tests; the server keeps running). Tests talk to it
through real sockets from many threads, the way coders' browsers do.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trainset import tokens
from trainset.local.secrets import local_token_secret

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    """A running `trainset run` process and where it listens."""

    process: subprocess.Popen
    host: str
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def start_server(database_url: str, home: Path, *, extra_env: dict[str, str] | None = None,
                 ready_timeout: float = 120.0) -> LiveServer:
    """Start `python -m trainset run --no-demo` on a free port and wait until it answers."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"
    env = {**os.environ, "TRAINSET_DATABASE_URL": database_url, "TRAINSET_HOME": str(home),
           "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "trainset", "run", "--no-demo", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )
    server = LiveServer(process, "127.0.0.1", port, log)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"trainset run exited {process.returncode}:\n{log.read_text()}")
        try:
            status, _ = Client(server, None).get("/api/health")
            if status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise RuntimeError(f"trainset run did not answer in {ready_timeout} s:\n{log.read_text()}")


def stop_server(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(10)


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
    server = start_server(database_url, tmp_path_factory.mktemp("live-home"))
    yield server
    stop_server(server)


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
