"""The export job on one machine: the same state machine definition CDK deploys, executed by
moto's Step Functions interpreter, with every task dispatched in-process to the real handlers
in ``lambdas/pipeline/handler.py``, writing to the local S3 stand-in.

moto runs Lambda functions in Docker; here each function's invocation is routed instead to
the handler of the same name in this process (``LambdaFunction._invoke_lambda`` is replaced
for the functions this runner creates, and those other runners register with
``register_handler``: the import job's, ``trainset.local.imports``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import threading
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

from trainset.local.images import LocalContext, load_handler
from trainset.services.pipeline import FUNCTIONS, definition

logger = logging.getLogger("trainset.local.pipeline")
REGION = "us-east-1"
EXPORTS_BUCKET = "trainset-exports"
STATE_MACHINE = "trainset-export-job"
HANDLER_OF = {task: f"{task.lower()}_handler" for task in FUNCTIONS}
FUNCTION_PREFIX = "trainset-local-"
_lock = threading.Lock()
_handlers: Any = None
_server: Any = None
# Other local state machines' functions (the import job's), by function name.
_registered: dict[str, Any] = {}


def register_handler(function_name: str, handler: Any) -> None:
    """Run ``handler(event, context)`` in-process when the stand-in invokes ``function_name``
    (another state machine's task; ``trainset.local.imports`` registers the import job's)."""
    _registered[function_name] = handler


def _handler_module() -> Any:
    global _handlers
    if _handlers is None:
        _handlers = load_handler("pipeline")
    return _handlers


def _install_dispatch() -> None:
    """Route invocations of this runner's functions to the in-process handlers."""
    from moto.awslambda.models import LambdaFunction

    if getattr(LambdaFunction, "_trainset_dispatch", False):
        return
    original = LambdaFunction._invoke_lambda

    def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        handler = _registered.get(self.function_name)
        if handler is None:
            if not self.function_name.startswith(FUNCTION_PREFIX):
                return original(self, event)
            task = self.function_name[len(FUNCTION_PREFIX):]
            handler = getattr(_handler_module(), HANDLER_OF[task])
        payload = event if isinstance(event, dict) else json.loads(event or "{}")
        try:
            return json.dumps(handler(payload, LocalContext(self.function_name)), default=str), \
                False, ""
        except Exception as exc:
            error = {"errorType": type(exc).__name__, "errorMessage": str(exc),
                     "stackTrace": traceback.format_exc().splitlines()[-5:]}
            return json.dumps(error), True, ""

    LambdaFunction._invoke_lambda = invoke
    LambdaFunction._trainset_dispatch = True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_stand_in() -> str:
    """The local AWS stand-in's URL: the one ``make run`` started (AWS_ENDPOINT_URL_S3), or
    a moto server started here. Points boto3 in this process at it."""
    global _server
    with _lock:
        url = os.environ.get("AWS_ENDPOINT_URL_S3")
        if not url:
            from moto.server import ThreadedMotoServer

            from trainset.blobs.s3 import forget_clients

            forget_clients()  # cached clients point at an earlier stand-in
            port = _free_port()
            _server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            _server.start()
            url = f"http://127.0.0.1:{port}"
            os.environ["AWS_ENDPOINT_URL_S3"] = url
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "trainset-local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        os.environ["MOTO_PORT"] = url.rsplit(":", 1)[1]  # where moto's interpreter calls Lambda
        os.environ.setdefault("TRAINSET_EXPORTS_BUCKET", EXPORTS_BUCKET)
        from moto.core.config import default_user_config

        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        _install_dispatch()
        return url


def stop_stand_in() -> None:
    """Stop a moto server this module started (tests and one-off CLI runs)."""
    global _server
    with _lock:
        if _server is not None:
            from trainset.blobs.s3 import forget_clients

            _server.stop()
            _server = None
            os.environ.pop("AWS_ENDPOINT_URL_S3", None)
            os.environ.pop("MOTO_PORT", None)
            forget_clients()


def _client(service: str, url: str) -> Any:
    import boto3

    return boto3.client(service, endpoint_url=url, region_name=REGION,
                        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("handler.py", "# runs in-process; see trainset.local.pipeline\n")
    return out.getvalue()


def deploy(url: str) -> str:
    """Create (once) the bucket, the functions and the state machine in the stand-in;
    returns the state machine's ARN."""
    s3, iam = _client("s3", url), _client("iam", url)
    lam, sfn = _client("lambda", url), _client("stepfunctions", url)
    bucket = os.environ["TRAINSET_EXPORTS_BUCKET"]
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    try:
        role = iam.get_role(RoleName="trainset-local")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="trainset-local", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    existing = {f["FunctionName"]: f["FunctionArn"] for f in lam.list_functions()["Functions"]}
    arns = {}
    for task in FUNCTIONS:
        name = FUNCTION_PREFIX + task
        arns[task] = existing.get(name) or lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handler",
            Code={"ZipFile": _zip()}, Timeout=900)["FunctionArn"]
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    if STATE_MACHINE in machines:
        sfn.update_state_machine(stateMachineArn=machines[STATE_MACHINE],
                                 definition=definition(arns))
        return machines[STATE_MACHINE]
    return sfn.create_state_machine(name=STATE_MACHINE, definition=definition(arns),
                                    roleArn=role)["stateMachineArn"]


def start(job_id: str, families: list[str], copy_to: Path | None = None) -> str:
    """Start an execution named after the job; returns its ARN (it runs in the background).
    When it succeeds, its files are copied from the in-memory stand-in to
    ``copy_to/<job_id>/`` (default ``$TRAINSET_HOME/exports``), where they outlive the run."""
    url = ensure_stand_in()
    machine = deploy(url)
    sfn = _client("stepfunctions", url)
    arn = sfn.start_execution(stateMachineArn=machine, name=job_id, input=json.dumps(
        {"job_id": job_id, "families": families}))["executionArn"]
    if copy_to is None:
        from trainset.local.embedded import project_home

        copy_to = project_home() / "exports"

    def keep_files() -> None:
        try:
            if wait(arn)["status"] == "SUCCEEDED":
                download(job_id, copy_to)
        except Exception as exc:  # the stand-in stopped first: nothing to keep
            logger.warning("could not copy the files of %s: %s", job_id, exc)

    threading.Thread(target=keep_files, name=f"keep-{job_id}", daemon=True).start()
    return arn


def download(job_id: str, folder: Path) -> Path:
    """Copy a job's files (``exports/<job_id>/...``) from the stand-in to ``folder/<job_id>``.
    They are copied into a hidden folder first and moved into place at once, so the job's
    folder, once there, holds all its files (the download links list it)."""
    import shutil
    import tempfile

    s3 = _client("s3", os.environ["AWS_ENDPOINT_URL_S3"])
    bucket = os.environ["TRAINSET_EXPORTS_BUCKET"]
    prefix = f"exports/{job_id}/"
    target = folder / job_id
    folder.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=folder, prefix=f".{job_id}-"))
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                path = partial / item["Key"][len(prefix):]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    return target


def wait(execution_arn: str, timeout: float = 1800, poll: float = 0.5) -> dict[str, Any]:
    """Poll until the execution ends; its status and output (or error)."""
    sfn = _client("stepfunctions", os.environ["AWS_ENDPOINT_URL_S3"])
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            output = described.get("output")
            return {"status": described["status"],
                    "output": json.loads(output) if output else None,
                    "error": described.get("error"), "cause": described.get("cause")}
        if time.monotonic() > deadline:
            return {"status": "TIMED_OUT", "output": None, "error": "timeout", "cause": None}
        time.sleep(poll)
