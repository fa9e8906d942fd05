"""The packaging tests cover every function the stack deploys, as it deploys them: each trainset
function of the synthesized template (an image function, or a zip function on the core layer)
is in `functions.FUNCTIONS` with the same handler, layers or Dockerfile, and each image's build
context holds what its Dockerfile copies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.packaging.functions import FUNCTIONS, LAYERS, read_dockerfile, zip_runtime_python

FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The dev stack's resources and its cloud assembly (no bundling, offline)."""
    from tests.infra.conftest import synthesize

    workdir = tmp_path_factory.mktemp("cdk-packaging")
    synth = synthesize("dev", workdir)
    return synth.resources, workdir / "cdk.out"


def layer_names(resources: dict[str, Any]) -> dict[str, str]:
    """{logical id: layer name} of the trainset layers."""
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Lambda::LayerVersion":
            for layer in LAYERS.values():
                if logical_id.startswith(layer.stack_id):
                    found[logical_id] = layer.name
    return found


def trainset_functions(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Functions running trainset code: images, and zip functions on the core layer (not the
    ones CDK adds for itself: custom-resource providers, bucket notifications, deployments)."""
    layers = layer_names(resources)
    found = {}
    for logical_id, resource in resources.items():
        if resource["Type"] not in FUNCTION_TYPES:
            continue
        props = resource["Properties"]
        used = [layers.get(ref.get("Ref")) for ref in props.get("Layers", [])
                if isinstance(ref, dict)]
        if props.get("PackageType") == "Image" or "core" in used:
            found[logical_id] = {**props, "layer_names": sorted(n for n in used if n)}
    return found


def entry_for(logical_id: str) -> tuple[Any, str] | None:
    matches = [(function, prefix) for function in FUNCTIONS for prefix in function.handlers
               if logical_id.startswith(prefix)]
    return max(matches, key=lambda m: len(m[1])) if matches else None


def image_asset(props: dict[str, Any], assembly: Path) -> dict[str, Any]:
    """The Docker image asset an image function's ImageUri names."""
    uri = json.dumps(props["Code"]["ImageUri"])
    manifest = json.loads(next(assembly.glob("*.assets.json")).read_text())
    (asset,) = [a for digest, a in manifest.get("dockerImages", {}).items() if digest in uri]
    return asset


def test_every_deployed_function_has_packaging_tests(synthesized):
    resources, assembly = synthesized
    deployed = trainset_functions(resources)
    assert deployed, "no trainset function found in the template"
    covered: dict[str, str] = {}
    for logical_id, props in sorted(deployed.items()):
        match = entry_for(logical_id)
        assert match, (f"{logical_id} runs trainset code but tests/packaging/functions.py does "
                       "not list it: add it to FUNCTIONS (its handler and layers or "
                       "Dockerfile), so its packaging is tested")
        function, prefix = match
        assert prefix not in covered, f"{prefix} matches {covered[prefix]} and {logical_id}"
        covered[prefix] = logical_id
        if function.image:
            asset = image_asset(props, assembly)
            assert asset["source"]["dockerFile"] == function.dockerfile, logical_id
            dockerfile = read_dockerfile(function.dockerfile)
            command = (props.get("ImageConfig") or {}).get("Command") or list(dockerfile.cmd)
            assert command == [function.handlers[prefix]], logical_id
            context = assembly / asset["source"]["directory"]
            for source, _ in dockerfile.copies:
                assert (context / source).exists(), (
                    f"{function.dockerfile} copies {source}, which its build context lacks")
        else:
            assert props["Handler"] == function.handlers[prefix], logical_id
            assert props["Runtime"] == f"python{zip_runtime_python()}", logical_id
            assert props["layer_names"] == sorted(function.layers), logical_id
    listed = {prefix for function in FUNCTIONS for prefix in function.handlers}
    assert listed == set(covered), f"listed but not deployed: {sorted(listed - set(covered))}"
