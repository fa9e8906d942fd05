"""The export job: a Step Functions state machine over seven Lambda tasks, run daily and on demand.

    EventBridge (daily cron, UTC) --+--> state machine (ASL: layers/core/.../export_job.asl.json)
    API POST /exports ---------------+      per family: quality -> screen
                                            plan (every family's shards, by the stable hash)
                                            Distributed Map over the plan's list in S3:
                                              one child per shard (build, write, verify)
                                            merge (each family's manifest), then summary
                                            (or failure)

- **Definition**: the same ASL file the local runner executes
  (`trainset.services.pipeline.definition`), read by path; its `${<Task>FunctionArn}`
  placeholders become the functions' ARNs through `definition_substitutions`. The file's own
  `TimeoutSeconds` (6 h) is the job's time limit: CDK deploys a string definition as it is and
  ignores `StateMachine(timeout=...)` for it.
- **Functions**: one container image (`lambdas/pipeline/Dockerfile`, repository root as build
  context, filtered to the handler and the core package) for all seven tasks, each with its own
  handler as CMD. Plan, shard and merge need TensorFlow; every task imports
  `trainset.services.pipeline`, hence numpy, which the zip layers do not carry. Synthesizing
  only stages the context; Docker builds the image at `cdk deploy`.
- **Network**: the tasks that use the database (quality, screen, plan, summary, failure) run
  in the app subnets with a security group the database admits. Plan and summary also write
  to S3: an S3 gateway VPC endpoint (free) on the app subnets, and their security group may
  reach S3's managed prefix list on 443 only (the prefix list id is looked up at deploy time:
  it differs per region). Shard and merge use only S3 and run outside the VPC.
- **Exports bucket**: private, SSE-S3, TLS only, versioned, server access logs to its own bucket;
  `export-work/` (shard inputs, pieces, plans, the Map's item list) expires after 7 days.
- **Least privilege**: each function role has its own log group, X-Ray writes, and only what its
  task touches (DB secret; `exports/*`, `export-work/*` put or get; images `uploads/*`,
  `variants/*` get). The state machine (named, so its role can name itself) may invoke exactly
  its functions, read `export-work/*` (ItemReader) and start/describe/stop its own child
  executions. `grant_start(role)` lets a role start executions of this state machine and
  describe them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, IgnoreMode, RemovalPolicy, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra_cdk.constructs.buckets import access_log_bucket, private_bucket
from infra_cdk.constructs.distributed_map import (
    check_definition,
    job_state_machine,
    machine_arns,
    nag_name,
)
from infra_cdk.constructs.logs import retention
from infra_cdk.constructs.migrations import VPC_ENI_ACTIONS
from infra_cdk.nag import acknowledge

EXPORTS = "exports/"
WORK = "export-work/"  # trainset.services.pipeline.WORK
IMAGE_READS = ("uploads/", "variants/")
PIPELINE_DOCKERFILE = "lambdas/pipeline/Dockerfile"
# The image's build context is the repository root; only these paths are sent.
PIPELINE_CONTEXT = [
    "*",
    "!lambdas/pipeline/Dockerfile",
    "!lambdas/pipeline/requirements.txt",
    "!lambdas/pipeline/handler.py",
    "!layers/core/python/trainset",
    "**/__pycache__",
    "**/*.pyc",
]
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
XRAY_ACTIONS = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


@dataclass(frozen=True)
class Task:
    """One task of the state machine: its ASL placeholder name and what its handler needs."""

    name: str  # "Quality" -> ${QualityFunctionArn}, handler.quality_handler
    description: str
    memory_mb: int
    timeout: Duration
    database: bool = False
    exports_read: bool = False
    exports_write: bool = False
    images_read: bool = False
    work_read: bool = False  # export-work/: shard inputs, pieces, plans, the Map's item list
    work_write: bool = False
    knows_images: bool = False  # gets the images bucket's name without reading it
    ephemeral_mb: int = 512

    @property
    def placeholder(self) -> str:
        return f"{self.name}FunctionArn"

    @property
    def handler(self) -> str:
        return f"handler.{self.name.lower()}_handler"

    @property
    def in_vpc(self) -> bool:
        return self.database

    @property
    def uses_s3(self) -> bool:
        return (self.exports_read or self.exports_write or self.images_read or self.work_read
                or self.work_write)


TASKS: tuple[Task, ...] = (
    Task("Quality", "gold scoring and consensus of one family", 2048, Duration.minutes(10),
         database=True),
    Task("Screen", "screening and re-label queueing of one family", 1024, Duration.minutes(10),
         database=True),
    Task("Plan", "every family's side files, shard plan and shard inputs", 3008,
         Duration.minutes(15), database=True, exports_write=True, work_write=True,
         knows_images=True, ephemeral_mb=2048),
    Task("Shard", "one shard: build (images fetched concurrently), write, verify, upload",
         3008, Duration.minutes(15), exports_read=True, exports_write=True, work_read=True,
         work_write=True, images_read=True, ephemeral_mb=4096),
    Task("Merge", "each family's manifest from its shards' pieces", 1024, Duration.minutes(5),
         exports_write=True, work_read=True),
    Task("Summary", "the job's summary.json and its database record", 512, Duration.minutes(2),
         database=True, exports_write=True),
    Task("Failure", "record a failed job in the database", 512, Duration.minutes(2),
         database=True),
)


def load_definition(asl_path: Path) -> str:
    """The ASL text, checked to hold this job's task placeholders and its own TimeoutSeconds
    (``distributed_map.check_definition``)."""
    return check_definition(asl_path, [t.placeholder for t in TASKS])


class ExportJob(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        asl_path: Path,
        repo_root: Path,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.SecurityGroup,
        db_secret: secretsmanager.ISecret,
        images_bucket: s3.IBucket,
        schedule_hour_utc: int,
        scheduled_families: Sequence[str],
        log_retention_days: int,
        removal_policy: RemovalPolicy,
        log_name_suffix: str = "",
        noncurrent_version_days: int = 30,
        export_retention_days: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self._log_retention_days = log_retention_days

        # --- exports bucket ----------------------------------------------------------------
        self.access_logs = access_log_bucket(self, removal_policy=removal_policy)
        self.bucket = private_bucket(
            self, access_logs=self.access_logs, log_prefix="exports/",
            removal_policy=removal_policy, noncurrent_version_days=noncurrent_version_days,
        )
        # Shard inputs and pieces are only needed while their job runs.
        self.bucket.add_lifecycle_rule(prefix=WORK, expiration=Duration.days(7),
                                       noncurrent_version_expiration=Duration.days(1))
        if export_retention_days is not None:  # None: every export is kept
            self.bucket.add_lifecycle_rule(prefix=EXPORTS,
                                           expiration=Duration.days(export_retention_days))
        stack = Stack.of(self)
        self.state_machine_name = f"{stack.stack_name}-export-job{log_name_suffix}"
        self.state_machine_arn, _ = machine_arns(stack, self.state_machine_name)

        # --- S3 from the isolated app subnets ----------------------------------------------
        self.s3_endpoint = vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[subnets]
        )
        self.security_group = security_group
        self.s3_security_group = ec2.SecurityGroup(
            self,
            "S3SecurityGroup",
            vpc=vpc,
            description="trainset export job: HTTPS to S3 (gateway endpoint prefix list)",
            allow_all_outbound=False,
        )
        self.s3_prefix_list = cr.AwsCustomResource(
            self,
            "S3PrefixList",
            on_update=cr.AwsSdkCall(
                service="EC2",
                action="describeManagedPrefixLists",
                parameters={
                    "Filters": [
                        {"Name": "prefix-list-name", "Values": [f"com.amazonaws.{Aws.REGION}.s3"]}
                    ]
                },
                physical_resource_id=cr.PhysicalResourceId.of("s3-managed-prefix-list"),
                output_paths=["PrefixLists.0.PrefixListId"],
            ),
            policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
                resources=cr.AwsCustomResourcePolicy.ANY_RESOURCE
            ),
            install_latest_aws_sdk=False,
            log_retention=None,
        )
        self.s3_security_group.add_egress_rule(
            ec2.Peer.prefix_list(
                self.s3_prefix_list.get_response_field("PrefixLists.0.PrefixListId")
            ),
            ec2.Port.tcp(443),
            "HTTPS to S3 through the gateway endpoint",
        )

        # --- functions ---------------------------------------------------------------------
        code_options = dict(
            file=PIPELINE_DOCKERFILE,
            exclude=PIPELINE_CONTEXT,
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
        )
        self.functions: dict[str, lambda_.DockerImageFunction] = {}
        self.roles: dict[str, iam.Role] = {}
        for task in TASKS:
            log_group = self._log_group(f"{task.name}Logs")
            role = self._role(task, log_group, db_secret, images_bucket)
            environment = {
                "POWERTOOLS_SERVICE_NAME": f"trainset-export-{task.name.lower()}",
                "POWERTOOLS_METRICS_NAMESPACE": "trainset",
            }
            if task.database:
                environment["TRAINSET_DB_SECRET_ARN"] = db_secret.secret_arn
            if task.exports_read or task.exports_write or task.work_read or task.work_write:
                environment["TRAINSET_EXPORTS_BUCKET"] = self.bucket.bucket_name
            if task.images_read or task.knows_images:
                environment["TRAINSET_IMAGES_BUCKET"] = images_bucket.bucket_name
            groups: list[ec2.ISecurityGroup] = []
            if task.in_vpc:
                groups = [security_group]
                if task.uses_s3:
                    groups.append(self.s3_security_group)
            function = lambda_.DockerImageFunction(
                self,
                task.name,
                description=f"trainset export job: {task.description}",
                code=lambda_.DockerImageCode.from_image_asset(
                    str(repo_root), cmd=[task.handler], **code_options
                ),
                architecture=lambda_.Architecture.X86_64,
                environment=environment,
                role=role,
                log_group=log_group,
                tracing=lambda_.Tracing.ACTIVE,
                memory_size=task.memory_mb,
                ephemeral_storage_size=Size.mebibytes(task.ephemeral_mb),
                timeout=task.timeout,
                retry_attempts=0,  # Step Functions retries (the ASL's Retry blocks)
                vpc=vpc if task.in_vpc else None,
                vpc_subnets=subnets if task.in_vpc else None,
                security_groups=groups or None,
            )
            self.functions[task.name] = function
            self.roles[task.name] = role

        # --- state machine -----------------------------------------------------------------
        self.role, self.log_group, self.state_machine = job_state_machine(
            self, name=self.state_machine_name,
            description="trainset export job state machine: its task functions, its shard "
            "lists, its own Distributed Map child executions",
            definition=load_definition(asl_path),
            functions={task.placeholder: self.functions[task.name] for task in TASKS},
            bucket=self.bucket, lists_prefix=WORK, lists_sid="ReadShardLists",
            # `log_name_suffix` is unique per stack where the group outlives it (retained), so
            # a retried first deploy does not collide with the group a failed one left behind.
            log_group_name=(f"/aws/vendedlogs/states/{stack.stack_name}-export-job"
                            f"{log_name_suffix}"),
            log_retention_days=log_retention_days, removal_policy=removal_policy,
            include_execution_data=True,
        )

        # --- daily schedule ----------------------------------------------------------------
        self.families = list(scheduled_families)
        self.schedule = events.Rule(
            self,
            "DailySchedule",
            description=f"trainset: the export job every day at {schedule_hour_utc:02d}:00 UTC",
            schedule=events.Schedule.cron(minute="0", hour=str(schedule_hour_utc)),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    input=events.RuleTargetInput.from_object({"families": self.families}),
                    retry_attempts=2,
                )
            ],
        )

        self._acknowledge(images_bucket)

    # --- helpers ---------------------------------------------------------------------------

    def _log_group(self, construct_id: str) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=retention(self._log_retention_days),
            removal_policy=self._removal_policy,
        )

    def _role(
        self,
        task: Task,
        log_group: logs.LogGroup,
        db_secret: secretsmanager.ISecret,
        images_bucket: s3.IBucket,
    ) -> iam.Role:
        role = iam.Role(
            self,
            f"{task.name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"trainset export job, {task.name.lower()} task: {task.description}",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="OwnLogs", actions=LOG_ACTIONS, resources=[log_group.log_group_arn]
            )
        )
        role.add_to_policy(iam.PolicyStatement(sid="XRay", actions=XRAY_ACTIONS, resources=["*"]))
        if task.in_vpc:
            role.add_to_policy(
                iam.PolicyStatement(sid="VpcNetworkInterfaces", actions=VPC_ENI_ACTIONS,
                                    resources=["*"])
            )
        if task.database:
            db_secret.grant_read(role)
        if task.exports_write:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="WriteExports",
                    actions=["s3:PutObject"],
                    resources=[self.bucket.arn_for_objects(f"{EXPORTS}*")],
                )
            )
        if task.exports_read:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadExports",
                    actions=["s3:GetObject"],
                    resources=[self.bucket.arn_for_objects(f"{EXPORTS}*")],
                )
            )
        if task.work_write:
            role.add_to_policy(iam.PolicyStatement(
                sid="WriteWork", actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{WORK}*")]))
        if task.work_read:
            role.add_to_policy(iam.PolicyStatement(
                sid="ReadWork", actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{WORK}*")]))
        if task.images_read:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadImages",
                    actions=["s3:GetObject"],
                    resources=[images_bucket.arn_for_objects(f"{p}*") for p in IMAGE_READS],
                )
            )
        return role

    def grant_start(self, role: iam.IRole) -> iam.Policy:
        """Let `role` start executions of this state machine (only) and describe them."""
        execution_arn = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        policy = iam.Policy(
            self,
            "StartAccess",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="StartExportJob",
                    actions=["states:StartExecution"],
                    resources=[self.state_machine.state_machine_arn],
                ),
                iam.PolicyStatement(
                    sid="DescribeExportJobs",
                    actions=["states:DescribeExecution"],
                    resources=[execution_arn],
                ),
            ],
        )
        acknowledge(
            policy,
            self._start_ack,
            "DescribeExecution on this state machine's executions only: execution names are "
            "job ids chosen at start time, so <state machine name>:* is the narrowest grant.",
        )
        return policy

    def _acknowledge(self, images_bucket: s3.IBucket) -> None:
        stack = Stack.of(self)
        machine_id = stack.resolve(self.state_machine.node.default_child.logical_id)
        self._start_ack = (
            f"IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:<{machine_id}.Name>:*]"
        )
        for task in TASKS:
            acknowledge(
                self.roles[task.name],
                "IAM5[Resource::*]",
                "X-Ray's PutTraceSegments/PutTelemetryRecords (active tracing) and Lambda's VPC "
                "network-interface actions do not support resource-level permissions.",
            )
        bucket_id = stack.resolve(self.bucket.node.default_child.logical_id)
        acknowledge(
            self,
            f"IAM5[Resource::<{bucket_id}.Arn>/{EXPORTS}*]",
            "Object access under exports/ only: keys there are exports/<job id>/<family>/..., "
            "generated per job, so a prefix is the narrowest grant possible.",
        )
        acknowledge(
            self,
            f"IAM5[Resource::<{bucket_id}.Arn>/{WORK}*]",
            "Object access under export-work/ only: keys there are export-work/<job id>/..., "
            "generated per job, so a prefix is the narrowest grant possible.",
        )
        acknowledge(
            self.role,
            f"IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:"
            f"execution:{nag_name(self, self.state_machine_name)}/*]",
            "This state machine's own Distributed Map child executions only: they are named "
            "at run time, so <state machine name>/* is the narrowest grant possible.",
        )
        images_id = stack.resolve(images_bucket.node.default_child.logical_id)
        for prefix in IMAGE_READS:
            acknowledge(
                self,
                f"IAM5[Resource::<{images_id}.Arn>/{prefix}*]",
                f"The export task reads images under {prefix} only; keys there are generated "
                "per upload (content hashes), so a prefix is the narrowest grant possible.",
            )
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "Step Functions' log delivery (logs:CreateLogDelivery, ...) and X-Ray tracing "
            "actions CDK grants for logging and tracing have no resource-level permissions.",
        )
        # CDK's one-per-stack AwsCustomResource function (looks up S3's managed prefix list).
        for child in stack.node.children:
            if child.node.id.startswith("AWS679f53fac002430cb0da5b7982bd2287"):
                acknowledge(
                    child,
                    "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's AwsCustomResource function (looks up the S3 managed prefix list id "
                    "at deploy time) uses the AWS managed basic execution policy (logs only).",
                )
                acknowledge(
                    child,
                    "L1",
                    "CDK's AwsCustomResource function: its Node.js runtime is chosen by the CDK "
                    "version, not by this project.",
                )
        acknowledge(
            self.s3_prefix_list,
            "IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists has no resource-level permissions; the call is "
            "read-only and runs once per deploy to find S3's prefix list id.",
        )
