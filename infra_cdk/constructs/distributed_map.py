"""A job's state machine that runs a Distributed Map over its own lists (the import job's
batches, the export job's shards): its ARNs before it exists, its definition checked, its role
(invoke its tasks, read the item lists from S3, start, describe and stop its own child
executions), its log group and the machine itself, made the same way for both jobs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.constructs.logs import retention


def machine_arns(stack: Stack, name: str) -> tuple[str, str]:
    """(the state machine's ARN, its executions' ARNs) from its fixed name: the role is made
    before the machine, and granting the machine's own ARN would be a dependency cycle."""
    machine = stack.format_arn(service="states", resource="stateMachine", resource_name=name,
                               arn_format=ArnFormat.COLON_RESOURCE_NAME)
    executions = stack.format_arn(service="states", resource="execution",
                                  resource_name=f"{name}/*",
                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)
    return machine, executions


def check_definition(asl_path: Path, placeholders: Iterable[str]) -> str:
    """The ASL text, checked to be JSON, to hold every task placeholder and to carry the run's
    time limit (`TimeoutSeconds`) itself: `DefinitionBody.from_string` deploys the file as it
    is and ignores `sfn.StateMachine`'s `timeout`, so the limit must be in the definition
    (where the local runner sees it too)."""
    text = asl_path.read_text(encoding="utf-8")
    definition = json.loads(text)
    missing = [p for p in placeholders if "${" + p + "}" not in text]
    if missing:
        raise ValueError(f"{asl_path} lacks the placeholders {missing}")
    timeout = definition.get("TimeoutSeconds")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"{asl_path} needs a top-level TimeoutSeconds (the job's time limit)")
    return text


def job_state_machine(
    scope: Construct,
    *,
    name: str,
    description: str,
    definition: str,
    functions: Mapping[str, lambda_.IFunction],
    bucket: s3.IBucket,
    lists_prefix: str,
    lists_sid: str,
    log_group_name: str,
    log_retention_days: int,
    removal_policy: RemovalPolicy,
    include_execution_data: bool,
) -> tuple[iam.Role, logs.LogGroup, sfn.StateMachine]:
    """The role, log group and state machine of a job (ids `StateMachineRole`,
    `StateMachineLogs`, `StateMachine` under ``scope``); ``functions`` maps each ASL
    placeholder to its task. Logs go under /aws/vendedlogs/ (CloudWatch's resource policy
    then stays one entry); every event is logged, the states' data only when asked."""
    machine_arn, executions_arn = machine_arns(Stack.of(scope), name)
    role = iam.Role(scope, "StateMachineRole",
                    assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
                    description=description)
    role.add_to_policy(iam.PolicyStatement(
        sid="InvokeTasks", actions=["lambda:InvokeFunction"],
        resources=[f.function_arn for f in functions.values()],
    ))
    role.add_to_policy(iam.PolicyStatement(
        sid=lists_sid, actions=["s3:GetObject"],
        resources=[bucket.arn_for_objects(f"{lists_prefix}*")],
    ))
    role.add_to_policy(iam.PolicyStatement(
        sid="StartChildExecutions", actions=["states:StartExecution"],
        resources=[machine_arn],
    ))
    role.add_to_policy(iam.PolicyStatement(
        sid="ManageChildExecutions",
        actions=["states:DescribeExecution", "states:StopExecution"],
        resources=[executions_arn],
    ))
    log_group = logs.LogGroup(scope, "StateMachineLogs", log_group_name=log_group_name,
                              retention=retention(log_retention_days),
                              removal_policy=removal_policy)
    machine = sfn.StateMachine(
        scope,
        "StateMachine",
        state_machine_name=name,  # fixed, so its role may start its own children
        definition_body=sfn.DefinitionBody.from_string(definition),
        definition_substitutions={p: f.function_arn for p, f in functions.items()},
        role=role,
        logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL,
                            include_execution_data=include_execution_data),
        tracing_enabled=True,
        removal_policy=removal_policy,
    )
    return role, log_group, machine


def nag_name(scope: Construct, name: str) -> str:
    """A state machine's name as cdk-nag writes it in a finding: a token (prod's stack id
    suffix) as its CloudFormation JSON."""
    resolved = Stack.of(scope).resolve(name)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))
                   for p in parts)
