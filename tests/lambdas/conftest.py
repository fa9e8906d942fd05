"""Fixtures for the Lambda handler tests."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.lambdas.images_s3 import BUCKET
from trainset.blobs.s3 import forget_clients


@pytest.fixture()
def s3(monkeypatch):
    """An images bucket in moto, with the handlers' cached S3 clients dropped around it."""
    monkeypatch.setenv("TRAINSET_IMAGES_BUCKET", BUCKET)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "trainset-test")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        forget_clients()
        yield client
        forget_clients()
