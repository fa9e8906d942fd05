"""Assignment, labels, revisions, skips, gold and practice against a real PostgreSQL."""

import threading
import time
import uuid

import pytest

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
from trainset.errors import Conflict, Forbidden, InvalidInput, NotFound
from trainset.store.db import connect, parse_url


def test_next_task_leases_and_reload_returns_same_post(db):
    coder = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 3))
    svc = service(db)
    first = svc.next_task(coder, "child")["task"]
    again = svc.next_task(coder, "child")["task"]
    assert first["post_id"] == again["post_id"] == "p00000"
    assert set(first) == {"post_id", "family", "text", "image_url", "lease_expires_at"}


def test_empty_queue_is_a_clear_answer(db):
    coder = make_coder(db, "ana")
    result = service(db).next_task(coder, "health")
    assert result["task"] is None and "No posts" in result["message"]
    assert result["progress"]["remaining_in_family"] == 0


def test_post_goes_to_labels_per_post_distinct_coders_only(db):
    coders = [make_coder(db, f"c{i}") for i in range(3)]
    make_campaign(db, make_posts(db, 1), labels_per_post=2)
    svc = service(db)
    got = [svc.next_task(c, "child")["task"] for c in coders]
    assert [t["post_id"] if t else None for t in got] == ["p00000", "p00000", None]
    svc.submit(coders[0], submission("p00000"))
    # The coder who labeled it never gets it again, even with a slot free later.
    assert svc.next_task(coders[0], "child")["task"] is None


def test_expired_lease_returns_to_pool_and_late_submit_conflicts(db):
    ana, ben = make_coder(db, "ana"), make_coder(db, "ben")
    make_campaign(db, make_posts(db, 1))
    short = service(db, lease_seconds=1)
    assert short.next_task(ana, "child")["task"]["post_id"] == "p00000"
    assert short.next_task(ben, "child")["task"] is None
    time.sleep(1.2)
    assert short.next_task(ben, "child")["task"]["post_id"] == "p00000"
    with pytest.raises(Conflict, match="not leased to you"):
        short.submit(ana, submission("p00000"))
    assert short.submit(ben, submission("p00000"))["revision"] == 1


def test_retry_with_same_submission_id_stores_once(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    svc = service(db)
    svc.next_task(ana, "child")
    body = submission("p00000")
    first = svc.submit(ana, body)
    second = svc.submit(ana, body)
    assert first["label_id"] == second["label_id"] and second["duplicate"] is True
    assert db.run("SELECT count(*) FROM labels")[0][0] == 1
    # Another coder cannot reuse the id.
    ben = make_coder(db, "ben")
    with pytest.raises(Conflict, match="another coder"):
        svc.submit(ben, body)


def test_revision_adds_a_row_and_keeps_the_old_one(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 1))
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission("p00000", CHILD_YES))
    revised = svc.submit(ana, submission("p00000", CHILD_NO))
    assert revised["revision"] == 2
    rows = db.run("SELECT revision, answers FROM labels ORDER BY revision")
    assert rows == [[1, CHILD_YES], [2, CHILD_NO]]
    current = db.run("SELECT revision FROM current_labels")
    assert current == [[2]]
    history = svc.history(ana)["items"]
    assert [(h["post_id"], h["revision"]) for h in history] == [("p00000", 2)]


def test_invalid_label_stores_nothing_and_lists_every_error(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 1))
    svc = service(db)
    svc.next_task(ana, "child")
    with pytest.raises(InvalidInput) as caught:
        svc.submit(ana, submission("p00000", {"is_child": True, "age": ["Teen"], "x": 1}))
    fields = {d["field"] for d in caught.value.details}
    assert fields == {"age", "x"}
    with pytest.raises(InvalidInput) as caught:
        svc.submit(ana, {"post_id": "", "family": "pets", "answers": {}, "extra": 1})
    assert {d["field"] for d in caught.value.details} == {
        "submission_id", "post_id", "family", "extra"}
    assert db.run("SELECT count(*) FROM labels")[0][0] == 0


def test_label_for_unknown_or_unleased_post(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    svc = service(db)
    with pytest.raises(NotFound):
        svc.submit(ana, submission("nope"))
    with pytest.raises(Conflict):
        svc.submit(ana, submission("p00001"))


def test_roles_and_statuses(db):
    trainee = make_coder(db, "tia", status="trainee")
    revoked = make_coder(db, "rex", status="revoked")
    make_campaign(db, make_posts(db, 1))
    svc = service(db)
    with pytest.raises(Forbidden, match="practice"):
        svc.next_task(trainee, "child")
    with pytest.raises(Forbidden, match="revoked"):
        svc.next_task(revoked, "child", "practice")
    with pytest.raises(InvalidInput):
        svc.next_task(trainee, "pets", "practice")
    with pytest.raises(InvalidInput):
        svc.next_task(trainee, "child", "play")


def test_skip_needs_reason_and_post_is_not_served_again_to_that_coder(db):
    ana, ben = make_coder(db, "ana"), make_coder(db, "ben")
    make_campaign(db, make_posts(db, 1))
    svc = service(db)
    svc.next_task(ana, "child")
    with pytest.raises(InvalidInput):
        svc.skip(ana, "p00000", {"family": "child", "reason": "  "})
    svc.skip(ana, "p00000", {"family": "child", "reason": "offensive image"})
    assert svc.next_task(ana, "child")["task"] is None
    assert svc.next_task(ben, "child")["task"]["post_id"] == "p00000"
    assert db.run("SELECT reason FROM skips") == [["offensive image"]]
    with pytest.raises(Conflict):
        svc.skip(ana, "p00000", {"family": "child", "reason": "again"})


def test_gold_is_mixed_in_with_the_same_payload_shape(db):
    ana = make_coder(db, "ana")
    ids = make_posts(db, 3)
    make_campaign(db, ids[:2])
    make_gold(db, ids[2], "qa")
    svc = service(db, gold_rate=1.0)
    task = svc.next_task(ana, "child")["task"]
    assert task["post_id"] == ids[2]
    receipt = svc.submit(ana, submission(ids[2], CHILD_NO))
    assert "practice" not in receipt  # QA gold gives no feedback
    # Gold due no more: regular tasks follow.
    assert svc.next_task(ana, "child")["task"]["post_id"] == ids[0]
    assert db.run("SELECT kind FROM labels") == [["qa"]]


def test_practice_feedback_and_score(db):
    tia = make_coder(db, "tia", status="trainee")
    ids = make_posts(db, 2)
    for i in ids:
        make_gold(db, i, "practice")
    svc = service(db)
    first = svc.next_task(tia, "child", "practice")["task"]
    receipt = svc.submit(tia, submission(first["post_id"], {
        "is_child": True, "age": ["0 to less than 1 year (baby/infant)"]}))
    fb = receipt["practice"]
    assert fb["correct"] is False and fb["rationale"]
    age = next(f for f in fb["fields"] if f["field"] == "age")
    assert age["missed"] == ["1 to 4 years (toddler/pre-school)"]
    assert age["added"] == ["0 to less than 1 year (baby/infant)"]
    second = svc.next_task(tia, "child", "practice")["task"]
    assert second["post_id"] != first["post_id"]
    assert svc.submit(tia, submission(second["post_id"], CHILD_YES))["practice"]["correct"]
    me = svc.me(tia)
    assert me["practice"]["answered"] == 2 and me["practice"]["score"] == 0.5
    assert svc.next_task(tia, "child", "practice")["task"] is None


def test_concurrent_assignment_never_duplicates_or_loses(database_url, db):
    n_posts, n_threads = 120, 16
    coders = [make_coder(db, f"w{i}") for i in range(n_threads)]
    make_campaign(db, make_posts(db, n_posts), labels_per_post=2)
    served: list[tuple[int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n_threads)

    def work(coder):
        conn = connect(parse_url(database_url))
        svc = service(conn)
        try:
            barrier.wait()
            while True:
                task = svc.next_task(coder, "child")["task"]
                if task is None:
                    return
                with lock:
                    served.append((coder.id, task["post_id"]))
                svc.submit(coder, submission(task["post_id"], sid=str(uuid.uuid4())))
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in coders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert len(served) == len(set(served)) == n_posts * 2  # nobody got a post twice
    labels = db.run("SELECT post_id, count(DISTINCT coder_id), count(*) FROM labels"
                    " GROUP BY post_id")
    assert len(labels) == n_posts and all(r[1] == 2 and r[2] == 2 for r in labels)
    assert db.run("SELECT count(*) FROM tasks WHERE status <> 'done'")[0][0] == 0


def test_concurrent_retries_of_one_submission_store_once(database_url, db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 1))
    service(db).next_task(ana, "child")
    body = submission("p00000")
    results, errors = [], []

    def send():
        conn = connect(parse_url(database_url))
        try:
            results.append(service(conn).submit(ana, body))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert len({r["label_id"] for r in results}) == 1
    assert sum(not r["duplicate"] for r in results) == 1
    assert db.run("SELECT count(*) FROM labels")[0][0] == 1


def test_a_coder_name_with_a_trailing_newline_is_refused(db):
    """The name rule holds for the whole name, from every entry point (CLI, service)."""
    from trainset.errors import InvalidInput
    from trainset.services.labeling import CoderAdmin
    from trainset.store.labeling import LabelingStore

    with pytest.raises(InvalidInput):
        CoderAdmin(LabelingStore(db)).create(None, {"name": "ana\n"})
    assert db.run("SELECT count(*) FROM coders")[0][0] == 0
