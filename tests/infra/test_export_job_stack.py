"""The export job in the synthesized stack: the state machine runs the same ASL as the local
runner, a daily rule starts it, and every role holds only what its task needs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from aws_cdk.assertions import Match

from infra_cdk import paths
from infra_cdk.constructs.export_job import TASKS, load_definition
from trainset.services import pipeline

if TYPE_CHECKING:
    from conftest import Synthesized


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def role_statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to ``role_id``, inline or through attached policies."""
    found = []
    for policy in synth.resources[role_id]["Properties"].get("Policies", []):
        found += as_list(policy["PolicyDocument"]["Statement"])
    for resource in synth.resources_of_type("AWS::IAM::Policy").values():
        if f'"{role_id}"' in json.dumps(resource["Properties"]["Roles"]):
            found += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def function_ids(synth: Synthesized) -> dict[str, str]:
    return {name: synth.logical_id(f) for name, f in synth.stack.export_job.functions.items()}


def test_tasks_match_the_runner_functions() -> None:
    assert [t.name for t in TASKS] == list(pipeline.FUNCTIONS)
    assert paths.EXPORT_JOB_ASL.resolve() == pipeline.ASL_PATH.resolve()


def test_definition_is_the_local_runners_with_the_function_arns(dev: Synthesized) -> None:
    ids = function_ids(dev)
    machine_id = dev.logical_id(dev.stack.export_job.state_machine)
    # The file as is, placeholders and all, with one substitution per task...
    as_file = json.loads(pipeline.definition({n: "${" + n + "FunctionArn}" for n in ids}))
    # (compared as JSON: Match.serialized_json reads the Map's "ResultPath": null as absent)
    props = dev.resources[machine_id]["Properties"]
    assert json.loads(props["DefinitionString"]) == as_file
    assert props["DefinitionSubstitutions"] == {
        f"{name}FunctionArn": {"Fn::GetAtt": [ids[name], "Arn"]} for name in ids}
    # ...so CloudFormation runs what `pipeline.definition(arns)` gives the local runner.
    deployed = props["DefinitionString"]
    for key, value in props["DefinitionSubstitutions"].items():
        deployed = deployed.replace("${" + key + "}", f"<{value['Fn::GetAtt'][0]}.Arn>")
    local = pipeline.definition({name: f"<{ids[name]}.Arn>" for name in ids})
    assert json.loads(deployed) == json.loads(local)


def test_the_jobs_timeout_is_in_the_deployed_definition(dev: Synthesized, tmp_path) -> None:
    # CDK drops StateMachine(timeout=...) for a string definition: the file carries it.
    dev.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {"DefinitionString": Match.serialized_json(
            Match.object_like({"TimeoutSeconds": 6 * 3600}))},
    )
    # ...and a definition without one is refused at synth.
    definition = json.loads(paths.EXPORT_JOB_ASL.read_text(encoding="utf-8"))
    del definition["TimeoutSeconds"]
    bare = tmp_path / "export_job.asl.json"
    bare.write_text(json.dumps(definition))
    with pytest.raises(ValueError, match="TimeoutSeconds"):
        load_definition(bare)


def test_state_machine_logs_everything_and_traces(dev: Synthesized) -> None:
    machine_id = dev.logical_id(dev.stack.export_job.state_machine)
    props = dev.resources[machine_id]["Properties"]
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert dev.resources[log_group]["Properties"]["RetentionInDays"] == 14


def test_state_machine_can_invoke_exactly_the_six_functions(dev: Synthesized) -> None:
    role_id = dev.logical_id(dev.stack.export_job.role)
    invokes = [
        s for s in role_statements(dev, role_id)
        if any(a.startswith("lambda:") for a in as_list(s["Action"]))
    ]
    assert len(invokes) == 1
    assert as_list(invokes[0]["Action"]) == ["lambda:InvokeFunction"]
    resources = as_list(invokes[0]["Resource"])
    expected = [{"Fn::GetAtt": [fid, "Arn"]} for fid in function_ids(dev).values()]
    assert sorted(map(json.dumps, resources)) == sorted(map(json.dumps, expected))


def test_daily_rule_starts_the_state_machine_for_all_families(dev: Synthesized) -> None:
    machine_id = dev.logical_id(dev.stack.export_job.state_machine)
    _, rule = only(dev.resources_of_type("AWS::Events::Rule"))
    props = rule["Properties"]
    assert props["ScheduleExpression"] == "cron(0 3 * * ? *)"
    (target,) = props["Targets"]
    assert target["Arn"] == {"Ref": machine_id}
    assert json.loads(target["Input"]) == {"families": ["place", "child", "health"]}
    events_role = target["RoleArn"]["Fn::GetAtt"][0]
    (start,) = role_statements(dev, events_role)
    assert start["Action"] == "states:StartExecution"
    assert start["Resource"] == {"Ref": machine_id}


def test_functions_are_images_of_one_asset_with_their_own_handlers(dev: Synthesized) -> None:
    functions = {n: dev.resources[i]["Properties"] for n, i in function_ids(dev).items()}
    images = {json.dumps(p["Code"]["ImageUri"]) for p in functions.values()}
    assert len(images) == 1  # one image, built once
    for task in TASKS:
        props = functions[task.name]
        assert props["PackageType"] == "Image"
        assert props["ImageConfig"]["Command"] == [f"handler.{task.name.lower()}_handler"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        variables = props["Environment"]["Variables"]
        assert ("TRAINSET_DB_SECRET_ARN" in variables) == task.database
        assert ("VpcConfig" in props) == task.database
        if task.exports_read or task.exports_write:
            assert variables["TRAINSET_EXPORTS_BUCKET"] == {
                "Ref": dev.logical_id(dev.stack.export_job.bucket)}
    for name in ("Plan", "Shard"):
        assert functions[name]["Environment"]["Variables"]["TRAINSET_IMAGES_BUCKET"] == {
            "Ref": dev.logical_id(dev.stack.images.bucket)}


def test_function_roles_are_least_privilege(dev: Synthesized) -> None:
    exports = dev.logical_id(dev.stack.export_job.bucket)
    images = dev.logical_id(dev.stack.images.bucket)
    expected_s3 = {
        "Quality": set(), "Screen": set(), "Failure": set(),
        "Plan": {("s3:PutObject", exports, "/exports/*"),
                 ("s3:PutObject", exports, "/export-work/*")},
        "Shard": {("s3:PutObject", exports, "/exports/*"),
                  ("s3:GetObject", exports, "/exports/*"),
                  ("s3:PutObject", exports, "/export-work/*"),
                  ("s3:GetObject", exports, "/export-work/*"),
                  ("s3:GetObject", images, "/uploads/*"),
                  ("s3:GetObject", images, "/variants/*")},
        "Merge": {("s3:PutObject", exports, "/exports/*"),
                  ("s3:GetObject", exports, "/export-work/*")},
        "Summary": {("s3:PutObject", exports, "/exports/*")},
    }
    for task in TASKS:
        role_id = dev.logical_id(dev.stack.export_job.roles[task.name])
        granted = role_statements(dev, role_id)
        s3 = set()
        for statement in granted:
            actions = as_list(statement["Action"])
            assert not any("*" in a for a in actions), actions
            if any(a.startswith("s3:") for a in actions):
                for resource in as_list(statement["Resource"]):
                    parts = resource["Fn::Join"][1]
                    s3 |= {(a, parts[0]["Fn::GetAtt"][0], parts[1]) for a in actions}
            if any(a.startswith("secretsmanager:") for a in actions):
                assert task.database
            if "logs:PutLogEvents" in actions:
                assert statement["Resource"] != "*"
            if statement["Resource"] == "*":
                assert set(actions) <= {
                    "xray:PutTraceSegments", "xray:PutTelemetryRecords",
                    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}, actions
        assert s3 == expected_s3[task.name], task.name


def test_api_may_start_only_this_state_machine(dev: Synthesized) -> None:
    machine_id = dev.logical_id(dev.stack.export_job.state_machine)
    variables = dev.resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert variables["TRAINSET_EXPORT_STATE_MACHINE_ARN"] == {"Ref": machine_id}
    granted = role_statements(dev, "DefaultRole")
    states = [s for s in granted if any(a.startswith("states:") for a in as_list(s["Action"]))]
    by_action = {a: s["Resource"] for s in states for a in as_list(s["Action"])}
    assert set(by_action) == {"states:StartExecution", "states:DescribeExecution"}
    assert by_action["states:StartExecution"] == {"Ref": machine_id}
    describe = json.dumps(by_action["states:DescribeExecution"])
    assert ":execution:" in describe and f'"{machine_id}", "Name"' in describe


def test_api_reaches_step_functions_through_a_private_endpoint(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint",
        {
            "VpcEndpointType": "Interface",
            "PrivateDnsEnabled": True,
            "ServiceName": Match.object_like(
                {"Fn::Join": ["", ["com.amazonaws.", {"Ref": "AWS::Region"}, ".states"]]}
            ),
        },
    )
    dev.template.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})


def test_export_security_groups_have_no_open_egress(dev: Synthesized) -> None:
    groups = [dev.stack.node.find_child("ExportJobSecurityGroup"),
              dev.stack.export_job.s3_security_group]
    for group in groups:
        props = dev.resources[dev.logical_id(group)]["Properties"]
        egress = props.get("SecurityGroupEgress", [])
        assert all(rule.get("CidrIp") != "0.0.0.0/0" for rule in egress), egress
    s3_group = dev.logical_id(dev.stack.export_job.s3_security_group)
    egress_rules = dev.resources_of_type("AWS::EC2::SecurityGroupEgress").values()
    rules = [r["Properties"] for r in egress_rules
             if r["Properties"]["GroupId"] == {"Fn::GetAtt": [s3_group, "GroupId"]}]
    assert [(r["FromPort"], "DestinationPrefixListId" in r) for r in rules] == [(443, True)]


def test_exports_bucket_is_private_encrypted_tls_only(dev: Synthesized) -> None:
    job = dev.stack.export_job
    bucket = dev.logical_id(job.bucket)
    props = dev.resources[bucket]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": dev.logical_id(job.access_logs)}
    dev.template.has_resource_properties("AWS::S3::BucketPolicy", {
        "Bucket": {"Ref": bucket},
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])},
    })


def lifecycle_rules(synthesized: Synthesized) -> dict[str, dict]:
    bucket = synthesized.resources[synthesized.logical_id(synthesized.stack.export_job.bucket)]
    return {rule.get("Prefix", ""): rule for rule in
            bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


def test_exports_expire_in_dev_and_are_kept_in_prod(dev: Synthesized, prod: Synthesized) -> None:
    """The daily job writes a full copy each run: dev's expire after 30 days; prod keeps
    every export (an expired training set is gone) unless its settings say otherwise. Both
    drop the shard inputs and pieces after 7 days."""
    assert lifecycle_rules(dev)["exports/"]["ExpirationInDays"] == 30
    assert "exports/" not in lifecycle_rules(prod)
    for synthesized in (dev, prod):
        assert lifecycle_rules(synthesized)["export-work/"]["ExpirationInDays"] == 7


def test_export_retention_must_be_a_positive_number_of_days() -> None:
    from infra_cdk.config import EnvironmentSettings

    with pytest.raises(ValueError, match="export_retention_days"):
        EnvironmentSettings(name="x", export_retention_days=0)
    assert EnvironmentSettings(name="x", export_retention_days=None).export_retention_days is None


def test_prod_retains_exports_and_job_logs(prod: Synthesized) -> None:
    job = prod.stack.export_job
    for construct in (job.bucket, job.access_logs, job.log_group, job.state_machine):
        resource = prod.resources[prod.logical_id(construct)]
        assert resource.get("DeletionPolicy") == "Retain", construct.node.path
    assert prod.resources[prod.logical_id(job.log_group)]["Properties"]["RetentionInDays"] == 365


def test_pipeline_image_stages_only_the_handler_and_core_package(dev: Synthesized) -> None:
    from pathlib import Path

    outdir = Path(dev.stack.node.root.outdir)
    manifest = json.loads((outdir / f"{dev.stack.artifact_id}.assets.json").read_text())
    (docker,) = [d for d in manifest["dockerImages"].values()
                 if d["source"]["dockerFile"] == "lambdas/pipeline/Dockerfile"]
    staged = outdir / docker["source"]["directory"]
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"lambdas/pipeline/Dockerfile", "lambdas/pipeline/handler.py",
            "lambdas/pipeline/requirements.txt", "layers/core/python/trainset/services/pipeline.py",
            "layers/core/python/trainset/data/export_job.asl.json"} <= files
    assert all(f.startswith(("lambdas/pipeline/", "layers/core/python/trainset/"))
               for f in files), sorted(files)[:10]
    assert not any("__pycache__" in f for f in files)


def test_export_functions_reach_the_database(dev: Synthesized) -> None:
    db_sg = dev.logical_id(dev.stack.database.security_group)
    export_sg = dev.logical_id(dev.stack.node.find_child("ExportJobSecurityGroup"))
    ingress = [
        r["Properties"] for r in dev.resources_of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [db_sg, "GroupId"]}
    ]
    assert export_sg in {rule["SourceSecurityGroupId"]["Fn::GetAtt"][0] for rule in ingress}


def test_shards_run_on_a_distributed_map_the_machine_may_start(dev: Synthesized) -> None:
    """The ASL's ExportShards is a Distributed Map reading the plan's list from the exports
    bucket, and the state machine's role may read it and start/stop its own children; the
    job's time limit is in the definition."""
    definition = json.loads(load_definition(paths.EXPORT_JOB_ASL))
    assert definition["TimeoutSeconds"] == 21600
    shards = definition["States"]["ExportShards"]
    assert shards["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert shards["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert 1 <= shards["MaxConcurrency"] <= 40
    job = dev.stack.export_job
    statements = role_statements(dev, dev.logical_id(job.role))
    by_action = {a: s["Resource"] for s in statements for a in as_list(s["Action"])}
    machine = dev.resources[dev.logical_id(job.state_machine)]["Properties"]
    assert machine["StateMachineName"] == dev.stack.resolve(job.state_machine_name)
    assert "-export-job" in json.dumps(by_action["states:StartExecution"])
    assert "execution" in json.dumps(by_action["states:StopExecution"])
    assert "/export-work/*" in json.dumps(by_action["s3:GetObject"])
