"""Face clipping: an image uploaded under ``uploads/`` -> 200x200 face crops + a manifest.

A container-image function (TensorFlow and MTCNN are too big for a layer; see Dockerfile).
Like the augment handler it only parses the event (S3, or S3 wrapped in SNS) and calls
``trainset.services.images``: crops go to ``faces/``, the manifest (boxes, confidences) to
``manifests/faces/``, a bad file to ``quarantine/``. A photo without faces gets a manifest with
an empty list, so it is not looked at again.

The MTCNN model loads once per container, during Lambda's init phase when running in Lambda.
"""

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from trainset.blobs.s3 import S3Blobs, s3_blobs
from trainset.images.faces import MtcnnDetector
from trainset.services import images

logger = Logger(service="trainset-face-clip")
tracer = Tracer(service="trainset-face-clip")
metrics = Metrics(namespace="trainset", service="trainset-face-clip")

SETTINGS = images.face_settings_from_env()
LIMITS = images.limits_from_env()
detector = MtcnnDetector()
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
    detector.load()  # in the init phase, not in the first request


def store_for(bucket: str | None) -> S3Blobs:
    return s3_blobs(bucket or os.environ["TRAINSET_IMAGES_BUCKET"])


def clip(upload: images.Upload) -> images.Outcome:
    return images.clip_faces_upload(store_for(upload.bucket), upload, detector=detector,
                                    settings=SETTINGS, limits=LIMITS)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return images.handle_event(
        event, clip, images.FACES,
        lambda name, value: metrics.add_metric(name=name, unit=MetricUnit.Count, value=value),
        logger)
