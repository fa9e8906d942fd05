"""Reading corpus files and checking rows: every reject reason, every format (pure)."""

import json
from datetime import UTC, datetime

import pytest

from trainset.corpus.ingest import FileProblem, Reject, check_row, parse_created_at, read_rows

HEADER = "id,text,keyword,family,created_at,image_url,author,lang\n"


def checked(path):
    return [check_row(r, max_text=200) for r in read_rows(path)]


def test_csv_rows_and_every_reject_reason(tmp_path):
    path = tmp_path / "posts.csv"
    rows = [
        '1,"A toddler, at the park",toddler,child,2022-03-01T10:00:00Z,https://x/i.jpg,ann,en',
        "2,,toddler,child,,,,",
        ',"no id",kid,child,,,,',
        '3,"bad date",kid,child,yesterday,,,',
        '4,"fam",kid,pets,,,,',
        '5,"multi\nline text",kid,child,Wed Oct 10 20:19:24 +0000 2018,,,',
        "6,short",
        f'7,"{"x" * 201}",kid,child,,,,',
        f'{"9" * 65},"long id",kid,child,,,,',
    ]
    path.write_bytes((HEADER + "\n".join(rows) + "\n").encode() +
                     b'8,"bad \xff byte",kid,child,,,,\n')
    results = checked(path)
    good = [r for r in results if not isinstance(r, Reject)]
    bad = {r.line: r.reason for r in results if isinstance(r, Reject)}
    assert [g.id for g in good] == ["1", "5"]
    first = good[0]
    assert first.image_key == "https://x/i.jpg" and first.extra == {"lang": "en"}
    assert first.created_at == datetime(2022, 3, 1, 10, tzinfo=UTC)
    assert good[1].text == "multi\nline text"
    assert bad[3] == "missing text"
    assert bad[4] == "missing id"
    assert bad[5].startswith("bad created_at 'yesterday'")
    assert bad[6].startswith("unknown family 'pets'")
    assert bad[9].startswith("wrong number of fields")  # line 9: the multi-line row took 7-8
    assert bad[10].startswith("text longer than 200")
    assert bad[11].startswith("id longer than 64")
    assert bad[12] == "bad encoding: not valid UTF-8"


def test_jsonl_rows(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_bytes(b'{"id": 10, "text": "json post", "family": "health", "likes": 3}\n'
                     b'{"id": 11\n[1, 2]\n\n{"id": "12", "text": "ok", "created_at": 1650000000}\n'
                     b'{"id": "13", "text": "\xff"}\n')
    results = checked(path)
    assert results[0].id == "10" and results[0].extra == {"likes": 3}
    assert isinstance(results[1], Reject) and results[1].reason.startswith("bad JSON")
    assert results[2].reason == "not a JSON object" and results[2].line == 3
    assert results[3].id == "12" and results[3].created_at.year == 2022
    assert results[4].reason == "bad encoding: not valid UTF-8" and results[4].line == 6


def test_parquet_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "posts.parquet"
    table = pa.table({"id": ["p1", "p2", None], "text": ["hello there", None, "x"],
                      "keyword": ["kid", "kid", "kid"],
                      "created_at": [datetime(2021, 5, 1, tzinfo=UTC), None, None],
                      "retweets": [1, 2, 3]})
    pq.write_table(table, path)
    results = checked(path)
    assert results[0].id == "p1" and results[0].extra == {"retweets": 1}
    assert results[0].created_at == datetime(2021, 5, 1, tzinfo=UTC)
    assert [r.reason for r in results[1:]] == ["missing text", "missing id"]
    assert [r.line for r in results[1:]] == [2, 3]


def test_whole_file_problems(tmp_path):
    no_text = tmp_path / "a.csv"
    no_text.write_text("id,body\n1,hi\n")
    with pytest.raises(FileProblem, match="no 'text' column"):
        list(read_rows(no_text))
    with pytest.raises(FileProblem, match="unknown file type"):
        list(read_rows(tmp_path / "a.xlsx"))
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(FileProblem, match="not a readable Parquet"):
        list(read_rows(broken))
    empty = tmp_path / "e.csv"
    empty.write_text("")
    assert list(read_rows(empty)) == []


def test_dates():
    assert parse_created_at("2022-01-02 03:04:05").tzinfo is not None
    assert parse_created_at("Wed Oct 10 20:19:24 +0000 2018").year == 2018
    assert parse_created_at("not a date") is None
    assert parse_created_at(None) is None


def test_extra_columns_are_json(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,text,geo\n1,hello world,\n2,hello again,NYC\n")
    results = checked(path)
    assert results[0].extra == {} and results[1].extra == {"geo": "NYC"}
    json.dumps(results[1].extra)
