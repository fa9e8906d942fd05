"""Local (no Docker) bundlers for the Lambda assets, run by CDK while it stages assets.

Tests and offline synths skip all bundling with the context `aws:cdk:bundling-stacks = []`;
`cdk deploy` (and `cdk synth`) run these bundlers for real.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from chalice.config import Config

# Lambda architecture of every trainset function (Chalice's default too).
PIP_PLATFORM = "manylinux2014_x86_64"

# Docker is never used: every bundler below runs locally and returns True. CDK still wants an
# image name in BundlingOptions; this one would only matter if a bundler returned False.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/sam/build-python3.12")


def lambda_runtime_name() -> str:
    """The Lambda runtime of every trainset function, e.g. "python3.11": the one Chalice picks
    when it packages the API (from the interpreter that runs the synth), so the layers built
    here match the API's Python."""
    return Config().lambda_python_version


def python_version(runtime_name: str) -> str:
    """ "python3.11" -> "3.11" (pip's --python-version)."""
    return runtime_name.removeprefix("python")


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """`pip install -r requirements.txt` into `<output>/python/` for the Lambda platform
    (binary wheels only), i.e. a layer whose packages are on the functions' sys.path."""

    def __init__(self, requirements: Path, python_version: str) -> None:
        self._requirements = requirements
        self._python_version = python_version

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        command = [
            sys.executable, "-m", "pip", "install",
            "--requirement", str(self._requirements),
            "--target", str(Path(output_dir) / "python"),
            "--platform", PIP_PLATFORM,
            "--implementation", "cp",
            "--python-version", self._python_version,
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
        ]  # fmt: skip
        subprocess.run(command, check=True)
        return True


@jsii.implements(ILocalBundling)
class CopyBundler:
    """Copy files and folders into the asset: `{destination (relative): source path}`."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self._sources = sources

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        for destination, source in self._sources.items():
            target = Path(output_dir) / destination
            if source.is_dir():
                shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        return True


def local_bundling(bundler: Any) -> BundlingOptions:
    return BundlingOptions(image=_UNUSED_IMAGE, local=bundler)
