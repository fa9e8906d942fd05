"""The packages each function gets: built as the deploy builds them, and checked for what they
hold (no AWS SDK in a layer), what they need (every requirement of every distribution met by
the function's own packages, for its Python) and how they stack (no two layers ship the same
module)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from infra_cdk import bundling
from tests.packaging import targets
from tests.packaging.functions import FUNCTIONS, LAYERS, read_dockerfile, zip_runtime_python

PIP_LAYERS = [layer for layer in LAYERS.values() if layer.requirements is not None]
ZIP_FUNCTIONS = [f for f in FUNCTIONS if not f.image]
IMAGE_FUNCTIONS = [f for f in FUNCTIONS if f.image]


@pytest.mark.parametrize("layer", PIP_LAYERS, ids=lambda layer: layer.name)
def test_no_layer_ships_the_aws_sdk(layer):
    """boto3/botocore/s3transfer/urllib3 come with the Lambda runtime: a copy in a layer comes
    first on sys.path and shadows it (the images layer used to carry botocore, 30 MB, for the
    X-Ray SDK)."""
    folder = targets.pip_layer(f"layer-{layer.name}", layer.requirements,
                                zip_runtime_python())
    assert bundling.runtime_sdk_in(folder) == []
    shipped = set(targets.distributions([folder]))
    assert not shipped & {"boto3", "botocore", "s3transfer", "urllib3"}
    # Exactly what the file pins, nothing pulled in besides.
    assert {name: d.version for name, d in targets.distributions([folder]).items()} == (
        targets.pins(layer.requirements))


def test_a_layer_build_refuses_the_sdk(tmp_path, monkeypatch):
    """The bundler itself stops a deploy whose layer would ship botocore."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("botocore==1.44.8\n")

    def fake_pip(command, check):
        target = Path(command[command.index("--target") + 1])
        (target / "botocore").mkdir(parents=True)
        (target / "botocore-1.44.8.dist-info").mkdir()

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    with pytest.raises(bundling.LayerContentError, match="botocore"):
        bundling.PipLayerBundler(requirements, "3.11").try_bundle(str(tmp_path / "out"))


def test_layers_are_built_without_dependency_resolution():
    command = bundling.pip_layer_command(Path("r.txt"), Path("t"), "3.11")
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[command.index("--platform") + 1] == bundling.PIP_PLATFORM


@pytest.mark.parametrize("function", ZIP_FUNCTIONS, ids=str)
def test_zip_function_packages_meet_every_requirement(function, deployments):
    """With --no-deps nothing fills a gap in a requirements file: each distribution's
    requirements must be met by the function's layers and the runtime's SDK (botocore's own
    by the python-dateutil/jmespath/six the deps layer puts before the runtime's)."""
    deployed = deployments(function.name)
    assert targets.unmet_requirements(deployed.package_folders,
                                      deployed.python_version) == []


@pytest.mark.parametrize("function", ZIP_FUNCTIONS, ids=str)
def test_layers_of_a_function_do_not_overlap(function, deployments):
    """Lambda unpacks every layer into /opt: two layers with the same module would overwrite
    each other, the later one winning."""
    deployed = deployments(function.name)
    provided = {name: targets.top_level_names(folder)
                for name, folder in deployed.layers.items()}
    for (a, names_a), (b, names_b) in itertools.combinations(provided.items(), 2):
        assert not names_a & names_b, f"layers {a} and {b} both ship {sorted(names_a & names_b)}"


@pytest.mark.parametrize("function", IMAGE_FUNCTIONS, ids=str)
def test_image_requirements_are_complete_for_the_images_python(function, deployments):
    """The Dockerfile's pip resolves dependencies: any requirement the pins do not meet would
    be fetched unpinned at build time. Markers are evaluated for the image's Python (3.12)."""
    deployed = deployments(function.name)
    dockerfile = read_dockerfile(function.dockerfile)
    assert "--only-binary=:all:" in dockerfile.pip_install
    assert targets.unmet_requirements([deployed.packages], deployed.python_version) == []
    assert {name: d.version for name, d in targets.distributions([deployed.packages]).items()
            } == targets.pins(dockerfile.requirements)
