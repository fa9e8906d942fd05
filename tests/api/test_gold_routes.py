"""POST /gold/imports and GET /gold, and the gold counts in GET /progress, through the app."""

import json

from tests.api.conftest import auth
from tests.factories import CHILD_NO, CHILD_YES, make_campaign, make_coder, make_posts


def body_of(response):
    return json.loads(response.body)


def send(client, payload, headers):
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return client.http.post("/gold/imports", body=raw, headers=headers)


def csv_content(rows):
    lines = ["id,text,family,answers,rationale"]
    for post_id, answers in rows:
        quoted = json.dumps(answers).replace('"', '""')
        lines.append(f'{post_id},text of {post_id},child,"{quoted}",why')
    return "\n".join(lines) + "\n"


def stored(db):
    return (db.run("SELECT count(*) FROM posts")[0][0],
            db.run("SELECT count(*) FROM gold_posts")[0][0])


def test_manager_imports_and_lists_gold(client, db, manager):
    ids = make_posts(db, 1)
    make_campaign(db, ids, name="spring")
    content = csv_content([("g1", CHILD_YES), ("g2", CHILD_NO), (ids[0], CHILD_YES),
                           ("g3", {"is_child": True})])
    r = send(client, {"purpose": "practice", "format": "csv", "content": content}, auth(manager))
    assert r.status_code == 200, r.body
    data = body_of(r)
    assert (data["new"], data["updated"], data["unchanged"], data["rejected"]) == (2, 0, 0, 2)
    assert data["posts_created"] == 2
    assert [(x["line"], x["id"]) for x in data["rejects"]] == [(4, ids[0]), (5, "g3")]
    assert "already in campaign 'spring'" in data["rejects"][0]["reason"]
    assert stored(db) == (3, 2)

    again = body_of(send(client, {"purpose": "practice", "format": "csv", "content": content},
                         auth(manager)))
    assert (again["new"], again["unchanged"]) == (0, 2)

    page = body_of(client.http.get("/gold?family=child&limit=1", headers=auth(manager)))
    assert [i["post_id"] for i in page["items"]] == ["g2"]
    assert page["items"][0]["answers"] == CHILD_NO and page["items"][0]["purpose"] == "practice"
    assert page["next_before"] == "child:g2"
    rest = body_of(client.http.get("/gold?family=child&before=child:g2", headers=auth(manager)))
    assert [i["post_id"] for i in rest["items"]] == ["g1"] and rest["next_before"] is None
    qa = body_of(client.http.get("/gold?purpose=qa", headers=auth(manager)))
    assert qa["items"] == []

    progress = body_of(client.http.get("/progress", headers=auth(manager)))
    assert progress["gold"]["child"] == {"practice": 2, "qa": 0}
    assert all(c["practice_done"] == [] for c in progress["coders"])


def test_many_rejects_are_bounded(client, db, manager):
    rows = [(f"g{i}", {"is_child": True}) for i in range(30)] + [("ok", CHILD_NO)]
    data = body_of(send(client, {"purpose": "qa", "format": "csv",
                                 "content": csv_content(rows)}, auth(manager)))
    assert data["rejected"] == 30 and len(data["rejects"]) == 20 and data["new"] == 1


def test_coders_cannot_use_gold_routes(client, db):
    ana = make_coder(db, "ana")
    content = csv_content([("g1", CHILD_YES)])
    r = send(client, {"purpose": "qa", "format": "csv", "content": content}, auth(ana))
    assert r.status_code == 403 and body_of(r)["error"] == "forbidden"
    assert client.http.get("/gold", headers=auth(ana)).status_code == 403
    assert stored(db) == (0, 0)


def test_bad_content_is_refused_with_details_and_nothing_stored(client, db, manager):
    cases = [
        {"purpose": "qa", "format": "csv", "content": "id,text\nx,hello\n"},
        {"purpose": "qa", "format": "csv", "content": csv_content([("g1", {"is_child": 1})])},
        {"purpose": "qa", "format": "jsonl", "content": "{not json\n"},
        {"purpose": "qa", "format": "csv", "content": csv_content([("d", CHILD_YES),
                                                                  ("d", CHILD_YES)])},
        {"purpose": "gold", "format": "csv", "content": csv_content([("g1", CHILD_YES)])},
        {"purpose": "qa", "format": "xlsx", "content": "x"},
        {"purpose": "qa", "format": "csv", "content": ""},
    ]
    for payload in cases:
        r = send(client, payload, auth(manager))
        assert r.status_code == 400, (payload, r.body)
        data = body_of(r)
        assert data["error"] == "invalid_input" and data["details"], data
        assert "Traceback" not in r.body.decode()
    details = body_of(send(client, cases[1], auth(manager)))["details"]
    assert details[0]["field"] == "content line 2"
    assert "is_child: must be true or false" in details[0]["message"]
    dup = body_of(send(client, cases[3], auth(manager)))["details"]
    assert len(dup) == 2 and "lines content:2, content:3" in dup[0]["message"]
    assert body_of(send(client, cases[0], auth(manager)))["message"].startswith(
        "content: no 'family' or 'answers' column")
    assert client.http.get("/gold?before=nonsense", headers=auth(manager)).status_code == 400
    assert stored(db) == (0, 0)
