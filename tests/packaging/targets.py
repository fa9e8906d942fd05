"""Clean install targets: what each Lambda function gets, in folders of their own.

- A pip-built layer is installed by `infra_cdk.bundling.pip_layer_command`, the command CDK runs
  at deploy (Lambda platform wheels, `--no-deps`), into a cache folder keyed by the requirements
  file and the command.
- The runtime's AWS SDK (`lambda_runtime.txt`, what Lambda's python3.11 runtime provides) the
  same way.
- A container's packages (its requirements.txt, installed by its Dockerfile's pip) are composed
  from the pinned distributions: each one is linked file by file (its RECORD) from the test
  virtualenv when the virtualenv holds exactly that version, else installed on its own with
  `pip --no-deps`. This interpreter is 3.11 and the images run 3.12 (their base image is not
  reachable from here): the pins are the same, the wheels are this Python's.

Targets live under `.venv/packaging/` (or `$TRAINSET_PACKAGING_CACHE`), one folder per name and
key; a new key replaces the name's older folders. Nothing else is on a target's path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RUNTIME_REQUIREMENTS = HERE / "lambda_runtime.txt"
TEST_SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])


def cache_root() -> Path:
    configured = os.environ.get("TRAINSET_PACKAGING_CACHE")
    if configured:
        return Path(configured)
    venv = REPO_ROOT / ".venv"
    return (venv if venv.is_dir() else REPO_ROOT / ".trainset") / "packaging"


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(name: str, key: str, build) -> Path:
    """`<cache>/<name>-<key>`, built once by `build(folder)` into a temporary folder and renamed
    into place (so an interrupted build is never used); older keys of `name` are removed."""
    root = cache_root()
    final = root / f"{name}-{key}"
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    building = root / f".building-{name}-{uuid.uuid4().hex[:8]}"
    try:
        build(building)
        try:
            building.rename(final)
        except OSError:  # another process finished the same target first
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    for older in root.glob(f"{name}-*"):
        if older != final and older.name.removeprefix(f"{name}-").isalnum():
            shutil.rmtree(older, ignore_errors=True)
    return final


def pins(requirements: Path) -> dict[str, str]:
    """`{canonical name: version}` of a fully pinned requirements file (`name==version` lines)."""
    found: dict[str, str] = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier  # one pin per line, nothing else
        assert spec.operator == "==", f"{requirements}: {line!r} is not pinned with =="
        found[canonicalize_name(requirement.name)] = spec.version
    return found


# ---- layers and the runtime's SDK (pip, for the Lambda platform) ---------------------------


def pip_layer(name: str, requirements: Path, python_version: str) -> Path:
    """The `python/` folder of the layer `requirements` builds, built by the deploy's command."""
    from infra_cdk.bundling import PipLayerBundler, pip_layer_command

    command = pip_layer_command(requirements, Path("TARGET"), python_version)[1:]
    key = _key(requirements.read_text(), command)

    def build(folder: Path) -> None:
        PipLayerBundler(requirements, python_version).try_bundle(str(folder))

    return cached(name, key, build) / "python"


def lambda_runtime_sdk(python_version: str) -> Path:
    """What the Lambda runtime provides beside the standard library: boto3 and its
    dependencies at the versions `lambda_runtime.txt` pins."""
    from infra_cdk.bundling import pip_layer_command

    command = pip_layer_command(RUNTIME_REQUIREMENTS, Path("TARGET"), python_version)[1:]
    key = _key(RUNTIME_REQUIREMENTS.read_text(), command)

    def build(folder: Path) -> None:
        subprocess.run(pip_layer_command(RUNTIME_REQUIREMENTS, folder, python_version),
                       check=True)

    return cached("lambda-runtime-sdk", key, build)


# ---- container images (pinned distributions, linked from the test virtualenv) ---------------


def _installed(name: str) -> metadata.Distribution | None:
    """The test virtualenv's distribution `name` (site-packages only, not editable installs)."""
    for dist in metadata.distributions(name=name, path=[str(TEST_SITE_PACKAGES)]):
        return dist
    return None


def container_packages(name: str, requirements: Path) -> Path:
    """The packages `requirements` installs in a container image, for this interpreter."""
    wanted = pins(requirements)
    available = {}  # what the virtualenv holds decides how the target is made
    for dist_name in wanted:
        dist = _installed(dist_name)
        available[dist_name] = dist.version if dist is not None else None
    key = _key(requirements.read_text(), sys.version_info[:2], sorted(available.items()),
               str(TEST_SITE_PACKAGES))

    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        for dist_name, version in sorted(wanted.items()):
            dist = _installed(dist_name)
            if dist is not None and Version(dist.version) == Version(version):
                _link_distribution(dist, folder)
            else:
                _link_tree(_single_distribution(dist_name, version), folder)

    return cached(name, key, build)


def _link_distribution(dist: metadata.Distribution, folder: Path) -> None:
    """Symlink every file of an installed distribution (its RECORD) into `folder`, keeping the
    layout (packages that share a namespace folder are merged file by file)."""
    base = Path(str(dist.locate_file("")))
    files = dist.files
    assert files, f"{dist.metadata['Name']}: no RECORD"
    for entry in files:
        relative = Path(str(entry))
        if relative.parts[0] == "..":
            continue  # console scripts, outside site-packages
        source = base / relative
        if not source.exists():
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.symlink_to(source)


def _link_tree(source: Path, folder: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = folder / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(path)


def _single_distribution(dist_name: str, version: str) -> Path:
    """One distribution, installed alone for this interpreter (binary wheels, no deps)."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"

    def build(folder: Path) -> None:
        subprocess.run([sys.executable, "-m", "pip", "install", f"{dist_name}=={version}",
                        "--target", str(folder), "--no-deps", "--only-binary=:all:",
                        "--no-compile", "--disable-pip-version-check", "--quiet"], check=True)

    return cached(f"dist-{dist_name}-{version}-{tag}", _key(dist_name, version, tag), build)


# ---- what a set of folders holds ------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    name: str  # canonical
    version: str
    folder: Path
    requires: tuple[str, ...]


def distributions(folders: Sequence[Path]) -> dict[str, Installed]:
    """The distributions on a path made of `folders`, the first one found winning (as imports
    do)."""
    found: dict[str, Installed] = {}
    for folder in folders:
        for dist in metadata.distributions(path=[str(folder)]):
            name = canonicalize_name(dist.metadata["Name"])
            if name not in found:
                found[name] = Installed(name, dist.version, folder, tuple(dist.requires or ()))
    return found


def marker_environment(python_version: str) -> dict[str, str]:
    """The marker environment of a Lambda function: Linux x86_64, CPython `python_version`."""
    env = dict(default_environment())
    env.update(python_version=python_version, python_full_version=f"{python_version}.0",
               sys_platform="linux", platform_system="Linux", platform_machine="x86_64",
               os_name="posix", implementation_name="cpython",
               platform_python_implementation="CPython", extra="")
    return env


def unmet_requirements(folders: Sequence[Path], python_version: str,
                       only: Iterable[str] | None = None) -> list[str]:
    """Every requirement (Requires-Dist, markers evaluated for the function's Python) of the
    distributions on the path that no distribution on the path satisfies. `only` limits the
    check to the requirements of those distributions."""
    dists = distributions(folders)
    env = marker_environment(python_version)
    checked = set(dists) if only is None else {canonicalize_name(n) for n in only}
    problems = []
    for name in sorted(checked):
        for text in dists[name].requires:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(env):
                continue
            wanted = canonicalize_name(requirement.name)
            have = dists.get(wanted)
            if have is None:
                problems.append(f"{name} {dists[name].version} requires {text}: not installed")
            elif not requirement.specifier.contains(have.version, prereleases=True):
                problems.append(f"{name} {dists[name].version} requires {text}: "
                                f"{have.version} is installed (from {have.folder.name})")
    return problems


def top_level_names(folder: Path) -> set[str]:
    """The importable top-level names a folder provides (packages, modules, extensions)."""
    names = set()
    for path in folder.iterdir():
        if (path.name in ("__pycache__", "bin") or path.name.startswith(".")
                or path.suffix in (".dist-info", ".egg-info") or path.name.endswith(".libs")):
            continue
        if path.is_dir():
            names.add(path.name)
        elif path.suffix in (".py", ".so"):
            names.add(path.name.split(".", 1)[0])
    return names
