"""Fixtures of the packaging tests: each function deployed into clean folders once per session,
and the AWS services the functions call (moto's server, in its own process)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

# Importing infra_cdk starts jsii's Node process, whose banner about Node 20 is noise here.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from tests.packaging import functions  # noqa: E402
from tests.packaging.functions import Deployed  # noqa: E402
from tests.packaging.runner import REGION  # noqa: E402


@pytest.fixture(scope="session")
def deployments(tmp_path_factory: pytest.TempPathFactory):
    """`deployments(name)`: the function deployed once per session."""
    folder = tmp_path_factory.mktemp("functions")
    built: dict[str, Deployed] = {}

    def get(name: str) -> Deployed:
        if name not in built:
            built[name] = functions.deploy(functions.BY_NAME[name], folder)
        return built[name]

    return get


# ---- AWS (moto's server in a process of its own) ------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def aws_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server on a port of this machine, in its own process (its state is not shared
    with the tests that mock AWS in-process)."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                                "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's server did not start on {endpoint}") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture()
def aws(aws_endpoint: str) -> Iterator[Any]:
    """An emptied moto server: a boto3 session for it, and the variables that point a
    function's SDK at it."""
    import boto3

    urllib.request.urlopen(urllib.request.Request(f"{aws_endpoint}/moto-api/reset",
                                                  method="POST"), timeout=10).close()
    session = boto3.Session(aws_access_key_id="packaging-test",
                            aws_secret_access_key="packaging-test", region_name=REGION)

    class Aws:
        endpoint = aws_endpoint
        environment = {"AWS_ENDPOINT_URL": aws_endpoint}

        @staticmethod
        def client(service: str) -> Any:
            return session.client(service, endpoint_url=aws_endpoint)

    yield Aws()
