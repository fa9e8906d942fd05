"""One live lease per coder and family, status changes that take effect at once, and the
revision rule, against a real PostgreSQL (no mocks): concurrency through real pools."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pg8000.native
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
from trainset.errors import Forbidden
from trainset.models import Coder
from trainset.services.labeling import CoderAdmin, LabelingService, LabelingSettings
from trainset.store.db import Pool, connect, parse_url
from trainset.store.labeling import LabelingStore
from trainset.store.migrations import default_sql_dir, migrate

CODERS = 30
ROUNDS = 3


def pooled_service(pool: Pool, gold_rate: float = 0.0) -> Callable[[Callable], object]:
    """Run ``fn(service)`` on a connection of its own from ``pool``, as a request would."""

    def call(fn):
        with pool.connection() as conn:
            return fn(LabelingService(LabelingStore(conn), LabelingSettings(gold_rate=gold_rate)))

    return call


def both_tabs(coders: list[Coder], tabs: list[Callable], mode: str = "work") -> list[list]:
    """Every coder's two tabs ask for their next task at the same moment; their answers."""
    barrier = threading.Barrier(len(coders) * len(tabs))

    def ask(coder: Coder, tab: Callable):
        def fn(svc: LabelingService):
            barrier.wait(30)
            return svc.next_task(coder, "child", mode)["task"]

        return tab(fn)

    with ThreadPoolExecutor(len(coders) * len(tabs)) as ex:
        futures = [[ex.submit(ask, c, t) for t in tabs] for c in coders]
        return [[f.result(60) for f in row] for row in futures]


def leases_per_coder(db) -> dict[int, int]:
    rows = db.run("SELECT coder_id, count(*) FROM tasks WHERE status = 'leased' GROUP BY 1")
    gold = db.run("SELECT coder_id, count(*) FROM gold_leases WHERE done_at IS NULL"
                  " AND purpose = 'qa' GROUP BY 1")
    held: dict[int, int] = {}
    for coder_id, n in rows + gold:
        held[coder_id] = held.get(coder_id, 0) + n
    return held


def assert_labels_sound(db, labels_per_post: int) -> None:
    over = db.run("SELECT post_id FROM labels WHERE revision = 1 AND kind = 'task'"
                  " GROUP BY post_id HAVING count(*) > :k", k=labels_per_post)
    twice = db.run("SELECT post_id, coder_id FROM labels WHERE revision = 1"
                   " GROUP BY 1, 2 HAVING count(*) > 1")
    revised = db.run("SELECT count(*) FROM labels WHERE revision > 1")[0][0]
    assert over == [] and twice == [] and revised == 0


@pytest.mark.parametrize("servers", [1, 2], ids=["one-pool", "two-pools"])
def test_two_tabs_of_each_coder_get_one_lease(db, database_url, servers):
    """30 coders each send two next-task calls at once, round after round with a submit in
    between; with two pools the tabs go through two 'server processes'."""
    coders = [make_coder(db, f"tab{i:02d}") for i in range(CODERS)]
    make_campaign(db, make_posts(db, CODERS * ROUNDS), labels_per_post=2)
    pools = [Pool(parse_url(database_url)) for _ in range(servers)]
    tabs = [pooled_service(pools[0]), pooled_service(pools[-1])]
    svc = service(db)
    labeled: dict[int, set[str]] = {c.id: set() for c in coders}
    try:
        for _ in range(ROUNDS):
            answers = both_tabs(coders, tabs)
            for coder, (first, second) in zip(coders, answers, strict=True):
                assert first is not None and second is not None
                assert first["post_id"] == second["post_id"], coder.name
                assert first["post_id"] not in labeled[coder.id]  # never a post back
            assert leases_per_coder(db) == {c.id: 1 for c in coders}
            for coder, (task, _) in zip(coders, answers, strict=True):
                assert svc.submit(coder, submission(task["post_id"]))["revision"] == 1
                labeled[coder.id].add(task["post_id"])
            assert leases_per_coder(db) == {}
    finally:
        for pool in pools:
            pool.close()
    assert_labels_sound(db, labels_per_post=2)
    assert db.run("SELECT count(*) FROM labels")[0][0] == CODERS * ROUNDS


def test_two_tabs_with_gold_mixed_in_get_the_same_post(db, db_pool):
    """With QA gold due half the time, the two tabs still agree, and nobody ever holds a task
    lease and a gold lease in one family."""
    coders = [make_coder(db, f"g{i:02d}") for i in range(12)]
    ids = make_posts(db, 40)
    make_campaign(db, ids[:30], labels_per_post=2)
    for post_id in ids[30:]:
        make_gold(db, post_id, "qa")
    tabs = [pooled_service(db_pool, gold_rate=0.5), pooled_service(db_pool, gold_rate=0.5)]
    svc = service(db)
    for _ in range(ROUNDS):
        answers = both_tabs(coders, tabs)
        for first, second in answers:
            assert first is not None and first["post_id"] == second["post_id"]
        assert leases_per_coder(db) == {c.id: 1 for c in coders}
        for coder, (task, _) in zip(coders, answers, strict=True):
            svc.submit(coder, submission(task["post_id"]))
    assert_labels_sound(db, labels_per_post=2)


class UnlockedStore(LabelingStore):
    """The store without the advisory lock: what any other code path leasing might do."""

    def lock_leases(self, coder_id: int, family: str) -> tuple[str | None, bool]:
        row = self.coder_by_id(coder_id)
        return (row["status"] if row else None), True


def test_without_the_lock_the_database_alone_keeps_one_lease(db, db_pool):
    """The unique index refuses the second lease; the service rolls back and returns the
    lease that won, so both tabs still agree."""
    coders = [make_coder(db, f"u{i:02d}") for i in range(CODERS)]
    make_campaign(db, make_posts(db, CODERS * 2), labels_per_post=2)

    def unlocked_tab(fn):
        with db_pool.connection() as conn:
            return fn(LabelingService(UnlockedStore(conn), LabelingSettings(gold_rate=0.0)))

    answers = both_tabs(coders, [unlocked_tab, unlocked_tab])
    assert all(a is not None and a["post_id"] == b["post_id"] for a, b in answers)
    assert leases_per_coder(db) == {c.id: 1 for c in coders}


def test_two_practice_tabs_get_the_same_post(db, db_pool):
    trainees = [make_coder(db, f"t{i:02d}", status="trainee") for i in range(8)]
    for post_id in make_posts(db, 5):
        make_gold(db, post_id, "practice")
    tabs = [pooled_service(db_pool), pooled_service(db_pool)]
    answers = both_tabs(trainees, tabs, mode="practice")
    assert all(a is not None and a["post_id"] == b["post_id"] for a, b in answers)
    held = db.run("SELECT coder_id, count(*) FROM gold_leases WHERE done_at IS NULL"
                  " GROUP BY 1")
    assert sorted(n for _, n in held) == [1] * len(trainees)


def test_the_database_refuses_a_second_lease_whatever_the_path(db):
    ana = make_coder(db, "ana")
    ids = make_posts(db, 3)
    make_campaign(db, ids[:2])
    make_gold(db, ids[2], "qa")
    service(db).next_task(ana, "child")  # leases the slot of ids[0]
    with pytest.raises(pg8000.native.DatabaseError, match="tasks_one_lease_per_coder"):
        db.run("UPDATE tasks SET status = 'leased', coder_id = :coder, leased_at = now(),"
               " lease_expires_at = now() + interval '1 hour' WHERE post_id = :post",
               coder=ana.id, post=ids[1])
    with pytest.raises(pg8000.native.DatabaseError, match="already holds a work lease"):
        db.run("INSERT INTO gold_leases (coder_id, post_id, family, purpose, lease_expires_at)"
               " VALUES (:coder, :post, 'child', 'qa', now() + interval '1 hour')",
               coder=ana.id, post=ids[2])


def test_own_expired_lease_is_freed_and_the_same_post_comes_back(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 3))
    svc = service(db)
    assert svc.next_task(ana, "child")["task"]["post_id"] == "p00000"
    db.run("UPDATE tasks SET lease_expires_at = now() - interval '1 second'"
           " WHERE status = 'leased'")
    assert svc.next_task(ana, "child")["task"]["post_id"] == "p00000"
    assert leases_per_coder(db) == {ana.id: 1}


# ---- status changes ------------------------------------------------------------------------


def admin_update(db, target: Coder, **body) -> Coder:
    """A manager changes ``target`` through CoderAdmin, as PATCH /coders/{id} does."""
    row = LabelingStore(db).coder_by_name("boss")
    boss = Coder.from_row(row) if row else make_coder(db, "boss", role="manager")
    return CoderAdmin(LabelingStore(db)).update(boss, target.id, body)


@pytest.mark.parametrize("status", ["revoked", "trainee"])
def test_revoke_or_demote_releases_task_and_qa_leases_at_once(db, status):
    ana, ben = make_coder(db, "ana"), make_coder(db, "ben")
    ids = make_posts(db, 2)
    make_campaign(db, ids[:1])
    make_gold(db, ids[1], "qa")
    svc = service(db)
    assert svc.next_task(ana, "child")["task"]["post_id"] == ids[0]
    assert svc.next_task(ben, "child")["task"] is None  # the only slot is ana's
    admin_update(db, ana, status=status)
    assert db.run("SELECT status, coder_id FROM tasks") == [["open", None]]
    assert svc.next_task(ben, "child")["task"]["post_id"] == ids[0]
    details = db.run("SELECT details FROM audit_log WHERE action = 'coder.update'")
    assert details == [[{"status": status, "role": None,
                         "released_leases": {"tasks": 1, "gold": 0}}]]
    # A QA gold lease goes too.
    cid = make_coder(db, "cid")
    assert service(db, gold_rate=1.0).next_task(cid, "child")["task"]["post_id"] == ids[1]
    admin_update(db, cid, status=status)
    assert db.run("SELECT count(*) FROM gold_leases WHERE done_at IS NULL")[0][0] == 0


def test_revoke_racing_next_task_leaves_no_lease(db, db_pool):
    """A manager revokes each coder at the moment the coder asks for a task: whichever comes
    first, the coder ends up holding nothing."""
    coders = [make_coder(db, f"r{i:02d}") for i in range(20)]
    boss = make_coder(db, "boss", role="manager")
    make_campaign(db, make_posts(db, 40))
    barrier = threading.Barrier(2 * len(coders))

    def ask(coder: Coder) -> str:
        with db_pool.connection() as conn:
            svc = LabelingService(LabelingStore(conn), LabelingSettings(gold_rate=0.0))
            barrier.wait(30)
            try:
                return "leased" if svc.next_task(coder, "child")["task"] else "none"
            except Forbidden:
                return "refused"

    def revoke(coder: Coder) -> str:
        with db_pool.connection() as conn:
            barrier.wait(30)
            CoderAdmin(LabelingStore(conn)).update(boss, coder.id, {"status": "revoked"})
            return "revoked"

    with ThreadPoolExecutor(2 * len(coders)) as ex:
        futures = [ex.submit(f, c) for c in coders for f in (ask, revoke)]
        outcomes = [f.result(60) for f in futures]
    assert set(outcomes) <= {"leased", "refused", "revoked"}
    assert leases_per_coder(db) == {}
    assert db.run("SELECT count(*) FROM tasks WHERE status = 'open'")[0][0] == 40


def test_demotion_keeps_practice_and_revocation_drops_it(db):
    ana = make_coder(db, "ana")
    ids = make_posts(db, 1)
    make_gold(db, ids[0], "practice")
    service(db).next_task(ana, "child", "practice")
    trainee = admin_update(db, ana, status="trainee")
    assert db.run("SELECT purpose FROM gold_leases WHERE done_at IS NULL") == [["practice"]]
    assert service(db).next_task(trainee, "child", "practice")["task"]["post_id"] == ids[0]
    admin_update(db, ana, status="revoked")
    assert db.run("SELECT count(*) FROM gold_leases")[0][0] == 0


def test_revoked_coder_can_do_nothing(db):
    ana = make_coder(db, "ana")
    ids = make_posts(db, 3)
    make_campaign(db, ids)
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission(ids[0]))
    svc.next_task(ana, "child")
    revoked = admin_update(db, ana, status="revoked")
    # The request-time coder (revoked) and a stale one read before the change: both refused.
    for who in (revoked, ana):
        with pytest.raises(Forbidden, match="revoked"):
            svc.next_task(who, "child")
        with pytest.raises(Forbidden, match="revoked"):
            svc.submit(who, submission(ids[1]))  # the lease that was released
        with pytest.raises(Forbidden, match="revoked"):
            svc.submit(who, submission(ids[0], CHILD_NO))  # a revision
    with pytest.raises(Forbidden, match="revoked"):
        svc.history(revoked)
    with pytest.raises(Forbidden, match="revoked"):
        svc.skip(revoked, ids[1], {"family": "child", "reason": "no"})
    assert db.run("SELECT count(*) FROM labels")[0][0] == 1


def test_demoted_coder_cannot_revise_task_labels_but_can_revise_practice(db):
    ana = make_coder(db, "ana")
    ids = make_posts(db, 2)
    make_campaign(db, ids[:1])
    make_gold(db, ids[1], "practice")
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission(ids[0]))
    svc.next_task(ana, "child", "practice")
    svc.submit(ana, submission(ids[1]))
    trainee = admin_update(db, ana, status="trainee")
    for who in (trainee, ana):  # ana: the coder as read before the demotion
        with pytest.raises(Forbidden, match="only certified coders can revise"):
            svc.submit(who, submission(ids[0], CHILD_NO))
    assert svc.submit(trainee, submission(ids[1], CHILD_NO))["revision"] == 2
    assert svc.history(trainee)["items"][0]["revision"] == 2


def test_revision_needs_no_lease_and_leaves_slots_alone(db):
    ana = make_coder(db, "ana")
    make_campaign(db, make_posts(db, 2))
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission("p00000", CHILD_YES))
    svc.next_task(ana, "child")  # now leases p00001
    before = db.run("SELECT id, status, coder_id FROM tasks ORDER BY id")
    assert svc.submit(ana, submission("p00000", CHILD_NO))["revision"] == 2
    assert db.run("SELECT id, status, coder_id FROM tasks ORDER BY id") == before


def test_revision_window_is_enforced(db):
    ana, ben = make_coder(db, "ana"), make_coder(db, "ben")
    make_campaign(db, make_posts(db, 2))
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission("p00000"))
    closed = LabelingService(LabelingStore(db), LabelingSettings(revision_window=timedelta(0)))
    with pytest.raises(Forbidden, match="can no longer be changed"):
        closed.submit(ana, submission("p00000", CHILD_NO))
    # A label stored eight days ago is past the default seven-day window.
    db.run("INSERT INTO labels (submission_id, post_id, family, coder_id, revision, kind,"
           " answers, coder_status, created_at) VALUES (CAST(:sid AS uuid), 'p00001', 'child',"
           " :coder, 1, 'task', CAST(:answers AS jsonb), 'certified',"
           " now() - interval '8 days')",
           sid=str(uuid.uuid4()), coder=ben.id, answers='{"is_child": false}')
    with pytest.raises(Forbidden, match="7 day"):
        svc.submit(ben, submission("p00001", CHILD_YES))
    assert svc.submit(ana, submission("p00000", CHILD_NO))["revision"] == 2


# ---- the migration on a database that already breaks the rule ----------------------------


def test_migration_releases_duplicate_leases_before_building_the_index(database_url, tmp_path):
    """Apply 0001-0005 in a schema of its own, create the states the new rules forbid, then
    apply 0006: it must succeed, keeping only each coder's newest lease."""
    conn = connect(parse_url(database_url))
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    old_dir.mkdir()
    new_dir.mkdir()
    for path in sorted(default_sql_dir().glob("*.sql")):
        version = path.name[:4]
        if version < "0006":
            shutil.copy(path, old_dir / path.name)
        if version <= "0006":
            shutil.copy(path, new_dir / path.name)
    conn.run("DROP SCHEMA IF EXISTS lease_migration_probe CASCADE")
    conn.run("CREATE SCHEMA lease_migration_probe")
    try:
        conn.run("SET search_path TO lease_migration_probe")
        migrate(conn, old_dir)
        _seed_rule_breaking_leases(conn)
        assert migrate(conn, new_dir) == ["0006_one_lease_per_coder"]
        leased = conn.run("SELECT coder_id, post_id FROM tasks WHERE status = 'leased'"
                          " ORDER BY coder_id")
        assert leased == [[1, "p2"]]  # ana's newest; the trainee's slot is open again
        gold = conn.run("SELECT coder_id, post_id, purpose FROM gold_leases"
                        " WHERE done_at IS NULL ORDER BY coder_id, purpose")
        assert gold == [[1, "g3", "practice"], [3, "g5", "qa"]]
        open_slots = conn.run("SELECT count(*) FROM tasks WHERE status = 'open'"
                              " AND coder_id IS NULL")
        assert open_slots == [[4]]
    finally:
        conn.run("RESET search_path")
        conn.run("DROP SCHEMA lease_migration_probe CASCADE")
        conn.close()


def _seed_rule_breaking_leases(conn) -> None:
    """ana (1) holds three task slots and a stale QA lease plus two practice leases; tia (2),
    a trainee, holds a task slot; cid (3) holds a task slot and a newer QA lease."""
    conn.run("INSERT INTO coders (name, status) VALUES ('ana', 'certified'),"
             " ('tia', 'trainee'), ('cid', 'certified')")
    posts = ["p0", "p1", "p2", "p3", "p4", "g1", "g2", "g3", "g4", "g5"]
    for post_id in posts:
        conn.run("INSERT INTO posts (id, text, family, text_hash) VALUES (:id, 'x', 'child',"
                 " :id)", id=post_id)
    conn.run("INSERT INTO campaigns (name, family) VALUES ('c', 'child')")
    leases = [("p0", 1, 30), ("p1", 1, 20), ("p2", 1, 10), ("p3", 2, 5), ("p4", 3, 50)]
    for post_id, coder, minutes_ago in leases:
        conn.run("INSERT INTO tasks (campaign_id, post_id, family, slot, status, coder_id,"
                 " leased_at, lease_expires_at) VALUES (1, :post, 'child', 1, 'leased', :coder,"
                 " now() - make_interval(mins => :ago), now() + interval '1 hour')",
                 post=post_id, coder=coder, ago=minutes_ago)
    gold = [("g1", 1, "qa", 40), ("g2", 1, "practice", 40), ("g3", 1, "practice", 5),
            ("g4", 2, "qa", 5), ("g5", 3, "qa", 1)]
    for post_id, coder, purpose, minutes_ago in gold:
        conn.run("INSERT INTO gold_posts (post_id, family, purpose, answers)"
                 " VALUES (:post, 'child', :purpose, '{}'::jsonb) ON CONFLICT DO NOTHING",
                 post=post_id, purpose=purpose)
        conn.run("INSERT INTO gold_leases (coder_id, post_id, family, purpose, leased_at,"
                 " lease_expires_at) VALUES (:coder, :post, 'child', :purpose,"
                 " now() - make_interval(mins => :ago), now() + interval '1 hour')",
                 coder=coder, post=post_id, purpose=purpose, ago=minutes_ago)
