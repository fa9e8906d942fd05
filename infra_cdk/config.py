"""Per-environment settings: one frozen dataclass, one instance per environment.

The environment is chosen with CDK context (`cdk deploy -c env=prod`, default `dev` from
cdk.json). Any field can be overridden for one environment through the `trainset:overrides`
context object, e.g. in cdk.json::

    "trainset:overrides": {"prod": {"callback_urls": ["https://labeling.example.org/"]}}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aws_cdk import RemovalPolicy

from infra_cdk.constructs.logs import retention

ENV_CONTEXT_KEY = "env"
OVERRIDES_CONTEXT_KEY = "trainset:overrides"


@dataclass(frozen=True, kw_only=True)
class EnvironmentSettings:
    """Everything that differs between environments; the constructs take these as arguments."""

    name: str
    # Network
    max_azs: int = 2
    nat_gateways: int = 0
    # Database
    db_instance_type: str = "t4g.micro"
    db_allocated_storage_gib: int = 20
    db_max_allocated_storage_gib: int = 100
    db_multi_az: bool = False
    # None: `trainset-<env>` where the stack deletes its database (DESTROY), and
    # `trainset-<env>-<first 8 hex digits of the stack id>` where the database outlives the stack
    # (RETAIN/SNAPSHOT), so that a retried first deploy never collides with what a failed one
    # left behind. A deployment made with a fixed name keeps it by setting it here.
    db_instance_identifier: str | None = None
    # RDS Proxy in front of the database for the API (see Database): the share of the instance's
    # max_connections its pool may open. The rest stays for the direct clients (migrate function,
    # export tasks, an administrator's psql) and PostgreSQL's reserved slots.
    db_proxy_max_connections_percent: int = 70
    deletion_protection: bool = False
    backup_retention_days: int = 1
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    # Logs (CloudWatch retention for every log group the stack creates)
    log_retention_days: int = 14
    # Cognito
    cognito_plus_tier: bool = False
    callback_urls: tuple[str, ...] = ("http://localhost:8000/",)
    logout_urls: tuple[str, ...] = ("http://localhost:8000/",)
    # API
    # CORS origin of the coders' page (baked in when packaged); None: the stack's CloudFront URL.
    # dev keeps "*" so a page served from localhost can call the dev API too.
    allowed_origin: str | None = "*"
    api_memory_mb: int = 512
    api_timeout_seconds: int = 30
    # Stage throttling (every method), from the load model: 1,000 coders at most, one label cycle
    # (GET /tasks/next + POST /labels: 2 requests) per 5-10 s each, so 200-400 requests/s at
    # peak. Rate: 400 x 1.25 = 500/s, a quarter of headroom for page loads and managers' pages.
    # Burst (the token bucket): 1,000, one request from every coder at the same instant (the
    # morning page load), i.e. 2 s of the rate. See infra_cdk/README.md, "Scaling".
    api_throttle_rate_rps: int = 500
    api_throttle_burst: int = 1000
    # Export job (Step Functions): a daily run at this hour (UTC) over these families
    export_schedule_hour_utc: int = 3
    export_families: tuple[str, ...] = ("place", "child", "health")
    # Days an export (everything under exports/<job>/) is kept; None keeps every export. The
    # job runs daily and writes a full copy each time, so exports grow without limit unless
    # they expire (docs/scale.md, Cost: ~15 TB a month at 100M posts). dev keeps a month; prod
    # keeps everything unless set: an expired training set is gone.
    export_retention_days: int | None = 30

    def __post_init__(self) -> None:
        retention(self.log_retention_days)  # raises unless CloudWatch accepts the value
        if not 1 <= self.backup_retention_days <= 35:
            raise ValueError("backup_retention_days must be 1..35 (0 would disable backups)")
        if self.export_retention_days is not None and self.export_retention_days < 1:
            raise ValueError("export_retention_days must be 1 or more (None keeps every export)")
        if not 0 <= self.export_schedule_hour_utc <= 23:
            raise ValueError("export_schedule_hour_utc must be 0..23")
        if self.max_azs < 2:
            raise ValueError("RDS needs subnets in at least two availability zones")
        if not 1 <= self.db_proxy_max_connections_percent <= 100:
            raise ValueError("db_proxy_max_connections_percent must be 1..100")
        # API Gateway's default account quotas per region: 10,000 requests/s, burst 5,000.
        if not 0 < self.api_throttle_rate_rps <= 10_000:
            raise ValueError("api_throttle_rate_rps must be 1..10000 (the account's quota)")
        if not 0 < self.api_throttle_burst <= 5_000:
            raise ValueError("api_throttle_burst must be 1..5000 (the account's quota)")

    @property
    def stack_name(self) -> str:
        return f"Trainset-{self.name}"


ENVIRONMENTS: dict[str, EnvironmentSettings] = {
    "dev": EnvironmentSettings(name="dev"),
    "prod": EnvironmentSettings(
        name="prod",
        db_instance_type="t4g.small",
        db_allocated_storage_gib=50,
        db_max_allocated_storage_gib=500,
        db_multi_az=True,
        deletion_protection=True,
        backup_retention_days=14,
        removal_policy=RemovalPolicy.RETAIN,
        log_retention_days=365,
        cognito_plus_tier=True,
        api_memory_mb=1024,
        allowed_origin=None,  # the CloudFront URL of the page, unless overridden
        export_retention_days=None,
    ),
}


def settings_for(name: str, overrides: dict[str, Any] | None = None) -> EnvironmentSettings:
    """The settings of environment `name`, with `overrides` (field name -> value) applied."""
    try:
        base = ENVIRONMENTS[name]
    except KeyError:
        raise ValueError(f"unknown environment {name!r}; known: {sorted(ENVIRONMENTS)}") from None
    if not overrides:
        return base
    fields = {f.name for f in dataclasses.fields(EnvironmentSettings)} - {"name"}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown settings in {OVERRIDES_CONTEXT_KEY}.{name}: {sorted(unknown)}")
    values = dict(overrides)
    if "removal_policy" in values and isinstance(values["removal_policy"], str):
        values["removal_policy"] = RemovalPolicy[values["removal_policy"].upper()]
    for key in ("callback_urls", "logout_urls", "export_families"):
        if key in values:
            values[key] = tuple(values[key])
    return dataclasses.replace(base, **values)


def settings_from_context(node: Any) -> EnvironmentSettings:
    """Read `env` and `trainset:overrides` from a construct node's context (CLI -c or cdk.json)."""
    name = node.try_get_context(ENV_CONTEXT_KEY) or "dev"
    overrides = (node.try_get_context(OVERRIDES_CONTEXT_KEY) or {}).get(name)
    return settings_for(name, overrides)
