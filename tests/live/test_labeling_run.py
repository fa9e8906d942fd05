"""A labeling run the way a lab runs it: many coders at once over HTTP, with retries,
second tabs and skips. Afterwards the database must show no label lost, misattributed,
revised unasked or over the labels a post asks for, and no coder ever held two leases."""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.factories import CHILD_NO, CHILD_YES, make_campaign, make_coder, make_posts
from tests.live.conftest import Client, run_clients, token_for

CODERS = 32
POSTS = 1100
LABELS_PER_POST = 2  # 2,200 slots: over 2,000 next-task + submit cycles


def test_concurrent_labeling_run_loses_and_misattributes_nothing(live_server, db, database_url):
    coders = [make_coder(db, f"lab{i:02d}") for i in range(CODERS)]
    make_campaign(db, make_posts(db, POSTS), labels_per_post=LABELS_PER_POST)
    acknowledged: dict[str, int] = {}  # submission id -> the coder who sent it
    skipped: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop_watching = threading.Event()
    double_leases: list[list] = []

    def watch() -> None:
        """Look, while the run goes on, for any coder holding two live leases."""
        from trainset.store.db import connect, parse_url

        conn = connect(parse_url(database_url))
        try:
            while not stop_watching.wait(0.05):
                double_leases.extend(conn.run(
                    "SELECT coder_id, family, count(*) FROM tasks WHERE status = 'leased'"
                    " AND lease_expires_at > now() GROUP BY 1, 2 HAVING count(*) > 1"))
        finally:
            conn.close()

    def label(coder) -> None:
        rng = random.Random(coder.id)
        tabs = [Client(live_server, token_for(coder)), Client(live_server, token_for(coder))]
        with ThreadPoolExecutor(2) as pool:
            while True:
                if rng.random() < 0.2:  # a second tab asks at the same moment
                    answers = list(pool.map(lambda c: c.get("/api/tasks/next?family=child"),
                                            tabs))
                    tasks = [body["task"] for status, body in answers if status == 200]
                    assert len(tasks) == 2, answers
                    # Never two different posts; at the end of the queue one tab may see
                    # nothing left just before another coder's skip frees a slot.
                    ids = {t["post_id"] for t in tasks if t}
                    assert len(ids) <= 1, f"two tabs of {coder.name} got two posts: {ids}"
                    task = next((t for t in tasks if t), None)
                else:
                    status, body = tabs[0].get("/api/tasks/next?family=child")
                    assert status == 200, body
                    task = body["task"]
                if task is None:
                    break
                post_id = task["post_id"]
                if rng.random() < 0.05:
                    status, body = tabs[0].post(f"/api/tasks/{post_id}/skip",
                                                {"family": "child", "reason": "image missing"})
                    assert status == 200, body
                    with lock:
                        skipped.append((coder.id, post_id))
                    continue
                submission = {"submission_id": str(uuid.uuid4()), "post_id": post_id,
                              "family": "child",
                              "answers": CHILD_YES if rng.random() < 0.3 else CHILD_NO,
                              "seconds_spent": round(rng.uniform(2, 40), 1)}
                status, first = tabs[0].post("/api/labels", submission)
                assert status == 200, first
                if rng.random() < 0.1:  # the answer is sent again (a retry, the other tab)
                    status, again = tabs[1].post("/api/labels", submission)
                    assert status == 200 and again.pop("duplicate") is True, again
                    assert again == {k: v for k, v in first.items() if k != "duplicate"}
                with lock:
                    acknowledged[submission["submission_id"]] = coder.id
        for tab in tabs:
            tab.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        errors = run_clients(coders, label)
    finally:
        stop_watching.set()
        watcher.join()
    assert errors == []
    assert len(acknowledged) >= 2000

    rows = db.run("SELECT submission_id::text, coder_id, revision, post_id FROM labels")
    stored = {sid: (coder_id, revision) for sid, coder_id, revision, _ in rows}
    assert [s for s in acknowledged if s not in stored] == []  # none acknowledged and lost
    assert [s for s, c in acknowledged.items() if stored[s][0] != c] == []  # none misattributed
    assert [s for s, (_, revision) in stored.items() if revision != 1] == []  # none unasked
    assert len(stored) == len(acknowledged)
    over = db.run("SELECT post_id FROM labels GROUP BY post_id HAVING count(*) > :k",
                  k=LABELS_PER_POST)
    assert over == []
    twice = db.run("SELECT post_id, coder_id FROM labels GROUP BY 1, 2 HAVING count(*) > 1")
    assert twice == []
    assert double_leases == []
    # Every slot was either labeled or is still open after skips; none is stuck on a lease.
    stuck = db.run("SELECT count(*) FROM tasks WHERE status = 'leased'")[0][0]
    assert stuck == 0

