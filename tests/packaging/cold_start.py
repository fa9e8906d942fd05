"""What numpy in the deps layer costs the API: `python -m tests.packaging.cold_start`.

Builds the API as deployed twice, with the deps layer as it is and without numpy, copies each
without byte code (the layers are built with --no-compile and /opt is read-only in Lambda, so
every cold start compiles what it imports) and takes, in fresh clean interpreters that write no
byte code, the median CPU time (wall time on a shared machine says more about its load) of
`--runs`, the two variants interleaved:
- init: importing app.py and its routes, what every cold start of the API pays;
- the first import of the modules behind POST /exports and GET /reports/coders (numpy), what
  the first such request in a container pays on top.
Also each deps layer's unpacked size. Not a test: the numbers are in infra_cdk/README.md
("Layers"), measured on a developer machine; Lambda's CPUs differ, the ratios hold.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.packaging import functions, targets
from tests.packaging.runner import CLEAN_PYTHON, HARNESS, lambda_environment

NUMPY_ROUTES = ["trainset.services.pipeline", "trainset.services.quality"]


def size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def without_byte_code(deployed: functions.Deployed, work: Path) -> functions.Deployed:
    def copy(folder: Path, name: str) -> Path:
        target = work / name
        shutil.copytree(folder, target, symlinks=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return target

    return functions.Deployed(
        deployed.function, copy(deployed.task, "task"),
        {name: copy(folder, f"layer-{name}") for name, folder in deployed.layers.items()},
        copy(deployed.packages, "runtime-sdk"), deployed.python_version)


def seconds(deployed: functions.Deployed, before: list[str], modules: list[str],
            work: Path) -> float:
    results = work / "results.json"
    spec = {"path": [str(p) for p in deployed.path], "results": str(results),
            "steps": [{"do": "import", "modules": before}, {"do": "import", "modules": modules}]}
    subprocess.run([*CLEAN_PYTHON, str(HARNESS)], input=json.dumps(spec), text=True,
                   capture_output=True, check=True, cwd=deployed.task,
                   env=lambda_environment(deployed, work, {"TRAINSET_AUTH": "cognito"}))
    step = json.loads(results.read_text())["steps"][-1]
    if not all(r["ok"] for r in step["imports"].values()):
        return float("nan")
    return sum(r["cpu_seconds"] for r in step["imports"].values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="trainset-cold-start-"))
    api = functions.deploy(functions.BY_NAME["api"], work)
    requirements = functions.LAYERS["deps"].requirements
    without = work / "deps-without-numpy.txt"
    without.write_text("".join(line for line in requirements.read_text().splitlines(True)
                               if not line.startswith("numpy==")))
    lean = functions.Deployed(
        api.function, api.task,
        {**api.layers, "deps": targets.pip_layer("layer-deps-without-numpy", without,
                                                 api.python_version)},
        api.packages, api.python_version)
    try:
        variants = {label: without_byte_code(deployed, work / label.replace(" ", "-"))
                    for label, deployed in {"with numpy": api, "without numpy": lean}.items()}
        init: dict[str, list[float]] = {label: [] for label in variants}
        first: dict[str, list[float]] = {label: [] for label in variants}
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            for label, clean in variants.items():
                init[label].append(seconds(clean, [], ["app"], work))
                first[label].append(seconds(clean, ["app"], NUMPY_ROUTES, work))
        for label, clean in variants.items():
            print(f"deps layer {label}: {size_mb(clean.layers['deps']):.0f} MB unpacked; "
                  f"init (import app) {statistics.median(init[label]) * 1000:.0f} ms; "
                  f"then importing {' + '.join(NUMPY_ROUTES)} "
                  f"{statistics.median(first[label]) * 1000:.0f} ms (nan: fails)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
