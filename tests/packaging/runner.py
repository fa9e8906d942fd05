"""Running a function's code in a clean interpreter: its folders and the standard library on
sys.path, nothing else (tests/packaging/harness.py does the work inside)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.packaging.functions import Deployed

HARNESS = Path(__file__).resolve().parent / "harness.py"
# No site-packages, no PYTHON* variables, no script folder on sys.path, no byte code written.
CLEAN_PYTHON = (sys.executable, "-I", "-S", "-B")
REGION = "us-east-1"
# An unsampled X-Ray trace header, as Lambda sets it: the X-Ray SDK runs but sends nothing.
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


@dataclass
class Run:
    """What one clean-interpreter run gave: the harness's results and the process output."""

    results: dict[str, Any]
    stdout: str
    stderr: str
    returncode: int

    @property
    def steps(self) -> list[dict[str, Any]]:
        return self.results.get("steps", [])

    def explain(self) -> str:
        return (f"exit {self.returncode}\n--- stderr (end) ---\n{self.stderr[-6000:]}"
                f"\n--- stdout (end) ---\n{self.stdout[-2000:]}")


def lambda_environment(deployed: Deployed, home: Path, extra: Mapping[str, str] | None = None
                       ) -> dict[str, str]:
    """A function's environment, from nothing: Lambda's own variables, the function's, throwaway
    AWS credentials, and `extra`. No PYTHON* variable and nothing of the test process leaks in."""
    function = deployed.function
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "LAMBDA_TASK_ROOT": str(deployed.task),
        "AWS_LAMBDA_FUNCTION_NAME": f"trainset-{function.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "packaging-test",
        "AWS_SECRET_ACCESS_KEY": "packaging-test",
        "_X_AMZN_TRACE_ID": TRACE_ID,
        "POWERTOOLS_SERVICE_NAME": f"trainset-{function.name}",
        "POWERTOOLS_METRICS_NAMESPACE": "trainset-test",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **deployed.environment(),
    }
    # Keras may only write under /tmp in Lambda; here, under the test's folder.
    if env.get("KERAS_HOME", "").startswith("/tmp"):
        env["KERAS_HOME"] = str(home / "keras")
    # Set on some machines so that OpenBLAS (numpy's) picks a kernel that works there.
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


def run_in_function(deployed: Deployed, steps: list[dict[str, Any]], tmp_path: Path,
                    env: Mapping[str, str] | None = None, timeout: float = 300) -> Run:
    """Run harness steps in a clean interpreter whose sys.path is the function's folders and
    the standard library only (`python -I -S`), writing no byte code (-B: Lambda's /var/task
    and /opt are read-only)."""
    results_file = tmp_path / f"results-{time.monotonic_ns()}.json"
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    spec = {"path": [str(p) for p in deployed.path], "steps": steps,
            "results": str(results_file)}
    completed = subprocess.run(
        [*CLEAN_PYTHON, str(HARNESS)], input=json.dumps(spec), text=True,
        capture_output=True, env=lambda_environment(deployed, home, env), cwd=deployed.task,
        timeout=timeout, check=False)
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    return Run(results, completed.stdout, completed.stderr, completed.returncode)
