"""The export job's task handlers: thin wrappers that build the adapters from the
environment and call ``trainset.services.pipeline``. One module, one handler per task."""

from __future__ import annotations

import contextlib
import os
from typing import Any

from aws_lambda_powertools import Logger

from trainset.services import pipeline
from trainset.store.config import task_connection
from trainset.store.jobs import JobStore
from trainset.store.quality import QualityStore

logger = Logger(service="trainset-export-job")


def _connection() -> contextlib.AbstractContextManager[Any]:
    return task_connection(pipeline.TransientError)


def _blobs(bucket_variable: str = "TRAINSET_EXPORTS_BUCKET"):
    from trainset.blobs.s3 import s3_blobs

    return s3_blobs(os.environ.get(bucket_variable) or os.environ["TRAINSET_IMAGES_BUCKET"])


@logger.inject_lambda_context
def quality_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return pipeline.quality_step(QualityStore(conn), event)


@logger.inject_lambda_context
def screen_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return pipeline.screen_step(QualityStore(conn), event)


@logger.inject_lambda_context
def plan_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return pipeline.plan_step(QualityStore(conn), _blobs(),
                                  bool(os.environ.get("TRAINSET_IMAGES_BUCKET")), event)


@logger.inject_lambda_context
def shard_handler(event: dict, context: object) -> dict:
    images = _blobs("TRAINSET_IMAGES_BUCKET") if os.environ.get("TRAINSET_IMAGES_BUCKET") else None
    return pipeline.shard_step(_blobs(), images, event)


@logger.inject_lambda_context
def merge_handler(event: dict, context: object) -> list[dict]:
    return pipeline.merge_step(_blobs(), event)


@logger.inject_lambda_context
def summary_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return pipeline.summary_step(JobStore(conn), _blobs(), event)


@logger.inject_lambda_context
def failure_handler(event: dict, context: object) -> dict:
    with _connection() as conn:
        return pipeline.failure_step(JobStore(conn), event)
