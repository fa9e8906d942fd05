"""Certification with evidence (practice score in GET /progress, confirmation and audit in
PATCH /coders/{id}), a fresh token and releasing a coder's leases, through the app."""

from __future__ import annotations

import json

from tests.api.conftest import auth
from tests.factories import (
    CHILD_NO,
    CHILD_YES,
    make_campaign,
    make_coder,
    make_gold,
    make_posts,
    service,
    submission,
)


def body_of(response):
    return json.loads(response.body)


def patch(client, coder_id, payload, headers):
    return client.http.patch(f"/coders/{coder_id}", body=json.dumps(payload), headers=headers)


def practise(db, coder, right: int, wrong: int) -> None:
    """The trainee answers right + wrong practice posts (gold: a toddler)."""
    ids = make_posts(db, right + wrong, prefix=f"pr-{coder.name}-")
    for post_id in ids:
        make_gold(db, post_id, "practice", CHILD_YES)
    svc = service(db)
    for i in range(right + wrong):
        task = svc.next_task(coder, "child", "practice")["task"]
        svc.submit(coder, submission(task["post_id"], CHILD_YES if i < right else CHILD_NO))


def test_progress_shows_each_coders_practice_evidence(client, db, manager):
    tia, uma = make_coder(db, "tia", status="trainee"), make_coder(db, "uma", status="trainee")
    practise(db, tia, right=2, wrong=3)
    practise(db, uma, right=10, wrong=1)
    coders = {c["name"]: c for c in body_of(client.http.get("/progress",
                                                            headers=auth(manager)))["coders"]}
    assert (coders["tia"]["practice"]["answered"], coders["tia"]["practice"]["correct"]) == (5, 2)
    assert coders["tia"]["practice"]["score"] == 0.4
    assert coders["tia"]["practice"]["certification"]["ready"] is False
    assert coders["uma"]["practice"]["certification"]["ready"] is True
    assert coders["boss"]["practice"]["answered"] == 0
    assert coders["boss"]["practice"]["score"] is None


def test_certifying_a_trainee_who_is_not_ready_needs_confirmation(client, db, manager):
    tia, uma = make_coder(db, "tia", status="trainee"), make_coder(db, "uma", status="trainee")
    practise(db, tia, right=2, wrong=3)
    practise(db, uma, right=10, wrong=0)
    r = patch(client, tia.id, {"status": "certified"}, auth(manager))
    assert r.status_code == 409
    refused = body_of(r)
    assert "40% right of 5 practice answers" in refused["message"]
    assert refused["details"]["reason"] == "not_ready"
    assert refused["details"]["practice"]["score"] == 0.4
    assert db.run("SELECT status FROM coders WHERE id = :id", id=tia.id)[0][0] == "trainee"
    r = patch(client, tia.id, {"status": "certified", "confirm": False}, auth(manager))
    assert r.status_code == 409
    r = patch(client, tia.id, {"status": "certified", "confirm": True}, auth(manager))
    assert r.status_code == 200 and body_of(r)["coder"]["status"] == "certified"
    # A ready trainee needs no confirmation; both are audited with their score then.
    assert patch(client, uma.id, {"status": "certified"}, auth(manager)).status_code == 200
    audit = {row[0]: row[1] for row in db.run(
        "SELECT target, details FROM audit_log WHERE action = 'coder.update'")}
    assert audit["tia"]["practice"]["score"] == 0.4
    assert audit["tia"]["practice"]["answered"] == 5
    assert audit["tia"]["confirmed_not_ready"] is True
    assert audit["uma"]["practice"]["certification"]["ready"] is True
    assert audit["uma"]["confirmed_not_ready"] is False
    # Revoking and other changes carry no practice evidence and need no confirmation.
    assert patch(client, uma.id, {"status": "revoked"}, auth(manager)).status_code == 200
    assert "practice" not in db.run("SELECT details FROM audit_log ORDER BY id DESC LIMIT 1")[
        0][0]
    assert patch(client, tia.id, {"confirm": "yes", "status": "trainee"},
                 auth(manager)).status_code == 400
    assert patch(client, tia.id, {"confirm": True}, auth(manager)).status_code == 400


def test_a_fresh_token_signs_the_coder_in(client, db, manager):
    ana = make_coder(db, "ana")
    r = client.http.post(f"/coders/{ana.id}/token", headers=auth(manager))
    assert r.status_code == 200, r.body
    fresh = body_of(r)
    assert fresh["coder"]["name"] == "ana"
    me = client.http.get("/me", headers={"Authorization": "Bearer " + fresh["token"]})
    assert body_of(me)["name"] == "ana"
    assert db.run("SELECT action, target FROM audit_log WHERE action = 'coder.token'") == [
        ["coder.token", "ana"]]
    assert client.http.post("/coders/999/token", headers=auth(manager)).status_code == 404
    assert client.http.post(f"/coders/{ana.id}/token", headers=auth(ana)).status_code == 403
    patch(client, ana.id, {"status": "revoked"}, auth(manager))
    r = client.http.post(f"/coders/{ana.id}/token", headers=auth(manager))
    assert r.status_code == 409 and "revoked" in body_of(r)["message"]
    db.run("INSERT INTO label_sources (name) VALUES ('study')")
    ghost = make_coder(db, "study.c1")
    db.run("INSERT INTO source_coders (coder_id, source_id, source_coder)"
           " SELECT :id, id, 'c1' FROM label_sources", id=ghost.id)
    r = client.http.post(f"/coders/{ghost.id}/token", headers=auth(manager))
    assert r.status_code == 409 and "imported" in body_of(r)["message"]


def test_a_manager_releases_a_held_lease(client, db, manager):
    ids = make_posts(db, 3)
    make_campaign(db, ids)
    make_gold(db, make_posts(db, 1, prefix="pr")[0], "practice")
    ana = make_coder(db, "ana")
    held = body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"]
    client.http.get("/tasks/next?family=child&mode=practice", headers=auth(ana))
    r = client.http.post(f"/coders/{ana.id}/leases/release", body=json.dumps({"family": "place"}),
                         headers=auth(manager))
    assert body_of(r)["released"] == {"tasks": 0, "gold": 0}
    r = client.http.post(f"/coders/{ana.id}/leases/release", headers=auth(manager))
    assert r.status_code == 200, r.body
    assert body_of(r) == {"coder": {"id": ana.id, "name": "ana", "role": "coder",
                                    "status": "certified"},
                          "released": {"tasks": 1, "gold": 1}}
    assert db.run("SELECT count(*) FROM tasks WHERE status = 'leased'")[0][0] == 0
    # Another coder gets the released post; ana's late answer is refused with the reason.
    bea = make_coder(db, "bea")
    got = body_of(client.http.get("/tasks/next?family=child", headers=auth(bea)))["task"]
    assert got["post_id"] == held["post_id"]
    late = client.http.post("/labels", body=json.dumps(submission(held["post_id"])),
                            headers=auth(ana))
    assert late.status_code == 409
    audit = db.run("SELECT target, details FROM audit_log"
                   " WHERE action = 'coder.release_leases' ORDER BY id")
    assert [a[0] for a in audit] == ["ana", "ana"]
    assert audit[1][1]["released"] == {"tasks": 1, "gold": 1}
    assert client.http.post("/coders/999/leases/release",
                            headers=auth(manager)).status_code == 404
    assert client.http.post(f"/coders/{bea.id}/leases/release",
                            headers=auth(ana)).status_code == 403
    assert db.run("SELECT status FROM tasks WHERE post_id = :p", p=held["post_id"])[0][0] == (
        "leased")  # bea's lease is untouched by the refused request
