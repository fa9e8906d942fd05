"""The two Lambda layers every trainset function uses, and how any pip-built layer is made.

- core: `layers/core/` as is; its `python/trainset/` package lands on sys.path (/opt/python).
- deps: the pinned third-party packages of `layers/deps/requirements.txt`, installed by pip for
  the Lambda platform at synth time (local bundling, no Docker), exactly the pinned set
  (`--no-deps`): boto3/botocore come from the Lambda runtime, never from a layer.

tests/packaging builds both (the deps layer with the same pip command) into a clean folder and
imports and calls every function that uses them from there, with nothing else on sys.path.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import AssetHashType
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra_cdk.bundling import PipLayerBundler, local_bundling, python_version

CORE_LAYER_EXCLUDES = [
    "pyproject.toml",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
    "build",
    "dist",
]


class Layers(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        core_dir: Path,
        deps_dir: Path,
        runtime: lambda_.Runtime,
    ) -> None:
        super().__init__(scope, construct_id)
        architectures = [lambda_.Architecture.X86_64]

        self.core = lambda_.LayerVersion(
            self,
            "Core",
            description="trainset: the shared package (layers/core)",
            code=lambda_.Code.from_asset(str(core_dir), exclude=CORE_LAYER_EXCLUDES),
            compatible_runtimes=[runtime],
            compatible_architectures=architectures,
        )

        self.deps = pip_layer(self, "Deps", deps_dir, runtime,
                              "trainset: third-party packages (layers/deps/requirements.txt)")

    @property
    def all(self) -> list[lambda_.ILayerVersion]:
        return [self.core, self.deps]


def pip_layer(scope: Construct, construct_id: str, folder: Path, runtime: lambda_.Runtime,
              description: str) -> lambda_.LayerVersion:
    """A layer of the pinned packages in ``folder/requirements.txt``, installed by pip for the
    Lambda platform at synth time. The asset hash is that of the folder (the requirements
    file), so an unchanged file keeps the same layer version across deploys."""
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description=description,
        code=lambda_.Code.from_asset(
            str(folder),
            asset_hash_type=AssetHashType.SOURCE,
            bundling=local_bundling(
                PipLayerBundler(folder / "requirements.txt", python_version(runtime.name))),
        ),
        compatible_runtimes=[runtime],
        compatible_architectures=[lambda_.Architecture.X86_64],
    )
