"""``python -m trainset run`` as a user runs it: a real process on a real port, the embedded
PostgreSQL in its own TRAINSET_HOME, stopped by a signal. Whatever stops it, nothing of it may
keep running (an orphaned PostgreSQL holds the data folder and a port for good)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

START_LIMIT = 180  # seconds: a bound so a broken start fails the test instead of hanging it


@pytest.fixture()
def home():
    """A TRAINSET_HOME outside pytest's temporary root: the embedded PostgreSQL runs as another
    user (pgserver, under root) and must traverse its parents, and any pytest session that
    starts meanwhile resets /tmp/pytest-of-<user> to owner-only."""
    folder = Path(tempfile.mkdtemp(prefix="trainset-run-test-"))
    yield folder / "home"
    shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_of(home: Path) -> list[psutil.Process]:
    """The PostgreSQL processes whose data folder is under ``home``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(home) in part for part in cmdline):
            found.append(proc)
    return found


def run_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRAINSET_DATABASE_URL", "TRAINSET_AUTH", "TRAINSET_DB_SECRET_ARN")}
    return {**env, "TRAINSET_HOME": str(home), **extra}


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.parametrize(("signum", "times"), [(signal.SIGTERM, 1), (signal.SIGINT, 2)],
                         ids=["sigterm", "sigint-twice"])
def test_a_signal_stops_everything_including_the_embedded_postgres(home, tmp_path, signum,
                                                                   times):
    port = free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainset", "run", "--no-demo", "--port", str(port)],
            env=run_env(home), stdout=stdout, stderr=stderr,
        )
    try:
        deadline = time.monotonic() + START_LIMIT
        while not healthy(port):
            assert proc.poll() is None, err.read_text()
            assert time.monotonic() < deadline, "trainset run did not start"
            time.sleep(0.2)
        running = postgres_of(home)
        assert running, "the embedded PostgreSQL should run under TRAINSET_HOME"

        for _ in range(times):  # a second signal must not cut the shutdown short
            proc.send_signal(signum)
            time.sleep(0.05)
        assert proc.wait(timeout=60) == 0, err.read_text()
        gone, alive = psutil.wait_procs(running, timeout=30)
        assert not alive and not postgres_of(home)
        assert not (home / "pgdata" / "postmaster.pid").exists()
        assert "Traceback" not in err.read_text()
        assert "stopped; data kept in" in out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for leftover in postgres_of(home):  # never leave one behind, even on failure
            leftover.terminate()


def test_cognito_auth_is_refused_locally(home):
    result = subprocess.run(
        [sys.executable, "-m", "trainset", "run", "--port", str(free_port())],
        env=run_env(home, TRAINSET_AUTH="cognito"), capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TRAINSET_AUTH=cognito" in lines[0]
    assert "verify" in lines[0] and "Traceback" not in result.stderr
    assert not (home / "pgdata").exists()  # refused before anything started


def test_a_busy_port_is_one_clear_line_and_stops_what_started(home):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "trainset", "run", "--no-demo",
             "--port", str(taken.getsockname()[1])],
            env=run_env(home), capture_output=True, text=True, timeout=START_LIMIT,
        )
    assert result.returncode == 2, result.stderr
    assert "cannot listen on 127.0.0.1:" in result.stderr and "Traceback" not in result.stderr
    assert not postgres_of(home)
