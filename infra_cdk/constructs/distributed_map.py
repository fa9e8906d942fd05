"""What a state machine that runs a Distributed Map over its own lists needs (the import job's
batches, the export job's shards): its ARN before it exists, and the grants to invoke its
tasks, read the item lists from S3 and start, describe and stop its own child executions."""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3


def machine_arns(stack: Stack, name: str) -> tuple[str, str]:
    """(the state machine's ARN, its executions' ARNs) from its fixed name: the role is made
    before the machine, and granting the machine's own ARN would be a dependency cycle."""
    machine = stack.format_arn(service="states", resource="stateMachine", resource_name=name,
                               arn_format=ArnFormat.COLON_RESOURCE_NAME)
    executions = stack.format_arn(service="states", resource="execution",
                                  resource_name=f"{name}/*",
                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)
    return machine, executions


def grant_distributed_map(role: iam.Role, functions: Iterable[lambda_.IFunction],
                          bucket: s3.IBucket, lists_prefix: str, machine_arn: str,
                          executions_arn: str, lists_sid: str) -> None:
    """Invoke the tasks; read the Map's item lists (ItemReader) under ``lists_prefix``; start
    the machine's own child executions and describe or stop them."""
    role.add_to_policy(iam.PolicyStatement(
        sid="InvokeTasks", actions=["lambda:InvokeFunction"],
        resources=[f.function_arn for f in functions],
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
