"""The import job: corpus and gold files uploaded to a bucket, imported by a state machine.

    page --presigned PUT--> imports bucket  corpus/*, gold/*  --ObjectCreated-->  start function
                                                                                     |
    state machine (ASL: layers/core/.../import_job.asl.json)  <----StartExecution----+
      Plan -> one batch: ImportOneBatch task | several: Distributed Map (ItemReader: the plan's
      list of batches in S3) of ImportBatch -> Finish (rejects beside the upload), or Failure

- **Bucket**: private, SSE-S3, TLS only, server access logs; CORS lets the page PUT to
  presigned URLs (the API signs the size: at most 5 GiB, one PUT's limit). `work/` (plans,
  per-batch rejects) expires after `work_expiry_days`.
- **Start function** (zip, outside the VPC: it only calls Step Functions): S3 invokes it
  asynchronously for `corpus/` and `gold/`; it names the execution after the object and its
  ETag, so a redelivered event starts nothing new. Lambda retries twice, then the event goes to
  an SQS queue (SSE, TLS only, 14 days) with an alarm, as the image functions do.
- **Task functions** (zip, core and deps layers, handlers in `lambdas/imports/handler.py`): in
  the app subnets with a security group the database admits and the export job's group for
  S3 (the gateway endpoint's prefix list). Plan reads the whole upload (ephemeral storage up
  to 10 GiB); each batch reads its byte range; Lambda retries are off (the ASL retries).
- **Definition**: the same ASL file the local runner executes, its four `${<Task>FunctionArn}`
  placeholders substituted; the file's own `TimeoutSeconds` (4 h) limits a run. The state
  machine has a fixed name (stack name + `-import-job`, plus the stack id suffix where it is
  retained), so its role can be allowed to start its own Distributed Map child executions
  without a dependency cycle.
- **Least privilege**: Plan reads uploads and writes `work/*`; Batch reads uploads and
  `work/*`, writes `work/*`; Finish reads `work/*` and writes `*.rejects.csv`; Failure touches
  no object. The state machine may invoke the four functions, read `work/*` (ItemReader) and
  start/describe/stop its own child executions. `grant_api(role)` lets the API presign PUTs under
  `corpus/` and `gold/` and GETs of rejects files, nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra_cdk.constructs.buckets import access_log_bucket, private_bucket
from infra_cdk.constructs.distributed_map import (
    check_definition,
    job_state_machine,
    machine_arns,
    nag_name,
)
from infra_cdk.constructs.layers import pip_layer
from infra_cdk.constructs.logs import retention
from infra_cdk.constructs.migrations import VPC_ENI_ACTIONS
from infra_cdk.nag import acknowledge

UPLOAD_PREFIXES = ("corpus/", "gold/")
WORK = "work/"
REJECTS_SUFFIX = ".rejects.csv"
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
RETRY_ATTEMPTS = 2  # Lambda's maximum for asynchronous invocations


@dataclass(frozen=True)
class Task:
    """One task of the state machine: its ASL placeholder and what its handler touches."""

    name: str  # "Plan" -> ${PlanFunctionArn}, handler.plan_handler
    description: str
    memory_mb: int
    timeout: Duration
    ephemeral_mb: int = 512
    reads_uploads: bool = False
    reads_work: bool = False
    writes_work: bool = False
    writes_rejects: bool = False

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"

    @property
    def handler(self) -> str:
        return f"handler.{self.name.lower()}_handler"


TASKS: tuple[Task, ...] = (
    Task("Plan", "split an uploaded file into batches of rows", 3008, Duration.minutes(15),
         ephemeral_mb=10240, reads_uploads=True, writes_work=True),
    Task("Batch", "import one batch of rows with the CLI's import code", 2048,
         Duration.minutes(15), ephemeral_mb=2048, reads_uploads=True, reads_work=True,
         writes_work=True),
    Task("Finish", "merge the batches' rejects beside the upload; record the counts", 1024,
         Duration.minutes(10), ephemeral_mb=4096, reads_work=True, writes_rejects=True),
    Task("Failure", "record a failed import in the database", 256, Duration.minutes(1)),
)


def load_definition(asl_path: Path) -> str:
    """The ASL text, checked to hold this job's task placeholders and its own TimeoutSeconds
    (``distributed_map.check_definition``)."""
    return check_definition(asl_path, [t.placeholder for t in TASKS])


class ImportJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        asl_path: Path,
        handler_dir: Path,
        runtime: lambda_.Runtime,
        layers: Sequence[lambda_.ILayerVersion],
        columnar_layer_dir: Path,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_groups: Sequence[ec2.ISecurityGroup],
        db_secret: secretsmanager.ISecret,
        allowed_origin: str,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        name_suffix: str = "",
        work_expiry_days: int = 7,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self._log_retention_days = log_retention_days
        stack = Stack.of(self)

        # --- bucket ------------------------------------------------------------------------
        self.access_logs = access_log_bucket(self, removal_policy=removal_policy)
        self.bucket = private_bucket(
            self, access_logs=self.access_logs, log_prefix="imports/",
            removal_policy=removal_policy,
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT],
                    allowed_origins=[allowed_origin],
                    allowed_headers=["Content-Type"],
                    max_age=600,
                )
            ],
        )
        self.bucket.add_lifecycle_rule(
            prefix=WORK, expiration=Duration.days(work_expiry_days),
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )
        self.bucket.add_lifecycle_rule(
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )

        # --- state machine name and ARNs (known before it exists: no cycle) ------------------
        self.state_machine_name = f"{stack.stack_name}-import-job{name_suffix}"
        self.state_machine_arn, _ = machine_arns(stack, self.state_machine_name)

        # --- task functions ----------------------------------------------------------------
        code = lambda_.Code.from_asset(str(handler_dir), exclude=["**/__pycache__"])
        # The tasks read corpus files with pyarrow (every format); the start function does not.
        self.columnar_layer = pip_layer(
            self, "ColumnarLayer", columnar_layer_dir, runtime,
            "trainset: pyarrow for the import job's tasks (layers/columnar/requirements.txt)")
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for task in TASKS:
            log_group = self._log_group(f"{task.name}Logs")
            role = self._task_role(task, log_group, db_secret)
            self.functions[task.name] = lambda_.Function(
                self,
                task.name,
                description=f"trainset import job: {task.description}",
                runtime=runtime,
                architecture=lambda_.Architecture.X86_64,
                handler=task.handler,
                code=code,
                layers=[*layers, self.columnar_layer],
                environment={
                    "TRAINSET_DB_SECRET_ARN": db_secret.secret_arn,
                    "TRAINSET_IMPORTS_BUCKET": self.bucket.bucket_name,
                    "POWERTOOLS_SERVICE_NAME": f"trainset-import-{task.name.lower()}",
                },
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                memory_size=task.memory_mb,
                ephemeral_storage_size=Size.mebibytes(task.ephemeral_mb),
                timeout=task.timeout,
                retry_attempts=0,  # Step Functions retries (the ASL's Retry blocks)
                vpc=vpc,
                vpc_subnets=subnets,
                security_groups=list(security_groups),
            )
            self.roles[task.name] = role

        # --- state machine -----------------------------------------------------------------
        self.role, self.log_group, self.state_machine = job_state_machine(
            self, name=self.state_machine_name,
            description="trainset import job state machine: its four tasks, its batch lists, "
            "its own Distributed Map child executions",
            definition=load_definition(asl_path),
            functions={task.placeholder: self.functions[task.name] for task in TASKS},
            bucket=self.bucket, lists_prefix=WORK, lists_sid="ReadBatchLists",
            log_group_name=f"/aws/vendedlogs/states/{stack.stack_name}-import-job{name_suffix}",
            log_retention_days=log_retention_days, removal_policy=removal_policy,
            # Every event, without the states' inputs and outputs (keys and counts only, but
            # a large file's Distributed Map has thousands of them).
            include_execution_data=False,
        )

        # --- the upload event starts it ----------------------------------------------------
        self.start_failures = sqs.Queue(
            self,
            "StartFailures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        start_logs = self._log_group("StartLogs")
        self.start_role = iam.Role(
            self,
            "StartRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="trainset import job start function: start the import job for uploads",
        )
        self.start_role.add_to_policy(iam.PolicyStatement(
            sid="OwnLogs", actions=LOG_ACTIONS, resources=[start_logs.log_group_arn]))
        self.start_role.add_to_policy(iam.PolicyStatement(
            sid="XRay", actions=XRAY_ACTIONS, resources=["*"]))
        self.start_role.add_to_policy(iam.PolicyStatement(
            sid="StartImportJob", actions=["states:StartExecution"],
            resources=[self.state_machine_arn]))
        self.start = lambda_.Function(
            self,
            "Start",
            description="trainset: start the import job for a file uploaded under corpus/ or "
            "gold/",
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.start_handler",
            code=code,
            layers=list(layers),
            environment={
                "TRAINSET_IMPORT_STATE_MACHINE_ARN": self.state_machine_arn,
                "POWERTOOLS_SERVICE_NAME": "trainset-import-start",
            },
            role=self.start_role,
            log_group=start_logs,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=256,
            timeout=Duration.seconds(30),
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.start_failures),
        )
        for prefix in UPLOAD_PREFIXES:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.start),
                s3.NotificationKeyFilter(prefix=prefix),
            )
        self.start_alarm = cloudwatch.Alarm(
            self,
            "StartFailuresAlarm",
            alarm_description="trainset import job: an upload's event could not start the job "
            "after retries; it is in StartFailures (inspect, then start the execution by hand "
            "with the object's {bucket, key, etag, size} as input)",
            metric=self.start_failures.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._acknowledge(runtime)

    # --- helpers ---------------------------------------------------------------------------

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(self, construct_id, retention=retention(self._log_retention_days),
                             removal_policy=self._removal_policy)

    def _objects(self, patterns: Sequence[str]) -> list[str]:
        return [self.bucket.arn_for_objects(p) for p in patterns]

    def _task_role(self, task: Task, log_group: logs.LogGroup,
                   db_secret: secretsmanager.ISecret) -> iam.Role:
        role = iam.Role(
            self,
            f"{task.name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"trainset import job, {task.name.lower()} task: {task.description}",
        )
        role.add_to_policy(iam.PolicyStatement(
            sid="OwnLogs", actions=LOG_ACTIONS, resources=[log_group.log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(sid="XRay", actions=XRAY_ACTIONS,
                                               resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(sid="VpcNetworkInterfaces",
                                               actions=VPC_ENI_ACTIONS, resources=["*"]))
        db_secret.grant_read(role)
        reads = ([f"{p}*" for p in UPLOAD_PREFIXES] if task.reads_uploads else []) + (
            [f"{WORK}*"] if task.reads_work else [])
        writes = ([f"{WORK}*"] if task.writes_work else []) + (
            [f"{p}*{REJECTS_SUFFIX}" for p in UPLOAD_PREFIXES] if task.writes_rejects else [])
        if reads:
            role.add_to_policy(iam.PolicyStatement(sid="ReadObjects", actions=["s3:GetObject"],
                                                   resources=self._objects(reads)))
        if writes:
            role.add_to_policy(iam.PolicyStatement(sid="WriteObjects",
                                                   actions=["s3:PutObject"],
                                                   resources=self._objects(writes)))
        return role

    def grant_api(self, role: iam.IRole) -> iam.Policy:
        """Let the API presign PUTs of uploads and GETs of rejects files (nothing else)."""
        return iam.Policy(
            self,
            "ApiAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="PresignedUploads", actions=["s3:PutObject"],
                    resources=self._objects([f"{p}*" for p in UPLOAD_PREFIXES]),
                ),
                iam.PolicyStatement(
                    sid="PresignedRejectsDownloads", actions=["s3:GetObject"],
                    resources=self._objects([f"{p}*{REJECTS_SUFFIX}" for p in UPLOAD_PREFIXES]),
                ),
            ],
        )

    def _acknowledge(self, runtime: lambda_.Runtime) -> None:
        stack = Stack.of(self)
        for role in [*self.roles.values(), self.start_role]:
            acknowledge(
                role,
                "IAM5[Resource::*]",
                "X-Ray's PutTraceSegments/PutTelemetryRecords (active tracing) and Lambda's VPC "
                "network-interface actions do not support resource-level permissions.",
            )
        bucket_id = stack.resolve(self.bucket.node.default_child.logical_id)
        for pattern in ([f"{p}*" for p in UPLOAD_PREFIXES] + [f"{WORK}*"]
                        + [f"{p}*{REJECTS_SUFFIX}" for p in UPLOAD_PREFIXES]):
            acknowledge(
                self,
                f"IAM5[Resource::<{bucket_id}.Arn>/{pattern}]",
                f"Object access under {pattern} only: keys there are generated per upload "
                "(import ids, execution names), so a pattern is the narrowest grant possible.",
            )
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery, ...) and X-Ray tracing "
            "actions CDK grants for logging and tracing have no resource-level permissions.",
        )
        acknowledge(
            self.role,
            f"IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:{nag_name(self, self.state_machine_name)}/*]",
            "This state machine's own Distributed Map child executions only: they are named "
            "at run time, so <state machine name>/* is the narrowest grant possible.",
        )
        acknowledge(
            self.start_failures,
            "SQS3",
            "This queue is itself the dead-letter store (the start function's on-failure "
            "destination); nothing consumes it automatically, so it needs no DLQ.",
        )
        for function in [*self.functions.values(), self.start]:
            acknowledge(
                function,
                "L1",
                f"Runtime pinned to {runtime.name}, the Python Chalice packages the API for, so "
                "the function shares the API's core and deps layers (built for that version).",
            )
