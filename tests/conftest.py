"""Shared fixtures: one real PostgreSQL per test session, emptied before each test that uses it.

With ``TRAINSET_DATABASE_URL`` set, a fresh database is created on that server for the session
and dropped afterwards; otherwise an embedded server (pgserver) runs in a temporary folder.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TRAINSET_TOKEN_SECRET", "test-secret-" + uuid.uuid4().hex)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from trainset.store.db import Connection, Pool, connect, parse_url  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402

KEEP_TABLES = {"schema_migrations"}


def pytest_configure(config: pytest.Config) -> None:
    """Give each run its own temporary root unless one is named (``--basetemp``).

    pytest's shared default root prunes older run folders, which removes the data folder of an
    embedded PostgreSQL another run on the same machine is still using.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = f"/tmp/trainset-pytest-{os.getpid()}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("TRAINSET_DATABASE_URL")
    if configured:
        settings = parse_url(configured)
        name = f"trainset_test_{uuid.uuid4().hex[:10]}"
        admin = connect(settings)
        admin.run("CREATE DATABASE " + admin_identifier(name))
        url = configured.replace(f"/{settings.database}", f"/{name}", 1)
        try:
            _migrate(url)
            yield url
        finally:
            admin.run("DROP DATABASE IF EXISTS " + admin_identifier(name) + " WITH (FORCE)")
            admin.close()
        return
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    url = server.get_uri()
    _migrate(url)
    yield url
    server.cleanup()


def admin_identifier(name: str) -> str:
    """Quote a database name made by this fixture (letters, digits, underscores only)."""
    assert name.replace("_", "").isalnum()
    return '"' + name + '"'


def _migrate(url: str) -> None:
    conn = connect(parse_url(url))
    try:
        migrate(conn)
    finally:
        conn.close()


@pytest.fixture()
def db(database_url: str) -> Iterator[Connection]:
    """A connection to an emptied, migrated database."""
    conn = connect(parse_url(database_url))
    tables = [
        r[0]
        for r in conn.run(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        if r[0] not in KEEP_TABLES
    ]
    if tables:
        conn.run("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
    yield conn
    conn.close()


@pytest.fixture()
def db_pool(db: Connection, database_url: str) -> Iterator[Pool]:
    pool = Pool(parse_url(database_url))
    yield pool
    pool.close()


@pytest.fixture()
def trainset_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TRAINSET_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
