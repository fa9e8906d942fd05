"""The HTTP API: the Chalice app in chalice_app/, packaged by Chalice, deployed as plain
CloudFormation resources (API Gateway REST API + stage, Lambda function, role).

Chalice packages the app (`chalice.api.package_app`, in a child process) into `deployment.zip`
and a SAM template whose `DefinitionBody` is the app's OpenAPI document. `chalice.cdk.Chalice`
would include that template as it is, SAM resources and all (`AWS::Serverless::Api`/`Function`,
expanded by CloudFormation's transform at deploy time), so cdk-nag never saw the stage or the
function and the stage could not be given throttling or access logs. Here the same two outputs
become CDK resources instead (`Api.expand`):

- the function: `lambda_.Function` from deployment.zip with the packaged handler, the stage's
  environment, VPC placement, both layers, memory/timeout, active X-Ray tracing, a log group
  with retention, and an explicit role (its own logs, VPC network interfaces, X-Ray; the DB
  secret through `db_secret.grant_read`). Chalice's generated policy is not used: it only sees
  AWS calls written in app.py itself. New permissions for the API are granted to `Api.role`;
- the REST API: `SpecRestApi` over the packaged OpenAPI document, where every Cognito
  authorizer (the app must declare `trainset-users`) is pointed at the real user pool (the app
  only knows a placeholder ARN when it is packaged), API Gateway's own error responses (401
  from the authorizer, 429 from throttling, 5xx) get the CORS headers, and the integrations
  call the function above;
- the stage `api`: throttling of every method (rate and burst from the load model, see
  config.py), JSON access logs and ERROR-level execution logs to log groups with retention,
  X-Ray tracing. API Gateway writes CloudWatch Logs through the region's account setting
  (`AWS::ApiGateway::Account`), which gets a role of its own (retained: other APIs of the
  account may rely on it).

The logical ids of the resources the SAM transform used to create (`RestAPI`,
`RestAPIapiStage`, `APIHandler`, `DefaultRole`) are kept, so a stack deployed with the SAM
template is updated in place (same API id and URL) rather than replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.constructs.logs import retention
from infra_cdk.constructs.migrations import VPC_ENI_ACTIONS
from infra_cdk.nag import acknowledge

AUTHORIZER_NAME = "trainset-users"
API_STAGE = "api"
# Logical ids in the SAM template Chalice generates (and of what its transform deployed).
REST_API_ID = "RestAPI"
HANDLER_ID = "APIHandler"
ROLE_ID = "DefaultRole"
STAGE_ID = f"{REST_API_ID}{API_STAGE}Stage"
# The only resources the packaged template may hold: anything else (a scheduled or S3 event
# handler added to the app) would need wiring here, so packaging fails loudly instead.
EXPECTED_RESOURCES = {
    REST_API_ID: "AWS::Serverless::Api",
    HANDLER_ID: "AWS::Serverless::Function",
    ROLE_ID: "AWS::IAM::Role",
    f"{HANDLER_ID}InvokePermission": "AWS::Lambda::Permission",
}
HANDLER_ARN = "${" + HANDLER_ID + ".Arn}"

_PACKAGE_SCRIPT = """\
import json, sys
from chalice import api
api.package_app(**json.load(sys.stdin))
"""


@dataclass(frozen=True)
class Throttling:
    """Stage-wide method throttling: steady requests per second and the token bucket size."""

    rate_rps: int
    burst: int


@dataclass(frozen=True)
class Package:
    """What Chalice produced: the code archive and the pieces of its SAM template used here."""

    zip_path: Path
    handler: str
    runtime: str
    openapi: dict[str, Any]


def package_app(source_dir: Path, build_dir: Path, stage_config: Mapping[str, Any]) -> Package:
    """Package the Chalice app under `<build_dir>/chalice.out/<uuid>/`, in a child process.

    Packaging imports chalice_app/app.py after copying the stage's environment variables into
    os.environ, and leaves `app`/`chalicelib` in sys.modules and chalice_app/ on sys.path. Done
    in the synth process, that would leak tokens such as TRAINSET_DB_SECRET_ARN into the
    environment of whatever runs next (other tests), and a cached `app` module imported earlier
    with TRAINSET_AUTH=local would be packaged without its authorizer. The child process starts
    clean; token strings in the stage configuration pass through its JSON untouched, and CDK
    resolves them when they come back in the OpenAPI document (same process, same tokens).
    """
    output_dir = build_dir / "chalice.out" / uuid.uuid4().hex
    request = {
        "project_dir": str(source_dir),
        "output_dir": str(output_dir),
        "stage": API_STAGE,
        "chalice_config": dict(stage_config),
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
            f"chalice packaging of {source_dir} failed:\n{result.stdout}{result.stderr}"
        )
    template = json.loads((output_dir / "sam.json").read_text())
    return read_package(template, output_dir / "deployment.zip")


def read_package(template: Mapping[str, Any], zip_path: Path) -> Package:
    """The handler, runtime and OpenAPI document of a packaged SAM template, checked to hold
    exactly the resources this construct replaces."""
    resources = template.get("Resources", {})
    found = {name: resource.get("Type") for name, resource in resources.items()}
    if found != EXPECTED_RESOURCES:
        raise ValueError(
            f"the packaged Chalice app has resources {found}; this construct deploys exactly "
            f"{EXPECTED_RESOURCES} (an event source added to the app needs wiring in api.py)"
        )
    function = resources[HANDLER_ID]["Properties"]
    api = resources[REST_API_ID]["Properties"]
    if api.get("StageName") != API_STAGE:
        raise ValueError(f"the packaged API stage is {api.get('StageName')!r}, not {API_STAGE!r}")
    return Package(
        zip_path=zip_path,
        handler=function["Handler"],
        runtime=function["Runtime"],
        openapi=api["DefinitionBody"],
    )


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        source_dir: Path,
        build_dir: Path,
        runtime: lambda_.Runtime,
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
        throttling: Throttling,
        log_retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._removal_policy = removal_policy
        self._log_retention_days = log_retention_days

        variables = {
            "TRAINSET_AUTH": "cognito",
            "TRAINSET_DB_SECRET_ARN": db_secret.secret_arn,
            "TRAINSET_USER_POOL_ARN": user_pool_arn,
            "POWERTOOLS_SERVICE_NAME": "trainset-api",
            # Read by chalice_app when it is imported (packaged): its CORS configuration.
            "TRAINSET_ALLOWED_ORIGIN": allowed_origin,
            **environment,
        }
        # What packaging needs: the environment the app is imported with (auth mode, CORS).
        stage_config: dict[str, Any] = {
            "api_gateway_stage": API_STAGE,
            "api_gateway_endpoint_type": "REGIONAL",
            "automatic_layer": False,
            "environment_variables": variables,
        }
        package = package_app(source_dir, build_dir, stage_config)
        if package.runtime != runtime.name:
            raise ValueError(
                f"Chalice packaged the app for {package.runtime}, the layers are built for "
                f"{runtime.name}: run the synth with the functions' Python"
            )

        # --- function ----------------------------------------------------------------------
        self.log_group = self._log_group("HandlerLogs")
        self.role = iam.Role(
            self,
            ROLE_ID,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="trainset API function",
            inline_policies={
                "DefaultRolePolicy": iam.PolicyDocument(
                    statements=[
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
                )
            },
        )
        _keep_logical_id(self.role, ROLE_ID)
        db_secret.grant_read(self.role)

        self.function = lambda_.Function(
            self,
            "Handler",
            description="trainset labeling API (Chalice)",
            code=lambda_.Code.from_asset(str(package.zip_path)),
            handler=package.handler,
            runtime=runtime,
            architecture=lambda_.Architecture.X86_64,
            environment=variables,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_seconds),
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            layers=list(layers),
        )
        _keep_logical_id(self.function, HANDLER_ID)

        # --- REST API and stage ------------------------------------------------------------
        openapi = package.openapi
        self.authorizer_names = point_authorizers_at(openapi, user_pool_arn)
        add_cors_to_gateway_errors(openapi, allowed_origin)
        _call_function(openapi, self.function.function_arn)

        self.access_logs = self._log_group("AccessLogs")
        self.rest_api = apigateway.SpecRestApi(
            self,
            "RestApi",
            api_definition=apigateway.ApiDefinition.from_inline(openapi),
            rest_api_name=f"{Stack.of(self).stack_name}-api",
            description="trainset labeling API",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # As the SAM transform did: keeps the imported body from resetting the type.
            parameters={"endpointConfigurationTypes": "REGIONAL"},
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy=True,
            deploy_options=apigateway.StageOptions(
                stage_name=API_STAGE,
                throttling_rate_limit=throttling.rate_rps,
                throttling_burst_limit=throttling.burst,
                tracing_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=ACCESS_LOG_FORMAT,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # never log request/response bodies (labels)
                metrics_enabled=False,  # per-method metrics cost extra; the API's are kept
            ),
        )
        _keep_logical_id(self.rest_api, REST_API_ID)
        self.stage = self.rest_api.deployment_stage
        _keep_logical_id(self.stage, STAGE_ID)
        # API Gateway creates the execution log group on first use, without retention:
        # create it first, with one.
        self.execution_logs = self._log_group(
            "ExecutionLogs",
            name=Fn.join(
                "", ["API-Gateway-Execution-Logs_", self.rest_api.rest_api_id, f"/{API_STAGE}"]
            ),
        )
        self.stage.node.add_dependency(self.execution_logs)

        self.function.add_permission(
            "ApiGatewayInvoke",
            principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
            source_arn=self.rest_api.arn_for_execute_api(),
        )
        self._acknowledge()

    @property
    def rest_api_id(self) -> str:
        return self.rest_api.rest_api_id

    @property
    def url(self) -> str:
        """The stage's base URL, `https://<id>.execute-api.<region>.<suffix>/api/`."""
        return self.rest_api.url

    def _log_group(self, construct_id: str, name: str | None = None) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            log_group_name=name,
            retention=retention(self._log_retention_days),
            removal_policy=self._removal_policy,
        )

    def _acknowledge(self) -> None:
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "Lambda's VPC network-interface actions and X-Ray's PutTraceSegments/"
            "PutTelemetryRecords do not support resource-level permissions.",
        )
        acknowledge(
            self.function,
            "L1",
            "The API runs on the Python the layers are built for (the synth's interpreter, as "
            "Chalice packages it), not necessarily the newest Lambda runtime.",
        )
        acknowledge(
            self.rest_api,
            "APIG2",
            "The app validates every request itself (chalicelib/validation: JSON shape, types, "
            "64 KiB limit) and answers 400 with a reason; the packaged OpenAPI models are empty, "
            "so an API Gateway validator would check nothing more.",
        )
        acknowledge(
            self.rest_api,
            "APIG3",
            "No WAF (a web ACL costs ~$5/month plus per rule and request): every route but "
            "OPTIONS needs a Cognito token, and stage throttling caps the request rate.",
        )
        acknowledge(
            self.rest_api,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "API Gateway's account-level CloudWatch Logs role (needed for the stage's access and "
            "execution logs) uses the AWS managed policy made for exactly that purpose.",
        )


# JSON access log lines: who called what, the outcome, and where the time went (no bodies).
ACCESS_LOG_FORMAT = apigateway.AccessLogFormat.custom(
    json.dumps(
        {
            "requestId": apigateway.AccessLogField.context_request_id(),
            "time": apigateway.AccessLogField.context_request_time(),
            "ip": apigateway.AccessLogField.context_identity_source_ip(),
            "method": apigateway.AccessLogField.context_http_method(),
            "path": apigateway.AccessLogField.context_resource_path(),
            "status": apigateway.AccessLogField.context_status(),
            "protocol": apigateway.AccessLogField.context_protocol(),
            "responseLength": apigateway.AccessLogField.context_response_length(),
            "latencyMs": apigateway.AccessLogField.context_response_latency(),
            "integrationLatencyMs": apigateway.AccessLogField.context_integration_latency(),
            "sub": apigateway.AccessLogField.context_authorizer_claims("sub"),
            "error": apigateway.AccessLogField.context_error_message(),
            "responseType": apigateway.AccessLogField.context_error_response_type(),
            "xrayTraceId": apigateway.AccessLogField.context_xray_trace_id(),
        }
    )
)


def point_authorizers_at(openapi: dict[str, Any], user_pool_arn: str) -> list[str]:
    """Set providerARNs of every Cognito authorizer in the document; the app must declare the
    one named `trainset-users` (routes would be open otherwise)."""
    security = openapi.get("securityDefinitions", {})
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
        security[name]["x-amazon-apigateway-authorizer"]["providerARNs"] = [user_pool_arn]
    return names


def add_cors_to_gateway_errors(openapi: dict[str, Any], allowed_origin: str) -> None:
    """Errors API Gateway answers itself (401 from the authorizer, 429 from throttling, 5xx)
    carry the CORS headers too, so the page can read them instead of a bare network error."""
    headers = {
        "gatewayresponse.header.Access-Control-Allow-Origin": f"'{allowed_origin}'",
        "gatewayresponse.header.Access-Control-Allow-Headers": "'Authorization,Content-Type'",
    }
    openapi["x-amazon-apigateway-gateway-responses"] = {
        kind: {"responseParameters": headers} for kind in ("DEFAULT_4XX", "DEFAULT_5XX")
    }


def _call_function(openapi: dict[str, Any], function_arn: str) -> int:
    """Point every integration (`Fn::Sub` over `${APIHandler.Arn}`) at `function_arn`; returns
    how many were changed. Any other reference to a template resource is refused."""
    changed = 0

    def visit(node: Any) -> Any:
        nonlocal changed
        if isinstance(node, dict):
            if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
                text = node["Fn::Sub"]
                if HANDLER_ARN in text:
                    changed += 1
                    return Fn.sub(text.replace(HANDLER_ARN, "${HandlerArn}"),
                                  {"HandlerArn": function_arn})
                return node
            if any(key in node for key in ("Ref", "Fn::GetAtt")):
                raise ValueError(f"the packaged OpenAPI document references {node}")
            return {key: visit(value) for key, value in node.items()}
        if isinstance(node, list):
            return [visit(item) for item in node]
        return node

    for key, value in list(openapi.items()):
        openapi[key] = visit(value)
    if not changed:
        raise ValueError("the packaged OpenAPI document has no integration with the function")
    return changed


def _keep_logical_id(construct: Construct, logical_id: str) -> None:
    """Give the construct's CloudFormation resource the logical id SAM's transform used."""
    resource = construct.node.default_child
    assert resource is not None
    resource.override_logical_id(logical_id)  # type: ignore[attr-defined]

