"""Connections to PostgreSQL through pg8000, from a URL; a small thread-safe pool.

Every statement in trainset goes through ``pg8000.native.Connection.run`` with named
parameters: values never become part of SQL text.
"""

from __future__ import annotations

import contextlib
import queue
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pg8000.native

from trainset.errors import ConfigurationError, DatabaseUnavailable

# SQLSTATEs that mean the server or the connection is gone, not that the statement was wrong:
# connection exceptions (08...), admin shutdown / crash shutdown / starting up (57P01-57P03),
# too many connections (53300).
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03", "53300")


class Connection(pg8000.native.Connection):
    """A pg8000 connection that prepares each parameterised statement once and reuses it.

    pg8000 re-parses a statement's ``:name`` placeholders in Python on every ``run`` (about a
    millisecond for a long statement) and the server re-plans it; preparing once per
    connection removes both from the hot path.
    """

    MAX_PREPARED = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared: dict[str, pg8000.native.PreparedStatement] = {}

    def run(self, sql: str, stream: Any = None, types: Any = None, **params: Any) -> Any:
        if not params or stream is not None or types is not None:
            return super().run(sql, stream=stream, types=types, **params)
        statement = self._prepared.get(sql)
        if statement is None:
            if len(self._prepared) >= self.MAX_PREPARED:
                self._prepared.pop(next(iter(self._prepared))).close()
            statement = self._prepared[sql] = self.prepare(sql)
        rows = statement.run(**params)
        self._context = statement._context  # so .columns and .row_count describe this run
        return rows


@dataclass(frozen=True)
class ConnectionSettings:
    """What pg8000 needs; built from a postgresql:// URL."""

    user: str
    password: str | None
    database: str
    host: str | None
    port: int
    unix_sock: str | None
    ssl: bool
    ssl_verify: bool = False  # verify the server certificate (sslmode=verify-ca/verify-full)
    ssl_root_cert: str | None = None  # CA bundle file for verification (sslrootcert=)

    def safe_description(self) -> str:
        """Where we connect, without the password, for messages and logs."""
        where = self.unix_sock or f"{self.host}:{self.port}"
        return f"{self.user}@{where}/{self.database}"


def parse_url(url: str) -> ConnectionSettings:
    """Read a ``postgresql://user:pass@host:port/db?host=/socket/dir&sslmode=require`` URL."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigurationError(
            "TRAINSET_DATABASE_URL must start with postgresql:// "
            f"(got a URL with scheme {parsed.scheme!r})"
        )
    query = parse_qs(parsed.query)
    socket_dir = query.get("host", [None])[0]
    port = parsed.port or 5432
    sslmode = query.get("sslmode", ["disable"])[0]
    unix_sock = None
    if socket_dir and socket_dir.startswith("/"):
        unix_sock = f"{socket_dir}/.s.PGSQL.{port}"
    return ConnectionSettings(
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password) if parsed.password else None,
        database=(parsed.path or "/postgres").lstrip("/") or "postgres",
        host=None if unix_sock else (parsed.hostname or "localhost"),
        port=port,
        unix_sock=unix_sock,
        ssl=sslmode in ("require", "verify-ca", "verify-full"),
        ssl_verify=sslmode in ("verify-ca", "verify-full"),
        ssl_root_cert=query.get("sslrootcert", [None])[0],
    )


def connect(settings: ConnectionSettings, application_name: str = "trainset") -> Connection:
    """Open one connection; a failure says where it tried, never the password."""
    kwargs: dict = {
        "user": settings.user,
        "password": settings.password,
        "database": settings.database,
        "application_name": application_name,
        "timeout": 30,
    }
    if settings.unix_sock:
        kwargs["unix_sock"] = settings.unix_sock
    else:
        kwargs["host"] = settings.host
        kwargs["port"] = settings.port
    # sslmode=disable means no TLS at all: pg8000's default (None) would build a fresh SSL
    # context and ask the server for TLS on every connect, a few ms each.
    kwargs["ssl_context"] = _ssl_context(settings) if settings.ssl else False
    try:
        return Connection(**kwargs)
    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {settings.safe_description()}: {exc}"
        ) from None


def _ssl_context(settings: ConnectionSettings) -> ssl.SSLContext:
    """TLS as libpq's sslmode means it: ``require`` encrypts without checking the certificate;
    ``verify-ca``/``verify-full`` check it against ``sslrootcert`` (or the system's CAs)."""
    if settings.ssl_verify:
        context = ssl.create_default_context(cafile=settings.ssl_root_cert)
        return context
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE code of a pg8000 DatabaseError (its first argument is the server's error
    fields, code under "C"), or None."""
    if isinstance(exc, pg8000.native.DatabaseError) and exc.args and isinstance(
            exc.args[0], dict):
        return exc.args[0].get("C")
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached right now (so: retry later, and
    never reuse the connection), rather than a bug or a refused statement."""
    if isinstance(exc, DatabaseUnavailable | pg8000.native.InterfaceError | ConnectionError
                  | TimeoutError | ssl.SSLError):
        return True
    code = sqlstate(exc)
    return code is not None and code.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES)


@contextlib.contextmanager
def transaction(conn: Connection) -> Iterator[Connection]:
    """Run the block in one transaction: commit on success, roll back on any error."""
    conn.run("BEGIN")
    try:
        yield conn
    except BaseException:
        conn.run("ROLLBACK")
        raise
    conn.run("COMMIT")


class Pool:
    """Connections reused across requests and threads; a broken one is replaced, not reused."""

    STALE_AFTER_SECONDS = 30.0

    def __init__(self, settings: ConnectionSettings, max_idle: int = 64) -> None:
        self.settings = settings
        self._idle: queue.LifoQueue[tuple[Connection, float]] = queue.LifoQueue(max_idle)

    def _checkout(self) -> Connection:
        """An idle connection (checked first if it sat long enough to have been dropped, as
        after a frozen Lambda container thaws) or a new one."""
        while True:
            try:
                conn, since = self._idle.get_nowait()
            except queue.Empty:
                return connect(self.settings)
            if time.monotonic() - since < self.STALE_AFTER_SECONDS:
                return conn
            try:
                conn.run("SELECT 1")
                return conn
            except Exception:
                _close_quietly(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the block; back to the pool afterwards unless it broke."""
        conn = self._checkout()
        broken = False
        try:
            yield conn
        except BaseException as exc:
            # The socket is gone or confused, or the server ended the session: never reuse it.
            broken = is_unavailable(exc) or isinstance(exc, OSError)
            raise
        finally:
            if broken:
                _close_quietly(conn)
            else:
                self._release(conn)

    def _release(self, conn: Connection) -> None:
        try:
            if _in_transaction(conn):
                conn.run("ROLLBACK")
            self._idle.put_nowait((conn, time.monotonic()))
        except Exception:
            _close_quietly(conn)

    def close(self) -> None:
        while True:
            try:
                conn, _ = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(conn)


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()


def _in_transaction(conn: Connection) -> bool:
    # pg8000 tracks the server's transaction status byte: b"I" means idle (no open transaction).
    return getattr(conn, "_transaction_status", b"I") != b"I"
