"""The import job in the synthesized stack: uploads under corpus/ and gold/ start it, the state
machine runs the same ASL as the local runner (a Distributed Map over the plan's batches), and
every role holds only what its part needs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_cdk.assertions import Match

from infra_cdk import paths
from infra_cdk.constructs.import_job import TASKS, load_definition
from trainset.services import imports

if TYPE_CHECKING:
    from conftest import Synthesized


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.resources[role_id]["Properties"].get("Policies", []):
        found += as_list(policy["PolicyDocument"]["Statement"])
    for resource in synth.resources_of_type("AWS::IAM::Policy").values():
        if f'"{role_id}"' in json.dumps(resource["Properties"]["Roles"]):
            found += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def s3_grants(synth: Synthesized, role_id: str) -> set[tuple[str, str, str]]:
    """(action, bucket logical id, object pattern) for every S3 grant of the role."""
    found = set()
    for statement in role_statements(synth, role_id):
        actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
        for resource in as_list(statement["Resource"]) if actions else []:
            if "Fn::Join" not in resource:  # a whole bucket (listing)
                found |= {(a, resource["Fn::GetAtt"][0], "") for a in actions}
                continue
            parts = resource["Fn::Join"][1]
            found |= {(a, parts[0]["Fn::GetAtt"][0], parts[1]) for a in actions}
    return found


def ids(synth: Synthesized) -> dict[str, str]:
    job = synth.stack.import_job
    return {name: synth.logical_id(f) for name, f in job.functions.items()}


def test_tasks_match_the_runner_and_the_file() -> None:
    assert [t.name for t in TASKS] == list(imports.FUNCTIONS)
    assert paths.IMPORT_JOB_ASL.resolve() == imports.ASL_PATH.resolve()
    definition = json.loads(load_definition(paths.IMPORT_JOB_ASL))
    assert definition["TimeoutSeconds"] > 0
    batches = definition["States"]["ImportBatches"]
    assert batches["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED",
                                                           "ExecutionType": "STANDARD"}
    assert batches["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"


def test_definition_is_the_local_runners_with_the_function_arns(dev: Synthesized) -> None:
    functions = ids(dev)
    machine_id = dev.logical_id(dev.stack.import_job.state_machine)
    props = dev.resources[machine_id]["Properties"]
    assert props["StateMachineName"] == "Trainset-dev-import-job"
    assert props["DefinitionSubstitutions"] == {
        f"{name}FunctionArn": {"Fn::GetAtt": [functions[name], "Arn"]} for name in functions}
    deployed = props["DefinitionString"]
    for key, value in props["DefinitionSubstitutions"].items():
        deployed = deployed.replace("${" + key + "}", f"<{value['Fn::GetAtt'][0]}.Arn>")
    local = imports.definition({name: f"<{functions[name]}.Arn>" for name in functions})
    assert json.loads(deployed) == json.loads(local)
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}


def test_uploads_under_corpus_and_gold_invoke_the_start_function(dev: Synthesized) -> None:
    job = dev.stack.import_job
    bucket = dev.logical_id(job.bucket)
    start = dev.logical_id(job.start)
    (notifications,) = [n for n in dev.resources_of_type("Custom::S3BucketNotifications")
                        .values() if n["Properties"]["BucketName"] == {"Ref": bucket}]
    config = notifications["Properties"]["NotificationConfiguration"]
    assert set(config) == {"LambdaFunctionConfigurations"}
    assert sorted(c["Filter"]["Key"]["FilterRules"][0]["Value"]
                  for c in config["LambdaFunctionConfigurations"]) == ["corpus/", "gold/"]
    for rule in config["LambdaFunctionConfigurations"]:
        assert rule["Events"] == ["s3:ObjectCreated:*"]
        assert rule["LambdaFunctionArn"] == {"Fn::GetAtt": [start, "Arn"]}
    props = dev.resources[start]["Properties"]
    assert props["Handler"] == "handler.start_handler" and "VpcConfig" not in props
    machine = dev.stack.resolve(job.state_machine_arn)
    assert props["Environment"]["Variables"]["TRAINSET_IMPORT_STATE_MACHINE_ARN"] == machine
    # failures: two retries, then the event goes to an encrypted queue with an alarm
    (config,) = [c["Properties"] for c in
                 dev.resources_of_type("AWS::Lambda::EventInvokeConfig").values()
                 if c["Properties"]["FunctionName"] == {"Ref": start}]
    assert config["MaximumRetryAttempts"] == 2
    queue = dev.logical_id(job.start_failures)
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [queue, "Arn"]}
    assert dev.resources[queue]["Properties"]["SqsManagedSseEnabled"] is True
    dev.template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}],
        "Threshold": 1})
    # it may start this state machine, nothing else
    states = [s for s in role_statements(dev, dev.logical_id(job.start_role))
              if any(a.startswith("states:") for a in as_list(s["Action"]))]
    assert [(s["Action"], s["Resource"]) for s in states] == [
        ("states:StartExecution", machine)]


def test_task_roles_are_least_privilege(dev: Synthesized) -> None:
    job = dev.stack.import_job
    bucket = dev.logical_id(job.bucket)
    expected = {
        "Plan": {("s3:GetObject", "/corpus/*"), ("s3:GetObject", "/gold/*"),
                 ("s3:PutObject", "/work/*")},
        "Batch": {("s3:GetObject", "/corpus/*"), ("s3:GetObject", "/gold/*"),
                  ("s3:GetObject", "/work/*"), ("s3:PutObject", "/work/*")},
        "Finish": {("s3:GetObject", "/work/*"), ("s3:PutObject", "/corpus/*.rejects.csv"),
                   ("s3:PutObject", "/gold/*.rejects.csv")},
        "Failure": set(),
    }
    for task in TASKS:
        role_id = dev.logical_id(job.roles[task.name])
        grants = s3_grants(dev, role_id)
        assert {b for _, b, _ in grants} <= {bucket}
        assert {(a, p) for a, _, p in grants} == expected[task.name], task.name
        for statement in role_statements(dev, role_id):
            actions = as_list(statement["Action"])
            assert not any(a.endswith("*") for a in actions), actions
            if statement["Resource"] == "*":
                assert all(a.startswith(("xray:", "ec2:")) for a in actions), actions
        props = dev.resources[ids(dev)[task.name]]["Properties"]
        assert props["Handler"] == task.handler and props["Runtime"] == "python3.11"
        # core, deps and the columnar layer (pyarrow: every file format is read with it)
        assert {layer["Ref"] for layer in props["Layers"]} == {
            dev.logical_id(layer) for layer in (*dev.stack.layers.all, job.columnar_layer)}
        groups = {g["Fn::GetAtt"][0] for g in props["VpcConfig"]["SecurityGroupIds"]}
        assert groups == {dev.logical_id(dev.stack.node.find_child("ImportJobSecurityGroup")),
                          dev.logical_id(dev.stack.export_job.s3_security_group)}


def test_state_machine_may_run_its_tasks_and_its_own_child_executions(dev: Synthesized) -> None:
    job = dev.stack.import_job
    statements = role_statements(dev, dev.logical_id(job.role))
    by_sid = {s.get("Sid"): s for s in statements if s.get("Sid")}
    assert sorted(r["Fn::GetAtt"][0] for r in by_sid["InvokeTasks"]["Resource"]) == sorted(
        ids(dev).values())
    assert s3_grants(dev, dev.logical_id(job.role)) == {
        ("s3:GetObject", dev.logical_id(job.bucket), "/work/*")}
    assert by_sid["StartChildExecutions"]["Resource"] == dev.stack.resolve(
        job.state_machine_arn)
    children = json.dumps(by_sid["ManageChildExecutions"]["Resource"])
    assert ":execution:Trainset-dev-import-job/*" in children
    assert set(as_list(by_sid["ManageChildExecutions"]["Action"])) == {
        "states:DescribeExecution", "states:StopExecution"}


def test_the_api_may_presign_uploads_and_rejects_downloads_only(dev: Synthesized) -> None:
    job = dev.stack.import_job
    bucket = dev.logical_id(job.bucket)
    grants = {(a, p) for a, b, p in s3_grants(dev, "DefaultRole") if b == bucket}
    assert grants == {("s3:PutObject", "/corpus/*"), ("s3:PutObject", "/gold/*"),
                      ("s3:GetObject", "/corpus/*.rejects.csv"),
                      ("s3:GetObject", "/gold/*.rejects.csv")}
    variables = dev.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["TRAINSET_IMPORTS_BUCKET"] == {"Ref": bucket}
    assert variables["TRAINSET_IMPORT_STATE_MACHINE_ARN"] == dev.stack.resolve(
        job.state_machine_arn)


def test_imports_bucket_is_private_with_cors_for_the_page_and_work_expiring(
        dev: Synthesized, prod: Synthesized) -> None:
    from tests.infra.conftest import PROD_ORIGIN

    for synth in (dev, prod):
        props = synth.resources[synth.logical_id(synth.stack.import_job.bucket)]["Properties"]
        assert props["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
        assert "LoggingConfiguration" in props
        (cors,) = props["CorsConfiguration"]["CorsRules"]
        assert cors["AllowedMethods"] == ["PUT"] and cors["AllowedHeaders"] == ["Content-Type"]
        rules = props["LifecycleConfiguration"]["Rules"]
        assert any(r.get("Prefix") == "work/" and r.get("ExpirationInDays") == 7 for r in rules)
    (cors,) = prod.resources[prod.logical_id(prod.stack.import_job.bucket)]["Properties"][
        "CorsConfiguration"]["CorsRules"]
    assert cors["AllowedOrigins"] == [PROD_ORIGIN]


def test_cdk_nag_passes_with_the_import_job(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        assert synth.synth_error is None, synth.synth_error
    prod.template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "StateMachineName": Match.object_like({"Fn::Join": Match.any_value()})})
