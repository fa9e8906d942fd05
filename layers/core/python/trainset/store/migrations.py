"""Apply ``sql/NNNN_name.sql`` migrations in order, once each, recording what was applied.

Safe to run twice and from two processes at once: an advisory lock serialises runners, each
migration runs in its own transaction with its record, and an applied file whose text changed
is reported rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from trainset.errors import ConfigurationError
from trainset.store.db import Connection, transaction

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_201_355_001  # advisory lock id reserved for the migration runner


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def default_sql_dir() -> Path:
    """``TRAINSET_SQL_DIR``, else the repository's ``sql/`` beside ``layers/``."""
    env = os.environ.get("TRAINSET_SQL_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[5] / "sql"


def load(sql_dir: Path) -> list[Migration]:
    """The migrations in ``sql_dir`` in version order; a misnamed file is an error, not skipped."""
    if not sql_dir.is_dir():
        raise ConfigurationError(f"migrations folder not found: {sql_dir}")
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ConfigurationError(
                f"{path}: migration files must be named NNNN_name.sql (lowercase name)"
            )
        found.append(Migration(match.group(1), match.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ConfigurationError(f"{sql_dir}: two migrations share a version number")
    return found


def migrate(conn: Connection, sql_dir: Path | None = None) -> list[str]:
    """Apply pending migrations; return the names applied now (empty when up to date)."""
    migrations = load(sql_dir or default_sql_dir())
    conn.run(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.run("SELECT pg_advisory_lock(:key)", key=_LOCK_KEY)
    try:
        applied = {
            row[0]: row[1] for row in conn.run("SELECT version, checksum FROM schema_migrations")
        }
        done_now = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise ConfigurationError(
                        f"migration {m.version}_{m.name}.sql changed after it was applied; "
                        "add a new migration instead of editing an applied one"
                    )
                continue
            with transaction(conn):
                conn.run(m.sql)
                conn.run(
                    "INSERT INTO schema_migrations (version, name, checksum)"
                    " VALUES (:version, :name, :checksum)",
                    version=m.version,
                    name=m.name,
                    checksum=m.checksum,
                )
            done_now.append(f"{m.version}_{m.name}")
        return done_now
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=_LOCK_KEY)
