"""The image pipeline: the images bucket, and augmentation and face clipping triggered by uploads.

    bucket  uploads/*  --ObjectCreated-->  SNS topic (KMS)  --+--> augment function   (zip)
                                                              +--> face-clip function (image)

- **Bucket**: private (all public access blocked, ACLs off), SSE-S3, TLS only, versioned
  (older versions expire), server access logs to a second bucket; CORS lets the coders' page
  PUT to presigned URLs.
- **Why a topic**: S3 refuses two notification rules with the same event type and overlapping
  prefixes, so one rule on `uploads/` publishes to a topic that both functions subscribe to.
  The functions unwrap the S3 event from the SNS message (`trainset.services.images`).
- **Failures**: both invocations are asynchronous. A bad image is not a failure (the handler
  quarantines it and returns); an error worth retrying makes the handler raise, Lambda retries
  twice, then sends the event to the function's on-failure destination, an SQS queue (SSE,
  TLS only, 14 days). SNS deliveries that never reach the function land there too. An alarm
  fires when a queue holds a message.
- **Least privilege**: each function reads `uploads/*` and its own `manifests/<stage>/*` (to
  skip work already done), and writes only its outputs, its manifests and `quarantine/*`; no
  list, no delete. `grant_api` gives the API presigned GETs (uploads, variants) and PUTs
  (uploads).
- **Face clipping** is a container image (TensorFlow is ~1.3 GB) built from
  `lambdas/face_clip/Dockerfile` with the repository root as context, filtered down to the
  handler and the core package. Synthesizing only stages that context; Docker builds the image
  at `cdk deploy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.constructs.buckets import access_log_bucket, private_bucket
from infra_cdk.constructs.layers import pip_layer
from infra_cdk.constructs.logs import retention
from infra_cdk.nag import acknowledge

UPLOADS = "uploads/"
VARIANTS = "variants/"
FACES = "faces/"
MANIFESTS = "manifests/"
QUARANTINE = "quarantine/"

RETRY_ATTEMPTS = 2  # Lambda's maximum for asynchronous invocations
FACE_CLIP_DOCKERFILE = "lambdas/face_clip/Dockerfile"
# The face-clip image's build context is the repository root; only these paths are sent.
FACE_CLIP_CONTEXT = [
    "*",
    "!lambdas/face_clip/Dockerfile",
    "!lambdas/face_clip/requirements.txt",
    "!lambdas/face_clip/handler.py",
    "!layers/core/python/trainset",
    "**/__pycache__",
    "**/*.pyc",
]

LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]


class Images(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        runtime: lambda_.Runtime,
        layers: Sequence[lambda_.ILayerVersion],
        images_layer_dir: Path,
        augment_dir: Path,
        repo_root: Path,
        allowed_origin: str,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        noncurrent_version_days: int = 30,
        augment_memory_mb: int = 1024,
        face_clip_memory_mb: int = 3008,
    ) -> None:
        super().__init__(scope, construct_id)

        # --- buckets -----------------------------------------------------------------------
        self.access_logs = access_log_bucket(self, removal_policy=removal_policy)
        self.bucket = private_bucket(
            self, access_logs=self.access_logs, log_prefix="images/",
            removal_policy=removal_policy, noncurrent_version_days=noncurrent_version_days,
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT, s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=[allowed_origin],
                    allowed_headers=["Content-Type"],
                    max_age=600,
                )
            ],
        )

        # --- uploads/ -> topic ---------------------------------------------------------------
        self.events_key = kms.Key(
            self,
            "EventsKey",
            description="trainset: encrypts the image-upload notification topic",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.topic = sns.Topic(
            self,
            "Uploads",
            display_name="trainset image uploads",
            master_key=self.events_key,
            enforce_ssl=True,
        )
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SnsDestination(self.topic),
            s3.NotificationKeyFilter(prefix=UPLOADS),
        )

        # --- functions -----------------------------------------------------------------------
        self.images_layer = pip_layer(
            self, "ImagesLayer", images_layer_dir, runtime,
            "trainset: Pillow and the X-Ray SDK for the augment function "
            "(layers/images/requirements.txt)")
        environment = {"TRAINSET_IMAGES_BUCKET": self.bucket.bucket_name,
                       "POWERTOOLS_METRICS_NAMESPACE": "trainset"}

        self.augment_failures = self._failure_queue("AugmentFailures")
        self.augment_role, augment_logs = self._role_and_logs(
            "Augment",
            "trainset augment function: read uploads, write variants/manifests/quarantine",
            log_retention_days,
            removal_policy,
            reads=[UPLOADS, f"{MANIFESTS}augment/"],
            writes=[VARIANTS, f"{MANIFESTS}augment/", QUARANTINE],
        )
        self.augment = lambda_.Function(
            self,
            "Augment",
            description="trainset: the ten augmented variants of each upload",
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(str(augment_dir), exclude=["**/__pycache__"]),
            layers=[*layers, self.images_layer],
            environment={**environment, "POWERTOOLS_SERVICE_NAME": "trainset-augment"},
            role=self.augment_role,
            log_group=augment_logs,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=augment_memory_mb,
            timeout=Duration.seconds(60),
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.augment_failures),
        )

        self.face_clip_failures = self._failure_queue("FaceClipFailures")
        self.face_clip_role, face_clip_logs = self._role_and_logs(
            "FaceClip",
            "trainset face-clip function: read uploads, write faces/manifests/quarantine",
            log_retention_days,
            removal_policy,
            reads=[UPLOADS, f"{MANIFESTS}faces/"],
            writes=[FACES, f"{MANIFESTS}faces/", QUARANTINE],
        )
        self.face_clip = lambda_.DockerImageFunction(
            self,
            "FaceClip",
            description="trainset: 200x200 face crops of each upload (MTCNN)",
            code=lambda_.DockerImageCode.from_image_asset(
                str(repo_root),
                file=FACE_CLIP_DOCKERFILE,
                exclude=FACE_CLIP_CONTEXT,
                ignore_mode=IgnoreMode.DOCKER,
                platform=ecr_assets.Platform.LINUX_AMD64,
            ),
            architecture=lambda_.Architecture.X86_64,
            environment={**environment, "POWERTOOLS_SERVICE_NAME": "trainset-face-clip"},
            role=self.face_clip_role,
            log_group=face_clip_logs,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=face_clip_memory_mb,
            timeout=Duration.minutes(3),
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.face_clip_failures),
        )

        self.topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.augment, dead_letter_queue=self.augment_failures
            )
        )
        self.topic.add_subscription(
            subscriptions.LambdaSubscription(
                self.face_clip, dead_letter_queue=self.face_clip_failures
            )
        )

        # --- alarms --------------------------------------------------------------------------
        self.alarms = [
            self._depth_alarm("AugmentFailuresAlarm", self.augment_failures, "augment"),
            self._depth_alarm("FaceClipFailuresAlarm", self.face_clip_failures, "face clipping"),
        ]

        for role in (self.augment_role, self.face_clip_role):
            acknowledge(
                role,
                "IAM5[Resource::*]",
                "X-Ray's PutTraceSegments/PutTelemetryRecords (active tracing) do not support "
                "resource-level permissions.",
            )
        bucket_id = self._logical_id(self.bucket)
        for prefix in (UPLOADS, VARIANTS, FACES, f"{MANIFESTS}augment/", f"{MANIFESTS}faces/",
                       QUARANTINE):
            acknowledge(
                self,
                f"IAM5[Resource::<{bucket_id}.Arn>/{prefix}*]",
                f"Object access under {prefix} only: keys there are generated per upload "
                "(content hashes, upload ids), so a prefix is the narrowest grant possible.",
            )
        acknowledge(
            self.augment,
            "L1",
            f"Runtime pinned to {runtime.name}, the Python Chalice packages the API for, so the "
            "function shares the API's core and deps layers (built for that version).",
        )
        # CDK's one-per-stack function that writes the bucket's notification configuration.
        for child in Stack.of(self).node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's BucketNotificationsHandler (the custom resource that writes the "
                    "bucket's notification configuration) uses the AWS managed basic execution "
                    "policy (logs only); it is not configurable.",
                )

    @staticmethod
    def _logical_id(construct: Construct) -> str:
        return Stack.of(construct).resolve(construct.node.default_child.logical_id)

    def _failure_queue(self, name: str) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            name,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            queue,
            "SQS3",
            "This queue is itself the dead-letter store (Lambda on-failure destination and SNS "
            "subscription DLQ); nothing consumes it automatically, so it needs no DLQ.",
        )
        return queue

    def _role_and_logs(
        self,
        name: str,
        description: str,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        *,
        reads: Sequence[str],
        writes: Sequence[str],
    ) -> tuple[iam.Role, logs.LogGroup]:
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogs", actions=LOG_ACTIONS, resources=[log_group.log_group_arn]
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadObjects",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{p}*") for p in reads],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteObjects",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{p}*") for p in writes],
            )
        )
        return role, log_group

    def _depth_alarm(self, name: str, queue: sqs.Queue, what: str) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            name,
            alarm_description=f"trainset {what}: an upload failed after retries; its event is "
            f"in {queue.node.id} (inspect, fix, then redrive or re-run the CLI backfill)",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def grant_api(self, role: iam.IRole) -> iam.Policy:
        """Let the API presign GETs of uploads and variants, and PUTs under uploads/."""
        policy = iam.Policy(
            self,
            "ApiAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="PresignedGets",
                    actions=["s3:GetObject"],
                    resources=[self.bucket.arn_for_objects(f"{p}*") for p in (UPLOADS, VARIANTS)],
                ),
                iam.PolicyStatement(
                    sid="PresignedUploads",
                    actions=["s3:PutObject"],
                    resources=[self.bucket.arn_for_objects(f"{UPLOADS}*")],
                ),
            ],
        )
        return policy
