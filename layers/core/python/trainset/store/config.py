"""Where the database is: an explicit URL, an RDS secret (in AWS), or the embedded server."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from trainset.errors import ConfigurationError


def url_from_rds_secret(secret_arn: str, client=None, *, host: str | None = None,
                        port: int | None = None) -> str:
    """Build a URL from a Secrets Manager secret in RDS format; the password never gets logged.

    `host`/`port`, when given, replace the secret's (the instance's): the API connects through
    an RDS Proxy, which accepts the same user and password."""
    if client is None:
        import boto3  # only deployments that use a secret need boto3 here

        client = boto3.client("secretsmanager")
    try:
        value = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
        user, password = quote(value["username"], safe=""), quote(value["password"], safe="")
        host = host or value["host"]
        port = int(port or value.get("port", 5432))
        dbname = value.get("dbname", "postgres")
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"database secret {secret_arn} is not in RDS format (missing {exc})"
        ) from None
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?sslmode=require"


def database_url() -> str:
    """TRAINSET_DATABASE_URL, else TRAINSET_DB_SECRET_ARN (with TRAINSET_DB_HOST/_PORT, when
    set, in place of the secret's host and port: an RDS Proxy), else the embedded local server."""
    url = os.environ.get("TRAINSET_DATABASE_URL")
    if url:
        return url
    arn = os.environ.get("TRAINSET_DB_SECRET_ARN")
    if arn:
        port = os.environ.get("TRAINSET_DB_PORT")
        return url_from_rds_secret(arn, host=os.environ.get("TRAINSET_DB_HOST") or None,
                                   port=int(port) if port else None)
    from trainset.local.embedded import project_home, start_embedded

    return start_embedded(project_home() / "pgdata")


@contextlib.contextmanager
def task_connection(unavailable: type[Exception]) -> Iterator[Any]:
    """A job task's connection to ``database_url()``, closed afterwards. A database that does
    not answer raises ``unavailable`` (the job's retryable error), not a configuration error."""
    from trainset.store.db import connect, parse_url

    try:
        conn = connect(parse_url(database_url()))
    except ConfigurationError as exc:  # the database did not answer: worth a retry
        raise unavailable(exc.message) from None
    try:
        yield conn
    finally:
        conn.close()
