"""The coders' page: `static_site/` on a private S3 bucket behind CloudFront.

- **Bucket**: private (all public access blocked, ACLs off), SSE-S3, TLS only, server access
  logs. Only CloudFront reads it, through an origin access control (OAC, SigV4): the bucket
  policy admits the CloudFront service principal for this distribution only.
- **Distribution**: HTTPS only (HTTP redirects), `index.html` as the default root object, a
  response-headers policy of its own: a strict Content-Security-Policy (scripts and styles
  from the page only, no inline script; network calls only to the region's API Gateway, the
  stack's Cognito domain and S3 for images; no framing), HSTS, nosniff, frame options DENY,
  no referrer (the same page policy `trainset.web_headers` gives the local server); HTTP/2
  and 3, price class 100 (North America and Europe edge locations), standard access logs.
- **Content** (`publish`): a `BucketDeployment` of `static_site/` without its local
  `config.json`, plus a `config.json` generated from the stack's values (API URL, Cognito
  hosted-UI domain, client id, redirect URI = this distribution's URL); the deployment
  invalidates the distribution's cache.

Two steps so that the stack can create the distribution first, give its URL to the Cognito
client (callback/logout URLs) and to the API (CORS origin), and only then publish a config that
names the client and the API: the distribution depends on neither, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from infra_cdk.constructs.buckets import access_log_bucket, private_bucket
from infra_cdk.nag import acknowledge

CONFIG_FILE = "config.json"


def page_csp(*, connect_src: list[str], img_src: list[str]) -> str:
    """The page's Content-Security-Policy, directive by directive as the local server sends
    it (a test holds the two equal)."""
    directives = {
        "default-src": ["'self'"], "script-src": ["'self'"], "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *img_src],
        "connect-src": ["'self'", *connect_src], "font-src": ["'self'"],
        "object-src": ["'none'"], "base-uri": ["'none'"], "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def deployed_csp(env_name: str) -> str:
    """The deployed page's sources: the region's API Gateway (the API's id cannot be named
    here: the API's CORS origin already depends on this distribution), the stack's Cognito
    hosted-UI domain (token exchange) and the region's S3 endpoints (presigned image URLs)."""
    s3_regional = f"https://*.s3.{Aws.REGION}.amazonaws.com"
    cognito = Fn.join("", ["https://trainset-", env_name, "-", Aws.ACCOUNT_ID, ".auth.",
                           Aws.REGION, ".amazoncognito.com"])
    return page_csp(
        connect_src=[f"https://*.execute-api.{Aws.REGION}.amazonaws.com", cognito,
                     s3_regional],
        img_src=[s3_regional],
    )


class Site(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        # CloudFront standard logs are delivered with ACLs: this bucket keeps ACLs enabled
        # (object writer) for that; it also receives the site bucket's server access logs.
        self.access_logs = access_log_bucket(
            self, removal_policy=removal_policy, object_ownership=s3.ObjectOwnership.OBJECT_WRITER
        )
        self.bucket = private_bucket(
            self, access_logs=self.access_logs, log_prefix="site/", removal_policy=removal_policy
        )

        self.headers = cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment="trainset page: strict CSP and security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=deployed_csp(env_name), override=True),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.NO_REFERRER, override=True),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(730), include_subdomains=True,
                    override=True),
            ),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="trainset coders' page",
            default_root_object="index.html",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self.headers,
                compress=True,
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            enable_logging=True,
            log_bucket=self.access_logs,
            log_file_prefix="cloudfront/",
        )

        acknowledge(
            self.distribution,
            "CFR1",
            "No geo restriction: the coders of this small research team work from several "
            "countries, and every request but the static page itself needs a Cognito sign-in.",
        )
        acknowledge(
            self.distribution,
            "CFR2",
            "No AWS WAF web ACL: the distribution serves a handful of static files to a small "
            "research team (no server-side logic behind it); WAF would cost more than the rest "
            "of the page. The API has its own authorizer and API Gateway throttling.",
        )
        acknowledge(
            self.distribution,
            "CFR4",
            "The distribution uses the default *.cloudfront.net certificate, with which "
            "CloudFront does not apply the minimum protocol version (TLSv1 stays possible); "
            "a custom domain with an ACM certificate would enforce TLSv1.2_2021.",
        )

    @property
    def domain_name(self) -> str:
        return self.distribution.distribution_domain_name

    @property
    def url(self) -> str:
        """The page's URL, with the trailing slash (Cognito redirect and logout URI)."""
        return f"https://{self.domain_name}/"

    @property
    def origin(self) -> str:
        """The page's origin for CORS (no trailing slash)."""
        return f"https://{self.domain_name}"

    def publish(self, *, source_dir: Path, config: Mapping[str, Any]) -> s3deploy.BucketDeployment:
        """Upload `source_dir` (without its local config.json) and the generated `config`."""
        self.config = dict(config)
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Content",
            sources=[
                s3deploy.Source.asset(str(source_dir), exclude=[CONFIG_FILE]),
                s3deploy.Source.json_data(CONFIG_FILE, self.config),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            memory_limit=256,
        )
        self._acknowledge_deployment()
        return self.deployment

    def _acknowledge_deployment(self) -> None:
        # CDK's one-per-stack BucketDeployment function (copies the assets into the bucket).
        stack = Stack.of(self)
        for child in stack.node.children:
            if not child.node.id.startswith("Custom::CDKBucketDeployment"):
                continue
            acknowledge(
                child,
                "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "CDK's BucketDeployment function (copies static_site/ into the bucket at "
                "deploy time) uses the AWS managed basic execution policy (logs only).",
            )
            acknowledge(
                child,
                "IAM5[Resource::*]",
                "CDK's BucketDeployment function: cloudfront:CreateInvalidation/GetInvalidation "
                "have no resource-level permissions in the policy CDK generates.",
            )
            for wildcard in ("Action::s3:GetBucket*", "Action::s3:GetObject*",
                             "Action::s3:List*", "Action::s3:Abort*",
                             "Action::s3:DeleteObject*"):
                acknowledge(
                    child,
                    f"IAM5[{wildcard}]",
                    "CDK's BucketDeployment function: CDK grants it read on the asset and "
                    "read/write/delete (prune) on the site bucket with these action groups.",
                )
            acknowledge(
                child,
                "IAM5[Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-"
                "<AWS::AccountId>-<AWS::Region>/*]",
                "CDK's BucketDeployment function reads the staged static_site/ zip from the "
                "CDK bootstrap assets bucket (object keys are content hashes).",
            )
            acknowledge(
                child,
                f"IAM5[Resource::<{stack.resolve(self.bucket.node.default_child.logical_id)}"
                ".Arn>/*]",
                "CDK's BucketDeployment function writes and prunes every object of the site "
                "bucket: the bucket holds nothing but the page it deploys.",
            )
            acknowledge(
                child,
                "L1",
                "CDK's BucketDeployment function: its runtime is chosen by the CDK version, "
                "not by this project.",
            )
