"""The image pipeline in the synthesized stack: bucket, upload notifications, the two functions,
their failure queues and alarms, and who may touch which prefix."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_cdk.assertions import Match

from infra_cdk import paths

if TYPE_CHECKING:
    from conftest import Synthesized

S3_ACTIONS_ALLOWED = {"s3:GetObject", "s3:PutObject"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Every statement granted to ``role_id``, inline or through attached policies."""
    found = []
    role = synth.resources[role_id]["Properties"]
    for policy in role.get("Policies", []):
        found += as_list(policy["PolicyDocument"]["Statement"])
    for resource in synth.resources_of_type("AWS::IAM::Policy").values():
        # {"Ref": id} for roles of this stack; a name cut from the ARN for Chalice's role.
        if f'"{role_id}"' in json.dumps(resource["Properties"]["Roles"]):
            found += as_list(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def s3_grants(synth: Synthesized, role_id: str) -> dict[str, set[str]]:
    """S3 action -> the object prefixes (``uploads/``) of the images bucket it is granted on
    (grants on the import and export jobs' buckets are tested with those jobs)."""
    bucket = synth.logical_id(synth.stack.images.bucket)
    others = [{"Fn::GetAtt": [synth.logical_id(b), "Arn"]}
              for b in (synth.stack.import_job.bucket, synth.stack.export_job.bucket)]
    grants: dict[str, set[str]] = {}
    for statement in role_statements(synth, role_id):
        actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
        if not actions:
            continue
        assert statement["Effect"] == "Allow"
        for resource in as_list(statement["Resource"]):
            if resource in others:  # a whole other bucket (listing)
                continue
            parts = resource["Fn::Join"][1]
            if parts[0] in others:
                continue
            assert parts[0] == {"Fn::GetAtt": [bucket, "Arn"]}, resource  # this bucket only
            prefix = parts[1]
            assert re.fullmatch(r"/[a-z]+/([a-z]+/)?\*", prefix), prefix
            for action in actions:
                grants.setdefault(action, set()).add(prefix[1:-2])
    return grants


def test_bucket_is_private_encrypted_tls_only_and_versioned(dev: Synthesized) -> None:
    bucket = dev.logical_id(dev.stack.images.bucket)
    props = dev.resources[bucket]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": dev.logical_id(dev.stack.images.access_logs)}
    dev.template.has_resource_properties("AWS::S3::BucketPolicy", {
        "Bucket": {"Ref": bucket},
        "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])},
    })


def test_uploads_reach_both_functions_through_one_encrypted_topic(dev: Synthesized) -> None:
    images = dev.stack.images
    topic = dev.logical_id(images.topic)
    (notifications,) = [n for n in dev.resources_of_type("Custom::S3BucketNotifications").values()
                        if n["Properties"]["BucketName"] == {
                            "Ref": dev.logical_id(images.bucket)}]
    config = notifications["Properties"]["NotificationConfiguration"]
    # S3 rejects two rules with the same event and overlapping prefixes: one rule, to a topic.
    assert set(config) == {"TopicConfigurations"}
    assert config["TopicConfigurations"] == [{
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
        "TopicArn": {"Ref": topic},
    }]
    key = dev.logical_id(images.events_key)
    assert dev.resources[topic]["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [key, "Arn"]}
    assert dev.resources[key]["Properties"]["EnableKeyRotation"] is True
    subscriptions = {
        s["Properties"]["Endpoint"]["Fn::GetAtt"][0]: s["Properties"]
        for s in dev.resources_of_type("AWS::SNS::Subscription").values()
    }
    functions = {dev.logical_id(images.augment): images.augment_failures,
                 dev.logical_id(images.face_clip): images.face_clip_failures}
    assert set(subscriptions) == set(functions)
    for function_id, queue in functions.items():
        subscription = subscriptions[function_id]
        assert subscription["Protocol"] == "lambda" and subscription["TopicArn"] == {"Ref": topic}
        assert subscription["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dev.logical_id(queue), "Arn"]}}


def test_failures_go_to_encrypted_queues_with_depth_alarms(dev: Synthesized) -> None:
    images = dev.stack.images
    pairs = [(images.augment, images.augment_failures),
             (images.face_clip, images.face_clip_failures)]
    configs = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
               for c in dev.resources_of_type("AWS::Lambda::EventInvokeConfig").values()}
    alarms = list(dev.resources_of_type("AWS::CloudWatch::Alarm").values())
    for function, queue in pairs:
        queue_id = dev.logical_id(queue)
        config = configs[dev.logical_id(function)]
        assert config["MaximumRetryAttempts"] == 2  # then the on-failure destination
        assert config["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": [queue_id, "Arn"]}
        props = dev.resources[queue_id]["Properties"]
        assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId")
        assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
        dev.template.has_resource_properties("AWS::SQS::QueuePolicy", {
            "Queues": [{"Ref": queue_id}],
            "PolicyDocument": {"Statement": Match.array_with([Match.object_like({
                "Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])},
        })
        (alarm,) = [a["Properties"] for a in alarms
                    if a["Properties"].get("Dimensions") == [
                        {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Namespace"] == "AWS/SQS" and alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"


def test_function_roles_touch_only_their_prefixes(dev: Synthesized) -> None:
    images = dev.stack.images
    augment = s3_grants(dev, dev.logical_id(images.augment_role))
    faces = s3_grants(dev, dev.logical_id(images.face_clip_role))
    assert augment == {
        "s3:GetObject": {"uploads", "manifests/augment"},
        "s3:PutObject": {"variants", "manifests/augment", "quarantine"},
    }
    assert faces == {
        "s3:GetObject": {"uploads", "manifests/faces"},
        "s3:PutObject": {"faces", "manifests/faces", "quarantine"},
    }
    for role in (images.augment_role, images.face_clip_role):
        for statement in role_statements(dev, dev.logical_id(role)):
            actions = as_list(statement["Action"])
            assert not any(a in ("*", "s3:*") or a.startswith(("s3:Delete", "s3:List"))
                           for a in actions), statement
            if any(a.startswith("s3:") for a in actions):
                assert set(actions) <= S3_ACTIONS_ALLOWED
            if any(a.startswith("logs:") for a in actions):
                assert statement["Resource"] != "*"


def test_the_api_may_presign_uploads_and_variants_only(dev: Synthesized) -> None:
    assert s3_grants(dev, "DefaultRole") == {
        "s3:GetObject": {"uploads", "variants"},
        "s3:PutObject": {"uploads"},
    }
    api = dev.resources["APIHandler"]
    assert api["Properties"]["Environment"]["Variables"]["TRAINSET_IMAGES_BUCKET"] == {
        "Ref": dev.logical_id(dev.stack.images.bucket)}


def test_augment_is_a_zip_function_with_the_images_layer(dev: Synthesized) -> None:
    images = dev.stack.images
    props = dev.resources[dev.logical_id(images.augment)]["Properties"]
    assert props["Handler"] == "handler.lambda_handler" and props["Runtime"] == "python3.11"
    assert props["TracingConfig"] == {"Mode": "Active"}
    layers = {layer["Ref"] for layer in props["Layers"]}
    expected = [images.images_layer, *dev.stack.layers.all]
    assert layers == {dev.logical_id(layer) for layer in expected}
    assert props["Environment"]["Variables"]["TRAINSET_IMAGES_BUCKET"] == {
        "Ref": dev.logical_id(images.bucket)}
    assert "VpcConfig" not in props  # S3 only: no VPC, no NAT needed


def test_face_clip_is_a_container_image_staged_without_docker(dev: Synthesized) -> None:
    images = dev.stack.images
    props = dev.resources[dev.logical_id(images.face_clip)]["Properties"]
    assert props["PackageType"] == "Image" and "Runtime" not in props
    assert "ImageUri" in props["Code"] and props["MemorySize"] >= 2048
    assert props["TracingConfig"] == {"Mode": "Active"}
    # The synth only staged the build context (Docker builds it at deploy): the Dockerfile,
    # the handler and the core package, nothing else of the repository.
    outdir = Path(dev.stack.node.root.outdir)
    manifest = json.loads((outdir / f"{dev.stack.artifact_id}.assets.json").read_text())
    (docker,) = [d for d in manifest["dockerImages"].values()
                 if d["source"]["dockerFile"] == "lambdas/face_clip/Dockerfile"]
    assert docker["source"]["dockerFile"] == "lambdas/face_clip/Dockerfile"
    staged = outdir / docker["source"]["directory"]
    files = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    assert {"lambdas/face_clip/Dockerfile", "lambdas/face_clip/handler.py",
            "lambdas/face_clip/requirements.txt", "layers/core/python/trainset/images/faces.py",
            "layers/core/python/trainset/services/images.py"} <= files
    assert all(f.startswith(("lambdas/face_clip/", "layers/core/python/trainset/"))
               for f in files), sorted(files)[:10]
    assert not any("__pycache__" in f for f in files)


def test_prod_keeps_the_images_and_allows_only_its_origin(prod: Synthesized) -> None:
    bucket = prod.logical_id(prod.stack.images.bucket)
    assert prod.resources[bucket]["DeletionPolicy"] == "Retain"
    rules = prod.resources[bucket]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert [r["AllowedOrigins"] for r in rules] == [[prod.stack.settings.allowed_origin]]


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    found = {}
    for line in filter(None, lines):
        assert "==" in line, f"{path}: {line} is not pinned"
        name, version = line.split("==")
        found[name.lower().replace("_", "-")] = version
    return found


def test_image_dependencies_are_pinned_and_agree() -> None:
    runtime = {}
    for line in (paths.REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            runtime[name.split("[")[0].lower()] = version
    container = pins(paths.REPO_ROOT / "lambdas" / "face_clip" / "requirements.txt")
    layer = pins(paths.REPO_ROOT / "layers" / "images" / "requirements.txt")
    assert {"tensorflow-cpu", "mtcnn", "pillow", "numpy", "aws-lambda-powertools"} <= set(
        container)
    for name in ("tensorflow-cpu", "mtcnn", "pillow", "numpy", "aws-lambda-powertools",
                 "boto3"):
        assert container[name] == runtime[name], name  # the same detector as local runs
    assert "pillow" in layer and "aws-xray-sdk" in layer
    dockerfile = (paths.REPO_ROOT / "lambdas" / "face_clip" / "Dockerfile").read_text()
    assert re.search(r"^FROM public\.ecr\.aws/lambda/python:3\.1\d\b", dockerfile, re.M)
    assert "COPY layers/core/python/trainset" in dockerfile
    assert 'CMD ["handler.lambda_handler"]' in dockerfile
