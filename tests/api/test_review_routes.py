"""GET /quality/{family}/latest, GET /review, GET /posts/{id}/labels and POST /adjudications,
through the app and a real database."""

from __future__ import annotations

import json

import pytest

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
from trainset.services.quality import ScreeningRules, run_quality
from trainset.store.quality import QualityStore

MIDDLE = {"is_child": True, "age": ["11 to 13 years (middle school)"]}


def body_of(response):
    return json.loads(response.body)


def post_json(client, path, payload, headers):
    return client.http.post(path, body=json.dumps(payload), headers=headers)


@pytest.fixture()
def labeled(db):
    """Four campaign posts labeled by ana and bea: they disagree on p00000 only; cid skipped
    p00000 with a reason; ana revised p00001."""
    ids = make_posts(db, 4)
    campaign = make_campaign(db, ids, labels_per_post=2, name="spring")
    ana, bea, cid = make_coder(db, "ana"), make_coder(db, "bea"), make_coder(db, "cid")
    svc = service(db)
    svc.next_task(cid, "child")
    svc.skip(cid, "p00000", {"family": "child", "reason": "image will not load"})
    for coder in (ana, bea):
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            post = task["post_id"]
            answers = CHILD_YES if post != "p00000" or coder is ana else CHILD_NO
            svc.submit(coder, {**submission(post, answers), "seconds_spent": 7})
    svc.submit(ana, {**submission("p00001", MIDDLE), "seconds_spent": 3})  # a revision
    return {"ids": ids, "campaign": campaign}


def quality_run(db):
    return run_quality(QualityStore(db), "child", ScreeningRules(min_gold_accuracy=None))


def test_latest_quality_run(client, db, manager, labeled):
    r = client.http.get("/quality/child/latest", headers=auth(manager))
    assert r.status_code == 404 and "no quality run" in body_of(r)["message"]
    summary = quality_run(db)
    latest = body_of(client.http.get("/quality/child/latest", headers=auth(manager)))
    assert latest["run_id"] == summary["run_id"] and latest["family"] == "child"
    assert latest["rules"]["min_confidence"] == 0.8 and latest["posts"] == 4
    assert [s["step"] for s in latest["screening"]][-1] == (
        "records below the confidence threshold")
    assert set(latest["agreement"]) == {"is_child", "age"}
    assert latest["em"]["converged"] in (True, False) and latest["gold"] == []
    # The posts screened out went back for another coder: the re-label queue shows them.
    assert latest["relabel_requested"] == len(latest["relabel_queue"]) >= 1
    assert "p00000" in {q["post_id"] for q in latest["relabel_queue"]}
    assert all(q["status"] == "open" and q["slot"] == 3 for q in latest["relabel_queue"])
    assert client.http.get("/quality/pets/latest", headers=auth(manager)).status_code == 400
    assert client.http.get("/quality/place/latest", headers=auth(manager)).status_code == 404


def test_gold_accuracy_per_coder_and_option_with_intervals(client, db, manager):
    ids = make_posts(db, 3)
    make_campaign(db, ids[:2])
    make_gold(db, ids[2], "qa", CHILD_YES)
    ana = make_coder(db, "ana")
    svc = service(db, gold_rate=1.0)
    task = svc.next_task(ana, "child")["task"]
    assert task["post_id"] == ids[2]
    svc.submit(ana, submission(ids[2], MIDDLE))  # right about the child, wrong about the age
    quality_run(db)
    gold = body_of(client.http.get("/quality/child/latest", headers=auth(manager)))["gold"]
    rows = {(g["coder"], g["label"]): g for g in gold}
    assert rows[("ana", "is_child")]["pos_gold_correct_pct"] == 100.0
    toddler = rows[("ana", "age=1 to 4 years (toddler/pre-school)")]
    assert toddler["pos_gold_correct_pct"] == 0.0 and toddler["pos_gold_n"] == 1
    assert toddler["pos_gold_ci"][0] == 0.0 and 0 < toddler["pos_gold_ci"][1] < 100


def test_review_lists_the_least_certain_posts_first(client, db, manager, labeled):
    before = body_of(client.http.get("/review?family=child", headers=auth(manager)))
    assert before["run_id"] is None and {i["post_id"] for i in before["items"]} == set(
        labeled["ids"])
    assert all(i["confidence"] is None and i["labels"] == 2 for i in before["items"])
    quality_run(db)
    page = body_of(client.http.get("/review?family=child", headers=auth(manager)))
    confidences = [i["confidence"] for i in page["items"]]
    assert confidences == sorted(confidences) and page["next_offset"] is None
    # The two disputed posts (is_child on p00000, the age on p00001) come first.
    assert {i["post_id"] for i in page["items"][:2]} == {"p00000", "p00001"}
    assert confidences[1] < confidences[2]
    first = page["items"][0]
    assert first["campaign"] == "spring" and first["campaign_id"] == labeled["campaign"]
    assert first["kept"] is False and first["adjudicated"] is False
    doubtful = body_of(client.http.get(
        f"/review?family=child&max_confidence={confidences[1]}", headers=auth(manager)))
    assert [i["post_id"] for i in doubtful["items"]] == [i["post_id"]
                                                        for i in page["items"][:2]]
    one = body_of(client.http.get("/review?family=child&limit=1&offset=1",
                                  headers=auth(manager)))
    assert [i["post_id"] for i in one["items"]] == [page["items"][1]["post_id"]]
    assert one["next_offset"] == 2
    for query, expected in ((f"campaign={labeled['campaign']}", 4), ("campaign=999", 0),
                            ("keyword=toddler", 4), ("keyword=minor", 0)):
        got = body_of(client.http.get(f"/review?family=child&{query}", headers=auth(manager)))
        assert len(got["items"]) == expected, query
    assert body_of(client.http.get("/review?family=place", headers=auth(manager)))[
        "items"] == []
    for query in ("", "family=child&max_confidence=2", "family=child&max_confidence=nan",
                  "family=child&limit=0", "family=child&campaign=x", "family=child&x=1"):
        r = client.http.get(f"/review?{query}", headers=auth(manager))
        assert r.status_code == 400, query


def test_a_posts_labels_skips_and_consensus(client, db, manager, labeled):
    detail = body_of(client.http.get("/posts/p00001/labels", headers=auth(manager)))
    assert detail["family"] == "child" and detail["consensus"] is None
    assert detail["post"]["campaigns"][0]["name"] == "spring"
    rows = [(lab["coder"], lab["revision"], lab["seconds_spent"], lab["current"])
            for lab in detail["labels"]]
    assert rows == [("ana", 1, 7.0, False), ("bea", 1, 7.0, True), ("ana", 2, 3.0, True)]
    assert detail["labels"][2]["answers"] == MIDDLE and detail["skips"] == []
    quality_run(db)
    disputed = body_of(client.http.get("/posts/p00000/labels?family=child",
                                       headers=auth(manager)))
    assert [(s["coder"], s["reason"]) for s in disputed["skips"]] == [
        ("cid", "image will not load")]
    consensus = disputed["consensus"]
    assert consensus["kept"] is False and consensus["reason"].startswith("least certain")
    items = {i["item"]: i for i in consensus["items"]}
    assert 0 < items["is_child"]["posterior"] < 1
    assert set(consensus["answers"]) >= {"is_child"}
    r = client.http.get("/posts/nope/labels", headers=auth(manager))
    assert r.status_code == 404 and body_of(r)["error"] == "not_found"
    empty = body_of(client.http.get("/posts/p00000/labels?family=place", headers=auth(manager)))
    assert empty["labels"] == [] and empty["consensus"] is None


def test_adjudication_is_append_only_with_author_and_time(client, db, manager, labeled):
    r = post_json(client, "/adjudications", {"post_id": "p00000", "family": "child",
                                             "answers": CHILD_NO, "note": "no child in it"},
                  auth(manager))
    assert r.status_code == 201, r.body
    first = body_of(r)
    assert (first["post_id"], first["author"], first["answers"], first["note"]) == (
        "p00000", "boss", CHILD_NO, "no child in it")
    assert first["created_at"]
    second = body_of(post_json(client, "/adjudications", {
        "post_id": "p00000", "family": "child", "answers": CHILD_YES}, auth(manager)))
    detail = body_of(client.http.get("/posts/p00000/labels", headers=auth(manager)))
    assert [a["id"] for a in detail["adjudications"]] == [second["id"], first["id"]]
    assert detail["adjudications"][0]["answers"] == CHILD_YES
    assert QualityStore(db).gold_answers("child")["p00000"] == CHILD_YES  # the newest wins
    with pytest.raises(Exception, match="append-only"):
        db.run("UPDATE adjudications SET note = 'x'")
    with pytest.raises(Exception, match="append-only"):
        db.run("DELETE FROM adjudications")
    listed = body_of(client.http.get("/review?family=child", headers=auth(manager)))
    assert {i["post_id"]: i["adjudicated"] for i in listed["items"]}["p00000"] is True


def test_adjudication_errors_and_coders(client, db, manager, labeled):
    make_posts(db, 1, prefix="loose")
    make_gold(db, make_posts(db, 1, prefix="gold")[0], "qa")
    cases = [
        ({"post_id": "p00000", "family": "child", "answers": {"is_child": True}}, 400),
        ({"post_id": "p00000", "family": "child", "answers": {"is_child": "yes"}}, 400),
        ({"post_id": "p00000", "family": "child", "answers": CHILD_NO, "extra": 1}, 400),
        ({"post_id": "p00000", "family": "pets", "answers": CHILD_NO}, 400),
        ({"post_id": "p00000", "family": "child", "answers": CHILD_NO, "note": "x" * 1001}, 400),
        ({"post_id": "nope", "family": "child", "answers": CHILD_NO}, 404),
        ({"post_id": "loose00000", "family": "child", "answers": CHILD_NO}, 409),
        ({"post_id": "gold00000", "family": "child", "answers": CHILD_NO}, 409),
        ({"post_id": "p00000", "family": "health", "answers": {"is_health": False}}, 409),
    ]
    for payload, status in cases:
        r = post_json(client, "/adjudications", payload, auth(manager))
        assert r.status_code == status, (payload, r.body)
    ana = make_coder(db, "ana2")
    r = post_json(client, "/adjudications", {"post_id": "p00000", "family": "child",
                                             "answers": CHILD_NO}, auth(ana))
    assert r.status_code == 403
    for path in ("/review?family=child", "/posts/p00000/labels", "/quality/child/latest"):
        assert client.http.get(path, headers=auth(ana)).status_code == 403, path
    assert db.run("SELECT count(*) FROM adjudications")[0][0] == 0
