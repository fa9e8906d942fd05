"""The synthesized trainset stack: what each construct must guarantee, checked on the template."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk.assertions import Annotations, Match

from infra_cdk import paths
from infra_cdk.config import settings_for
from infra_cdk.constructs.api import AUTHORIZER_NAME, EXPECTED_RESOURCES, read_package
from infra_cdk.constructs.auth import CODERS_GROUP, MANAGERS_GROUP
from infra_cdk.constructs.migrations import RESOURCE_TYPE, sql_hash

if TYPE_CHECKING:
    from conftest import Synthesized

PLACEHOLDER = "placeholder"


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- database ------------------------------------------------------------------------------


def test_database_is_encrypted_private_postgres_16(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "EngineVersion": Match.string_like_regexp(r"^16"),
            "StorageEncrypted": True,
            "PubliclyAccessible": False,
            "DBName": "trainset",
            "BackupRetentionPeriod": Match.any_value(),
        },
    )
    _, group = only(dev.resources_of_type("AWS::RDS::DBSubnetGroup"))
    subnet_ids = [ref["Ref"] for ref in group["Properties"]["SubnetIds"]]
    assert len(subnet_ids) == 2 and all("dataSubnet" in s for s in subnet_ids), subnet_ids
    # Isolated: the route tables of these subnets have no route (to an internet/NAT gateway).
    tables = [
        a["Properties"]["RouteTableId"]
        for a in dev.resources_of_type("AWS::EC2::SubnetRouteTableAssociation").values()
        if a["Properties"]["SubnetId"]["Ref"] in subnet_ids
    ]
    routes = [
        r["Properties"]["RouteTableId"] for r in dev.resources_of_type("AWS::EC2::Route").values()
    ]
    assert len(tables) == 2 and not set(map(json.dumps, tables)) & set(map(json.dumps, routes))


def test_database_secret_is_generated_in_rds_format(dev: Synthesized) -> None:
    secret_id, secret = only(dev.resources_of_type("AWS::SecretsManager::Secret"))
    template = json.loads(secret["Properties"]["GenerateSecretString"]["SecretStringTemplate"])
    assert template == {"username": "trainset_admin", "dbname": "trainset"}
    assert secret["Properties"]["GenerateSecretString"]["GenerateStringKey"] == "password"
    # The attachment adds host and port once the instance exists.
    dev.template.has_resource_properties(
        "AWS::SecretsManager::SecretTargetAttachment",
        {"SecretId": {"Ref": secret_id}, "TargetType": "AWS::RDS::DBInstance"},
    )


def ingress_sources(synth: Synthesized, group_id: str) -> dict[str, tuple[int, int]]:
    """Source security group -> (from port, to port) of every ingress rule of `group_id`."""
    return {
        r["Properties"]["SourceSecurityGroupId"]["Fn::GetAtt"][0]: (
            r["Properties"]["FromPort"], r["Properties"]["ToPort"])
        for r in synth.resources_of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    }


def test_database_port_is_open_only_to_the_proxy_migrate_and_export(dev: Synthesized) -> None:
    db_sg = dev.logical_id(dev.stack.database.security_group)
    proxy_sg = dev.logical_id(dev.stack.database.proxy_security_group)
    migrate_sg = dev.logical_id(dev.stack.node.find_child("MigrateSecurityGroup"))
    export_sg = dev.logical_id(dev.stack.node.find_child("ExportJobSecurityGroup"))
    import_sg = dev.logical_id(dev.stack.node.find_child("ImportJobSecurityGroup"))
    instance_id, _ = only(dev.resources_of_type("AWS::RDS::DBInstance"))
    port = {"Fn::GetAtt": [instance_id, "Endpoint.Port"]}  # the instance's (5433)
    assert ingress_sources(dev, db_sg) == {
        sg: (port, port) for sg in (proxy_sg, migrate_sg, export_sg, import_sg)}
    db_group = dev.resources[db_sg]["Properties"]
    assert "SecurityGroupIngress" not in db_group  # no inline (CIDR) ingress at all


def test_the_api_reaches_the_database_only_through_the_proxy(dev: Synthesized) -> None:
    api_sg = dev.logical_id(dev.stack.node.find_child("ApiSecurityGroup"))
    proxy_sg = dev.logical_id(dev.stack.database.proxy_security_group)
    assert ingress_sources(dev, proxy_sg) == {api_sg: (5432, 5432)}
    api_egress = [
        r["Properties"] for r in dev.resources_of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [api_sg, "GroupId"]}
        and r["Properties"]["FromPort"] != 443
    ]
    assert [(e["DestinationSecurityGroupId"]["Fn::GetAtt"][0], e["FromPort"], e["ToPort"])
            for e in api_egress] == [(proxy_sg, 5432, 5432)]
    # The proxy's own egress: HTTPS to the VPC's endpoints (Secrets Manager), the database.
    proxy_group = dev.resources[proxy_sg]["Properties"]
    assert {rule["FromPort"] for rule in proxy_group["SecurityGroupEgress"]} == {443}


def test_proxy_pools_the_apis_connections_over_part_of_max_connections(
    dev: Synthesized,
) -> None:
    attachment_id, _ = only(dev.resources_of_type("AWS::SecretsManager::SecretTargetAttachment"))
    instance_id, _ = only(dev.resources_of_type("AWS::RDS::DBInstance"))
    proxy_id, proxy = only(dev.resources_of_type("AWS::RDS::DBProxy"))
    props = proxy["Properties"]
    assert props["EngineFamily"] == "POSTGRESQL"
    assert props["RequireTLS"] is True and props["DebugLogging"] is False
    assert props["Auth"] == [{
        "AuthScheme": "SECRETS", "IAMAuth": "DISABLED", "SecretArn": {"Ref": attachment_id},
        "ClientPasswordAuthType": "POSTGRES_SCRAM_SHA_256"}]
    assert all("dataSubnet" in s["Ref"] for s in props["VpcSubnetIds"])
    _, target = only(dev.resources_of_type("AWS::RDS::DBProxyTargetGroup"))
    assert target["Properties"]["DBProxyName"] == {"Ref": proxy_id}
    assert target["Properties"]["DBInstanceIdentifiers"] == [{"Ref": instance_id}]
    pool = target["Properties"]["ConnectionPoolConfigurationInfo"]
    assert pool["MaxConnectionsPercent"] == dev.stack.settings.db_proxy_max_connections_percent
    # A client waits for a pooled connection, but less than the API function's timeout.
    assert 0 < pool["ConnectionBorrowTimeout"] < dev.stack.settings.api_timeout_seconds
    # The proxy's role reads the one secret it presents to the database.
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    reads = [
        st for p in dev.resources_of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for st in statements(p["Properties"]["PolicyDocument"])
    ]
    assert reads and all(st["Resource"] == {"Ref": attachment_id} for st in reads)


def test_function_security_groups_have_no_open_egress(dev: Synthesized) -> None:
    for name in ("ApiSecurityGroup", "MigrateSecurityGroup", "DatabaseProxySecurityGroup"):
        group = dev.resources[dev.logical_id(dev.stack.node.find_child(name))]["Properties"]
        egress = group["SecurityGroupEgress"]  # inline rules replace EC2's default allow-all
        assert egress and all(rule.get("CidrIp") != "0.0.0.0/0" for rule in egress), egress
        assert {rule["FromPort"] for rule in egress} == {443}


# --- network -------------------------------------------------------------------------------


def test_dev_network_has_no_nat_and_reaches_secrets_manager_privately(dev: Synthesized) -> None:
    dev.template.resource_count_is("AWS::EC2::NatGateway", 0)
    dev.template.resource_count_is("AWS::EC2::InternetGateway", 0)
    dev.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Interface",
            "PrivateDnsEnabled": True,
            "ServiceName": Match.object_like(
                {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".secretsmanager"]]}
            ),
        },
    )
    dev.template.resource_count_is("AWS::EC2::FlowLog", 1)


# --- auth ----------------------------------------------------------------------------------


def test_user_pool_is_admin_only_with_strong_passwords(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::Cognito::UserPool",
        {
            "AdminCreateUserConfig": Match.object_like({"AllowAdminCreateUserOnly": True}),
            "Policies": {
                "PasswordPolicy": Match.object_like(
                    {
                        "MinimumLength": 12,
                        "RequireLowercase": True,
                        "RequireUppercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                )
            },
        },
    )


def test_user_pool_has_coders_and_managers_groups(dev: Synthesized) -> None:
    pool_id, _ = only(dev.resources_of_type("AWS::Cognito::UserPool"))
    groups = dev.resources_of_type("AWS::Cognito::UserPoolGroup").values()
    assert sorted(g["Properties"]["GroupName"] for g in groups) == sorted(
        [CODERS_GROUP, MANAGERS_GROUP]
    )
    assert all(g["Properties"]["UserPoolId"] == {"Ref": pool_id} for g in groups)


def test_web_client_uses_code_grant_without_secret(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "AllowedOAuthFlows": ["code"],  # authorization code (+ PKCE, public client)
            "GenerateSecret": False,
            "AllowedOAuthFlowsUserPoolClient": True,
            "SupportedIdentityProviders": ["COGNITO"],
        },
    )
    dev.template.resource_count_is("AWS::Cognito::UserPoolDomain", 1)


# --- API -----------------------------------------------------------------------------------


def test_rest_api_authorizer_uses_the_real_user_pool(dev: Synthesized) -> None:
    pool_id, _ = only(dev.resources_of_type("AWS::Cognito::UserPool"))
    _, api = only(dev.resources_of_type("AWS::ApiGateway::RestApi"))
    body = api["Properties"]["Body"]
    authorizer = body["securityDefinitions"][AUTHORIZER_NAME]
    assert authorizer["x-amazon-apigateway-authtype"] == "cognito_user_pools"
    assert authorizer["x-amazon-apigateway-authorizer"]["providerARNs"] == [
        {"Fn::GetAtt": [pool_id, "Arn"]}
    ]
    assert PLACEHOLDER not in json.dumps(dev.resources)
    secured = [
        (path, method)
        for path, methods in body["paths"].items()
        for method, operation in methods.items()
        if {AUTHORIZER_NAME: []} in operation.get("security", [])
    ]
    assert secured, "no route of the API uses the Cognito authorizer"


def test_allowed_origin_reaches_the_packaged_cors_and_gateway_errors(prod: Synthesized) -> None:
    origin = prod.stack.settings.allowed_origin  # the prod fixture overrides it
    assert origin.startswith("https://")
    _, api = only(prod.resources_of_type("AWS::ApiGateway::RestApi"))
    body = api["Properties"]["Body"]
    preflight_origins = {
        integration["responses"]["default"]["responseParameters"][
            "method.response.header.Access-Control-Allow-Origin"
        ]
        for methods in body["paths"].values()
        if "options" in methods
        for integration in [methods["options"]["x-amazon-apigateway-integration"]]
    }
    assert preflight_origins == {f"'{origin}'"}
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        headers = body["x-amazon-apigateway-gateway-responses"][kind]["responseParameters"]
        assert headers["gatewayresponse.header.Access-Control-Allow-Origin"] == f"'{origin}'"


def test_api_function_environment_vpc_and_layers(dev: Synthesized) -> None:
    pool_id, _ = only(dev.resources_of_type("AWS::Cognito::UserPool"))
    attachment_id, _ = only(dev.resources_of_type("AWS::SecretsManager::SecretTargetAttachment"))
    props = dev.resources["APIHandler"]["Properties"]
    assert props["Handler"] == "app.app" and props["Runtime"] == "python3.11"
    assert props["TracingConfig"] == {"Mode": "Active"}
    variables = props["Environment"]["Variables"]
    assert variables["TRAINSET_AUTH"] == "cognito"
    assert variables["TRAINSET_DB_SECRET_ARN"] == {"Ref": attachment_id}
    # Through the proxy: its endpoint and port replace the secret's host and port.
    proxy_id = dev.logical_id(dev.stack.database.proxy)
    assert variables["TRAINSET_DB_HOST"] == {"Fn::GetAtt": [proxy_id, "Endpoint"]}
    assert variables["TRAINSET_DB_PORT"] == "5432"
    assert variables["TRAINSET_USER_POOL_ARN"] == {"Fn::GetAtt": [pool_id, "Arn"]}
    assert variables["TRAINSET_ALLOWED_ORIGIN"] == "*"  # dev default
    assert all("appSubnet" in s["Ref"] for s in props["VpcConfig"]["SubnetIds"])
    layer_ids = sorted(dev.logical_id(layer) for layer in dev.stack.layers.all)
    assert sorted(layer["Ref"] for layer in props["Layers"]) == layer_ids
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert dev.resources[log_group]["Properties"]["RetentionInDays"] == 14


def test_api_role_reads_only_the_db_secret(dev: Synthesized) -> None:
    attachment_id, _ = only(dev.resources_of_type("AWS::SecretsManager::SecretTargetAttachment"))
    role = dev.resources["DefaultRole"]
    granted = [s for p in role["Properties"]["Policies"] for s in statements(p["PolicyDocument"])]
    granted += [
        s
        for p in dev.resources_of_type("AWS::IAM::Policy").values()
        if "DefaultRole" in json.dumps(p["Properties"]["Roles"])
        for s in statements(p["Properties"]["PolicyDocument"])
    ]
    secret_statements = [
        s for s in granted if any(a.startswith("secretsmanager:") for a in as_list(s["Action"]))
    ]
    assert secret_statements, "the API role cannot read the DB secret"
    for statement in secret_statements:
        assert statement["Resource"] == {"Ref": attachment_id}
        assert set(as_list(statement["Action"])) <= {
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        }
    logs = [s for s in granted if "logs:PutLogEvents" in as_list(s["Action"])]
    assert logs and all(s["Resource"] != "*" and "arn:*" not in str(s["Resource"]) for s in logs)


def test_api_lists_and_presigns_export_files_and_reaches_s3(dev: Synthesized) -> None:
    """GET /exports/{id} lists a finished job's files in the exports bucket (sizes) and
    presigns their downloads: the bucket in its environment, list/read under exports/ only, and
    HTTPS to S3's prefix list (the gateway endpoint) from its isolated subnets."""
    bucket = dev.logical_id(dev.stack.export_job.bucket)
    variables = dev.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["TRAINSET_EXPORTS_BUCKET"] == {"Ref": bucket}
    policy = dev.resources[dev.logical_id(dev.stack.api_export_downloads)]["Properties"]
    assert policy["Roles"] == [{"Ref": "DefaultRole"}]
    by_sid = {s["Sid"]: s for s in statements(policy["PolicyDocument"])}
    assert by_sid["ListExportFiles"]["Action"] == "s3:ListBucket"
    assert by_sid["ListExportFiles"]["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}
    assert by_sid["ListExportFiles"]["Condition"] == {
        "StringLike": {"s3:prefix": ["exports/*"]}}
    assert by_sid["ReadExportFiles"]["Action"] == "s3:GetObject"
    assert by_sid["ReadExportFiles"]["Resource"] == {
        "Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/exports/*"]]}
    api_sg = dev.logical_id(dev.stack.node.find_child("ApiSecurityGroup"))
    prefix_list = dev.logical_id(dev.stack.export_job.s3_prefix_list.node.default_child)
    egress = [r["Properties"] for r in dev.resources_of_type("AWS::EC2::SecurityGroupEgress")
              .values() if r["Properties"]["GroupId"] == {"Fn::GetAtt": [api_sg, "GroupId"]}]
    assert [(e["FromPort"], e["ToPort"]) for e in egress if "DestinationPrefixListId" in e
            and prefix_list in json.dumps(e["DestinationPrefixListId"])] == [(443, 443)]


def suppressed_on(synth: Synthesized, rule: str) -> set[str]:
    """Construct paths on which cdk-nag found `rule` and an acknowledgment suppressed it."""
    return {
        construct["constructPath"]
        for report in synth.validation_report["pluginReports"]
        for violation in report.get("suppressedViolations", [])
        if violation["ruleName"] == f"AwsSolutions-{rule}"
        for construct in violation["violatingConstructs"]
    }


def test_api_is_plain_cloudformation_that_cdk_nag_checks(dev: Synthesized) -> None:
    # No SAM resource left for CloudFormation's transform to expand after cdk-nag ran.
    assert not [r for r in dev.resources.values() if r["Type"].startswith("AWS::Serverless::")]
    assert "Transform" not in dev.template.to_json()
    # The logical ids SAM's transform gave them: a stack deployed before is updated in place.
    expected = {"RestAPI": "AWS::ApiGateway::RestApi", "RestAPIapiStage": "AWS::ApiGateway::Stage",
                "APIHandler": "AWS::Lambda::Function", "DefaultRole": "AWS::IAM::Role"}
    assert {k: dev.resources[k]["Type"] for k in expected} == expected
    # cdk-nag saw the API's resources: its findings on them are acknowledged, one by one.
    assert suppressed_on(dev, "APIG2") == {"Trainset-dev/Api/RestApi/Resource"}
    assert suppressed_on(dev, "APIG3") == {"Trainset-dev/Api/RestApi/DeploymentStage.api/Resource"}
    assert "Trainset-dev/Api/Handler/Resource" in suppressed_on(dev, "L1")
    # ...and what it would flag otherwise is fixed, not acknowledged (access/execution logs).
    assert not suppressed_on(dev, "APIG1") and not suppressed_on(dev, "APIG6")


def test_api_stage_throttles_logs_and_traces(dev: Synthesized) -> None:
    settings = dev.stack.settings
    # The load model: 1,000 coders, one cycle (2 requests) every 5 s at the fastest, so
    # 400 requests/s at peak; the rate leaves headroom, the burst takes one request per coder.
    peak_rps = 1000 * 2 / 5
    assert settings.api_throttle_rate_rps >= peak_rps and settings.api_throttle_burst >= 1000
    stage = dev.resources["RestAPIapiStage"]
    props = stage["Properties"]
    assert props["StageName"] == "api" and props["TracingEnabled"] is True
    assert props["MethodSettings"] == [{
        "HttpMethod": "*", "ResourcePath": "/*",
        "ThrottlingRateLimit": settings.api_throttle_rate_rps,
        "ThrottlingBurstLimit": settings.api_throttle_burst,
        "LoggingLevel": "ERROR", "DataTraceEnabled": False, "MetricsEnabled": False}]
    # JSON access logs to a log group with retention.
    access = props["AccessLogSetting"]
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "path", "latencyMs", "error"} <= set(fields)
    access_group = dev.logical_id(dev.stack.api.access_logs)
    assert access_group in json.dumps(access["DestinationArn"])
    assert dev.resources[access_group]["Properties"]["RetentionInDays"] == 14
    # Execution logs: the group API Gateway would create without retention, made first.
    execution_group = dev.logical_id(dev.stack.api.execution_logs)
    assert dev.resources[execution_group]["Properties"]["LogGroupName"] == {
        "Fn::Join": ["", ["API-Gateway-Execution-Logs_", {"Ref": "RestAPI"}, "/api"]]}
    assert dev.resources[execution_group]["Properties"]["RetentionInDays"] == 14
    assert execution_group in stage["DependsOn"]
    # API Gateway writes logs through the account's CloudWatch role, created before the stage.
    account_id, account = only(dev.resources_of_type("AWS::ApiGateway::Account"))
    assert account_id in stage["DependsOn"] and account["DeletionPolicy"] == "Retain"
    # The API function may be invoked by this API only.
    (permission,) = [
        p["Properties"] for p in dev.resources_of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": ["APIHandler", "Arn"]}
    ]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert {"Ref": "RestAPI"} in permission["SourceArn"]["Fn::Join"][1]


def test_packaging_refuses_what_the_api_construct_would_not_deploy(tmp_path: Path) -> None:
    resources = {
        name: {"Type": kind, "Properties": {}} for name, kind in EXPECTED_RESOURCES.items()}
    resources["APIHandler"]["Properties"] = {"Handler": "app.app", "Runtime": "python3.11"}
    resources["RestAPI"]["Properties"] = {"StageName": "api", "DefinitionBody": {"paths": {}}}
    package = read_package({"Resources": resources}, tmp_path / "deployment.zip")
    assert (package.handler, package.runtime) == ("app.app", "python3.11")
    # e.g. an @app.schedule handler added to the app: its rule would silently be dropped.
    extra = {**resources, "EveryHour": {"Type": "AWS::Serverless::Function"}}
    with pytest.raises(ValueError, match="needs wiring"):
        read_package({"Resources": extra}, tmp_path / "deployment.zip")


def test_every_route_calls_the_api_function(dev: Synthesized) -> None:
    body = dev.resources["RestAPI"]["Properties"]["Body"]
    uris = [
        operation["x-amazon-apigateway-integration"]["uri"]
        for methods in body["paths"].values()
        for method, operation in methods.items()
        if operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    ]
    assert uris and all(
        uri["Fn::Sub"][1] == {"HandlerArn": {"Fn::GetAtt": ["APIHandler", "Arn"]}}
        and "${HandlerArn}" in uri["Fn::Sub"][0] for uri in uris)


def test_no_policy_grants_secrets_manager_on_every_resource(dev: Synthesized) -> None:
    for logical_id, resource in dev.resources.items():
        documents = []
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [resource["Properties"]["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])]
        for document in documents:
            for statement in statements(document):
                actions = as_list(statement["Action"])
                if any(a.startswith("secretsmanager:") or a == "*" for a in actions):
                    assert "*" not in as_list(statement["Resource"]), logical_id


# --- migrations ----------------------------------------------------------------------------


def test_migrations_run_as_a_custom_resource_keyed_by_the_sql(dev: Synthesized) -> None:
    resource_id, resource = only(dev.resources_of_type(RESOURCE_TYPE))
    assert resource["Properties"]["SqlHash"] == sql_hash(paths.SQL_DIR)
    instance_id, _ = only(dev.resources_of_type("AWS::RDS::DBInstance"))
    assert instance_id in resource["DependsOn"]
    migrate_id = dev.logical_id(dev.stack.migrations.function)
    dev.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "handler.lambda_handler",
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "TRAINSET_SQL_DIR": "/var/task/sql",
                        "TRAINSET_DB_SECRET_ARN": Match.object_like({"Ref": Match.any_value()}),
                    }
                )
            },
            "VpcConfig": Match.any_value(),
        },
    )
    # The provider's on-event function invokes exactly the migrate function.
    provider_policies = [
        p for p in dev.resources_of_type("AWS::IAM::Policy").values()
        if "lambda:InvokeFunction" in json.dumps(p)
    ]  # fmt: skip
    assert provider_policies and all(migrate_id in json.dumps(p) for p in provider_policies)
    # The API only goes live after the migrations.
    api_role = dev.resources["DefaultRole"]
    assert resource_id in api_role["DependsOn"]


def test_sql_hash_follows_every_sql_change(tmp_path: Path) -> None:
    (tmp_path / "0001_core.sql").write_text("CREATE TABLE a (id int);")
    first = sql_hash(tmp_path)
    assert sql_hash(tmp_path) == first
    (tmp_path / "0002_more.sql").write_text("CREATE TABLE b (id int);")
    second = sql_hash(tmp_path)
    (tmp_path / "0002_more.sql").write_text("CREATE TABLE b (id bigint);")
    third = sql_hash(tmp_path)
    (tmp_path / "0002_more.sql").rename(tmp_path / "0003_more.sql")
    assert len({first, second, third, sql_hash(tmp_path)}) == 4


# --- cdk-nag -------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_cdk_nag_finds_nothing_unacknowledged(
    env_name: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(env_name)
    reports = synthesized.validation_report.get("pluginReports", [])
    nag = [r for r in reports if r["pluginName"] == "AwsSolutions"]
    assert nag, "cdk-nag AwsSolutions checks did not run"
    assert nag[0]["violations"] == [], json.dumps(nag[0]["violations"], indent=1)
    assert synthesized.synth_error is None
    for suppressed in nag[0].get("suppressedViolations", []):
        assert len(suppressed["reason"]) >= 40, suppressed["ruleName"]
    annotations = Annotations.from_stack(synthesized.stack)
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []


def test_prod_accepts_no_dev_shortcuts(prod: Synthesized) -> None:
    acknowledged = {
        s["ruleName"]
        for r in prod.validation_report["pluginReports"]
        for s in r.get("suppressedViolations", [])
    }
    assert acknowledged.isdisjoint({"AwsSolutions-RDS3", "AwsSolutions-RDS10", "AwsSolutions-COG8"})


# --- environments --------------------------------------------------------------------------


def test_prod_context_turns_on_deletion_protection(dev: Synthesized, prod: Synthesized) -> None:
    dev.template.has_resource_properties("AWS::RDS::DBInstance", {"DeletionProtection": False})
    prod.template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {"DeletionProtection": True, "MultiAZ": True, "BackupRetentionPeriod": 14},
    )
    prod.template.has_resource(
        "AWS::RDS::DBInstance", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )
    prod.template.has_resource_properties(
        "AWS::Cognito::UserPool", {"DeletionProtection": "ACTIVE", "UserPoolTier": "PLUS"}
    )
    assert prod.stack.termination_protection and not dev.stack.termination_protection
    assert prod.stack.stack_name == "Trainset-prod"


# Properties that name a resource uniquely in an account and region.
UNIQUE_NAMES = {"LogGroupName", "DBInstanceIdentifier", "BucketName", "RoleName", "Name",
                "StateMachineName", "FunctionName", "TopicName", "QueueName", "AliasName",
                "DBSubnetGroupName", "DBProxyName"}


def unique_per_stack(value: Any) -> bool:
    """Whether a name depends on the stack's id or on another resource of the stack (whose
    generated name or id is unique), rather than only on fixed text and pseudo parameters."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"] == "AWS::StackId" or not value["Ref"].startswith("AWS::")
        if "Fn::GetAtt" in value:
            return True
        return any(unique_per_stack(v) for v in value.values())
    if isinstance(value, list):
        return any(unique_per_stack(v) for v in value)
    return False


def test_retained_resources_never_have_a_fixed_name(dev: Synthesized, prod: Synthesized) -> None:
    """A failed first deploy of prod leaves its retained resources behind; the retry is a new
    stack, whose names must differ from theirs (the stack id's first 8 hex digits)."""
    fixed = {}
    for logical_id, resource in prod.resources.items():
        if resource.get("DeletionPolicy") not in ("Retain", "Snapshot", "RetainExceptOnCreate"):
            continue
        for name in UNIQUE_NAMES & set(resource.get("Properties", {})):
            value = resource["Properties"][name]
            if not unique_per_stack(value):
                fixed[logical_id] = value
    assert fixed == {}
    suffix = {"Fn::Select": [0, {"Fn::Split": ["-", {"Fn::Select": [2, {"Fn::Split": [
        "/", {"Ref": "AWS::StackId"}]}]}]}]}
    prod.template.has_resource_properties("AWS::RDS::DBInstance", {
        "DBInstanceIdentifier": {"Fn::Join": ["", ["trainset-prod-", suffix]]}})
    prod.template.has_resource_properties("AWS::Logs::LogGroup", {
        "LogGroupName": {"Fn::Join": ["", ["/aws/rds/instance/trainset-prod-", suffix,
                                           "/postgresql"]]}})
    # dev deletes everything with the stack: its plain names stay.
    dev.template.has_resource_properties("AWS::RDS::DBInstance",
                                         {"DBInstanceIdentifier": "trainset-dev"})
    dev.template.has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws/rds/instance/trainset-dev/postgresql"})


def test_settings_overrides_are_checked() -> None:
    prod = settings_for("prod", {"removal_policy": "snapshot", "callback_urls": ["https://x/"]})
    assert prod.removal_policy == RemovalPolicy.SNAPSHOT
    assert prod.callback_urls == ("https://x/",)
    assert prod.deletion_protection
    with pytest.raises(ValueError, match="unknown settings"):
        settings_for("dev", {"db_size": "huge"})
    with pytest.raises(ValueError, match="unknown environment"):
        settings_for("staging")
    with pytest.raises(ValueError, match="retention"):
        settings_for("dev", {"log_retention_days": 10})
    with pytest.raises(ValueError, match="quota"):
        settings_for("dev", {"api_throttle_burst": 6000})
    with pytest.raises(ValueError, match="max_connections_percent"):
        settings_for("dev", {"db_proxy_max_connections_percent": 0})
    # A prod deployed under the fixed name keeps its instance by naming it.
    kept = settings_for("prod", {"db_instance_identifier": "trainset-prod"})
    assert kept.db_instance_identifier == "trainset-prod"


# --- repository rules ----------------------------------------------------------------------


def test_infra_cdk_never_imports_trainset() -> None:
    offenders = []
    for source in (paths.REPO_ROOT / "infra_cdk").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{source}: {n}" for n in names if n.split(".")[0] == "trainset"]
    assert offenders == []


def test_deps_layer_requirements_are_pinned() -> None:
    lines = [
        line.split("#")[0].strip()
        for line in (paths.DEPS_LAYER_DIR / "requirements.txt").read_text().splitlines()
    ]
    requirements = [line for line in lines if line]
    assert requirements and all("==" in line for line in requirements), requirements
    names = {line.split("==")[0].lower() for line in requirements}
    assert {"pg8000", "pyjwt", "aws-lambda-powertools"} <= names
