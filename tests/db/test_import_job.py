"""The import job end to end on one machine: an object put under corpus/ or gold/ in the S3
stand-in starts the state machine of ``trainset/data/import_job.asl.json`` in moto's Step
Functions interpreter (one batch as a task, several as a Distributed Map over the plan's list
in S3), each task run in-process by ``lambdas/imports/handler.py`` against the real database."""

from __future__ import annotations

import csv
import io
import json
import urllib.request

import pytest

from trainset.local import pipeline
from trainset.local.imports import start_local_imports
from trainset.services.imports import BATCH_ROWS_VARIABLE, REJECTS_SUFFIX
from trainset.store.imports import ImportStore

BATCH_ROWS = 4


@pytest.fixture()
def local(db, database_url, trainset_home, monkeypatch):
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("TRAINSET_IMPORT_STATE_MACHINE_ARN", raising=False)
    monkeypatch.setenv(BATCH_ROWS_VARIABLE, str(BATCH_ROWS))
    fresh_stand_in()
    runner = start_local_imports(poll_seconds=0.1, home=trainset_home)
    yield runner
    runner.stop()
    pipeline.stop_stand_in()


def fresh_stand_in() -> str:
    """The local AWS stand-in, emptied: moto keeps its state per process, not per server."""
    url = pipeline.ensure_stand_in()
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"),
                           timeout=10).close()
    return url


def put(local, key: str, data: bytes) -> None:
    local.s3().put_object(Bucket=local.bucket, Key=key, Body=data)


def rejects_of(local, key: str) -> list[dict[str, str]]:
    data = local.s3().get_object(Bucket=local.bucket, Key=key + REJECTS_SUFFIX)["Body"].read()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def posts(db) -> dict[str, str]:
    return dict(db.run("SELECT id, text FROM posts"))


def the_import(db, key: str) -> dict:
    row = ImportStore(db).by_key(key)
    assert row is not None, key
    return row


def corpus_csv() -> tuple[bytes, dict[int, str], set[str]]:
    """16 data rows in 4 batches of 4: bad rows in batches 1, 2 and 4, a quoted text with line
    breaks, a blank line, and an id given again three batches later (its first row kept)."""
    lines = ["id,text,keyword,created_at"]
    bad: dict[int, str] = {}
    good: set[str] = set()
    for i in range(1, 18):
        line = 1 + sum(text.count("\n") + 1 for text in lines)
        if i == 2:
            lines.append("p2,,park,")
            bad[line] = "missing text"
        elif i == 5:
            lines.append('p5,"a toddler\nat the park\non two lines",park,')
            good.add("p5")
        elif i == 6:
            lines.append("")
        elif i == 9:
            lines.append("p9,the ninth post,park,not a date")
            bad[line] = "bad created_at"
        elif i == 14:
            lines.append("p3,the third post again,park,")
            bad[line] = "duplicate id (also at line 4 of this file"
        elif i == 17:
            lines.append("p17,too,many,fields,here")
            bad[line] = "wrong number of fields"
        else:
            lines.append(f"p{i},post number {i},park,2022-03-01T12:00:00Z")
            good.add(f"p{i}")
    return ("\r\n".join(lines) + "\r\n").encode(), bad, good


def test_a_file_over_several_batches_imports_every_row_once_and_keeps_every_reject(local, db):
    data, bad, good = corpus_csv()
    key = "corpus/manual/posts.csv"
    put(local, key, data)
    assert local.wait_idle(120)
    row = the_import(db, key)
    assert row["status"] == "succeeded", row["error"]
    assert row["batches"] == 4 and row["rows_total"] == 16
    stored = posts(db)
    assert set(stored) == good
    assert stored["p3"] == "post number 3" and "\n" in stored["p5"]
    # counts equal the database and the rejects file
    assert (row["rows_read"], row["inserted"], row["updated"], row["unchanged"],
            row["rejected"]) == (16, len(good), 0, 0, len(bad))
    rejects = rejects_of(local, key)
    assert len(rejects) == row["rejected"]
    assert [int(r["line"]) for r in rejects] == sorted(bad)
    for r in rejects:
        assert r["file"] == "posts.csv"
        assert r["reason"].startswith(bad[int(r["line"])]), r
    assert {r["id"] for r in rejects} == {"p2", "p9", "p3", ""}  # too many fields: no id read
    # the batches' counts add up to the totals
    batches = ImportStore(db).batches_of(row["id"], row["run"])
    assert [b["batch"] for b in batches] == [1, 2, 3, 4]
    assert sum(b["rejected"] for b in batches) == len(bad)
    # the local runner keeps the rejects file beside the local files
    kept = local.home / "imports" / (key + REJECTS_SUFFIX)
    assert kept.read_bytes().decode().count("\n") == len(bad) + 1


def test_running_the_job_again_on_the_same_upload_duplicates_nothing(local, db):
    data, bad, good = corpus_csv()
    key = "corpus/manual/posts.csv"
    put(local, key, data)
    assert local.wait_idle(120)
    first = the_import(db, key)
    db.run("UPDATE posts SET text = 'changed since' WHERE id = 'p1'")
    local.rerun(key)
    assert local.wait_idle(120)
    again = the_import(db, key)
    assert again["status"] == "succeeded" and again["run"] != first["run"]
    assert db.run("SELECT count(*) FROM posts")[0][0] == len(good)
    assert posts(db)["p1"] == "post number 1"
    assert (again["inserted"], again["updated"], again["unchanged"], again["rejected"]) == (
        0, 1, len(good) - 1, len(bad))
    assert len(rejects_of(local, key)) == len(bad)
    # the same object's event delivered again starts nothing new
    local.handled.clear()
    assert local.wait_idle(60)
    assert the_import(db, key)["run"] == again["run"]


def test_a_small_file_is_one_batch(local, db, monkeypatch):
    key = "corpus/manual/small.jsonl"
    rows = [{"id": "a1", "text": "one"}, {"id": "a2", "text": "two"}, {"id": "a3"}]
    put(local, key, "\n".join(json.dumps(r) for r in rows).encode())
    assert local.wait_idle(60)
    row = the_import(db, key)
    assert (row["status"], row["batches"], row["inserted"], row["rejected"]) == (
        "succeeded", 1, 2, 1)
    assert [(r["line"], r["reason"]) for r in rejects_of(local, key)] == [("3", "missing text")]


def test_a_jsonl_file_over_several_batches(local, db):
    key = "corpus/manual/posts.jsonl"
    lines = []
    for i in range(1, 12):
        lines.append("{not json" if i == 6 else json.dumps({"id": f"j{i % 9}", "text": f"t{i}"}))
    put(local, key, ("\n".join(lines) + "\n").encode())
    assert local.wait_idle(60)
    row = the_import(db, key)
    assert row["status"] == "succeeded" and row["batches"] == 3
    assert posts(db) == {f"j{i}": f"t{i}" for i in (1, 2, 3, 4, 5, 7, 8)} | {"j0": "t9"}
    rejects = rejects_of(local, key)
    assert [(r["line"], r["reason"].split(":")[0]) for r in rejects] == [
        ("6", "bad JSON"), ("10", "duplicate id (also at line 1 of this file, which is kept)"),
        ("11", "duplicate id (also at line 2 of this file, which is kept)")]


def test_a_gold_file_is_one_transaction_with_its_rejects(local, db):
    key = "gold/practice/manual/practice.csv"
    yes = json.dumps({"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]})
    lines = ["id,text,family,answers,rationale",
             f'g1,a toddler,child,"{yes.replace(chr(34), chr(34) * 2)}",look at the shoes',
             'g2,no child,child,"{""is_child"": false}",',
             'g3,bad answers,child,"{""is_child"": ""maybe""}",']
    put(local, key, ("\n".join(lines) + "\n").encode())
    assert local.wait_idle(60)
    row = the_import(db, key)
    assert row["status"] == "succeeded", row["error"]
    assert (row["kind"], row["purpose"], row["batches"], row["inserted"], row["rejected"],
            row["posts_created"]) == ("gold", "practice", 1, 2, 1, 2)
    assert dict(db.run("SELECT post_id, purpose FROM gold_posts")) == {
        "g1": "practice", "g2": "practice"}
    (reject,) = rejects_of(local, key)
    assert reject["line"] == "4" and reject["file"] == "practice.csv"
    assert reject["reason"].startswith("answers are not a valid child label")


def test_a_file_that_cannot_be_imported_fails_with_the_reason(local, db):
    key = "corpus/manual/no-text.csv"
    put(local, key, b"id,keyword\nx1,park\n")
    assert local.wait_idle(60)
    row = the_import(db, key)
    assert row["status"] == "failed"
    assert "no-text.csv: no 'text' column" in row["error"]
    assert db.run("SELECT count(*) FROM posts")[0][0] == 0


def test_parquet_without_pyarrow_where_the_job_runs_fails_saying_so(local, db, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "pyarrow" else real(name, *rest))
    key = "corpus/manual/posts.parquet"
    put(local, key, b"PAR1 not really")
    assert local.wait_idle(60)
    row = the_import(db, key)
    assert row["status"] == "failed"
    assert "posts.parquet: Parquet files need pyarrow" in row["error"]
