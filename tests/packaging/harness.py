"""Runs one Lambda function's code in a clean interpreter, as Lambda would: started by
tests/packaging with `python -I -S -B` (no site-packages, no PYTHON* variables, not even this
file's folder on sys.path, no byte code written), it puts the function's folders (its code,
its layers or its image's packages, the runtime's SDK) before the standard library, as Lambda
orders them, and runs the steps of a JSON spec read from stdin. The results go to the file the
spec names (handlers may print to stdout).

Steps:
- `{"do": "import", "modules": [...], "attributes": [...]}`: import each, recording errors
  and timings; then whether each "module.attribute" exists and is callable.
- `{"do": "invoke", "handler": "module.function", "event": {...}}`: call it with a context.
- `{"do": "api", "app": "app.app", "requests": [...]}`: call the Chalice app's routes through
  `chalice.test.Client`. The client is test tooling, not part of the function: it is taken from
  `tooling` (the test virtualenv), placed after everything else on sys.path, and the function's
  own code may not import anything that only the tooling has (an import hook refuses it, as the
  real function would).

Everything here uses the standard library only.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

_SPEC: dict[str, Any] = {}


def _error(exc: BaseException) -> dict[str, str]:
    return {"type": type(exc).__name__, "message": str(exc),
            "traceback": "".join(traceback.format_exception(exc))[-6000:]}


def _under(path: str | None, roots: list[str]) -> bool:
    if not path:
        return False
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def do_import(step: dict[str, Any]) -> dict[str, Any]:
    results = {}
    for name in step["modules"]:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            importlib.import_module(name)
            results[name] = {"ok": True, "seconds": time.perf_counter() - started,
                             "cpu_seconds": time.process_time() - cpu}
        except BaseException as exc:  # noqa: BLE001 - SystemExit from a module counts too
            results[name] = {"ok": False, "error": _error(exc)}
    attributes = {}
    for dotted in step.get("attributes", ()):
        module_name, _, attribute = dotted.rpartition(".")
        module = sys.modules.get(module_name)
        value = getattr(module, attribute, None) if module is not None else None
        attributes[dotted] = ("missing" if value is None
                              else "callable" if callable(value) else "not callable")
    return {"imports": results, "attributes": attributes}


class Context:
    """The attributes of Lambda's context object that handlers and powertools read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
        self.aws_request_id = "packaging-test-request"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "packaging-test"
        self._deadline = time.monotonic() + 900

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def do_invoke(step: dict[str, Any]) -> dict[str, Any]:
    module_name, _, function_name = step["handler"].rpartition(".")
    started = time.perf_counter()
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        result = handler(step["event"], Context(step.get("function_name", "trainset-test")))
        return {"ok": True, "result": json.loads(json.dumps(result, default=str)),
                "seconds": time.perf_counter() - started}
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": _error(exc), "seconds": time.perf_counter() - started}


class ToolingGuard:
    """`builtins.__import__` that refuses the function's code a module found only in the test
    tooling, so the API's calls cannot pass on a package the function would not have."""

    def __init__(self, function_roots: list[str], tooling_roots: list[str]) -> None:
        self.function_roots = function_roots
        self.tooling_roots = tooling_roots
        self.real_import = builtins.__import__
        self.refused: list[str] = []

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002
        module = self.real_import(name, globals, locals, fromlist, level)
        importer = (globals or {}).get("__file__")
        if not _under(importer, self.function_roots):
            return module
        absolute = name
        if level:
            package = (globals or {}).get("__package__") or ""
            absolute = importlib.util.resolve_name("." * level + name, package)
        touched = [sys.modules.get(absolute)] + [
            sys.modules.get(f"{absolute}.{item}") for item in (fromlist or ()) if item != "*"]
        for candidate in touched:
            where = getattr(candidate, "__file__", None)
            if _under(where, self.tooling_roots):
                message = (f"No module named {candidate.__name__!r}: {importer} imports it, and "
                           "only the test tooling has it, not the function")
                self.refused.append(message)
                raise ModuleNotFoundError(message, name=candidate.__name__)
        return module


def do_api(step: dict[str, Any]) -> dict[str, Any]:
    tooling = step["tooling"]
    function_roots = list(_SPEC["path"])
    # The function's own chalice package is the deployment's trimmed copy (app.py only); the
    # test client's modules come from the full one.
    import chalice

    sys.path.extend(tooling)
    chalice.__path__.extend(os.path.join(root, "chalice") for root in tooling)
    guard = ToolingGuard(function_roots, tooling)
    builtins.__import__ = guard
    try:
        module_name, _, attribute = step["app"].rpartition(".")
        app = getattr(importlib.import_module(module_name), attribute)
        reached = _watch_handlers()
        from chalice.test import Client

        answers = []
        with Client(app) as client:
            for request in step["requests"]:
                reached.clear()
                body = request.get("body")
                started = time.perf_counter()
                response = client.http.request(
                    request["method"], request["path"], headers=request.get("headers") or {},
                    body=b"" if body is None else json.dumps(body).encode())
                text = response.body.decode("utf-8", "replace") if response.body else ""
                answers.append({"operation": request.get("operation"),
                                "method": request["method"], "path": request["path"],
                                "status": response.status_code, "body": text[:4000],
                                "reached_handler": sorted(reached),
                                "seconds": time.perf_counter() - started})
        return {"answers": answers, "refused_imports": guard.refused}
    finally:
        builtins.__import__ = guard.real_import


def _watch_handlers() -> set[str]:
    """The names of the operations whose handler ran (their input passed the schema check),
    recorded by wrapping chalicelib.http.check_inputs, which every route's view calls first."""
    reached: set[str] = set()
    try:
        http = importlib.import_module("chalicelib.http")
    except ImportError:
        return reached
    check = http.check_inputs

    def recording(request, op, path_params):
        inputs = check(request, op, path_params)
        reached.add(op.name)
        return inputs

    http.check_inputs = recording
    return reached


def loaded_modules() -> dict[str, str | None]:
    """Every loaded top-level module and the file it came from."""
    found: dict[str, str | None] = {}
    for name, module in list(sys.modules.items()):
        if "." in name or module is None:
            continue
        found[name] = getattr(module, "__file__", None)
    return found


STEPS = {"import": do_import, "invoke": do_invoke, "api": do_api}


def main() -> None:
    _SPEC.update(json.loads(sys.stdin.read()))
    # Lambda's order: the function's folders before the standard library.
    sys.path[:0] = _SPEC["path"]
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    results: dict[str, Any] = {"sys_path": list(sys.path), "steps": [],
                               "executable": sys.executable, "version": sys.version}
    try:
        for step in _SPEC["steps"]:
            started = time.perf_counter()
            outcome = STEPS[step["do"]](step)
            outcome["do"] = step["do"]
            outcome["seconds"] = time.perf_counter() - started
            outcome["modules"] = loaded_modules()
            results["steps"].append(outcome)
    finally:
        with open(_SPEC["results"], "w", encoding="utf-8") as out:
            json.dump(results, out, default=str)


if __name__ == "__main__":
    main()
