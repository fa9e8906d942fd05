"""RDS PostgreSQL 16 in the isolated "data" subnets, its credentials in Secrets Manager.

The generated secret is in the RDS format the API reads (`host`, `port`, `username`, `password`,
`dbname`, `engine`): the instance attaches host and port once it exists. Only security groups
passed to `allow_from` (the API and migrate functions) may reach the database port.
PostgreSQL 16 on RDS has `rds.force_ssl=1` by default: clients must connect with TLS.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.constructs.logs import retention
from infra_cdk.nag import acknowledge

DATABASE_NAME = "trainset"
MASTER_USERNAME = "trainset_admin"
# Not 5432: a non-default port (AwsSolutions-RDS11). Clients take the port from the secret.
PORT = 5433


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        identifier: str,
        instance_type: str,
        allocated_storage_gib: int,
        max_allocated_storage_gib: int,
        multi_az: bool,
        deletion_protection: bool,
        backup_retention_days: int,
        removal_policy: RemovalPolicy,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="trainset PostgreSQL: ingress only from the trainset functions",
            allow_all_outbound=False,
        )
        # RDS writes the exported PostgreSQL log here; created first so it has a retention.
        log_group = logs.LogGroup(
            self,
            "PostgresqlLog",
            log_group_name=f"/aws/rds/instance/{identifier}/postgresql",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )

        # Created here (not by the instance) so that it carries `dbname`; the instance's secret
        # attachment adds host, port, engine and dbInstanceIdentifier.
        generated = rds.DatabaseSecret(
            self, "Secret", username=MASTER_USERNAME, dbname=DATABASE_NAME
        )
        generated.apply_removal_policy(
            RemovalPolicy.RETAIN
            if removal_policy == RemovalPolicy.RETAIN
            else RemovalPolicy.DESTROY
        )

        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=identifier,
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_16),
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.security_group],
            port=PORT,
            database_name=DATABASE_NAME,
            credentials=rds.Credentials.from_secret(generated),
            publicly_accessible=False,
            storage_encrypted=True,
            storage_type=rds.StorageType.GP3,
            allocated_storage=allocated_storage_gib,
            max_allocated_storage=max_allocated_storage_gib,
            multi_az=multi_az,
            deletion_protection=deletion_protection,
            backup_retention=Duration.days(backup_retention_days),
            delete_automated_backups=removal_policy == RemovalPolicy.DESTROY,
            removal_policy=removal_policy,
            auto_minor_version_upgrade=True,
            copy_tags_to_snapshot=True,
            cloudwatch_logs_exports=["postgresql"],
        )
        self.instance.node.add_dependency(log_group)

        secret = self.instance.secret  # the secret, attached to the instance
        assert secret is not None
        self.secret: secretsmanager.ISecret = secret

        acknowledge(
            generated,
            "SMG4",
            "No automatic rotation yet: the API and the migrate function read the secret once per "
            "cold start, so a rotated password would fail new connections of warm containers "
            "until they re-read it. Rotate by hand (see infra_cdk/README.md).",
        )
        if not multi_az:
            acknowledge(
                self.instance,
                "RDS3",
                "Single-AZ on purpose in this environment (dev): cost over availability; "
                "prod settings turn Multi-AZ on.",
            )
        if not deletion_protection:
            acknowledge(
                self.instance,
                "RDS10",
                "Deletion protection off on purpose in this environment (dev) so the stack can "
                "be torn down; prod settings turn it on.",
            )

    def allow_from(self, peer: ec2.ISecurityGroup, description: str) -> None:
        """Open the database port to one security group (and that group's egress to it)."""
        self.instance.connections.allow_default_port_from(peer, description)

    @property
    def secret_arn(self) -> str:
        return self.secret.secret_arn
