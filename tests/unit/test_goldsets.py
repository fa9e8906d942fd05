"""Gold rows from files: every format, every reject reason with its file and line, and the
canonical form answers are stored in. No database."""

import csv
import io
import json

import pytest

from trainset import codebook
from trainset.corpus.goldsets import (
    GoldRow,
    export_format,
    read_gold_file,
    split_duplicates,
    write_export,
)
from trainset.corpus.ingest import FileProblem, Reject

TODDLER = codebook.AGE_TODDLER
BABY = codebook.AGE_BABY
GOOD = {"is_child": True, "age": [TODDLER]}


def write_csv(path, rows, header=("id", "text", "family", "answers", "rationale")):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read(path, purpose="practice"):
    rows = list(read_gold_file(path, purpose))
    return ([r for r in rows if isinstance(r, GoldRow)],
            [r for r in rows if isinstance(r, Reject)])


def test_csv_rows_become_gold_with_answers_from_a_json_string(tmp_path):
    path = write_csv(tmp_path / "gold.csv", [
        ["g1", "A toddler at the park", "child", json.dumps(GOOD), "A toddler is shown."],
        ["g2", "A sunset", "child", '{"is_child": false}', ""],
    ])
    good, rejects = read(path)
    assert rejects == []
    assert [(g.post.id, g.family, g.purpose, g.answers, g.rationale, g.line) for g in good] == [
        ("g1", "child", "practice", GOOD, "A toddler is shown.", 2),
        ("g2", "child", "practice", {"is_child": False}, "", 3),
    ]
    assert good[0].post.extra == {}  # answers and rationale are not kept as extra columns


def test_jsonl_takes_answers_as_an_object_or_a_string(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(
        json.dumps({"id": "j1", "text": "a baby", "family": "child", "answers": GOOD,
                    "keyword": "baby", "image_url": "https://x/y.jpg", "lang": "en"}) + "\n"
        + json.dumps({"id": "j2", "text": "a park", "family": "place",
                      "answers": json.dumps({"location_cat": ["No location/unsure"]})}) + "\n")
    good, rejects = read(path, "qa")
    assert rejects == []
    assert good[0].post.keyword == "baby" and good[0].post.image_key == "https://x/y.jpg"
    assert good[0].post.extra == {"lang": "en"}
    assert good[1].answers == {"location_cat": ["No location/unsure"]}
    assert {g.purpose for g in good} == {"qa"}


def test_parquet_rows(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    table = pa.table({"id": ["q1", "q2"], "text": ["toddler", "nothing"],
                      "family": ["child", "child"],
                      "answers": [json.dumps(GOOD), '{"is_child": tru']})
    pq.write_table(table, tmp_path / "gold.parquet")
    good, rejects = read(tmp_path / "gold.parquet")
    assert [g.post.id for g in good] == ["q1"]
    assert [(r.line, r.id) for r in rejects] == [(2, "q2")]
    assert rejects[0].reason.startswith("bad JSON in answers")


def test_each_reject_reason_names_file_and_line(tmp_path):
    path = write_csv(tmp_path / "gold.csv", [
        ["b1", "text", "child", '{"is_child": tru', ""],                       # 2 bad JSON
        ["b2", "text", "child", '{"is_child": true}', ""],                     # 3 codebook
        ["b3", "text", "pets", json.dumps(GOOD), ""],                          # 4 family
        ["", "text", "child", json.dumps(GOOD), ""],                           # 5 no id
        ["b5", "", "child", json.dumps(GOOD), ""],                             # 6 no text
        ["b6", "text", "", json.dumps(GOOD), ""],                              # 7 no family
        ["b7", "text", "child", "", ""],                                       # 8 no answers
        ["b8", "text", "child", "[true]", ""],                                 # 9 not an object
        ["b9", "text", "child", '{"is_child": false, "age": ["x"]}', ""],      # 10 codebook
        ["b10", "text", "child", '{"is_child": true, "is_child": false}', ""],  # 11 dup key
    ])
    good, rejects = read(path)
    assert good == []
    got = {r.line: (r.file, r.id, r.reason) for r in rejects}
    assert all(f == str(path) for f, _, _ in got.values())
    assert got[2][2].startswith("bad JSON in answers:")
    assert got[3][2] == "answers are not a valid child label: age: is required"
    assert got[4][2].startswith("unknown family 'pets'")
    assert got[5][2] == "missing id"
    assert got[6][2] == "missing text"
    assert got[7][2].startswith("missing family")
    assert got[8][2].startswith("missing answers")
    assert got[9][2].startswith("answers must be a JSON object")
    assert got[10][2].startswith("answers are not a valid child label: age: must be left out")
    assert "more than once" in got[11][2]
    assert sorted(got) == list(range(2, 12))


def test_a_purpose_column_must_agree_with_the_import(tmp_path):
    path = write_csv(tmp_path / "gold.csv", [["p1", "t", "child", "qa", json.dumps(GOOD)],
                                             ["p2", "t", "child", "practice", json.dumps(GOOD)],
                                             ["p3", "t", "child", "", json.dumps(GOOD)]],
                     header=("id", "text", "family", "purpose", "answers"))
    good, rejects = read(path, "practice")
    assert [g.post.id for g in good] == ["p2", "p3"]
    assert rejects[0].line == 2 and "import each purpose separately" in rejects[0].reason


def test_a_file_without_an_answers_column_is_a_file_problem(tmp_path):
    path = write_csv(tmp_path / "posts.csv", [["x", "text", "child"]],
                     header=("id", "text", "family"))
    with pytest.raises(FileProblem, match="no 'answers' column"):
        read(path)
    with pytest.raises(FileProblem, match="unknown file type"):
        read(tmp_path / "gold.txt")


def test_answers_are_normalized(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(
        json.dumps({"id": "n1", "text": "t", "family": "child",
                    "answers": {"is_child": True, "age": [TODDLER, BABY]}}) + "\n"
        + json.dumps({"id": "n2", "text": "t", "family": "child",
                      "answers": {"is_child": False, "age": []}}) + "\n")
    good, rejects = read(path)
    assert rejects == []
    assert good[0].answers == {"is_child": True, "age": [BABY, TODDLER]}  # codebook order
    assert good[1].answers == {"is_child": False}  # an unasked question is dropped


def test_duplicate_ids_are_rejected_on_every_line_across_files(tmp_path):
    one = write_csv(tmp_path / "a.csv", [["d1", "t", "child", json.dumps(GOOD), ""],
                                         ["ok", "t", "child", json.dumps(GOOD), ""]])
    two = write_csv(tmp_path / "b.csv", [["x", "t", "child", json.dumps(GOOD), ""],
                                         ["d1", "t", "child", '{"is_child": false}', ""],
                                         ["two", "same", "child", json.dumps(GOOD), ""],
                                         ["two", "same", "health", '{"is_health": false}', ""],
                                         ["txt", "one", "child", json.dumps(GOOD), ""],
                                         ["txt", "other", "place",
                                          '{"location_cat": ["No location/unsure"]}', ""]])
    rows = read(one)[0] + read(two)[0]
    kept, rejects = split_duplicates(rows)
    assert [(g.post.id, g.family) for g in kept] == [("ok", "child"), ("x", "child"),
                                                     ("two", "child"), ("two", "health")]
    dup = [r for r in rejects if r.id == "d1"]
    assert [(r.file, r.line) for r in dup] == [(str(one), 2), (str(two), 3)]
    for r in dup:
        assert f"{one}:2" in r.reason and f"{two}:3" in r.reason
        assert "every copy rejected" in r.reason
    texts = [r for r in rejects if r.id == "txt"]
    assert len(texts) == 2 and "different texts" in texts[0].reason


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_writes_what_the_import_reads(tmp_path, suffix):
    stored = [{"id": "e1", "text": 'a "quoted", text\nover lines', "family": "child",
               "purpose": "qa", "answers": GOOD, "rationale": "why", "keyword": "kid",
               "image_key": None, "author": None, "created_at": None}]
    path = tmp_path / f"out{suffix}"
    with path.open("w", newline="", encoding="utf-8") as handle:
        assert write_export(handle, export_format(path), stored) == 1
    good, rejects = read(path, "qa")
    assert rejects == []
    g = good[0]
    assert (g.post.id, g.post.text, g.family, g.purpose, g.answers, g.rationale,
            g.post.keyword) == ("e1", stored[0]["text"], "child", "qa", GOOD, "why", "kid")
    with pytest.raises(ValueError):
        export_format(tmp_path / "x.parquet")


def test_export_csv_answers_are_a_json_string():
    out = io.StringIO()
    write_export(out, "csv", [{"id": "e", "text": "t", "family": "child", "purpose": "qa",
                               "answers": GOOD, "rationale": ""}])
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert json.loads(row["answers"]) == GOOD
