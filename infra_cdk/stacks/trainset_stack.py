"""The one trainset stack: network, database (with the API's RDS Proxy), Cognito, layers,
migrations, images, the export and import jobs, the API and the coders' page.

Order matters for one reason: the page's CloudFront distribution is created before Cognito and
the API, because its URL goes into the app client's callback/logout URLs and the API's CORS
origin, while the page's generated config.json (published last) names the API URL and the
client. The distribution itself depends on neither, so there is no cycle.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, CfnOutput, Fn, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra_cdk import paths
from infra_cdk.bundling import lambda_runtime_name
from infra_cdk.config import EnvironmentSettings
from infra_cdk.constructs.api import Api, Throttling
from infra_cdk.constructs.auth import Auth
from infra_cdk.constructs.database import PROXY_PORT, Database
from infra_cdk.constructs.export_job import ExportJob
from infra_cdk.constructs.images import Images
from infra_cdk.constructs.import_job import ImportJob
from infra_cdk.constructs.layers import Layers
from infra_cdk.constructs.migrations import Migrations
from infra_cdk.constructs.network import Network
from infra_cdk.constructs.site import Site
from infra_cdk.nag import acknowledge


class TrainsetStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: EnvironmentSettings,
        build_dir: Path,
        chalice_app_dir: Path = paths.CHALICE_APP_DIR,
        **kwargs,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"trainset ({settings.name}): labeling API, database, Cognito, images, "
            "export job, coders' page",
            termination_protection=settings.deletion_protection,
            **kwargs,
        )
        self.settings = settings
        # A DB proxy's target group takes no tags (CloudFormation's schema refuses them).
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]
        Tags.of(self).add("project", "trainset", exclude_resource_types=untaggable)
        Tags.of(self).add("environment", settings.name, exclude_resource_types=untaggable)
        runtime = lambda_.Runtime(lambda_runtime_name(), lambda_.RuntimeFamily.PYTHON)

        self.network = Network(
            self,
            "Network",
            max_azs=settings.max_azs,
            nat_gateways=settings.nat_gateways,
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
        )
        vpc = self.network.vpc

        # Names of resources that outlive the stack (RETAIN) carry a suffix unique to the stack,
        # so that a retried first deploy (a new stack) never collides with what a failed one
        # left behind; resources the stack deletes keep their plain names.
        self.retained_suffix = (
            "" if settings.removal_policy == RemovalPolicy.DESTROY else f"-{stack_id_suffix()}"
        )
        proxy_sg = self.network.function_security_group(
            self, "DatabaseProxySecurityGroup",
            description="trainset RDS Proxy: from the API, to the database",
        )
        self.database = Database(
            self,
            "Database",
            vpc=vpc,
            subnets=self.network.data_subnets,
            identifier=(
                settings.db_instance_identifier
                or f"trainset-{settings.name}{self.retained_suffix}"
            ),
            instance_type=settings.db_instance_type,
            allocated_storage_gib=settings.db_allocated_storage_gib,
            max_allocated_storage_gib=settings.db_max_allocated_storage_gib,
            multi_az=settings.db_multi_az,
            deletion_protection=settings.deletion_protection,
            backup_retention_days=settings.backup_retention_days,
            removal_policy=settings.removal_policy,
            log_retention_days=settings.log_retention_days,
            proxy_security_group=proxy_sg,
            proxy_max_connections_percent=settings.db_proxy_max_connections_percent,
        )

        # The page's distribution first: its URL is needed by Cognito and the API below.
        self.site = Site(self, "Site", env_name=settings.name,
                         removal_policy=settings.removal_policy)
        allowed_origin = cors_origin(settings.allowed_origin, self.site.origin)

        self.auth = Auth(
            self,
            "Auth",
            env_name=settings.name,
            callback_urls=[*settings.callback_urls, self.site.url],
            logout_urls=[*settings.logout_urls, self.site.url],
            plus_tier=settings.cognito_plus_tier,
            deletion_protection=settings.deletion_protection,
            removal_policy=settings.removal_policy,
        )

        self.layers = Layers(
            self,
            "Layers",
            core_dir=paths.CORE_LAYER_DIR,
            deps_dir=paths.DEPS_LAYER_DIR,
            runtime=runtime,
        )

        self.images = Images(
            self,
            "Images",
            runtime=runtime,
            layers=self.layers.all,
            images_layer_dir=paths.REPO_ROOT / "layers" / "images",
            augment_dir=paths.REPO_ROOT / "lambdas" / "augment",
            repo_root=paths.REPO_ROOT,
            allowed_origin=allowed_origin,
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
        )

        migrate_sg = self.network.function_security_group(
            self, "MigrateSecurityGroup", description="trainset migrate function"
        )
        self.database.allow_from(migrate_sg, "PostgreSQL from the migrate function")
        self.migrations = Migrations(
            self,
            "Migrations",
            vpc=vpc,
            subnets=self.network.app_subnets,
            security_group=migrate_sg,
            db_secret=self.database.secret,
            layers=self.layers.all,
            runtime=runtime,
            handler_dir=paths.MIGRATE_FUNCTION_DIR,
            sql_dir=paths.SQL_DIR,
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
        )
        self.migrations.resource.node.add_dependency(self.database.instance)

        export_sg = self.network.function_security_group(
            self, "ExportJobSecurityGroup", description="trainset export job functions"
        )
        self.database.allow_from(export_sg, "PostgreSQL from the export job functions")
        self.export_job = ExportJob(
            self,
            "ExportJob",
            asl_path=paths.EXPORT_JOB_ASL,
            repo_root=paths.REPO_ROOT,
            vpc=vpc,
            subnets=self.network.app_subnets,
            security_group=export_sg,
            db_secret=self.database.secret,
            images_bucket=self.images.bucket,
            schedule_hour_utc=settings.export_schedule_hour_utc,
            scheduled_families=settings.export_families,
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
            log_name_suffix=self.retained_suffix,
            export_retention_days=settings.export_retention_days,
        )
        # The export tasks read the schema the migrations create.
        self.export_job.node.add_dependency(self.migrations)

        import_sg = self.network.function_security_group(
            self, "ImportJobSecurityGroup", description="trainset import job functions"
        )
        self.database.allow_from(import_sg, "PostgreSQL from the import job functions")
        self.import_job = ImportJob(
            self,
            "ImportJob",
            asl_path=paths.IMPORT_JOB_ASL,
            handler_dir=paths.IMPORT_FUNCTION_DIR,
            runtime=runtime,
            layers=self.layers.all,
            columnar_layer_dir=paths.REPO_ROOT / "layers" / "columnar",
            vpc=vpc,
            subnets=self.network.app_subnets,
            # The database, and S3 through the export job's gateway endpoint (its prefix list).
            security_groups=[import_sg, self.export_job.s3_security_group],
            db_secret=self.database.secret,
            allowed_origin=allowed_origin,
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
            name_suffix=self.retained_suffix,
        )
        # The import tasks write the schema the migrations create.
        self.import_job.node.add_dependency(self.migrations)

        api_sg = self.network.function_security_group(
            self, "ApiSecurityGroup", description="trainset API function"
        )
        # The API reaches the database only through the proxy.
        self.database.allow_through_proxy(api_sg, "PostgreSQL from the API function")
        self.api = Api(
            self,
            "Api",
            source_dir=chalice_app_dir,
            build_dir=build_dir,
            runtime=runtime,
            vpc=vpc,
            subnets=self.network.app_subnets,
            security_group=api_sg,
            layers=self.layers.all,
            db_secret=self.database.secret,
            user_pool_arn=self.auth.user_pool_arn,
            allowed_origin=allowed_origin,
            environment={
                "TRAINSET_IMAGES_BUCKET": self.images.bucket.bucket_name,
                "TRAINSET_EXPORT_STATE_MACHINE_ARN": (
                    self.export_job.state_machine.state_machine_arn
                ),
                # GET /exports/{id} lists a finished job's files and presigns their downloads.
                "TRAINSET_EXPORTS_BUCKET": self.export_job.bucket.bucket_name,
                # POST /uploads presigns PUTs here; the upload starts the import job.
                "TRAINSET_IMPORTS_BUCKET": self.import_job.bucket.bucket_name,
                "TRAINSET_IMPORT_STATE_MACHINE_ARN": self.import_job.state_machine_arn,
                # Connect through the RDS Proxy: these override the secret's host and port.
                "TRAINSET_DB_HOST": self.database.proxy_endpoint,
                "TRAINSET_DB_PORT": str(PROXY_PORT),
            },
            memory_mb=settings.api_memory_mb,
            timeout_seconds=settings.api_timeout_seconds,
            throttling=Throttling(
                rate_rps=settings.api_throttle_rate_rps, burst=settings.api_throttle_burst
            ),
            log_retention_days=settings.log_retention_days,
            removal_policy=settings.removal_policy,
        )
        # New API code goes live only once the schema it expects is in place.
        self.api.node.add_dependency(self.migrations)
        # Presigned GETs (uploads, variants) and PUTs (uploads) for the API.
        self.images.grant_api(self.api.role)
        # POST /exports starts an execution; the job routes describe them.
        self.export_job.grant_start(self.api.role)
        # POST /uploads presigns PUTs under corpus/ and gold/; GET /imports, rejects downloads.
        self.import_job.grant_api(self.api.role)
        # GET /exports/{id}: list a finished job's files (their sizes) and presign downloads;
        # S3 through the gateway endpoint, as the export tasks reach it.
        self.api_export_downloads = export_downloads_policy(
            self, self.export_job.bucket, self.api.role)
        api_sg.add_egress_rule(
            ec2.Peer.prefix_list(
                self.export_job.s3_prefix_list.get_response_field("PrefixLists.0.PrefixListId")),
            ec2.Port.tcp(443),
            "HTTPS from the API function to S3 (export files) through the gateway endpoint",
        )
        # The API runs in the isolated app subnets: Step Functions through an interface
        # endpoint (private DNS, so boto3 needs no endpoint settings), open to the API only.
        self.states_endpoint = vpc.add_interface_endpoint(
            "StepFunctions",
            service=ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
            subnets=self.network.app_subnets,
            private_dns_enabled=True,
            open=False,
        )
        self.states_endpoint.connections.allow_default_port_from(
            api_sg, "HTTPS from the API function to Step Functions"
        )

        self.api_url = self.api.url
        self.site.publish(
            source_dir=paths.STATIC_SITE_DIR,
            config={
                "apiBaseUrl": self.api_url,
                "authMode": "cognito",
                "cognito": {
                    "domain": self.auth.hosted_ui_base_url,
                    "clientId": self.auth.client.user_pool_client_id,
                    "redirectUri": self.site.url,
                },
            },
        )

        CfnOutput(self, "SiteUrl", value=self.site.url, description="the coders' page")
        CfnOutput(self, "ApiUrl", value=self.api_url, description="the API base URL")
        # The outputs Chalice's template used to give, kept for scripts that read them.
        CfnOutput(self, "EndpointURL", value=self.api_url, description="the API base URL")
        CfnOutput(self, "RestAPIId", value=self.api.rest_api_id)
        CfnOutput(self, "DatabaseProxyEndpoint", value=self.database.proxy_endpoint)
        CfnOutput(self, "UserPoolId", value=self.auth.user_pool.user_pool_id)
        CfnOutput(self, "UserPoolClientId", value=self.auth.client.user_pool_client_id)
        CfnOutput(self, "HostedUiUrl", value=self.auth.hosted_ui_base_url)
        CfnOutput(self, "DatabaseSecretArn", value=self.database.secret_arn)
        CfnOutput(self, "MigrateFunctionName", value=self.migrations.function.function_name,
                  description="invoke with {\"action\": \"add-manager\", \"name\": ...} "
                  "to create the first manager's coder row")
        CfnOutput(self, "ImagesBucket", value=self.images.bucket.bucket_name)
        CfnOutput(self, "ExportsBucket", value=self.export_job.bucket.bucket_name)
        CfnOutput(
            self, "ExportStateMachineArn", value=self.export_job.state_machine.state_machine_arn
        )
        CfnOutput(self, "ImportsBucket", value=self.import_job.bucket.bucket_name,
                  description="corpus/ and gold/ uploads start the import job")
        CfnOutput(self, "ImportStateMachineArn", value=self.import_job.state_machine_arn)


def export_downloads_policy(scope: Construct, bucket: s3.IBucket, role: iam.IRole) -> iam.Policy:
    """Let ``role`` list ``exports/`` and read (so presign) the objects under it, nothing else."""
    policy = iam.Policy(
        scope,
        "ApiExportDownloads",
        roles=[role],
        statements=[
            iam.PolicyStatement(
                sid="ListExportFiles", actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["exports/*"]}},
            ),
            iam.PolicyStatement(
                sid="ReadExportFiles", actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects("exports/*")],
            ),
        ],
    )
    bucket_id = Stack.of(scope).resolve(bucket.node.default_child.logical_id)
    acknowledge(
        policy,
        f"IAM5[Resource::<{bucket_id}.Arn>/exports/*]",
        "The API reads export files under exports/ only (sizes, presigned downloads); keys "
        "there are exports/<job id>/<family>/..., generated per job, so a prefix is the "
        "narrowest grant possible.",
    )
    return policy


def stack_id_suffix() -> str:
    """The first 8 hex digits of the stack's id (arn:...:stack/<name>/<uuid>): fixed for the
    stack's life, new for every new stack of the same name."""
    return Fn.select(0, Fn.split("-", Fn.select(2, Fn.split("/", Aws.STACK_ID))))


def cors_origin(configured: str | None, site_origin: str) -> str:
    """The API's (and images bucket's) CORS origin: the configured one, or the page's."""
    return configured if configured is not None else site_origin
