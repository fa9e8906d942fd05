"""Every route of the API called through `chalice.test.Client`, with the function's own
package only: Chalice's deployment package, the core and deps layers and the runtime's SDK,
configured as in AWS (Cognito claims, an RDS database, Step Functions, S3), against the
session's PostgreSQL and moto's server.

Each route gets a request its schemas accept (the smallest one they describe, unless
`REQUESTS` gives a better one), so its handler runs, including the imports inside it: a module
missing from the layers fails the route with a 500. A route whose handler the generated request
cannot reach fails the test until `REQUESTS` says what to send.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.factories import make_campaign, make_coder, make_posts
from tests.packaging.runner import run_in_function
from tests.packaging.targets import TEST_SITE_PACKAGES
from trainset import validation

MANAGER = "boss"

# What to send where the generated request would not do, by operation name: a function of the
# seeded rows giving any of "path", "query", "body", and "status" (the answer expected).
REQUESTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    # Not the manager making the calls: the generated body would change their role.
    "update_coder": lambda seed: {"path": {"coder_id": seed["coder"]}},
    "reissue_token": lambda seed: {"path": {"coder_id": seed["coder"]}},
    "release_leases": lambda seed: {"path": {"coder_id": seed["coder"]}},
    "campaign_estimate": lambda seed: {"path": {"campaign_id": seed["campaign"]}},
    # A preview draws over the posts not yet in a campaign: filters and sampling, on numpy.
    "create_campaign": lambda seed: {"body": {"family": "child", "budget": 2, "dry_run": True}},
    "post_labels": lambda seed: {"path": {"post_id": seed["post"]}},
    # The two routes that failed in AWS (numpy was in no layer).
    "start_export": lambda seed: {"body": {"families": ["child"]}, "status": 202},
    "coder_reports": lambda seed: {"status": 200},
    # Presigned through the runtime's SDK.
    "create_upload": lambda seed: {"status": 201},
}


def example(schema: dict[str, Any], index: int = 0) -> Any:
    """The smallest value `schema` accepts (required fields only, shortest strings, lowest
    numbers, first options)."""
    if "enum" in schema:
        return schema["enum"][min(index, len(schema["enum"]) - 1)]
    if "oneOf" in schema:
        return example(schema["oneOf"][0])
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        value = {name: example(properties[name]) for name in schema.get("required", ())}
        for name in properties:
            if len(value) >= schema.get("minProperties", 0):
                break
            value.setdefault(name, example(properties[name]))
        return value
    if kind == "array":
        return [example(schema.get("items", {}), i) for i in range(schema.get("minItems", 0))]
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid.UUID(int=index + 1))
        if schema.get("format") == "date":
            return date.today().isoformat()
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    return None


def cognito_token(username: str, groups: str) -> str:
    """A token whose claims chalice's local gateway hands the route as API Gateway's Cognito
    authorizer would (chalice does not check the signature; API Gateway does, in AWS)."""
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return ".".join([part({"alg": "none"}),
                     part({"cognito:username": username, "cognito:groups": groups,
                           "token_use": "id"}), "signature"])


def routes() -> list[tuple[str, str, Any]]:
    """(method, path, operation) of every route the app registers."""
    from app import app

    found = []
    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            found.append((method, path, getattr(entry.view_function, "operation", None)))
    return found


def build_request(method: str, path: str, op: Any, seed: dict[str, Any]) -> dict[str, Any]:
    given = REQUESTS.get(op.name, lambda seed: {})(seed)
    path_params = given.get("path", example(op.path_params))
    query = given.get("query", example(op.query))
    body = given.get("body", example(op.body) if op.body is not None else None)
    problems = (validation.validate(op.path_params, path_params, "path")
                + validation.validate(op.query, query, "query"))
    if op.body is not None and body is not None:
        problems += validation.validate(op.body, body, "body")
    assert not problems, (f"{op.name}: the generated request does not fit its schemas "
                          f"({[p.as_dict() for p in problems]}); give one in REQUESTS")
    url = path.format(**{k: str(v) for k, v in path_params.items()})
    if query:
        url += "?" + urlencode({k: str(v).lower() if isinstance(v, bool) else v
                                for k, v in query.items()})
    headers = {"Authorization": cognito_token(MANAGER, "managers")}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return {"operation": op.name, "method": method, "path": url, "headers": headers,
            "body": body, "expect": given.get("status")}


@pytest.fixture()
def seeded(db) -> dict[str, Any]:
    make_coder(db, MANAGER, role="manager")
    coder = make_coder(db, "ana", status="trainee")
    posts = make_posts(db, 4)
    make_posts(db, 6, prefix="free")
    return {"coder": coder.id, "campaign": make_campaign(db, posts), "post": posts[0]}


def test_every_route_runs_from_the_apis_own_package(deployments, tmp_path, aws, seeded,
                                                    database_url):
    deployed = deployments("api")
    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="trainset-export", roleArn="arn:aws:iam::000000000000:role/export",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    buckets = {f"TRAINSET_{kind}_BUCKET": f"trainset-{kind.lower()}-packaging"
               for kind in ("IMAGES", "EXPORTS", "IMPORTS")}
    for bucket in buckets.values():
        aws.client("s3").create_bucket(Bucket=bucket)
    # The API's environment in AWS (infra_cdk: the Api construct and the stack).
    env = {**aws.environment, **buckets, "TRAINSET_AUTH": "cognito",
           "TRAINSET_DATABASE_URL": database_url,
           "TRAINSET_USER_POOL_ARN": "arn:aws:cognito-idp:us-east-1:000000000000:userpool/x",
           "TRAINSET_ALLOWED_ORIGIN": "*", "TRAINSET_EXPORT_STATE_MACHINE_ARN": machine}

    found = routes()
    unknown = [(m, p) for m, p, op in found if op is None]
    assert not unknown, f"routes not declared with chalicelib.http.endpoint: {unknown}"
    requests = [build_request(method, path, op, seeded) for method, path, op in found]
    run = run_in_function(deployed, [{"do": "api", "app": "app.app",
                                      "tooling": [str(TEST_SITE_PACKAGES)],
                                      "requests": requests}], tmp_path, env=env)
    assert run.steps, run.explain()
    (step,) = run.steps
    # Imports the tooling alone could have served were refused, as Lambda would (botocore's
    # optional `certifi`, for one): a route that needed one fails below.
    refused = "\n".join(step["refused_imports"])

    answers = {a["operation"]: a for a in step["answers"]}
    assert set(answers) == {r["operation"] for r in requests}
    broken = {name: (a["status"], a["body"][:300]) for name, a in answers.items()
              if a["status"] >= 500}
    assert not broken, f"{broken}\nrefused imports: {refused}\n{run.explain()}"
    unreached = {name: (a["status"], a["body"][:300]) for name, a in answers.items()
                 if name not in a["reached_handler"]}
    assert not unreached, ("the request of these routes never reached their handler; give "
                           f"one in REQUESTS: {unreached}")
    unexpected = {r["operation"]: (answers[r["operation"]]["status"],
                                   answers[r["operation"]]["body"][:300])
                  for r in requests
                  if r["expect"] and answers[r["operation"]]["status"] != r["expect"]}
    assert not unexpected, f"{unexpected}\n{run.explain()}"
    # The export really started, through the runtime's SDK.
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [e["name"] for e in executions] == [
        json.loads(answers["start_export"]["body"])["job_id"]]
