"""Augmentation: an image uploaded under ``uploads/`` -> the study's ten variants + a manifest.

In AWS one S3 notification reaches this function and face clipping through an SNS topic; under
``make run`` the local stand-in calls this handler in-process with the plain S3 event. Either
way the handler only parses the event and calls ``trainset.services.images``: the variants go
to ``variants/``, the manifest to ``manifests/augment/``, a bad file to ``quarantine/``.

It returns a partial-failure report (``batchItemFailures``). A bad file fails its own record
only and is never retried; an error worth retrying (S3 unreachable) makes the invocation raise,
so Lambda retries the event (every write is idempotent) and then hands it to the on-failure
destination.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trainset.blobs.s3 import S3Blobs, s3_blobs
from trainset.services import images

logger = Logger(service="trainset-augment")
tracer = Tracer(service="trainset-augment")
metrics = Metrics(namespace="trainset", service="trainset-augment")

SETTINGS = images.augment_settings_from_env()
LIMITS = images.limits_from_env()


def store_for(bucket: str | None) -> S3Blobs:
    return s3_blobs(bucket or os.environ["TRAINSET_IMAGES_BUCKET"])


def augment(upload: images.Upload) -> images.Outcome:
    return images.augment_upload(store_for(upload.bucket), upload, settings=SETTINGS,
                                 limits=LIMITS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return images.handle_event(
        event, augment, images.AUGMENT,
        lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value),
        logger)
