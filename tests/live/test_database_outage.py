"""PostgreSQL stops for 10 s in the middle of a labeling run and comes back: the server
recovers by itself, answers 503 (never a 500 or a hang) meanwhile, and every label it
acknowledged is stored. Runs on a PostgreSQL of its own, so stopping it harms no other test."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from tests.live.conftest import Client, run_clients, serving, token_for
from trainset.store.db import connect, parse_url
from trainset.store.migrations import migrate

OUTAGE_SECONDS = 10


@pytest.fixture()
def own_postgres(tmp_path):
    import pgserver

    server = pgserver.get_server(str(tmp_path / "pg"), cleanup_mode="stop")
    conn = connect(parse_url(server.get_uri()))
    try:
        migrate(conn)
    finally:
        conn.close()
    yield server
    server.cleanup()


def test_server_recovers_from_a_database_outage_and_loses_no_label(own_postgres, tmp_path):
    from pgserver._commands import pg_ctl

    pg = own_postgres
    conn = connect(parse_url(pg.get_uri()))
    coders = [make_coder(conn, f"night{i}") for i in range(6)]
    make_campaign(conn, make_posts(conn, 3000))
    conn.close()
    acknowledged: dict[str, int] = {}
    statuses: list[int] = []
    lock = threading.Lock()
    done = threading.Event()

    def label(coder) -> None:
        client = Client(server, token_for(coder), timeout=60)
        while not done.is_set():
            status, body = client.get("/api/tasks/next?family=child")
            with lock:
                statuses.append(status)
            if status != 200:
                assert status == 503, (status, body)
                time.sleep(0.2)
                continue
            submission = {"submission_id": str(uuid.uuid4()), "post_id": body["task"]["post_id"],
                          "family": "child", "answers": CHILD_YES}
            while True:  # as the page's outbox does: resend the same answer until stored
                status, answer = client.post("/api/labels", submission)
                with lock:
                    statuses.append(status)
                if status == 200:
                    with lock:
                        acknowledged[submission["submission_id"]] = coder.id
                    break
                assert status == 503, (status, answer)
                time.sleep(0.2)
        client.close()

    threads = threading.Thread(target=lambda: errors.extend(run_clients(coders, label)))
    errors: list[BaseException] = []
    with serving(pg.get_uri(), tmp_path / "home") as server:
        try:
            threads.start()
            time.sleep(2)
            before_outage = len(acknowledged)
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)
            time.sleep(OUTAGE_SECONDS)
            pg.ensure_postgres_running()
            time.sleep(4)
            done.set()
            threads.join(120)
        finally:
            done.set()
    assert errors == []
    assert 503 in statuses  # the outage was seen, and answered as one
    assert before_outage > 0 and len(acknowledged) > before_outage + 10  # it labeled again after
    conn = connect(parse_url(pg.get_uri()))
    try:
        rows = dict(conn.run("SELECT submission_id::text, coder_id FROM labels"))
    finally:
        conn.close()
    assert {sid: rows.get(sid) for sid in acknowledged} == acknowledged
