"""Real event shapes (as S3 and SNS deliver them) for the handler tests, and a loader.

The JSON files are kept as the services send them; ``s3_event`` and ``sns_event`` fill in the
bucket and keys of a test (keys URL-encoded the way S3 encodes them: a space as ``+``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

HERE = Path(__file__).resolve().parent


def load_event(name: str) -> dict[str, Any]:
    """The event in ``tests/events/<name>.json``."""
    return json.loads((HERE / f"{name}.json").read_text())


def s3_event(bucket: str, objects: list[tuple[str, int]], event_name: str = "ObjectCreated:Put"
             ) -> dict[str, Any]:
    """``s3_object_created.json`` with one record per (key, size) of ``objects``."""
    template = load_event("s3_object_created")["Records"][0]
    records = []
    for key, size in objects:
        record = copy.deepcopy(template)
        record["eventName"] = event_name
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        record["s3"]["object"]["size"] = size
        records.append(record)
    return {"Records": records}


def sns_event(inner: dict[str, Any]) -> dict[str, Any]:
    """``sns_s3_notification.json`` carrying ``inner`` (an S3 event) as its message."""
    event = load_event("sns_s3_notification")
    event["Records"][0]["Sns"]["Message"] = json.dumps(inner)
    return event
