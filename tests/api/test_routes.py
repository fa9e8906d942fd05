"""Every route and error path of the API, through chalice.test.Client and a real database."""

import json
import uuid

from tests.api.conftest import auth
from tests.factories import CHILD_NO, CHILD_YES, make_campaign, make_coder, make_gold, make_posts
from trainset import tokens


def body_of(response):
    return json.loads(response.body)


def post_json(client, path, payload, headers):
    raw = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    return client.http.post(path, body=raw, headers=headers)


def assert_error(response, status, code):
    assert response.status_code == status, response.body
    data = body_of(response)
    assert data["error"] == code and data["message"]
    assert "Traceback" not in response.body.decode()
    return data


def test_codebook_and_health_are_public(client):
    data = body_of(client.http.get("/codebook"))
    assert [f["name"] for f in data["families"]] == ["place", "child", "health"]
    assert body_of(client.http.get("/health")) == {"status": "ok"}


def test_openapi_document_matches_routes(client):
    from app import app

    doc = body_of(client.http.get("/openapi.json"))
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    registered = {(path, method) for path, routes in app.routes.items() for method in routes}
    assert documented == registered
    for path, ops in doc["paths"].items():
        for op in ops.values():
            assert op["responses"], path


def test_auth_errors(client, db):
    assert_error(client.http.get("/tasks/next?family=child"), 401, "unauthorized")
    bad = {"Authorization": "Bearer not-a-token"}
    assert_error(client.http.get("/me", headers=bad), 401, "unauthorized")
    forged = tokens.mint(1, "x", "another-secret-that-is-long-enough-for-hs256")
    assert_error(client.http.get("/me", headers={"Authorization": "Bearer " + forged}),
                 401, "unauthorized")
    expired = make_coder(db, "old")
    from trainset.local.secrets import local_token_secret

    stale = tokens.mint(expired.id, expired.name, local_token_secret(), ttl_seconds=-10)
    data = assert_error(client.http.get("/me", headers={"Authorization": "Bearer " + stale}),
                        401, "unauthorized")
    assert "expired" in data["message"]


def test_full_labeling_round_trip(client, db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    r = client.http.get("/tasks/next?family=child", headers=auth(ana))
    assert r.status_code == 200
    task = body_of(r)["task"]
    assert task["post_id"] == "p00000" and task["image_url"] is None
    assert body_of(r)["progress"]["remaining_in_family"] == 2

    bad = post_json(client, "/labels", {"submission_id": str(uuid.uuid4()), "post_id": "p00000",
                                        "family": "child",
                                        "answers": {"is_child": True}}, auth(ana))
    data = assert_error(bad, 400, "invalid_input")
    assert data["details"] == [{"field": "age", "path": "body.answers.age",
                                "message": "is required"}]

    sid = str(uuid.uuid4())
    good = {"submission_id": sid, "post_id": "p00000", "family": "child", "answers": CHILD_YES,
            "seconds_spent": 12.5}
    first = post_json(client, "/labels", good, auth(ana))
    assert first.status_code == 200 and body_of(first)["revision"] == 1
    retry = post_json(client, "/labels", good, auth(ana))
    assert body_of(retry)["duplicate"] is True
    assert body_of(retry)["label_id"] == body_of(first)["label_id"]

    revision = dict(good, submission_id=str(uuid.uuid4()), answers=CHILD_NO)
    assert body_of(post_json(client, "/labels", revision, auth(ana)))["revision"] == 2

    history = body_of(client.http.get("/me/history?limit=10", headers=auth(ana)))
    assert [i["revision"] for i in history["items"]] == [2]
    me = body_of(client.http.get("/me", headers=auth(ana)))
    assert me["name"] == "ana" and me["today"]["total"] == 1


def test_label_errors(client, db):
    ana, ben = make_coder(db, "ana"), make_coder(db, "ben")
    make_campaign(db, make_posts(db, 1))
    client.http.get("/tasks/next?family=child", headers=auth(ana))
    body = {"submission_id": str(uuid.uuid4()), "post_id": "p00000", "family": "child",
            "answers": CHILD_YES}
    data = assert_error(post_json(client, "/labels", body, auth(ben)), 409, "conflict")
    assert data["details"]["reason"] == "not_leased"
    assert_error(post_json(client, "/labels", dict(body, post_id="missing"), auth(ana)),
                 404, "not_found")
    data = assert_error(post_json(client, "/labels", '{"broken": ', auth(ana)), 400,
                        "invalid_input")
    assert "line 1" in data["message"]
    assert_error(post_json(client, "/labels", "", auth(ana)), 400, "invalid_input")
    assert_error(post_json(client, "/labels", "x" * (70 * 1024), auth(ana)), 413,
                 "payload_too_large")
    assert_error(client.http.get("/tasks/next?family=pets", headers=auth(ana)), 400,
                 "invalid_input")
    assert db.run("SELECT count(*) FROM labels")[0][0] == 0


def test_skip_route(client, db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 1))
    client.http.get("/tasks/next?family=child", headers=auth(ana))
    assert_error(post_json(client, "/tasks/p00000/skip", {"family": "child"}, auth(ana)),
                 400, "invalid_input")
    r = post_json(client, "/tasks/p00000/skip", {"family": "child", "reason": "unclear"},
                  auth(ana))
    assert body_of(r)["skipped"] is True
    assert body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"] is None


def test_trainee_practices_and_manager_certifies(client, db, manager):
    ids = make_posts(db, 3)
    make_campaign(db, ids[:2])
    make_gold(db, ids[2], "practice")
    created = post_json(client, "/coders", {"name": "tia"}, auth(manager))
    assert created.status_code == 201
    tia_token = body_of(created)["token"]
    tia_id = body_of(created)["coder"]["id"]
    headers = {"Authorization": "Bearer " + tia_token, "Content-Type": "application/json"}
    assert_error(client.http.get("/tasks/next?family=child", headers=headers), 403, "forbidden")
    task = body_of(client.http.get("/tasks/next?family=child&mode=practice",
                                   headers=headers))["task"]
    receipt = body_of(post_json(client, "/labels", {
        "submission_id": str(uuid.uuid4()), "post_id": task["post_id"], "family": "child",
        "answers": CHILD_YES}, headers))
    assert receipt["practice"]["correct"] is True
    assert receipt["practice"]["rationale"]

    # Coders cannot use manager routes or certify themselves.
    assert_error(client.http.patch(f"/coders/{tia_id}", body=json.dumps({"status": "certified"}),
                                   headers=headers), 403, "forbidden")
    assert_error(client.http.get("/progress", headers=headers), 403, "forbidden")
    # One practice answer is not ready by the practice rule: the manager must confirm.
    r = client.http.patch(f"/coders/{tia_id}", body=json.dumps({"status": "certified"}),
                          headers=auth(manager))
    refused = assert_error(r, 409, "conflict")
    assert "100% right of 1 practice answers" in refused["message"]
    assert refused["details"]["practice"]["answered"] == 1
    assert refused["details"]["practice"]["certification"]["ready"] is False
    r = client.http.patch(f"/coders/{tia_id}", body=json.dumps({"status": "certified",
                                                                "confirm": True}),
                          headers=auth(manager))
    assert body_of(r)["coder"]["status"] == "certified"
    work = body_of(client.http.get("/tasks/next?family=child", headers=headers))["task"]
    assert work["post_id"] == ids[0]
    audit = db.run("SELECT action, target, details FROM audit_log ORDER BY id")
    assert [a[:2] for a in audit] == [["coder.create", "boss"], ["coder.create", "tia"],
                                      ["coder.update", "tia"]]
    details = audit[2][2]
    assert details["practice"]["score"] == 1.0 and details["practice"]["answered"] == 1
    assert details["confirmed_not_ready"] is True


def test_manager_routes_and_their_errors(client, db, manager):
    make_campaign(db, make_posts(db, 4))
    assert_error(post_json(client, "/coders", {"name": "bad name!"}, auth(manager)), 400,
                 "invalid_input")
    post_json(client, "/coders", {"name": "zoe", "status": "certified"}, auth(manager))
    assert_error(post_json(client, "/coders", {"name": "zoe"}, auth(manager)), 409, "conflict")
    assert_error(client.http.patch("/coders/999", body=json.dumps({"status": "revoked"}),
                                   headers=auth(manager)), 404, "not_found")
    assert_error(client.http.patch("/coders/abc", body=json.dumps({"status": "revoked"}),
                                   headers=auth(manager)), 400, "invalid_input")
    assert_error(client.http.patch(f"/coders/{manager.id}",
                                   body=json.dumps({"status": "revoked"}),
                                   headers=auth(manager)), 409, "conflict")
    names = [c["name"] for c in body_of(client.http.get("/coders", headers=auth(manager)))[
        "coders"]]
    assert names == ["boss", "zoe"]
    progress = body_of(client.http.get("/progress", headers=auth(manager)))
    assert progress["families"]["child"] == {"open": 4, "leased": 0, "done": 0}
    assert {c["name"] for c in progress["coders"]} == {"boss", "zoe"}


def test_revoked_coder_is_locked_out(client, db, manager):
    rex = make_coder(db, "rex")
    make_campaign(db, make_posts(db, 1))
    client.http.patch(f"/coders/{rex.id}", body=json.dumps({"status": "revoked"}),
                      headers=auth(manager))
    assert_error(client.http.get("/tasks/next?family=child", headers=auth(rex)), 403,
                 "forbidden")


def test_gold_payload_is_indistinguishable(client, db):
    from chalicelib import runtime

    ana = make_coder(db, "ana")
    ids = make_posts(db, 2)
    make_campaign(db, ids[:1])
    make_gold(db, ids[1], "qa")
    runtime.configure(gold_rate=1.0)
    gold = body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"]
    runtime.configure(gold_rate=0.0)
    assert gold["post_id"] == ids[1]
    post_json(client, "/labels", {"submission_id": str(uuid.uuid4()), "post_id": ids[1],
                                  "family": "child", "answers": CHILD_YES}, auth(ana))
    real = body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"]
    assert set(gold) == set(real)


def test_coder_report_route(client, db, manager):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    task = body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"]
    post_json(client, "/labels", {"submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                                  "family": "child", "answers": CHILD_YES,
                                  "seconds_spent": 4}, auth(ana))
    report = body_of(client.http.get("/reports/coders", headers=auth(manager)))
    assert [c["coder"] for c in report["coders"]] == ["ana"]
    assert report["coders"][0]["median_seconds"] == 4.0
    assert set(report) >= {"daily", "gold_trend", "consensus_agreement", "samples"}
    assert_error(client.http.get("/reports/coders", headers=auth(ana)), 403, "forbidden")
    assert_error(client.http.get("/reports/coders?from=yesterday", headers=auth(manager)),
                 400, "invalid_input")


def test_export_routes_start_and_report_a_job(client, db, manager, monkeypatch):
    from chalicelib import routes_manager

    started = []
    monkeypatch.setattr(routes_manager, "_launcher",
                        lambda: lambda job_id, families: started.append((job_id, families)))
    r = post_json(client, "/exports", {"families": ["child"]}, auth(manager))
    assert r.status_code == 202
    job = body_of(r)
    assert job["status"] == "running" and started == [(job["job_id"], ["child"])]
    got = body_of(client.http.get(f"/exports/{job['job_id']}", headers=auth(manager)))
    assert got["status"] == "running" and got["families"] == ["child"]
    everything = body_of(client.http.post("/exports", headers=auth(manager)))
    assert everything["families"] == ["place", "child", "health"]
    assert_error(post_json(client, "/exports", {"families": ["pets"]}, auth(manager)), 400,
                 "invalid_input")
    assert_error(client.http.get("/exports/nope", headers=auth(manager)), 404, "not_found")
    coder = make_coder(db, "ana")
    assert_error(post_json(client, "/exports", {}, auth(coder)), 403, "forbidden")
