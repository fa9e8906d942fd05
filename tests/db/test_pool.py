"""The connection pool: reuse after handled errors, recovery from dropped connections."""

import pytest

from trainset.errors import Conflict
from trainset.store.db import Pool


def backend_pid(conn):
    return conn.run("SELECT pg_backend_pid()")[0][0]


def test_connection_is_reused_after_a_handled_error(db_pool):
    with db_pool.connection() as conn:
        first = backend_pid(conn)
    with pytest.raises(Conflict), db_pool.connection() as conn:
        conn.run("BEGIN")
        raise Conflict("a 409 inside an open transaction")
    with db_pool.connection() as conn:
        assert backend_pid(conn) == first
        assert conn.run("SELECT 1") == [[1]]  # the open transaction was rolled back


def test_dropped_connection_is_replaced(db_pool: Pool, db):
    with db_pool.connection() as conn:
        first = backend_pid(conn)
    db.run("SELECT pg_terminate_backend(:pid)", pid=first)
    db_pool.STALE_AFTER_SECONDS = 0  # treat every idle connection as possibly dropped
    with db_pool.connection() as conn:
        assert backend_pid(conn) != first
