"""schemathesis over /openapi.json against the real HTTP server and database, as a coder and as
a manager: no 5xx, every answer as documented, nothing accepted that the document forbids."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import auth
from tests.api.live import serve
from tests.factories import make_campaign, make_coder, make_gold, make_posts

MAX_EXAMPLES = 6  # per operation, mode and role: the whole run stays around a minute
# Every check but positive_data_acceptance: a schema-valid request may still be refused with a
# documented 400 for the rules JSON Schema cannot say (a question asked only after a given
# answer, exclusive options, from after to), which the document describes.


@pytest.fixture()
def live(db, db_pool, database_url, tmp_path, monkeypatch) -> Any:
    """The server, with posts, a campaign, practice gold, two coders to act as and the images
    and imports buckets (moto) for upload URLs. Work the routes start outside a request
    (a local export job) uses the test's database and home, not an embedded server in the
    working directory."""
    import boto3
    from moto import mock_aws

    from trainset.blobs.s3 import forget_clients

    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    monkeypatch.setenv("TRAINSET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRAINSET_IMAGES_BUCKET", "trainset-fuzz-images")
    monkeypatch.setenv("TRAINSET_IMPORTS_BUCKET", "trainset-fuzz-imports")
    stack = contextlib.ExitStack()
    stack.enter_context(mock_aws())
    for bucket in ("trainset-fuzz-images", "trainset-fuzz-imports"):
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    forget_clients()
    stack.callback(forget_clients)
    coder = make_coder(db, "ana")
    manager = make_coder(db, "boss", role="manager")
    ids = make_posts(db, 6)
    make_campaign(db, ids[:5])
    make_gold(db, ids[5], "practice")
    with stack, serve(db_pool, tmp_path) as base:
        yield {"base": base, "coder": auth(coder), "manager": auth(manager)}


@pytest.fixture()
def api_schema(live) -> Any:
    schema = schemathesis.openapi.from_url(live["base"] + "/openapi.json")
    schema.config.update(base_url=live["base"])
    # NUL is refused in every string (documented in the description, not in each schema).
    schema.config.generation.update(modes=list(GenerationMode), max_examples=MAX_EXAMPLES,
                                    allow_x00=False)
    return schema


def fuzz(schema: Any, headers: dict[str, str]) -> list[str]:
    """Every operation, positive and negative examples, each answer checked by all of
    schemathesis' checks; the failures, as text (empty when all pass)."""
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate])
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case: Any) -> None:
                case.call_and_validate(headers=headers,
                                       excluded_checks=[positive_data_acceptance])

            try:
                run()
            except Unsatisfiable:
                continue  # nothing to send wrong: the operation takes no input at all
            except Exception as exc:  # one operation's failure must not hide the others'
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    return failures


@pytest.mark.parametrize("role", ["coder", "manager"])
def test_the_api_keeps_its_document(live, api_schema, role):
    failures = fuzz(api_schema, {"Authorization": live[role]["Authorization"]})
    assert not failures, "\n\n".join(failures)
