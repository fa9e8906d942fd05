"""The image pipeline on one machine: an S3 stand-in and the same Lambda handlers, in-process.

``start_local_images()`` starts moto's S3 server on 127.0.0.1 (a free port unless one is
given), creates the images bucket, and starts one trigger thread per stage. Each trigger lists
``uploads/`` every ``poll_seconds`` and, for every new or changed object, calls the stage's
real handler (``lambdas/augment/handler.py``, ``lambdas/face_clip/handler.py``) with the S3 event
AWS would send, key URL-encoded and all. So an upload, through a presigned URL from
``POST /api/images/uploads`` or ``python -m trainset images upload FILES``, gets its variants and
face crops with no manual step, as in AWS.

Like Lambda, a trigger retries an invocation that raised twice more, then gives up on that
object (a bad file does not raise: it is quarantined). Face clipping is skipped, with one
warning, when TensorFlow or mtcnn cannot be imported.

With ``export_environment`` (the default) the process's environment points boto3 and the API
at the stand-in (``AWS_ENDPOINT_URL_S3``, ``TRAINSET_IMAGES_BUCKET``, throwaway credentials),
and ``$TRAINSET_HOME/images-s3.json`` tells other processes (the ``images upload`` command)
where it is; ``stop()`` undoes both. The stand-in keeps objects in memory only.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from trainset.images.keys import UPLOADS_PREFIX

logger = logging.getLogger("trainset.local.images")

DEFAULT_BUCKET = "trainset-images"
REGION = "us-east-1"
ENDPOINT_FILE = "images-s3.json"
MAX_ATTEMPTS = 3  # Lambda's asynchronous invocation: the first try and two retries
STAGES = {"augment": "augment", "faces": "face_clip"}  # stage -> lambdas/<folder>

# Throwaway credentials: the stand-in does not check signatures, and real ones never leave.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "trainset-local", "AWS_SECRET_ACCESS_KEY": "local"}


def repo_root() -> Path:
    """The checkout (layers/core/python/trainset/local/images.py -> repo)."""
    return Path(__file__).resolve().parents[5]


def load_handler(folder: str) -> Any:
    """Import ``lambdas/<folder>/handler.py`` as its own module (they are all "handler")."""
    path = repo_root() / "lambdas" / folder / "handler.py"
    spec = importlib.util.spec_from_file_location(f"trainset_lambda_{folder}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LocalContext:
    """The parts of a Lambda context powertools reads."""

    memory_limit_in_mb = 1024

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}"
        self.aws_request_id = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def s3_event(bucket: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The ObjectCreated:Put notification S3 sends for ``objects`` (Key, Size, ETag), with
    keys URL-encoded the way S3 encodes them."""
    return {"Records": [
        {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "local-uploads",
                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(obj["Key"], safe="/"), "size": obj["Size"],
                           "eTag": obj.get("ETag", "").strip('"'), "sequencer": "0"},
            },
        }
        for obj in objects
    ]}


@dataclass
class _Trigger:
    """One stage: polls uploads/ and invokes its handler for each new or changed object."""

    name: str
    invoke: Callable[[dict[str, Any]], Any]
    list_uploads: Callable[[], list[dict[str, Any]]]
    bucket: str
    poll_seconds: float
    done: dict[str, str] = field(default_factory=dict)  # key -> ETag handled (or given up)
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    busy: bool = False

    def pending(self) -> list[dict[str, Any]]:
        return [o for o in self.list_uploads() if self.done.get(o["Key"]) != o.get("ETag")]

    def run_once(self) -> int:
        batch = self.pending()
        if not batch:
            return 0
        self.busy = True
        try:
            try:
                self.invoke(s3_event(self.bucket, batch))
                for obj in batch:
                    self.done[obj["Key"]] = obj.get("ETag")
            except Exception:
                logger.exception("local %s invocation failed", self.name)
                for obj in batch:
                    tag = (obj["Key"], obj.get("ETag"))
                    self.attempts[tag] = self.attempts.get(tag, 0) + 1
                    if self.attempts[tag] >= MAX_ATTEMPTS:
                        logger.error("local %s gave up on %s after %d attempts", self.name,
                                     obj["Key"], MAX_ATTEMPTS)
                        self.done[obj["Key"]] = obj.get("ETag")
        finally:
            self.busy = False
        return len(batch)

    def loop(self, stopping: threading.Event) -> None:
        while not stopping.is_set():
            try:
                self.run_once()
            except Exception:  # the stand-in went away while stopping, or a listing failed
                if not stopping.is_set():
                    logger.exception("local %s trigger: listing uploads failed", self.name)
            stopping.wait(self.poll_seconds)


@dataclass
class LocalImages:
    """The running stand-in: where it is, and how to stop it."""

    endpoint_url: str
    bucket: str
    server: Any
    triggers: list[_Trigger]
    threads: list[threading.Thread]
    stopping: threading.Event
    saved_environment: dict[str, str | None] = field(default_factory=dict)
    endpoint_file: Path | None = None

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def store(self) -> Any:
        from trainset.blobs.s3 import S3Blobs

        return S3Blobs(self.client(), self.bucket)

    @property
    def stages(self) -> list[str]:
        return [t.name for t in self.triggers]

    def describe(self) -> str:
        return (f"images: S3 stand-in at {self.endpoint_url}, bucket {self.bucket}; uploads under "
                f"{UPLOADS_PREFIX} are processed by: {', '.join(self.stages) or 'nothing'}")

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until every trigger has handled every object now under uploads/ (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(not t.busy and not t.pending() for t in self.triggers):
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        from trainset.blobs.s3 import forget_clients

        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)
        self.server.stop()
        forget_clients()  # the cached clients point at this stand-in
        for name, value in self.saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.saved_environment.clear()
        if self.endpoint_file is not None:
            self.endpoint_file.unlink(missing_ok=True)


def _faces_available() -> bool:
    """Whether mtcnn and TensorFlow are installed (found, not imported: that takes seconds)."""
    missing = [name for name in ("mtcnn", "tensorflow") if importlib.util.find_spec(name) is None]
    if missing:
        logger.warning("face clipping is off locally: %s not installed", " and ".join(missing))
        return False
    return True


def start_local_images(
    *,
    port: int = 0,
    bucket: str = DEFAULT_BUCKET,
    faces: bool = True,
    poll_seconds: float = 0.5,
    export_environment: bool = True,
    home: Path | None = None,
    detector: Any = None,
) -> LocalImages:
    """Start the S3 stand-in, create ``bucket``, and start the triggers (see the module doc).

    ``detector`` replaces face clipping's MTCNN (tests share one loaded model)."""
    from moto.server import ThreadedMotoServer

    from trainset.blobs.s3 import S3Blobs, forget_clients, use_blobs

    forget_clients()  # cached clients may point at an earlier stand-in
    # The stand-in's request log (werkzeug's) would print every poll of the triggers.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    stopping = threading.Event()
    images = LocalImages(endpoint, bucket, server, [], [], stopping)
    try:
        # moto keeps its state per process, not per server: start from an empty S3.
        import urllib.request

        urllib.request.urlopen(
            urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        if export_environment:
            values = {**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL_S3": endpoint,
                      "TRAINSET_IMAGES_BUCKET": bucket, "AWS_DEFAULT_REGION": REGION,
                      "AWS_SESSION_TOKEN": None,
                      # In-process handlers: no metrics on stdout, quieter logs.
                      "POWERTOOLS_METRICS_DISABLED": "true",
                      "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING")}
            for name, value in values.items():
                images.saved_environment[name] = os.environ.get(name)
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        client = images.client()
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})

        def list_uploads() -> list[dict[str, Any]]:
            found = []
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=UPLOADS_PREFIX)
            for page in pages:
                found += page.get("Contents", [])
            return [o for o in found if not o["Key"].endswith("/")]

        wanted = ["augment"] + (["faces"] if faces and (detector or _faces_available()) else [])
        for stage in wanted:
            module = load_handler(STAGES[stage])
            use_blobs(bucket, S3Blobs(client, bucket))  # the stand-in, whatever the env
            if stage == "faces" and detector is not None:
                module.detector = detector
            context = LocalContext(f"trainset-{STAGES[stage].replace('_', '-')}")
            images.triggers.append(_Trigger(
                stage, lambda event, m=module, c=context: m.lambda_handler(event, c),
                list_uploads, bucket, poll_seconds))
        for trigger in images.triggers:
            thread = threading.Thread(target=trigger.loop, args=(stopping,), daemon=True,
                                      name=f"trainset-images-{trigger.name}")
            thread.start()
            images.threads.append(thread)
        if export_environment:
            from trainset.local.embedded import project_home

            folder = home or project_home()
            folder.mkdir(parents=True, exist_ok=True)
            images.endpoint_file = folder / ENDPOINT_FILE
            images.endpoint_file.write_text(json.dumps({"endpoint_url": endpoint,
                                                        "bucket": bucket}))
    except BaseException:
        images.stop()
        raise
    return images


def running_stand_in(home: Path | None = None) -> dict[str, str] | None:
    """Where a running ``make run`` keeps its images ({endpoint_url, bucket}), if it does."""
    from trainset.local.embedded import project_home

    path = (home or project_home()) / ENDPOINT_FILE
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if isinstance(found, dict) and found.get("endpoint_url") and found.get("bucket"):
        return {"endpoint_url": str(found["endpoint_url"]), "bucket": str(found["bucket"])}
    return None
