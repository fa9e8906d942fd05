"""Synthesize the CDK app once per test session and environment, offline.

A synth takes several seconds (the jsii Node process, Chalice packaging, cdk-nag), so every test
shares one `Synthesized` per environment: dev for most tests, prod for the few that compare.
Asset bundling (pip for the deps layer, the migrate asset copy) is skipped with the context
`aws:cdk:bundling-stacks = []`; Chalice's chalice.out/ and the cloud assembly go to a temporary
folder, so the repository is left untouched.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPO_ROOT / "infra_cdk" / "cdk.json"

# The Chalice construct packages the app with boto3, which needs a region; the jsii banner about
# Node 20 is noise.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from aws_cdk import App, Stack  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra_cdk.app import build  # noqa: E402


@dataclass(frozen=True)
class Synthesized:
    """One synthesized environment: the stack, its template, and cdk-nag's verdict."""

    stack: Stack
    template: Template
    resources: dict[str, Any]
    validation_report: dict[str, Any]
    synth_error: str | None  # set when cdk-nag (or another validation) failed the synth
    seconds: float

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        return self.stack.resolve(construct.node.default_child.logical_id)


PROD_ORIGIN = "https://labeling.example.org"


def synthesize(
    env_name: str, workdir: Path, overrides: dict[str, Any] | None = None
) -> Synthesized:
    """Synthesize like `cdk synth -c env=<env_name>` with cdk.json's context, without bundling;
    `overrides` go to the `trainset:overrides` context of that environment."""
    context = json.loads(CDK_JSON.read_text())["context"]
    context.update({"env": env_name, "aws:cdk:bundling-stacks": []})
    if overrides:
        context["trainset:overrides"] = {env_name: overrides}
    outdir = workdir / "cdk.out"
    started = time.perf_counter()
    app = App(outdir=str(outdir), context=context)
    stack = build(app, build_dir=workdir)
    try:
        app.synth()
        error = None
    except RuntimeError as exc:  # cdk-nag findings fail the synth after writing the assembly
        error = str(exc)
    seconds = time.perf_counter() - started
    template_json = json.loads((outdir / stack.template_file).read_text())
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return Synthesized(
        stack=stack,
        template=Template.from_json(template_json),
        resources=template_json["Resources"],
        validation_report=report,
        synth_error=error,
        seconds=seconds,
    )


@pytest.fixture(scope="session")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize("dev", tmp_path_factory.mktemp("cdk-dev"))


@pytest.fixture(scope="session")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # As a real prod deployment would: the coders' page has its own origin.
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod"), {"allowed_origin": PROD_ORIGIN})
