"""cdk-nag (v3) wiring: AwsSolutions checks on the app and written acknowledgments.

cdk-nag 3 runs as a CDK policy-validation plugin: a finding fails `app.synth()` (and so
`cdk synth`/`cdk deploy`) and is written to `validation-report.json` in the cloud assembly.
A finding that cannot be fixed is acknowledged on the construct that causes it, with a reason.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"


def add_checks(app: App) -> None:
    """Run the AwsSolutions rule pack on every stack of `app` at synth time."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (e.g. "IAM5[Resource::*]") on `scope` and below."""
    if len(reason) < 20:
        raise ValueError("an acknowledgment needs a specific written reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"{PACK}::{PACK}-{rule}", reason=reason))
