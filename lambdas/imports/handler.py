"""The import job's handlers: the S3 upload event that starts it, and its four tasks (plan,
batch, finish, failure) in ``layers/core/python/trainset/data/import_job.asl.json``.

Thin wrappers: build the adapters from the environment (the database, the imports bucket) and
call ``trainset.services.imports``. ``start_handler`` runs outside the VPC and only starts
executions (``launch``, replaced by the local runner under ``make run``); the tasks run in the
VPC with the database. A failure worth retrying (the database or storage did not answer, a
deadlock between batches) is raised as ``TransientError``, which the ASL's Retry blocks retry;
``ImportFailed`` (a file that cannot be imported) is not.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from trainset.services import imports
from trainset.store.config import task_connection
from trainset.store.corpus import CorpusStore
from trainset.store.db import is_unavailable
from trainset.store.imports import ImportStore

logger = Logger(service="trainset-import-job")
_clients: dict[str, Any] = {}


def _files(bucket: str | None = None) -> Any:
    from trainset.blobs.s3 import s3_blobs

    return s3_blobs(bucket or os.environ["TRAINSET_IMPORTS_BUCKET"])


def _connection() -> contextlib.AbstractContextManager[Any]:
    return task_connection(imports.TransientError)


def _retryable(handler: Callable[[dict, Any], Any]) -> Callable[[dict, Any], Any]:
    """Storage or database outages become ``TransientError`` (retried by the ASL)."""

    @functools.wraps(handler)
    def wrapped(event: dict, context: Any) -> Any:
        from botocore.exceptions import (
            ConnectionClosedError,
            EndpointConnectionError,
            ReadTimeoutError,
        )

        try:
            return handler(event, context)
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as exc:
            raise imports.TransientError(f"storage did not answer: {exc}") from None
        except Exception as exc:
            if is_unavailable(exc):
                raise imports.TransientError(f"the database did not answer: "
                                             f"{type(exc).__name__}") from None
            raise

    return wrapped


def start_execution(name: str, payload: dict[str, Any]) -> None:
    """Start the import job on Step Functions; a name already used (the same upload's event
    delivered again) starts nothing."""
    if "stepfunctions" not in _clients:
        import boto3

        _clients["stepfunctions"] = boto3.client("stepfunctions")
    client = _clients["stepfunctions"]
    try:
        client.start_execution(stateMachineArn=os.environ["TRAINSET_IMPORT_STATE_MACHINE_ARN"],
                               name=name, input=json.dumps(payload))
    except client.exceptions.ExecutionAlreadyExists:
        logger.info("import job already started for this upload", extra={"execution": name})


launch: Callable[[str, dict[str, Any]], Any] = start_execution


@logger.inject_lambda_context
def start_handler(event: dict, context: object) -> dict:
    """An upload under corpus/ or gold/: start the import job for it."""
    started = imports.start_from_event(event, lambda name, payload: launch(name, payload))
    logger.info("import jobs started", extra={"started": started})
    return {"started": started}


@logger.inject_lambda_context
@_retryable
def plan_handler(event: dict, context: object) -> dict:
    with _connection() as conn, tempfile.TemporaryDirectory(prefix="trainset-plan-") as tmp:
        return imports.plan_step(ImportStore(conn), _files(event.get("bucket")), event,
                                 workdir=Path(tmp))


@logger.inject_lambda_context
@_retryable
def batch_handler(event: dict, context: object) -> dict:
    with (_connection() as conn, _connection() as merge_conn,
          tempfile.TemporaryDirectory(prefix="trainset-batch-") as tmp):
        return imports.batch_step(ImportStore(conn), CorpusStore(conn),
                                  CorpusStore(merge_conn), _files(event.get("bucket")), event,
                                  workdir=Path(tmp))


@logger.inject_lambda_context
@_retryable
def finish_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return imports.finish_step(ImportStore(conn), _files(event.get("bucket")), event)


@logger.inject_lambda_context
@_retryable
def failure_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return imports.failure_step(ImportStore(conn), event)
