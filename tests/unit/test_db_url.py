"""Database URLs: TCP with TLS, unix sockets (embedded server), and clear errors."""

import pytest

from trainset.errors import ConfigurationError
from trainset.store.db import parse_url


def test_tcp_url_with_tls_and_escaped_password():
    s = parse_url("postgresql://trainset:p%40ss%2Fword@db.internal:6543/labels?sslmode=require")
    assert (s.user, s.password, s.host, s.port, s.database, s.ssl) == (
        "trainset", "p@ss/word", "db.internal", 6543, "labels", True)
    assert s.unix_sock is None
    assert "p@ss" not in s.safe_description()


def test_unix_socket_url_from_the_embedded_server():
    s = parse_url("postgresql://postgres:@/postgres?host=/tmp/pgdata")
    assert s.unix_sock == "/tmp/pgdata/.s.PGSQL.5432" and s.host is None and not s.ssl


def test_wrong_scheme_is_explained():
    with pytest.raises(ConfigurationError, match="postgresql://"):
        parse_url("mysql://x@y/z")


def test_tls_modes_follow_libpq():
    import ssl

    from trainset.store.db import _ssl_context

    required = parse_url("postgresql://u@h/db?sslmode=require")
    assert required.ssl and not required.ssl_verify
    assert _ssl_context(required).verify_mode == ssl.CERT_NONE  # encrypted, like libpq
    full = parse_url("postgresql://u@h/db?sslmode=verify-full")
    assert full.ssl_verify and _ssl_context(full).verify_mode == ssl.CERT_REQUIRED
    assert not parse_url("postgresql://u@h/db").ssl
