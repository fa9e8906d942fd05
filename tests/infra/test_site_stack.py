"""The coders' page in the synthesized stack: private bucket behind CloudFront (OAC, HTTPS), and
a config.json generated from the stack's own values; its URL reaches Cognito and CORS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_cdk.assertions import Match

from infra_cdk.constructs.site import CONFIG_FILE
from infra_cdk.stacks.trainset_stack import cors_origin

if TYPE_CHECKING:
    from conftest import Synthesized


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    return next(iter(resources.items()))


def site_url(synth: Synthesized) -> dict[str, Any]:
    distribution = synth.logical_id(synth.stack.site.distribution)
    return {"Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}, "/"]]}


def test_site_bucket_is_private_and_read_by_cloudfront_only(dev: Synthesized) -> None:
    site = dev.stack.site
    bucket = dev.logical_id(site.bucket)
    props = dev.resources[bucket]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True}
    assert "BucketEncryption" in props
    assert "WebsiteConfiguration" not in props
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": dev.logical_id(site.access_logs)}
    policy = next(r["Properties"]["PolicyDocument"]
                  for r in dev.resources_of_type("AWS::S3::BucketPolicy").values()
                  if r["Properties"]["Bucket"] == {"Ref": bucket})
    statements = policy["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}} for s in statements)
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows and all(
        s["Principal"] == {"Service": "cloudfront.amazonaws.com"} for s in allows), allows
    assert all("AWS:SourceArn" in json.dumps(s["Condition"]) for s in allows)


def test_cloudfront_uses_oac_and_redirects_to_https(dev: Synthesized) -> None:
    oac_id, oac = only(dev.resources_of_type("AWS::CloudFront::OriginAccessControl"))
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    _, distribution = only(dev.resources_of_type("AWS::CloudFront::Distribution"))
    config = distribution["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["ResponseHeadersPolicyId"]  # managed security-headers policy
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"].get("OriginAccessIdentity", "") == ""
    assert config["Logging"]["Prefix"] == "cloudfront/"


def test_config_json_is_generated_from_the_stack(dev: Synthesized) -> None:
    stack = dev.stack
    assert stack.site.config["authMode"] == "cognito"
    resolved = stack.resolve(stack.site.config)
    client = dev.logical_id(stack.auth.client)
    assert resolved["cognito"]["clientId"] == {"Ref": client}
    assert resolved["cognito"]["redirectUri"] == site_url(dev)
    assert "RestAPI" in json.dumps(resolved["apiBaseUrl"])
    assert "amazoncognito.com" in json.dumps(resolved["cognito"]["domain"])
    # What the deployment custom resource receives: the API URL and the client id markers.
    _, deployment = only(dev.resources_of_type("Custom::CDKBucketDeployment"))
    markers = json.dumps(deployment["Properties"]["SourceMarkers"])
    assert '{"Ref": "RestAPI"}' in markers and "execute-api" in markers
    assert json.dumps({"Ref": client}) in markers
    assert deployment["Properties"]["DistributionPaths"] == ["/*"]


def test_static_site_upload_excludes_the_local_config(dev: Synthesized) -> None:
    outdir = Path(dev.stack.node.root.outdir)
    staged = [p.parent for p in outdir.glob("asset.*/index.html")]
    assert staged, "static_site/ was not staged"
    for folder in staged:
        assert (folder / "js" / "auth.js").exists()
        assert not (folder / CONFIG_FILE).exists()


def test_cognito_client_and_cors_accept_the_cloudfront_url(dev: Synthesized) -> None:
    dev.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "CallbackURLs": Match.array_with([site_url(dev)]),
            "LogoutURLs": Match.array_with([site_url(dev)]),
        },
    )
    assert cors_origin(None, "https://d1.cloudfront.net") == "https://d1.cloudfront.net"
    assert cors_origin("https://labeling.example.org", "x") == "https://labeling.example.org"


def test_outputs_name_the_page_api_pool_and_state_machine(dev: Synthesized) -> None:
    outputs = dev.template.to_json()["Outputs"]
    for name in ("SiteUrl", "ApiUrl", "UserPoolId", "ExportStateMachineArn", "EndpointURL"):
        assert name in outputs, sorted(outputs)
    assert outputs["SiteUrl"]["Value"] == site_url(dev)


def test_prod_retains_the_site_logs(prod: Synthesized) -> None:
    site = prod.stack.site
    for bucket in (site.bucket, site.access_logs):
        assert prod.resources[prod.logical_id(bucket)].get("DeletionPolicy") == "Retain"


def test_page_has_a_strict_content_security_policy(dev: Synthesized) -> None:
    _, policy = only(dev.resources_of_type("AWS::CloudFront::ResponseHeadersPolicy"))
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    security = config["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for directive in ("script-src 'self';", "style-src 'self';", "object-src 'none'",
                      "frame-ancestors 'none'", "base-uri 'none'", ".amazoncognito.com",
                      "https://*.execute-api."):
        assert directive in csp, directive
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert security["ContentTypeOptions"]["Override"] is True
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    _, distribution = only(dev.resources_of_type("AWS::CloudFront::Distribution"))
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {
        "Ref": dev.logical_id(dev.stack.site.headers)}


def test_deployed_and_local_page_policies_agree() -> None:
    from infra_cdk.constructs.site import page_csp as deployed
    from trainset.web_headers import LOCAL_PAGE_HEADERS
    from trainset.web_headers import page_csp as local

    sources = {"connect_src": ["https://api.example"], "img_src": ["https://img.example"]}
    assert deployed(**sources) == local(sources["connect_src"], sources["img_src"])
    assert LOCAL_PAGE_HEADERS["Content-Security-Policy"] == deployed(connect_src=[], img_src=[])
