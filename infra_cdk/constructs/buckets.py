"""The stack's S3 buckets share one shape: private, S3-managed encryption, TLS only, ACLs off,
server access logs to a log bucket that keeps a year."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct


def access_log_bucket(
    scope: Construct,
    *,
    removal_policy: RemovalPolicy,
    object_ownership: s3.ObjectOwnership = s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    construct_id: str = "AccessLogs",
) -> s3.Bucket:
    """A bucket for server access logs (S3-managed keys: the only kind S3 logging writes to);
    CloudFront's standard logs need ``OBJECT_WRITER`` ownership (they arrive with ACLs)."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=object_ownership,
        lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        removal_policy=removal_policy,
    )


def private_bucket(
    scope: Construct,
    *,
    access_logs: s3.IBucket,
    log_prefix: str,
    removal_policy: RemovalPolicy,
    noncurrent_version_days: int | None = None,
    cors: Sequence[s3.CorsRule] | None = None,
    construct_id: str = "Bucket",
) -> s3.Bucket:
    """A private bucket; versioned (older versions expire) when ``noncurrent_version_days``."""
    versioned = noncurrent_version_days is not None
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        versioned=versioned or None,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        lifecycle_rules=[
            s3.LifecycleRule(
                noncurrent_version_expiration=Duration.days(noncurrent_version_days),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ] if versioned else None,
        cors=list(cors) if cors else None,
        removal_policy=removal_policy,
    )
