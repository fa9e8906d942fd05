"""Every trainset Lambda function, and the folders it runs from, rebuilt the way it deploys.

A zip function runs on Lambda's python3.11 runtime (the version Chalice picks for the API) with
`/var/task` (its code asset), `/opt/python` (its layers) and the runtime's AWS SDK on sys.path.
An image function runs its Dockerfile's image: `${LAMBDA_TASK_ROOT}` (what the Dockerfile
copies there) and the packages its requirements.txt installs.

`test_deployed_functions.py` checks this list against the synthesized stack: a function the
stack gains (say, an import job task) fails there until it is added here, so it gets its
packaging tests.
"""

from __future__ import annotations

import json
import shlex
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.packaging import targets

REPO_ROOT = targets.REPO_ROOT
TASK_ROOT_VARIABLE = "${LAMBDA_TASK_ROOT}"


@dataclass(frozen=True)
class Layer:
    name: str
    stack_id: str  # the logical id prefix of its LayerVersion in the synthesized template
    requirements: Path | None = None  # None: the core layer, layers/core/ as is


LAYERS = {
    "core": Layer("core", "LayersCore"),
    "deps": Layer("deps", "LayersDeps", REPO_ROOT / "layers" / "deps" / "requirements.txt"),
    "images": Layer("images", "ImagesImagesLayer",
                    REPO_ROOT / "layers" / "images" / "requirements.txt"),
    "columnar": Layer("columnar", "ImportJobColumnarLayer",
                      REPO_ROOT / "layers" / "columnar" / "requirements.txt"),
}


@dataclass(frozen=True)
class Function:
    name: str
    # The function's resources in the synthesized template (logical id prefix) and the handler
    # each one runs ("module.attribute"); an image function's tasks share one image.
    handlers: Mapping[str, str]
    layers: tuple[str, ...] = ()
    # A zip function's code asset: {folder in the asset: repository path}, as its construct's
    # CopyBundler stages it; the API's is Chalice's deployment package instead.
    code: Mapping[str, str] = field(default_factory=dict)
    chalice_app: str | None = None
    dockerfile: str | None = None
    # The function's environment (as its construct sets it) that decides what it imports;
    # "{task}" is the function's code folder.
    environment: Mapping[str, str] = field(default_factory=dict)

    @property
    def image(self) -> bool:
        return self.dockerfile is not None

    @property
    def handler_modules(self) -> list[str]:
        return sorted({h.rpartition(".")[0] for h in self.handlers.values()})

    def __str__(self) -> str:
        return self.name


def _export_tasks() -> dict[str, str]:
    from trainset.services.pipeline import FUNCTIONS

    return {f"ExportJob{task}": f"handler.{task.lower()}_handler" for task in FUNCTIONS}


def _import_tasks() -> dict[str, str]:
    """The import job's four tasks."""
    from trainset.services.imports import FUNCTIONS

    return {f"ImportJob{task}": f"handler.{task.lower()}_handler" for task in FUNCTIONS}


FUNCTIONS = (
    Function("api", {"APIHandler": "app.app"}, layers=("core", "deps"),
             chalice_app="chalice_app"),
    Function("migrate", {"MigrationsFunction": "handler.lambda_handler"},
             layers=("core", "deps"), code={".": "lambdas/migrate", "sql": "sql"},
             environment={"TRAINSET_SQL_DIR": "{task}/sql"}),
    Function("augment", {"ImagesAugment": "handler.lambda_handler"},
             layers=("core", "deps", "images"), code={".": "lambdas/augment"}),
    Function("import-job", _import_tasks(), layers=("core", "deps", "columnar"),
             code={".": "lambdas/imports"}),
    Function("import-start", {"ImportJobStart": "handler.start_handler"},
             layers=("core", "deps"), code={".": "lambdas/imports"}),
    Function("export-job", _export_tasks(), dockerfile="lambdas/pipeline/Dockerfile"),
    Function("face-clip", {"ImagesFaceClip": "handler.lambda_handler"},
             dockerfile="lambdas/face_clip/Dockerfile"),
)
BY_NAME = {f.name: f for f in FUNCTIONS}


# ---- Dockerfiles ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    base: str
    copies: tuple[tuple[str, str], ...]  # (source in the build context, destination)
    pip_install: tuple[str, ...]  # the arguments of its `pip install`
    environment: Mapping[str, str]
    cmd: tuple[str, ...]

    @property
    def requirements(self) -> Path:
        """The repository file its `pip install -r` reads (copied into the image first)."""
        args = list(self.pip_install)
        index = next(i for i, a in enumerate(args) if a in ("-r", "--requirement"))
        inside = args[index + 1]
        (source,) = [src for src, dest in self.copies if dest == inside]
        return REPO_ROOT / source

    @property
    def task_copies(self) -> list[tuple[str, str]]:
        """(source, path under the task root) of what it copies into ${LAMBDA_TASK_ROOT}."""
        found = []
        for source, destination in self.copies:
            if destination.startswith(TASK_ROOT_VARIABLE):
                inside = destination.removeprefix(TASK_ROOT_VARIABLE).strip("/")
                if destination.endswith("/"):
                    inside = f"{inside}/{Path(source).name}".strip("/")
                found.append((source, inside))
        return found


def read_dockerfile(relative: str) -> Dockerfile:
    path = REPO_ROOT / relative
    text = path.read_text().replace("\\\n", " ")
    base, copies, pip, env, cmd = "", [], (), {}, ()
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            base = rest.strip()
        elif instruction == "COPY":
            *sources, destination = shlex.split(rest)
            copies += [(source, destination) for source in sources]
        elif instruction == "RUN":
            for command in rest.split("&&"):
                words = shlex.split(command)
                if words[:2] == ["pip", "install"]:
                    pip = tuple(words[2:])
        elif instruction == "ENV":
            for word in shlex.split(rest):
                name, _, value = word.partition("=")
                env[name] = value
        elif instruction == "CMD":
            cmd = tuple(json.loads(rest))
    return Dockerfile(path, base, tuple(copies), pip, env, cmd)


# ---- the folders a function runs from -------------------------------------------------------

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


@dataclass(frozen=True)
class Deployed:
    """A function as deployed: its sys.path folders, in Lambda's order, and its Python."""

    function: Function
    task: Path  # /var/task or ${LAMBDA_TASK_ROOT}
    layers: Mapping[str, Path]  # layer name -> its python/ folder (zip functions)
    packages: Path | None  # an image's installed packages; for a zip function the runtime SDK
    python_version: str

    @property
    def path(self) -> list[Path]:
        return [self.task, *self.layers.values(), *([self.packages] if self.packages else [])]

    @property
    def package_folders(self) -> list[Path]:
        """The folders holding third-party distributions (not the function's own code)."""
        return [p for name, p in self.layers.items() if name != "core"] + (
            [self.packages] if self.packages else [])

    def environment(self) -> dict[str, str]:
        env = {k: v.replace("{task}", str(self.task))
               for k, v in self.function.environment.items()}
        if self.function.image:
            dockerfile = read_dockerfile(self.function.dockerfile)
            env = {**dockerfile.environment, **env}
        return env


def zip_runtime_python() -> str:
    from infra_cdk.bundling import lambda_runtime_name, python_version

    return python_version(lambda_runtime_name())


def image_python(dockerfile: Dockerfile) -> str:
    """The base image's Python, e.g. public.ecr.aws/lambda/python:3.12 -> "3.12"."""
    return dockerfile.base.rpartition(":")[2]


def build_task(function: Function, folder: Path) -> Path:
    """The function's code folder, staged like its asset (in `folder`, fresh)."""
    task = folder / f"{function.name}-task"
    shutil.rmtree(task, ignore_errors=True)
    task.mkdir(parents=True)
    if function.chalice_app:
        package = folder / f"{function.name}-chalice"
        _chalice_package(REPO_ROOT / function.chalice_app, package)
        with zipfile.ZipFile(package / "deployment.zip") as archive:
            archive.extractall(task)
    elif function.image:
        for source, inside in read_dockerfile(function.dockerfile).task_copies:
            _copy(REPO_ROOT / source, task / inside)
    else:
        for inside, source in function.code.items():
            _copy(REPO_ROOT / source, task / inside)
    return task


def _copy(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=_IGNORE, dirs_exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def _chalice_package(project: Path, output: Path) -> None:
    """Chalice's own packaging of the app (what `chalice.cdk.Chalice` deploys): its
    deployment.zip holds app.py, chalicelib/ and Chalice's runtime module."""
    import subprocess
    import sys

    shutil.rmtree(output, ignore_errors=True)
    script = ("import json, sys\nfrom chalice import api\n"
              "api.package_app(**json.load(sys.stdin))")
    request = {"project_dir": str(project), "output_dir": str(output), "stage": "dev",
               "chalice_config": {"automatic_layer": False}}
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "HOME": str(output)}
    subprocess.run([sys.executable, "-c", script], input=json.dumps(request), text=True,
                   check=True, capture_output=True, env=env)


def core_layer(folder: Path) -> Path:
    """layers/core/ staged with the construct's excludes; its python/ folder."""
    from infra_cdk.constructs.layers import CORE_LAYER_EXCLUDES

    source = REPO_ROOT / "layers" / "core"
    staged = folder / "core-layer"
    shutil.rmtree(staged, ignore_errors=True)
    names = {e.removeprefix("**/") for e in CORE_LAYER_EXCLUDES}
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns(*names))
    return staged / "python"


def deploy(function: Function, folder: Path) -> Deployed:
    """Everything `function` runs from, built fresh (its code) or from the cache (packages)."""
    task = build_task(function, folder)
    if function.image:
        dockerfile = read_dockerfile(function.dockerfile)
        packages = targets.container_packages(f"image-{function.name}", dockerfile.requirements)
        return Deployed(function, task, {}, packages, image_python(dockerfile))
    python = zip_runtime_python()
    layers = {}
    for name in function.layers:
        layer = LAYERS[name]
        layers[name] = (core_layer(folder) if layer.requirements is None
                        else targets.pip_layer(f"layer-{name}", layer.requirements, python))
    return Deployed(function, task, layers, targets.lambda_runtime_sdk(python), python)
