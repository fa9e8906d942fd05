"""POST /campaigns (dry run and draw), GET /campaigns (progress) and
GET /campaigns/{id}/estimate, through the app and a real database."""

from __future__ import annotations

import json
import random
import uuid

from tests.api.conftest import auth
from tests.factories import CHILD_NO, CHILD_YES, make_coder
from trainset.services import corpus
from trainset.store.corpus import CorpusStore

WORDS = ("park", "school", "smoke", "beach", "river", "garden", "playground", "library",
         "museum", "market", "forest", "kitchen", "soccer", "piano", "bicycle", "birthday")
KEYWORDS = {"toddler": 12, "minor": 30, "teen": 6}


def body_of(response):
    return json.loads(response.body)


def post_json(client, path, payload, headers):
    return client.http.post(path, body=json.dumps(payload), headers=headers)


def make_corpus(db) -> None:
    """48 posts over three keywords, each text distinct enough to pass the duplicate filters."""
    rng = random.Random(5)
    posts = []
    for keyword, n in KEYWORDS.items():
        for i in range(n):
            words = " ".join(rng.sample(WORDS, 8))
            posts.append({"id": f"{keyword}-{i:03d}", "keyword": keyword, "family": "child",
                          "text": f"{keyword} {i} {words} {rng.randrange(10**9)}"})
    corpus.add_posts(CorpusStore(db), posts)


def counts(db):
    return (db.run("SELECT count(*) FROM campaigns")[0][0],
            db.run("SELECT count(*) FROM tasks")[0][0])


def test_a_dry_run_answers_the_allocation_and_stores_nothing(client, db, manager):
    make_corpus(db)
    request = {"family": "child", "budget": 18, "strategy": "equal", "seed": 3,
               "labels_per_post": 2, "name": "spring", "dry_run": True}
    r = post_json(client, "/campaigns", request, auth(manager))
    assert r.status_code == 200, r.body
    plan = body_of(r)
    assert plan["dry_run"] is True and plan["campaign_id"] is None and plan["sampled"] == 0
    assert plan["name"] == "spring" and plan["frame_size"] == 48 and plan["planned"] == 18
    assert [(a["keyword"], a["population"], a["sampled"]) for a in plan["allocation"]] == [
        ("minor", 30, 6), ("teen", 6, 6), ("toddler", 12, 6)]
    assert {f["name"] for f in plan["filters"]} >= {"exact duplicates", "exclusion phrases"}
    assert counts(db) == (0, 0)

    # Committing the same request draws exactly the previewed allocation.
    r = post_json(client, "/campaigns", {**request, "dry_run": False}, auth(manager))
    assert r.status_code == 201, r.body
    drawn = body_of(r)
    assert drawn["dry_run"] is False and drawn["campaign_id"] and drawn["sampled"] == 18
    assert drawn["allocation"] == plan["allocation"]
    assert counts(db) == (1, 36)
    strata = dict(db.run("SELECT stratum, count(*) FROM campaign_posts GROUP BY stratum"))
    assert strata == {"minor": 6, "teen": 6, "toddler": 6}
    audit = db.run("SELECT action, target FROM audit_log WHERE action = 'campaign.create'")
    assert audit == [["campaign.create", "spring"]]
    # The name is taken now: a preview says so as well as a draw.
    for dry_run in (True, False):
        r = post_json(client, "/campaigns", {**request, "dry_run": dry_run}, auth(manager))
        assert r.status_code == 409 and "spring" in body_of(r)["message"]


def test_the_route_and_the_command_line_draw_the_same_sample(client, db, manager):
    from trainset.services.campaigns import SampleRequest, sample

    make_corpus(db)
    r = post_json(client, "/campaigns", {"family": "child", "budget": 15,
                                         "strategy": "proportional", "seed": 9,
                                         "name": "api"}, auth(manager))
    via_api = sorted(x[0] for x in db.run(
        "SELECT post_id FROM campaign_posts WHERE campaign_id = :c", c=body_of(r)["campaign_id"]))
    db.run("TRUNCATE tasks, campaign_posts, campaign_strata, campaigns CASCADE")
    result = sample(CorpusStore(db), SampleRequest("child", 15, "proportional", seed=9,
                                                   name="cli"))
    via_cli = sorted(x[0] for x in db.run(
        "SELECT post_id FROM campaign_posts WHERE campaign_id = :c", c=result.campaign_id))
    assert via_api == via_cli and len(via_api) == 15


def test_inline_pilot_yields_drive_neyman(client, db, manager):
    make_corpus(db)
    base = {"family": "child", "budget": 20, "strategy": "neyman", "dry_run": True}
    r = post_json(client, "/campaigns", base, auth(manager))
    assert r.status_code == 400 and "pilot yields" in body_of(r)["message"]
    yields = [{"keyword": "toddler", "percent_true": 50}, {"keyword": "minor", "percent_true": 2},
              {"keyword": "teen", "percent_true": 45}]
    plan = body_of(post_json(client, "/campaigns", {**base, "pilot_yields": yields},
                             auth(manager)))
    rows = {a["keyword"]: a for a in plan["allocation"]}
    assert plan["yields_source"] == "pilot yields given with the request"
    assert rows["toddler"]["pilot_yield"] == 0.5 and rows["minor"]["pilot_yield"] == 0.02
    assert rows["toddler"]["sampled"] > rows["teen"]["sampled"] >= 2
    # Each keyword once; yields of a target label come from the database only.
    twice = post_json(client, "/campaigns", {**base, "pilot_yields": yields + yields[:1]},
                      auth(manager))
    assert twice.status_code == 400 and body_of(twice)["details"][0]["field"] == "pilot_yields"
    aimed = post_json(client, "/campaigns", {**base, "pilot_yields": yields,
                                             "target": "middle"}, auth(manager))
    assert aimed.status_code == 400
    assert counts(db) == (0, 0)


def test_filters_and_bad_requests(client, db, manager):
    make_corpus(db)
    plan = body_of(post_json(client, "/campaigns", {
        "family": "child", "budget": 10, "dry_run": True,
        "filters": {"exclude_phrases": ["toddler"], "min_length": 5,
                    "near_duplicate_bits": -1}}, auth(manager)))
    assert plan["frame_size"] == 36
    assert next(f for f in plan["filters"] if f["name"] == "exclusion phrases")["removed"] == 12
    bad = [
        {"family": "pets", "budget": 10},
        {"family": "child", "budget": 0},
        {"family": "child"},
        {"family": "child", "budget": 10, "strategy": "cluster"},
        {"family": "child", "budget": 10, "labels_per_post": 21},
        {"family": "child", "budget": 10, "filters": {"min_length": "long"}},
        {"family": "child", "budget": 10, "pilot_yields": [{"keyword": "x",
                                                            "percent_true": 101}]},
        {"family": "child", "budget": 10, "name": " padded "},
        {"family": "child", "budget": 10, "unknown": 1},
        {"family": "child", "budget": 2, "strategy": "equal"},  # 3 keywords need 6 posts
    ]
    for payload in bad:
        r = post_json(client, "/campaigns", payload, auth(manager))
        assert r.status_code == 400, (payload, r.body)
        assert body_of(r)["error"] == "invalid_input"
    assert client.http.post("/campaigns", body="{", headers=auth(manager)).status_code == 400
    assert counts(db) == (0, 0)


def test_an_empty_corpus_cannot_be_sampled(client, db, manager):
    r = post_json(client, "/campaigns", {"family": "place", "budget": 5, "dry_run": True},
                  auth(manager))
    assert r.status_code == 400 and "no posts" in body_of(r)["message"]
    assert body_of(client.http.get("/campaigns", headers=auth(manager))) == {"campaigns": []}


def test_coders_cannot_draw_list_or_estimate(client, db):
    make_corpus(db)
    ana = make_coder(db, "ana")
    r = post_json(client, "/campaigns", {"family": "child", "budget": 10}, auth(ana))
    assert r.status_code == 403 and body_of(r)["error"] == "forbidden"
    assert client.http.get("/campaigns", headers=auth(ana)).status_code == 403
    assert client.http.get("/campaigns/1/estimate", headers=auth(ana)).status_code == 403
    assert client.http.get("/campaigns").status_code == 401
    assert counts(db) == (0, 0)


def truth(post_id: str) -> dict:
    """Toddler posts mention a child; the others do not."""
    return CHILD_YES if post_id.startswith("toddler") else CHILD_NO


def label_all(client, db, coder, answers_of) -> int:
    done = 0
    while True:
        task = body_of(client.http.get("/tasks/next?family=child", headers=auth(coder)))["task"]
        if task is None:
            return done
        r = post_json(client, "/labels", {"submission_id": str(uuid.uuid4()),
                                          "post_id": task["post_id"], "family": "child",
                                          "answers": answers_of(task["post_id"])}, auth(coder))
        assert r.status_code == 200, r.body
        done += 1


def test_progress_per_campaign_and_keyword_then_the_estimate(client, db, manager):
    make_corpus(db)
    created = body_of(post_json(client, "/campaigns", {
        "family": "child", "budget": 12, "strategy": "equal", "seed": 1, "name": "c1",
        "labels_per_post": 2, "filters": {"near_duplicate_bits": -1}}, auth(manager)))
    ana = make_coder(db, "ana")
    task = body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))["task"]
    post_json(client, "/labels", {"submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                                  "family": "child", "answers": truth(task["post_id"])},
              auth(ana))
    body_of(client.http.get("/tasks/next?family=child", headers=auth(ana)))  # holds a lease
    listed = body_of(client.http.get("/campaigns?family=child", headers=auth(manager)))
    [c] = listed["campaigns"]
    assert (c["id"], c["name"], c["strategy"], c["seed"], c["labels_per_post"]) == (
        created["campaign_id"], "c1", "equal", 1, 2)
    assert (c["posts"], c["slots"], c["done"], c["leased"], c["open"], c["posts_done"]) == (
        12, 24, 1, 1, 22, 0)
    assert [(k["keyword"], k["posts"], k["population"], k["slots"]) for k in c["keywords"]] == [
        ("minor", 4, 30, 8), ("teen", 4, 6, 8), ("toddler", 4, 12, 8)]
    assert sum(k["slots_done"] for k in c["keywords"]) == 1
    assert body_of(client.http.get("/campaigns?family=place", headers=auth(manager))) == {
        "campaigns": []}

    # Two coders label everything: toddler posts are children, the others are not.
    bea = make_coder(db, "bea")
    for coder in (ana, bea):
        label_all(client, db, coder, truth)
    [c] = body_of(client.http.get("/campaigns", headers=auth(manager)))["campaigns"]
    assert (c["done"], c["posts_done"]) == (24, 12)
    assert all(k["posts_done"] == 4 for k in c["keywords"])

    estimate = body_of(client.http.get(f"/campaigns/{c['id']}/estimate",
                                       headers=auth(manager)))
    assert estimate["campaign"]["name"] == "c1"
    assert estimate["labeled_posts"] == estimate["judged_posts"] == 12
    is_child = next(e for e in estimate["labels"] if e["label"] == "is_child")
    # Equal allocation over populations 30/6/12: the weighted prevalence is the toddler
    # share of the frame (12/48); the unweighted one is 4/12.
    assert abs(is_child["raw_weighted"]["value"] - 12 / 48) < 1e-9
    assert abs(is_child["raw_unweighted"]["value"] - 4 / 12) < 1e-9
    w = is_child["weighted"]
    assert w["low"] <= w["value"] <= w["high"] and w["n"] == 12
    keywords = {k["keyword"]: k for k in is_child["per_keyword"]}
    assert keywords["toddler"]["value"] > 0.5 > keywords["minor"]["value"]
    # Without model refits the same point estimate, and an interval no wider.
    bare = body_of(client.http.get(f"/campaigns/{c['id']}/estimate?refits=0",
                                   headers=auth(manager)))
    b = next(e for e in bare["labels"] if e["label"] == "is_child")["weighted"]
    assert b["value"] == w["value"] and b["high"] - b["low"] <= w["high"] - w["low"] + 1e-12
    for bad in ("-1", "101", "x"):
        r = client.http.get(f"/campaigns/{c['id']}/estimate?refits={bad}", headers=auth(manager))
        assert r.status_code == 400, bad


def test_estimate_of_a_missing_or_unlabeled_campaign(client, db, manager):
    make_corpus(db)
    r = client.http.get("/campaigns/99/estimate", headers=auth(manager))
    assert r.status_code == 404 and body_of(r)["error"] == "not_found"
    created = body_of(post_json(client, "/campaigns", {"family": "child", "budget": 6,
                                                       "seed": 2}, auth(manager)))
    estimate = body_of(client.http.get(f"/campaigns/{created['campaign_id']}/estimate",
                                       headers=auth(manager)))
    assert estimate["labeled_posts"] == 0 and estimate["em_converged"] is None
    is_child = next(e for e in estimate["labels"] if e["label"] == "is_child")
    assert is_child["weighted"]["value"] is None and is_child["weighted"]["n"] == 0
    assert client.http.get("/campaigns/abc/estimate",
                           headers=auth(manager)).status_code == 400
