"""Schema migrations as a CloudFormation custom resource, run on deploy.

The migrate function's code asset is staged at synth time from two places of the repository:

    lambdas/migrate/*   ->  /var/task/            (handler.py: `lambda_handler(event, context)`)
    sql/*.sql           ->  /var/task/sql/        (TRAINSET_SQL_DIR)

and the function gets the core and deps layers (the migrations runner lives in `trainset`).

A custom resource backed by a CDK `Provider` invokes it. Its `SqlHash` property is a SHA-256 of
the sql files (names and contents), so CloudFormation sends an Update, and the migrations run,
on every deploy where sql/ changed, and a Create on the first deploy. The handler is the
Provider's on-event function: it returns (optionally `{"PhysicalResourceId": ...}`) or raises;
the Provider reports to CloudFormation. A failure fails and rolls back the deploy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from aws_cdk import AssetHashType, CfnElement, CustomResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra_cdk.bundling import CopyBundler, local_bundling
from infra_cdk.constructs.logs import retention
from infra_cdk.nag import acknowledge

TASK_ROOT = "/var/task"
SQL_SUBDIR = "sql"
RESOURCE_TYPE = "Custom::TrainsetMigrations"

# What a Lambda function in a VPC needs to manage its network interfaces (the actions of the
# AWS managed policy AWSLambdaVPCAccessExecutionRole, written out to avoid a managed policy).
VPC_ENI_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]


def sql_hash(sql_dir: Path) -> str:
    """SHA-256 over the migration files (sorted names and bytes): changes when any file is
    added, removed, renamed or edited."""
    digest = hashlib.sha256()
    for path in sorted(sql_dir.glob("*.sql")):
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        db_secret: secretsmanager.ISecret,
        layers: Sequence[lambda_.ILayerVersion],
        runtime: lambda_.Runtime,
        handler_dir: Path,
        sql_dir: Path,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.sql_hash = sql_hash(sql_dir)

        log_group = logs.LogGroup(
            self,
            "FunctionLogs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        self.role = iam.Role(
            self,
            "FunctionRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="trainset migrate function: its logs, its VPC interfaces, the DB secret",
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        self.role.add_to_policy(iam.PolicyStatement(actions=VPC_ENI_ACTIONS, resources=["*"]))
        db_secret.grant_read(self.role)

        self.function = lambda_.Function(
            self,
            "Function",
            description="trainset: apply sql/ migrations (custom resource on deploy)",
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.lambda_handler",
            code=lambda_.Code.from_asset(
                str(handler_dir),
                # Hash the staged output (handler + sql), so a sql change uploads new code.
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=local_bundling(CopyBundler({".": handler_dir, SQL_SUBDIR: sql_dir})),
            ),
            layers=list(layers),
            environment={
                "TRAINSET_DB_SECRET_ARN": db_secret.secret_arn,
                "TRAINSET_SQL_DIR": f"{TASK_ROOT}/{SQL_SUBDIR}",
                "POWERTOOLS_SERVICE_NAME": "trainset-migrate",
            },
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            role=self.role,
            log_group=log_group,
            timeout=Duration.minutes(10),
            memory_size=512,
        )

        provider_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        self.provider = cr.Provider(
            self, "Provider", on_event_handler=self.function, log_group=provider_logs
        )
        self.resource = CustomResource(
            self,
            "Run",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={"SqlHash": self.sql_hash},
        )

        acknowledge(
            self.provider,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "The CDK custom-resource Provider framework creates its own onEvent function with "
            "the AWS managed basic execution policy (logs only); it is not configurable.",
        )
        function_id = Stack.of(self).resolve(
            cast(CfnElement, self.function.node.default_child).logical_id
        )
        acknowledge(
            self.provider,
            f"IAM5[Resource::<{function_id}.Arn>:*]",
            "The Provider framework may invoke any version/alias of the migrate function "
            "(<arn>:*): a grant CDK generates for this one function only.",
        )
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "Lambda's VPC network-interface actions (ec2:CreateNetworkInterface, "
            "DescribeNetworkInterfaces, ...) do not support resource-level permissions.",
        )
        acknowledge(
            self.function,
            "L1",
            f"Runtime pinned to {runtime.name}, the Python Chalice packages the API for, so the "
            "function shares the API's layers (built for that version).",
        )
