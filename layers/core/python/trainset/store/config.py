"""Where the database is: an explicit URL, an RDS secret (in AWS), or the embedded server."""

from __future__ import annotations

import json
import os
from urllib.parse import quote

from trainset.errors import ConfigurationError


def url_from_rds_secret(secret_arn: str, client=None) -> str:
    """Build a URL from a Secrets Manager secret in RDS format; the password never gets logged."""
    if client is None:
        import boto3  # only deployments that use a secret need boto3 here

        client = boto3.client("secretsmanager")
    try:
        value = json.loads(client.get_secret_value(SecretId=secret_arn)["SecretString"])
        user, password = quote(value["username"], safe=""), quote(value["password"], safe="")
        host, port = value["host"], int(value.get("port", 5432))
        dbname = value.get("dbname", "postgres")
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"database secret {secret_arn} is not in RDS format (missing {exc})"
        ) from None
    return f"postgresql://{user}:{password}@{host}:{port}/{dbname}?sslmode=require"


def database_url() -> str:
    """TRAINSET_DATABASE_URL, else TRAINSET_DB_SECRET_ARN, else the embedded local server."""
    url = os.environ.get("TRAINSET_DATABASE_URL")
    if url:
        return url
    arn = os.environ.get("TRAINSET_DB_SECRET_ARN")
    if arn:
        return url_from_rds_secret(arn)
    from trainset.local.embedded import project_home, start_embedded

    return start_embedded(project_home() / "pgdata")
