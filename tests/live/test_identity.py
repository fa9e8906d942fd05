"""Every answer belongs to its caller, with many coders calling the real server at once."""

from __future__ import annotations

import uuid

from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from tests.live.conftest import Client, run_clients, token_for

ROUNDS = 60


def test_concurrent_callers_only_ever_act_as_themselves(live_server, db):
    coders = [make_coder(db, f"coder{i}") for i in range(8)]
    trainee = make_coder(db, "trainee0", status="trainee")
    manager = make_coder(db, "boss", role="manager")
    post_ids = make_posts(db, 8 * ROUNDS)
    make_campaign(db, post_ids)
    callers = [*coders, manager]
    seen: dict[str, list[tuple[str, int, object]]] = {c.name: [] for c in callers}
    acknowledged: dict[str, list[str]] = {c.name: [] for c in coders}

    def work(coder) -> None:
        client = Client(live_server, token_for(coder))
        is_manager = coder.name == "boss"
        for _ in range(ROUNDS):
            status, body = client.get("/api/me")
            seen[coder.name].append(("me", status, body.get("name")))
            status, body = client.get("/api/coders")
            seen[coder.name].append(("coders", status, None))
            status, body = client.request(
                "PATCH", f"/api/coders/{trainee.id}", {"status": "trainee"})
            seen[coder.name].append(("patch", status, None))
            if is_manager:
                continue
            status, body = client.get("/api/tasks/next?family=child")
            task = body.get("task") if status == 200 else None
            if task:
                sid = str(uuid.uuid4())
                status, body = client.post("/api/labels", {
                    "submission_id": sid, "post_id": task["post_id"], "family": "child",
                    "answers": CHILD_YES})
                if status == 200:
                    acknowledged[coder.name].append(sid)
        client.close()

    assert run_clients(callers, work) == []

    for coder in callers:
        answers = seen[coder.name]
        assert {name for kind, _, name in answers if kind == "me"} == {coder.name}
        listing = {status for kind, status, _ in answers if kind == "coders"}
        patching = {status for kind, status, _ in answers if kind == "patch"}
        expected = {200} if coder.name == "boss" else {403}
        assert listing == expected, coder.name
        assert patching == expected, coder.name

    # Every acknowledged label is stored once, under the coder who sent it, as a first label.
    for coder in coders:
        sids = acknowledged[coder.name]
        assert sids, f"{coder.name} labeled nothing"
        rows = db.run(
            "SELECT coder_id, revision FROM labels WHERE submission_id::text = ANY(:sids)",
            sids=sids)
        assert len(rows) == len(sids)
        assert {tuple(r) for r in rows} == {(coder.id, 1)}
    # Only the manager ever changed the trainee (the audit trail names who acted).
    actors = {r[0] for r in db.run("SELECT DISTINCT actor_id FROM audit_log WHERE target = :t"
                                   " AND action = 'coder.update'",
                                   t=trainee.name)}
    assert actors <= {manager.id}
