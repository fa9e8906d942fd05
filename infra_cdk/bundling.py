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


# The AWS SDK the Lambda Python runtime ships (and urllib3, which only the SDK uses here). A layer
# must not carry its own copy: layers come before the runtime's packages on sys.path, so a copy
# would shadow the SDK the runtime keeps patched (AWS warns of exactly this for urllib3), and
# botocore alone is ~30 MB of a layer's 250 MB.
RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "urllib3")


class LayerContentError(RuntimeError):
    """A layer build installed something a layer must not ship."""


def pip_layer_command(requirements: Path, target: Path, python_version: str) -> list[str]:
    """The pip command that fills a layer's `python/` folder from a requirements file.

    Binary wheels for the Lambda platform only, and `--no-deps`: the requirements file pins
    every package the layer ships, transitive ones included, and nothing else gets in. So a
    dependency the runtime provides (botocore, for aws-xray-sdk) is left to the runtime. The
    packaging tests (tests/packaging) check that each file's pins satisfy one another with the
    runtime's SDK, install them with this very command and import every function from them."""
    return [
        sys.executable, "-m", "pip", "install",
        "--requirement", str(requirements),
        "--target", str(target),
        "--platform", PIP_PLATFORM,
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--no-deps",
        "--no-compile",
        "--disable-pip-version-check",
        "--quiet",
    ]  # fmt: skip


def runtime_sdk_in(folder: Path) -> list[str]:
    """The RUNTIME_SDK packages (import names) or distributions installed in `folder`."""
    found = []
    for name in RUNTIME_SDK:
        if (folder / name).exists() or (folder / f"{name}.py").exists() or any(
            folder.glob(f"{name}-*.dist-info")
        ):
            found.append(name)
    return found


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """`pip install -r requirements.txt` into `<output>/python/` for the Lambda platform
    (binary wheels only, no dependency resolution: see `pip_layer_command`), i.e. a layer whose
    packages are on the functions' sys.path. Refuses a layer that would ship the runtime's SDK."""

    def __init__(self, requirements: Path, python_version: str) -> None:
        self._requirements = requirements
        self._python_version = python_version

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        target = Path(output_dir) / "python"
        subprocess.run(
            pip_layer_command(self._requirements, target, self._python_version), check=True
        )
        shipped = runtime_sdk_in(target)
        if shipped:
            raise LayerContentError(
                f"{self._requirements} puts {', '.join(shipped)} into a layer; the Lambda "
                "runtime provides the AWS SDK, and a copy in a layer would shadow it: remove "
                "it from the requirements file"
            )
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
