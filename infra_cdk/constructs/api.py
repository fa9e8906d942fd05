"""The HTTP API: the Chalice app in chalice_app/, packaged by `chalice.cdk.Chalice`.

Under CDK the stage configuration given here (not .chalice/config.json) drives the function:
environment, VPC placement, layers, memory and timeout. What this construct adds on top of the
SAM template Chalice generates:

- every Cognito authorizer of the REST API (the app's `trainset-users`) is pointed at the real
  user pool: the app only knows a placeholder ARN when it is packaged;
- API Gateway's own error responses (e.g. 401 from the authorizer) get the CORS headers;
- the Lambda function logs to a log group with a retention;
- the function role's inline policy is replaced by an explicit one (its own logs, VPC network
  interfaces, X-Ray), and the DB secret is granted through `get_role("DefaultRole")`.
  Chalice's generated policy is not used: it only sees AWS calls written in app.py itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from chalice.cdk import Chalice
from constructs import Construct

from infra_cdk.constructs.logs import retention
from infra_cdk.constructs.migrations import VPC_ENI_ACTIONS
from infra_cdk.nag import acknowledge

AUTHORIZER_NAME = "trainset-users"
API_STAGE = "api"
REST_API_ID = "RestAPI"  # logical ids in the SAM template Chalice generates
HANDLER_ID = "APIHandler"
ROLE_ID = "DefaultRole"

_PACKAGE_SCRIPT = """\
import json, sys
from chalice import api
api.package_app(**json.load(sys.stdin))
"""


class IsolatedChalice(Chalice):
    """`chalice.cdk.Chalice` that packages the app in a child Python process.

    Packaging imports chalice_app/app.py after copying the stage's environment variables into
    os.environ, and leaves `app`/`chalicelib` in sys.modules and chalice_app/ on sys.path. Done
    in the synth process, that would leak tokens such as TRAINSET_DB_SECRET_ARN into the
    environment of whatever runs next (other tests), and a cached `app` module imported earlier
    with TRAINSET_AUTH=local would be packaged without its authorizer. The child process starts
    clean; token strings in the stage configuration pass through its JSON untouched and are
    resolved when CDK reads the SAM template back.
    """

    def _package_app(self) -> None:
        request = {
            "project_dir": self.source_dir,
            "output_dir": self._sam_package_dir,
            "stage": self.stage_name,
            "chalice_config": self.stage_config,
        }
        result = subprocess.run(
            [sys.executable, "-c", _PACKAGE_SCRIPT],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=dict(os.environ),
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"chalice packaging of {self.source_dir} failed:\n{result.stdout}{result.stderr}"
            )


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """Chalice writes its packages under `<cwd>/chalice.out/`; choose that cwd."""
    path.mkdir(parents=True, exist_ok=True)
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        build_dir: Path,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        layers: Sequence[lambda_.ILayerVersion],
        db_secret: secretsmanager.ISecret,
        user_pool_arn: str,
        allowed_origin: str,
        environment: Mapping[str, str],
        memory_mb: int,
        timeout_seconds: int,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        stage_config: dict[str, Any] = {
            "api_gateway_stage": API_STAGE,
            "api_gateway_endpoint_type": "REGIONAL",
            "automatic_layer": False,
            "xray": True,
            "lambda_memory_size": memory_mb,
            "lambda_timeout": timeout_seconds,
            "environment_variables": {
                "TRAINSET_AUTH": "cognito",
                "TRAINSET_DB_SECRET_ARN": db_secret.secret_arn,
                "TRAINSET_USER_POOL_ARN": user_pool_arn,
                "POWERTOOLS_SERVICE_NAME": "trainset-api",
                # Read by chalice_app when it is imported (packaged): its CORS configuration.
                "TRAINSET_ALLOWED_ORIGIN": allowed_origin,
                **environment,
            },
            "subnet_ids": vpc.select_subnets(
                subnet_group_name=subnets.subnet_group_name
            ).subnet_ids,
            "security_group_ids": [security_group.security_group_id],
            "layers": [layer.layer_version_arn for layer in layers],
        }
        with _working_directory(build_dir):
            self.chalice = IsolatedChalice(
                self, "Chalice", source_dir=str(source_dir), stage_config=stage_config
            )

        self.rest_api = self.chalice.get_resource(REST_API_ID)
        self.handler = self.chalice.get_resource(HANDLER_ID)
        self.authorizer_names = self._point_authorizers_at(user_pool_arn)
        self._add_cors_to_gateway_errors(allowed_origin)

        self.log_group = logs.LogGroup(
            self,
            "HandlerLogs",
            retention=retention(log_retention_days),
            removal_policy=removal_policy,
        )
        self.handler.add_property_override(
            "LoggingConfig", {"LogGroup": self.log_group.log_group_name}
        )

        self._replace_role_policy()
        self.role = self.chalice.get_role(ROLE_ID)
        db_secret.grant_read(self.role)

    def _point_authorizers_at(self, user_pool_arn: str) -> list[str]:
        """Override providerARNs of every Cognito authorizer in the swagger definition; the
        app must declare the one named `trainset-users` (routes would be open otherwise)."""
        definition = self.rest_api.definition_body
        security = definition.get("securityDefinitions", {}) if definition else {}
        names = sorted(
            name
            for name, scheme in security.items()
            if scheme.get("x-amazon-apigateway-authtype") == "cognito_user_pools"
        )
        if AUTHORIZER_NAME not in names:
            raise ValueError(
                f"chalice_app declares no Cognito authorizer named {AUTHORIZER_NAME!r} "
                f"(found {names or 'none'}); the API would be deployed without authentication"
            )
        for name in names:
            self.rest_api.add_property_override(
                f"DefinitionBody.securityDefinitions.{name}"
                ".x-amazon-apigateway-authorizer.providerARNs",
                [user_pool_arn],
            )
        return names

    def _add_cors_to_gateway_errors(self, allowed_origin: str) -> None:
        """Errors API Gateway answers itself (401 from the authorizer, throttling, 5xx) carry
        the CORS headers too, so the page can read them instead of a bare network error."""
        headers = {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{allowed_origin}'",
            "gatewayresponse.header.Access-Control-Allow-Headers": "'Authorization,Content-Type'",
        }
        self.rest_api.add_property_override(
            "DefinitionBody.x-amazon-apigateway-gateway-responses",
            {kind: {"responseParameters": headers} for kind in ("DEFAULT_4XX", "DEFAULT_5XX")},
        )

    def _replace_role_policy(self) -> None:
        role = self.chalice.get_resource(ROLE_ID)
        assert isinstance(role, iam.CfnRole)
        statements = [
            iam.PolicyStatement(
                sid="OwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            ),
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces", actions=VPC_ENI_ACTIONS, resources=["*"]
            ),
            iam.PolicyStatement(
                sid="XRay",
                actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                resources=["*"],
            ),
        ]
        role.policies = [
            iam.CfnRole.PolicyProperty(
                policy_name="DefaultRolePolicy",
                policy_document=iam.PolicyDocument(statements=statements),
            )
        ]
        acknowledge(
            role,
            "IAM5[Resource::*]",
            "Lambda's VPC network-interface actions and X-Ray's PutTraceSegments/"
            "PutTelemetryRecords do not support resource-level permissions.",
        )
