"""RDS PostgreSQL 16 in the isolated "data" subnets, its credentials in Secrets Manager, and an
RDS Proxy in front of it for the API.

The generated secret is in the RDS format the functions read (`host`, `port`, `username`,
`password`, `dbname`, `engine`): the instance attaches host and port once it exists. Only
security groups passed to `allow_from` (the migrate function, the export tasks, the proxy) may
reach the database port; only those passed to `allow_through_proxy` (the API) reach the proxy.
PostgreSQL 16 on RDS has `rds.force_ssl=1` by default: clients must connect with TLS.

Why a proxy (and not reserved concurrency): every warm API container holds one connection, and
a db.t4g.micro allows about 80 (`max_connections` = DBInstanceClassMemory / 9,531,392). Reserved
concurrency sized from that (say 50 containers) would turn a burst into Lambda throttling, which
API Gateway answers with errors; it would also need the account's unreserved concurrency to stay
at 100 or more (new accounts often have a quota of 10, so the deploy fails there). The proxy
instead multiplexes many client connections over a pool capped at
`max_connections_percent` of max_connections, and a client that finds the pool busy waits
(up to `borrow_timeout`) instead of getting "remaining connection slots are reserved". Cost:
billed per vCPU of the instance, minimum 2 (approximately $0.015 per vCPU-hour in us-east-1:
about $22 a month for the 2-vCPU t4g.micro/t4g.small). The API connects with the same secret
(Secrets Manager authentication, SCRAM, TLS required), so it needs no new permission: the
proxy's endpoint and port reach it as TRAINSET_DB_HOST/TRAINSET_DB_PORT, which override the
secret's host and port. Multiplexing holds as long as sessions carry no state between
transactions: the app sets no SET/session variables, no temporary tables or cursors, and only
takes transaction-scoped advisory locks (`pg_advisory_xact_lock`); its protocol-level prepared
statements are multiplexed by the proxy. The migrate function (session advisory lock) and the
export tasks (few, long) connect directly.
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
# RDS Proxy for PostgreSQL listens on 5432, whatever the instance's port.
PROXY_PORT = 5432
# How long a client waits for a pooled connection before the proxy refuses it: under the API
# function's 30 s timeout (and API Gateway's 29 s), so a long queue ends in a clean error.
PROXY_BORROW_TIMEOUT = Duration.seconds(20)
# Idle client connections (a warm container between requests) are closed after this; the
# app's pool re-checks a connection idle for 30 s before using it, and reconnects.
PROXY_IDLE_CLIENT_TIMEOUT = Duration.minutes(30)


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
        proxy_security_group: ec2.ISecurityGroup,
        proxy_max_connections_percent: int,
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

        # The API's way in: a connection pool that queues a burst instead of failing it.
        self.proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_instance(self.instance),
            secrets=[self.secret],
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[proxy_security_group],
            require_tls=True,
            iam_auth=False,
            client_password_auth_type=rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
            max_connections_percent=proxy_max_connections_percent,
            borrow_timeout=PROXY_BORROW_TIMEOUT,
            idle_client_timeout=PROXY_IDLE_CLIENT_TIMEOUT,
            debug_logging=False,  # it would log statements, with their values
        )
        self.proxy_security_group = proxy_security_group
        self.allow_from(proxy_security_group, "PostgreSQL from the RDS Proxy")

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

    def allow_through_proxy(self, peer: ec2.ISecurityGroup, description: str) -> None:
        """Open the proxy's port to one security group (and that group's egress to it)."""
        self.proxy.connections.allow_from(peer, ec2.Port.tcp(PROXY_PORT), description)

    @property
    def proxy_endpoint(self) -> str:
        return self.proxy.endpoint

    @property
    def secret_arn(self) -> str:
        return self.secret.secret_arn
