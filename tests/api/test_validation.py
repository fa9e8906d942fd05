"""Hostile and malformed input is refused with a 4xx naming the field, and nothing is stored;
the document and the server agree on what is allowed; a database outage is a 503."""

from __future__ import annotations

import json
import socket
import uuid

import pytest
from chalice.app import Request

from chalicelib import runtime
from chalicelib.http import check_inputs
from chalicelib.openapi import document
from tests.api.conftest import auth
from tests.api.live import fetch, serve
from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from trainset.api_schema import BY_NAME
from trainset.errors import InvalidInput
from trainset.store.db import Pool, parse_url
from trainset.web_headers import API_HEADERS


def body_of(response):
    return json.loads(response.body)


def post(client, path, raw, headers):
    raw = raw if isinstance(raw, str | bytes) else json.dumps(raw)
    return client.http.post(path, body=raw, headers=headers)


def assert_400(response, path=None):
    """A 400 in our error shape; if ``path`` is given, one of the problems is at that path."""
    assert response.status_code == 400, response.body
    data = body_of(response)
    assert data["error"] == "invalid_input" and data["message"]
    if path is not None:
        assert path in [d["path"] for d in data["details"]], data
    return data


def stored(db):
    return (db.run("SELECT count(*) FROM labels")[0][0],
            db.run("SELECT count(*) FROM skips")[0][0])


@pytest.fixture()
def leased(client, db):
    """A coder holding the lease on post p00000 (child)."""
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    assert client.http.get("/tasks/next?family=child", headers=auth(ana)).status_code == 200
    return ana


def label(**changes):
    return {"submission_id": str(uuid.uuid4()), "post_id": "p00000", "family": "child",
            "answers": CHILD_YES, **changes}


def label_text(seconds: str) -> str:
    """A label whose seconds_spent is the raw JSON text ``seconds`` (NaN is not JSON)."""
    return json.dumps(label())[:-1] + f', "seconds_spent": {seconds}}}'


@pytest.mark.parametrize("seconds", ["NaN", "Infinity", "-Infinity", "1e39", "1e400", "-1",
                                     "86401", "true", '"12"', "1" * 40])
def test_seconds_spent_must_be_a_finite_number_in_range(client, db, leased, seconds):
    assert_400(post(client, "/labels", label_text(seconds), auth(leased)),
               "body.seconds_spent")
    assert stored(db) == (0, 0)


def test_a_sane_seconds_spent_is_stored(client, db, leased):
    response = post(client, "/labels", label_text("86400"), auth(leased))
    assert response.status_code == 200, response.body
    assert db.run("SELECT seconds_spent FROM labels")[0][0] == 86400


def test_deep_nesting_is_refused_before_parsing(client, db, leased):
    nested: list = []
    for _ in range(40):
        nested = [nested]
    for raw in ("[" * 20000, '{"a":' * 5000, json.dumps(label(answers={"x": nested}))):
        data = assert_400(post(client, "/labels", raw, auth(leased)))
        assert "nest" in data["message"]
    # Brackets inside strings do not count.
    response = post(client, "/labels", label(post_id="[" * 60), auth(leased))
    assert response.status_code == 404, response.body
    assert stored(db) == (0, 0)


@pytest.mark.parametrize("text", ["p\\u0000", "\\ud800", "p\\udc00x", "\\ud83d"])
def test_nul_and_lone_surrogates_are_refused(client, db, leased, text):
    raw = json.dumps(label()).replace('"p00000"', f'"{text}"')
    data = assert_400(post(client, "/labels", raw, auth(leased)), "body.post_id")
    assert "NUL" in json.dumps(data) or "surrogate" in json.dumps(data)
    skip = '{"family": "child", "reason": "bad ' + text + '"}'
    assert_400(post(client, "/tasks/p00000/skip", skip, auth(leased)), "body.reason")
    key = '{"family": "child", "reason": "fine", "' + text + '": 1}'
    assert_400(post(client, "/tasks/p00000/skip", key, auth(leased)))
    assert stored(db) == (0, 0)


def test_a_paired_surrogate_escape_is_a_character(client, db, leased):
    skip = '{"family": "child", "reason": "\\ud83d\\ude00 unclear"}'
    response = post(client, "/tasks/p00000/skip", skip, auth(leased))
    assert response.status_code == 200, response.body
    assert db.run("SELECT reason FROM skips")[0][0] == "\U0001F600 unclear"


def test_bad_strings_in_the_query_and_path(client, db, leased):
    assert_400(client.http.get("/tasks/next?family=child%00", headers=auth(leased)),
               "query.family")
    assert_400(client.http.get("/me/history?before=%ED%A0%80", headers=auth(leased)))
    # API Gateway hands path parameters over decoded; a NUL there is refused before any use.
    event = {"multiValueQueryStringParameters": None, "headers": {}, "pathParameters": {},
             "requestContext": {"httpMethod": "POST", "resourcePath": "/tasks/{post_id}/skip"},
             "body": '{"family": "child", "reason": "x"}', "isBase64Encoded": False,
             "stageVariables": None}
    with pytest.raises(InvalidInput) as caught:
        check_inputs(Request(event), BY_NAME["skip_task"], {"post_id": "p\x00"})
    assert caught.value.details[0]["path"] == "path.post_id"
    assert stored(db) == (0, 0)


def test_invalid_utf8_and_duplicate_keys(client, db, leased):
    assert_400(post(client, "/labels", b'{"post_id": "\xff"}', auth(leased)))
    raw = json.dumps(label())[:-1] + ', "post_id": "p00001"}'
    assert "more than once" in assert_400(post(client, "/labels", raw, auth(leased)))["message"]
    assert stored(db) == (0, 0)


def test_types_are_checked_before_use(client, db, leased, manager):
    assert_400(post(client, "/labels", label(family=["child"]), auth(leased)), "body.family")
    assert_400(post(client, "/labels", label(answers=[1]), auth(leased)), "body.answers")
    assert_400(post(client, "/labels", label(answers={"is_child": "yes"}), auth(leased)),
               "body.answers.is_child")
    assert_400(post(client, "/labels", [label()], auth(leased)), "body")
    assert_400(post(client, "/tasks/p00000/skip", {"family": {"x": 1}, "reason": "r"},
                    auth(leased)), "body.family")
    assert_400(post(client, "/exports", {"families": 123}, auth(manager)), "body.families")
    assert_400(post(client, "/exports", {"families": [1]}, auth(manager)), "body.families[0]")
    assert_400(post(client, "/exports", {"families": []}, auth(manager)), "body.families")
    assert_400(post(client, "/coders", {"name": 5}, auth(manager)), "body.name")
    assert_400(post(client, "/coders", {"name": "abc\n"}, auth(manager)), "body.name")
    assert stored(db) == (0, 0)
    assert db.run("SELECT count(*) FROM export_jobs")[0][0] == 0
    assert db.run("SELECT count(*) FROM coders")[0][0] == 2


def test_report_dates_are_checked_and_any_valid_date_works(client, manager):
    for query in ("to=9999-12-31", "from=0001-01-01", "from=0001-01-01&to=9999-12-31",
                  "to=0001-01-05"):
        response = client.http.get(f"/reports/coders?{query}", headers=auth(manager))
        assert response.status_code == 200, (query, response.body)
    assert body_of(client.http.get("/reports/coders?to=0001-01-05",
                                   headers=auth(manager)))["from"] == "0001-01-01"
    assert_400(client.http.get("/reports/coders?from=2024-02-02&to=2024-02-01",
                               headers=auth(manager)), "query.from")
    for bad in ("to=2024-02-30", "to=20240201", "from=yesterday", "to=10000-01-01"):
        assert_400(client.http.get(f"/reports/coders?{bad}", headers=auth(manager)))


def test_error_bodies_are_bounded(client, db, leased):
    bad = "x" * 200
    many = label(answers={"is_child": True, "age": [f"{bad}{i}" for i in range(300)]})
    raw = json.dumps(many)
    assert 60_000 < len(raw) <= 64 * 1024
    response = post(client, "/labels", raw, auth(leased))
    data = assert_400(response)
    assert len(data["details"]) == 20 and data["omitted"] > 200
    assert all(len(d["message"]) <= 200 for d in data["details"])
    assert len(response.body) < 10_000
    assert stored(db) == (0, 0)


def test_the_document_and_the_server_agree(client, db, leased, manager):
    doc = document()
    history = {p["name"]: p["schema"] for p in doc["paths"]["/me/history"]["get"]["parameters"]}
    assert history["before"]["minimum"] == 1
    assert_400(client.http.get("/me/history?before=0", headers=auth(leased)), "query.before")
    assert_400(client.http.get("/me/history?limit=abc", headers=auth(leased)), "query.limit")
    assert_400(client.http.get("/me?x=1", headers=auth(leased)), "query.x")
    assert_400(client.http.get("/tasks/next?family=child&family=place", headers=auth(leased)),
               "query.family")
    skip = doc["paths"]["/tasks/{post_id}/skip"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]
    assert skip["properties"]["reason"]["minLength"] == 1
    for reason in ("", "   "):
        assert_400(post(client, "/tasks/p00000/skip", {"family": "child", "reason": reason},
                        auth(leased)), "body.reason")
    assert_400(post(client, "/labels", label(answers={"age": []}), auth(leased)),
               "body.answers.age")
    assert_400(post(client, "/labels", label(answers={"is_child": False, "age": []}),
                    auth(leased)), "body.answers.age")
    patch = client.http.patch(f"/coders/{leased.id}", body="{}", headers=auth(manager))
    assert_400(patch, "body")
    assert_400(post(client, "/coders", {"name": "zed", "admin": True}, auth(manager)),
               "body.admin")
    assert_400(post(client, "/images/uploads", {"filename": None}, auth(manager)),
               "body.filename")
    assert stored(db) == (0, 0)
    assert [r[0] for r in db.run("SELECT name FROM coders ORDER BY id")] == ["ana", "boss"]


def test_security_headers_on_every_kind_of_answer(client, leased):
    answers = [
        client.http.get("/health"),
        client.http.get("/me", headers=auth(leased)),
        client.http.get("/me"),  # 401
        post(client, "/labels", "{", auth(leased)),  # 400
        client.http.put("/labels", body="{}", headers=auth(leased)),  # 405 from Chalice
        client.http.post("/labels", body="x", headers={"Content-Type": "text/plain"}),  # 415
    ]
    for response in answers:
        for name, value in API_HEADERS.items():
            assert response.headers.get(name) == value, (response.status_code, name)
    assert [r.status_code for r in answers] == [200, 200, 401, 400, 405, 415]
    for response in answers[2:]:
        data = body_of(response)
        assert set(data) >= {"error", "message", "details"}, data


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_database_down_is_a_503_with_retry_after(client, db_pool, leased):
    down = Pool(parse_url(f"postgresql://trainset:secret@127.0.0.1:{_closed_port()}/nowhere"))
    runtime.configure(database_pool=down)
    try:
        response = client.http.get("/me", headers=auth(leased))
    finally:
        runtime.configure(database_pool=db_pool)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    data = body_of(response)
    assert data["error"] == "unavailable"
    assert "127.0.0.1" not in response.body.decode() and "nowhere" not in response.body.decode()
    for name, value in API_HEADERS.items():
        assert response.headers[name] == value


def test_a_dropped_connection_is_discarded_and_the_api_recovers(client, db, db_pool, leased):
    assert client.http.get("/me", headers=auth(leased)).status_code == 200
    # PostgreSQL ends every session of the pool (as a restart would).
    db.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE application_name = 'trainset' AND pid <> pg_backend_pid()")
    first = client.http.get("/me", headers=auth(leased))
    assert first.status_code in (200, 503)
    if first.status_code == 503:
        assert first.headers["Retry-After"]
    assert client.http.get("/me", headers=auth(leased)).status_code == 200


def test_hostile_input_over_real_http(db, db_pool, tmp_path):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 1))
    with serve(db_pool, tmp_path) as base:
        status, _, _ = fetch(base + "/tasks/next?family=child", headers=auth(ana))
        assert status == 200
        cases = [
            ("/labels", label_text("NaN").encode()),
            ("/labels", b"[" * 20000),
            ("/labels", json.dumps(label(family=["child"])).encode()),
            ("/labels", json.dumps(label()).replace('"p00000"', '"\\u0000"').encode()),
            ("/tasks/p00000/skip", b'{"family": "child", "reason": "\\udfff"}'),
        ]
        for path, raw in cases:
            status, headers, body = fetch(base + path, "POST", raw, auth(ana))
            assert status == 400, (path, raw[:60], body[:300])
            assert json.loads(body)["error"] == "invalid_input"
            assert headers["Content-Security-Policy"] == API_HEADERS["Content-Security-Policy"]
        status, _, _ = fetch(base + "/reports/coders?to=9999-12-31", headers=auth(ana))
        assert status == 403
    assert stored(db) == (0, 0)


def test_the_document_is_built_from_the_validators_schema_objects():
    """Every route is an operation of trainset.api_schema, and the document's request bodies
    and parameters are those very objects (identity, not equality): they cannot drift."""
    from app import app

    from trainset import api_schema, validation

    doc = document()
    registered = {(path, method): entry.view_function for path, routes in app.routes.items()
                  for method, entry in routes.items()}
    assert set(registered) == {(op.path, op.method) for op in api_schema.OPERATIONS}
    for (path, method), view in registered.items():
        op = view.operation
        assert (op.path, op.method) == (path, method)
        documented = doc["paths"][path][method.lower()]
        if op.body is None:
            assert "requestBody" not in documented
        else:
            assert documented["requestBody"]["content"]["application/json"]["schema"] is op.body
            assert documented["requestBody"]["required"] is op.body_required
            validation.check_supported(op.body, f"{path} body")
        for param in documented["parameters"]:
            source = op.query if param["in"] == "query" else op.path_params
            assert param["schema"] is source["properties"][param["name"]]
            assert param["required"] == (param["in"] == "path"
                                         or param["name"] in source.get("required", ()))
        names = {p["name"] for p in documented["parameters"]}
        assert names == set(op.query["properties"]) | set(op.path_params["properties"])
        validation.check_supported(op.query)
        validation.check_supported(op.path_params)
        assert set(documented["responses"]) == {str(op.ok_status)} | {
            str(c) for c in op.other_ok} | {str(c) for c in op.error_statuses()}


def test_the_document_is_valid_openapi():
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(json.loads(json.dumps(document())))
