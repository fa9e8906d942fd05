"""The import job on one machine: uploads to the S3 stand-in start the same state machine CDK
deploys, run by moto's Step Functions interpreter with every task in-process.

``start_local_imports()`` creates the imports bucket in the local AWS stand-in (the one
``make run`` starts for images, or one of its own), deploys the import job there
(``trainset/data/import_job.asl.json``, its four tasks routed to ``lambdas/imports/handler.py``
through ``trainset.local.pipeline.register_handler``) and starts a trigger thread. The trigger
lists ``corpus/`` and ``gold/`` every ``poll_seconds`` and hands each new object to the real
``start_handler`` with the S3 event AWS would send, so an upload through a presigned URL from
``POST /api/uploads`` starts the job with no manual step, as in AWS. Only the launcher differs:
here it starts the execution on the stand-in, and when the run succeeds the rejects file is
copied to ``$TRAINSET_HOME/imports/<key>.rejects.csv``, where the local server serves it behind
signed links (``trainset.local.downloads``) after the in-memory stand-in is gone.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset.local import pipeline
from trainset.local.images import LocalContext, load_handler, s3_event
from trainset.services import imports

logger = logging.getLogger("trainset.local.imports")

DEFAULT_BUCKET = "trainset-imports"
STATE_MACHINE = "trainset-import-job"
FUNCTION_PREFIX = "trainset-local-import-"
HANDLER_OF = {"Plan": "plan_handler", "Batch": "batch_handler", "Finish": "finish_handler",
              "Failure": "failure_handler"}
PREFIXES = ("corpus/", "gold/")
_module: Any = None
_module_lock = threading.Lock()


def handler_module() -> Any:
    """``lambdas/imports/handler.py``, loaded once per process."""
    global _module
    with _module_lock:
        if _module is None:
            _module = load_handler("imports")
        return _module


def _zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("handler.py", "# runs in-process; see trainset.local.imports\n")
    return out.getvalue()


def deploy(url: str, bucket: str) -> str:
    """Create (once) the imports bucket, the four functions and the state machine in the
    stand-in; returns the state machine's ARN."""
    client = pipeline._client
    s3, iam = client("s3", url), client("iam", url)
    lam, sfn = client("lambda", url), client("stepfunctions", url)
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    # The page PUTs files straight to the stand-in, from another origin.
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["PUT"], "AllowedOrigins": ["*"], "AllowedHeaders": ["Content-Type"],
        "MaxAgeSeconds": 600}]})
    try:
        role = iam.get_role(RoleName="trainset-local")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="trainset-local", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": []}))["Role"]["Arn"]
    module = handler_module()
    existing = {f["FunctionName"]: f["FunctionArn"] for f in lam.list_functions()["Functions"]}
    arns = {}
    for task in imports.FUNCTIONS:
        name = FUNCTION_PREFIX + task
        pipeline.register_handler(name, getattr(module, HANDLER_OF[task]))
        arns[task] = existing.get(name) or lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="handler.handler",
            Code={"ZipFile": _zip()}, Timeout=900)["FunctionArn"]
    machines = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    if STATE_MACHINE in machines:
        sfn.update_state_machine(stateMachineArn=machines[STATE_MACHINE],
                                 definition=imports.definition(arns))
        return machines[STATE_MACHINE]
    return sfn.create_state_machine(name=STATE_MACHINE, definition=imports.definition(arns),
                                    roleArn=role)["stateMachineArn"]


@dataclass
class LocalImports:
    """The running import job: where it is, how to start it, and how to stop it."""

    url: str
    bucket: str
    machine: str
    home: Path
    poll_seconds: float = 0.5
    stopping: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    handled: dict[str, str] = field(default_factory=dict)  # key -> ETag handed to the trigger
    running: set[str] = field(default_factory=set)  # execution ARNs not yet ended
    saved_environment: dict[str, str | None] = field(default_factory=dict)
    busy: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def s3(self) -> Any:
        return pipeline._client("s3", self.url)

    def launch(self, name: str, payload: dict[str, Any]) -> str:
        """Start an execution (the launcher the start handler calls here); a name already
        started answers that execution. Its rejects file is kept when it succeeds."""
        sfn = pipeline._client("stepfunctions", self.url)
        try:
            arn = sfn.start_execution(stateMachineArn=self.machine, name=name,
                                      input=json.dumps(payload))["executionArn"]
        except sfn.exceptions.ExecutionAlreadyExists:
            return self.machine.replace(":stateMachine:", ":execution:") + ":" + name
        with self.lock:
            self.running.add(arn)
        threading.Thread(target=self._keep_rejects, args=(arn, payload["key"]),
                         name=f"keep-{name[:40]}", daemon=True).start()
        return arn

    def rerun(self, key: str) -> str:
        """Run the job again on an upload that is already there (a new execution)."""
        head = self.s3().head_object(Bucket=self.bucket, Key=key)
        name = imports.execution_name(key, head.get("ETag"), again=f"{time.time_ns():x}"[-8:])
        return self.launch(name, {"bucket": self.bucket, "key": key,
                                  "etag": head.get("ETag"), "size": head["ContentLength"]})

    def _keep_rejects(self, arn: str, key: str) -> None:
        try:
            if pipeline.wait(arn)["status"] == "SUCCEEDED":
                self.copy_rejects(key)
        except Exception as exc:  # the stand-in stopped first: nothing to keep
            logger.warning("could not keep the rejects of %s: %s", key, exc)
        finally:
            with self.lock:
                self.running.discard(arn)

    def copy_rejects(self, key: str) -> Path:
        """``<key>.rejects.csv`` from the stand-in to ``$TRAINSET_HOME/imports/``."""
        rejects_key = key + imports.REJECTS_SUFFIX
        data = self.s3().get_object(Bucket=self.bucket, Key=rejects_key)["Body"].read()
        target = self.home / "imports" / rejects_key
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, target)
        return target

    # --- the trigger: new objects under corpus/ and gold/ start the job --------------------

    def pending(self) -> list[dict[str, Any]]:
        found = []
        s3 = self.s3()
        for prefix in PREFIXES:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                    Prefix=prefix):
                found += page.get("Contents", [])
        return [o for o in found if imports.parse_key(o["Key"]) is not None
                and self.handled.get(o["Key"]) != o.get("ETag")]

    def run_once(self) -> int:
        batch = self.pending()
        if not batch:
            return 0
        self.busy = True
        try:
            module = handler_module()
            module.start_handler(s3_event(self.bucket, batch),
                                 LocalContext("trainset-import-start"))
        except Exception:
            logger.exception("local import trigger failed")
        finally:
            for obj in batch:  # like S3's event: delivered, whatever the handler did
                self.handled[obj["Key"]] = obj.get("ETag")
            self.busy = False
        return len(batch)

    def loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.run_once()
            except Exception:
                if not self.stopping.is_set():
                    logger.exception("local import trigger: listing uploads failed")
            self.stopping.wait(self.poll_seconds)

    def wait_idle(self, timeout: float = 120.0) -> bool:
        """Wait until every upload has been handed to the job and every run has ended
        (and its rejects were kept) (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # In this order: the trigger adds a run before it marks its upload handled.
            if not self.busy and not self.pending():
                with self.lock:
                    if not self.running:
                        return True
            time.sleep(0.1)
        return False

    def describe(self) -> str:
        return (f"imports: uploads to {self.bucket} (corpus/, gold/) start the import job "
                f"on the stand-in at {self.url}")

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        for name, value in self.saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_environment.clear()
        module = handler_module()
        module.launch = module.start_execution


def start_local_imports(*, bucket: str = DEFAULT_BUCKET, poll_seconds: float = 0.5,
                        home: Path | None = None, trigger: bool = True) -> LocalImports:
    """Deploy the import job to the local stand-in and start the trigger (see the module
    doc). Points the API's upload URLs at the stand-in (``TRAINSET_IMPORTS_BUCKET``)."""
    import boto3
    from botocore.config import Config

    from trainset.blobs.s3 import S3Blobs, use_blobs
    from trainset.local.embedded import project_home

    url = pipeline.ensure_stand_in()
    machine = deploy(url, bucket)
    local = LocalImports(url, bucket, machine, home or project_home(), poll_seconds)
    for name, value in {"TRAINSET_IMPORTS_BUCKET": bucket}.items():
        local.saved_environment[name] = os.environ.get(name)
        os.environ[name] = value
    use_blobs(bucket, S3Blobs(boto3.client(
        "s3", endpoint_url=url, region_name=pipeline.REGION,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        config=Config(signature_version="s3v4")), bucket))
    handler_module().launch = local.launch
    if trigger:
        local.thread = threading.Thread(target=local.loop, name="trainset-imports-trigger",
                                        daemon=True)
        local.thread.start()
    return local
