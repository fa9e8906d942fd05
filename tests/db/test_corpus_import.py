"""The bulk import against a real PostgreSQL: what it stores is what the row checker says.

Files are read in columnar blocks and written by binary COPY (straight into posts for new ids,
through the staging table and an upsert otherwise); the posts stored and the rejects file must
be exactly the row reader's and checker's answers, whichever way a batch went.
"""

import csv
import json
from datetime import UTC, datetime

import pytest

from trainset.corpus.ingest import FirstIdWins, Reject, check_row, read_rows
from trainset.services.ingest import import_files
from trainset.store.corpus import CorpusStore


def expected_posts(*paths, max_text=20_000):
    """What the row checker keeps, file after file (a later file updates a post)."""
    posts, rejects = {}, []
    for path in paths:
        seen = FirstIdWins()
        for raw in read_rows(path):
            checked = check_row(raw, max_text)
            if not isinstance(checked, Reject):
                checked = seen.check(checked, raw) or checked
            if isinstance(checked, Reject):
                raw = checked.raw.encode("utf-8", errors="replace").decode()  # as written
                rejects.append([checked.file, str(checked.line), checked.reason,
                                checked.id or "", raw])
            else:
                posts[checked.id] = [checked.id, checked.text, checked.image_key,
                                     checked.keyword, checked.family, checked.author,
                                     checked.created_at, checked.text_hash, checked.extra]
    return posts, rejects


def stored_posts(db):
    return {r[0]: r for r in db.run(
        "SELECT id, text, image_key, keyword, family, author, created_at, text_hash, extra"
        " FROM posts")}


def rejects_file(path):
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))[1:]


def tricky_csv(path):
    path.write_bytes(
        "id,text,keyword,family,created_at,image_url,author,lang,score\n"
        '1,"A toddler, at the park",toddler,child,2022-03-01T10:00:00Z,https://x/i.jpg,ann,en,3\n'
        "2,,toddler,child,,,,,\n"
        ',"no id",kid,child,,,,,\n'
        '3,"bad date",kid,child,yesterday,,,,\n'
        '4,"fam",kid,pets,,,,,\n'
        '5,"multi\r\nline ""quoted"" text",kid, child ,Wed Oct 10 20:19:24 +0000 2018,,,,\n'
        "6,short\n"
        f'7,"{"x" * 30_000}",kid,child,,,,,\n'
        '8,"Ünïcödé ＴＥＸＴ  with  spaces",kid,health,2022-03-01 10:00:00,,  bo  ,fr,\n'
        '9,"tab\there",kw,place,2022-03-01T10:00:00.25+05:30,,,"say ""hi"" \\ ok",\n'
        "1,a duplicate of the first,kw,child,,,,,\n"
        '10,"x",kw,,1850-01-01T00:00:00+05:00,,,,\n'
        "\n"
        '11,"last",kw,,1650000000,,,,"tab\tin extra"\n'.encode() +
        b'12,"bad \xff byte",kid,child,,,,,\n'
    )
    return path


@pytest.mark.parametrize("batch_size", [2, 50_000])
def test_stored_posts_and_rejects_are_the_row_checkers(db, tmp_path, batch_size):
    path = tricky_csv(tmp_path / "tricky.csv")
    summary = import_files(CorpusStore(db), [path], rejects_path=tmp_path / "r.csv",
                           batch_size=batch_size)
    posts, rejects = expected_posts(path)
    assert stored_posts(db) == posts
    assert rejects_file(tmp_path / "r.csv") == rejects
    assert (summary.inserted, summary.rejected_total) == (len(posts), len(rejects))
    assert summary.rows_read == len(list(read_rows(path)))


def test_jsonl_and_parquet_values_round_trip(db, database_url, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from trainset.store.db import connect, parse_url

    jsonl = tmp_path / "posts.jsonl"
    jsonl.write_text(
        '{"id": 1, "text": "json one", "likes": 3, "verified": true, "tags": ["a", "b"]}\n'
        '{"id": "2", "text": "json two", "geo": {"lat": 1.5, "name": "x"}, "score": 0.5}\n'
        '{"id": 3, "text": "json \\u00e9 \\ud83d\\ude00", "created_at": "2022-03-01T10:00:00Z"}\n'
        '{"id": 4, "text": "", "note": "rejected"}\n', encoding="utf-8")
    parquet = tmp_path / "posts.parquet"
    pq.write_table(pa.table({
        "id": [10, 11, 12],
        "text": ["parquet ten", "parquet eleven", "parquet twelve"],
        "created_at": pa.array([datetime(2021, 5, 1, tzinfo=UTC), None,
                                datetime(2021, 5, 3, 12, tzinfo=UTC)], pa.timestamp("ms", "UTC")),
        "keyword": pa.array(["kw", "kw", None]).dictionary_encode(),
        "retweets": [1, None, 3],
        "ratio": [0.25, 1.0, None],
        "labels": [["x"], [], None],
    }), parquet)
    merge_conn = connect(parse_url(database_url))
    try:
        summary = import_files(CorpusStore(db), [jsonl, parquet],
                               rejects_path=tmp_path / "r.csv",
                               merge_store=CorpusStore(merge_conn), batch_size=2)
    finally:
        merge_conn.close()
    posts, rejects = expected_posts(jsonl, parquet)
    assert stored_posts(db) == posts
    assert rejects_file(tmp_path / "r.csv") == rejects
    assert summary.inserted == len(posts) == 6
    assert db.run("SELECT extra FROM posts WHERE id = '2'") == [
        [{"geo": {"lat": 1.5, "name": "x"}, "score": 0.5}]]


def test_batches_with_stored_ids_go_through_staging(db, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text("id,text,keyword\n" + "".join(f"p{i},text {i},kw\n" for i in range(10)))
    store = CorpusStore(db)
    assert import_files(store, [first], rejects_path=tmp_path / "r1.csv",
                        batch_size=4).inserted == 10
    # Batches mixing new, changed and unchanged posts; one batch of new posts only.
    second = tmp_path / "second.csv"
    rows = [f"p{i},text {i},kw" for i in range(0, 10, 2)]  # unchanged
    rows += [f"p{i},changed {i},kw" for i in range(1, 10, 2)]  # changed
    rows += [f"n{i},new {i},kw" for i in range(6)]  # new
    second.write_text("id,text,keyword\n" + "\n".join(rows) + "\n")
    summary = import_files(store, [second], rejects_path=tmp_path / "r2.csv", batch_size=4)
    assert (summary.inserted, summary.updated, summary.unchanged) == (6, 5, 5)
    posts, _ = expected_posts(first, second)
    assert stored_posts(db) == posts
    assert db.run("SELECT count(*) FROM import_staging") == [[0]]


def test_an_id_stored_meanwhile_sends_the_batch_through_staging(db, tmp_path, monkeypatch):
    """Another writer can store an id between the check and the COPY: the COPY then fails
    on the key, and the batch is written through staging instead."""
    path = tmp_path / "posts.csv"
    path.write_text("id,text\na,first\nb,second\n")
    db.run("INSERT INTO posts (id, text, text_hash) VALUES ('b', 'older', 'x')")
    monkeypatch.setattr(CorpusStore, "_any_stored", lambda self, ids: False)
    summary = import_files(CorpusStore(db), [path], rejects_path=tmp_path / "r.csv")
    assert (summary.inserted, summary.updated) == (1, 1)
    assert db.run("SELECT id, text FROM posts ORDER BY id") == [["a", "first"],
                                                                ["b", "second"]]


def test_the_stored_rows_read_back_as_json_and_times(db, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('id,text,created_at,geo\nz1,hello,2022-03-01T10:00:00.25+05:30,"NYC ""x"""\n')
    import_files(CorpusStore(db), [path], rejects_path=tmp_path / "r.csv")
    created, extra = db.run("SELECT created_at, extra FROM posts")[0]
    assert created == datetime(2022, 3, 1, 4, 30, 0, 250_000, tzinfo=UTC)
    assert extra == {"geo": 'NYC "x"'} and json.dumps(extra)
