"""The VPC: an "app" subnet group for the Lambda functions and a "data" one for the database.

With `nat_gateways=0` (the default in every environment) the VPC has no internet route at all:
both groups are isolated subnets, and the functions reach Secrets Manager through an interface
VPC endpoint (private DNS), the only AWS API they call. This saves a NAT gateway per AZ and keeps
the database network closed. With `nat_gateways>0` the "app" group becomes private subnets with
egress through NAT gateways in public subnets (for code that must call the internet); the
database stays isolated either way.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.constructs.logs import retention

APP_SUBNETS = "app"
DATA_SUBNETS = "data"


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_azs: int,
        nat_gateways: int,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        subnets = [
            ec2.SubnetConfiguration(
                name=APP_SUBNETS,
                subnet_type=(
                    ec2.SubnetType.PRIVATE_WITH_EGRESS
                    if nat_gateways
                    else ec2.SubnetType.PRIVATE_ISOLATED
                ),
                cidr_mask=22,
            ),
            ec2.SubnetConfiguration(
                name=DATA_SUBNETS, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            ),
        ]
        if nat_gateways:
            subnets.insert(
                0,
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )

        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )

        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP_SUBNETS)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA_SUBNETS)

        # Secrets Manager without internet access; private DNS makes the default endpoint
        # (secretsmanager.<region>.amazonaws.com) resolve to it, so boto3 needs no settings.
        self.secrets_manager_endpoint = self.vpc.add_interface_endpoint(
            "SecretsManager",
            service=ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
            subnets=self.app_subnets,
            private_dns_enabled=True,
            open=False,
        )

    def function_security_group(
        self, scope: Construct, construct_id: str, *, description: str
    ) -> ec2.SecurityGroup:
        """A security group (created in `scope`) for a Lambda function in the app subnets, or
        for the RDS Proxy (which fetches the database secret from Secrets Manager): no egress
        but HTTPS to the VPC's interface endpoints and what is granted explicitly later (the
        database or proxy port, by `Database.allow_from`/`allow_through_proxy`)."""
        group = ec2.SecurityGroup(
            scope,
            construct_id,
            vpc=self.vpc,
            description=description,
            allow_all_outbound=False,
        )
        # HTTPS to interface endpoints, which all live inside the VPC. This rule is inline in
        # the group (a CIDR peer), which is what makes EC2 drop its default allow-all egress
        # rule; rules towards other security groups become separate resources and would not.
        group.add_egress_rule(
            ec2.Peer.ipv4(self.vpc.vpc_cidr_block),
            ec2.Port.tcp(443),
            "HTTPS to VPC interface endpoints",
        )
        self.secrets_manager_endpoint.connections.allow_default_port_from(
            group, "HTTPS from a trainset function to Secrets Manager"
        )
        return group
