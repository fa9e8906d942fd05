"""Splitting a corpus file into batches (trainset.corpus.chunks): each batch, imported alone by
the CLI's reader and checks, gives exactly what the whole file gives, at the file's lines."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from trainset.corpus import chunks
from trainset.corpus.ingest import FirstIdWins, Reject, check_row, read_rows
from trainset.services.imports import execution_name, parse_key, safe_filename, upload_key


def whole_file(path: Path) -> dict[int, str]:
    """{line: post id or reject reason}, as the CLI's import reads the file."""
    out, seen = {}, FirstIdWins()
    for raw in read_rows(path):
        checked = check_row(raw)
        if not isinstance(checked, Reject):
            checked = seen.check(checked, raw) or checked
        out[raw.line] = checked.reason if isinstance(checked, Reject) else checked.id
    return out


def batch_by_batch(path: Path, plan: chunks.FilePlan, tmp: Path) -> dict[int, str]:
    """The same, reading each batch as its own file and mapping its lines back."""
    data = path.read_bytes()
    out = {}
    for chunk in plan.chunks:
        duplicates = plan.duplicates_in(chunk)
        part = tmp / f"batch-{chunk.batch}.{plan.format}"
        if plan.format == "csv":
            body, line_map, dups = chunks.csv_chunk(data[:plan.header_end],
                                                    data[chunk.start:chunk.end], chunk,
                                                    plan.header_lines, duplicates)
            part.write_bytes(body)
        elif plan.format == "jsonl":
            body, line_map, dups = chunks.jsonl_chunk(data[chunk.start:chunk.end], chunk,
                                                      duplicates)
            part.write_bytes(body)
        else:
            line_map, dups = chunks.parquet_chunk(path, chunk, duplicates, part)
        for raw in read_rows(part):
            checked = check_row(raw)
            out[line_map(raw.line)] = (checked.reason if isinstance(checked, Reject)
                                       else checked.id)
        for reject in dups:
            assert reject.line not in out
            out[reject.line] = reject.reason
    return out


def test_csv_batches_end_on_record_boundaries_and_count_lines_as_the_cli(tmp_path):
    rows = [b"\xef\xbb\xbfid,text,keyword\r\n"]
    for i in range(1, 30):
        if i == 5:
            rows.append(b'p5,"quoted\nline breaks\rand a lone CR",k\r\n')
        elif i == 7:
            rows.append(b"\r\n")
        elif i == 9:
            rows.append(b"p3,the third again,k\n")
        elif i == 11:
            rows.append(b"p10,too,many,fields\n")
        elif i == 12:
            rows.append(b"p12,,k\n")  # rejected: it does not claim its id
        elif i in (13, 14):
            rows.append(f"p12,copy {i},k\n".encode())
        elif i == 20:
            rows.append(b"p20,bad \xff byte,k\n")
        else:
            rows.append(f"p{i},text {i},k\n".encode())
    path = tmp_path / "posts.csv"
    path.write_bytes(b"".join(rows)[:-1])  # no line break after the last row
    plan = chunks.plan_file(path, 4)
    assert plan.rows == 28 and len(plan.chunks) == 7 and not plan.whole
    assert plan.duplicates == {12: (4, "p3"), 17: (16, "p12")}
    assert [c.first_line for c in plan.chunks] == [2, 6, 13, 17, 21, 25, 29]
    assert batch_by_batch(path, plan, tmp_path) == whole_file(path)


def test_jsonl_batches_and_ids_as_the_cli_reads_them(tmp_path):
    lines = []
    for i in range(1, 25):
        if i == 3:
            lines.append("{bad json")
        elif i == 6:
            lines.append("")
        elif i == 9:
            lines.append(json.dumps({"id": "p2", "text": "again"}))
        elif i == 10:
            lines.append(json.dumps({"id": 10.0, "text": "a float id"}))
        elif i == 15:
            lines.append(json.dumps({"id": 10, "text": "the same id, an int"}))
        else:
            lines.append(json.dumps({"id": f"p{i}", "text": f"t {i}"}))
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines))
    plan = chunks.plan_file(path, 5)
    assert plan.duplicates == {9: (2, "p2"), 15: (10, "10")}
    assert batch_by_batch(path, plan, tmp_path) == whole_file(path)


def test_parquet_batches_are_runs_of_row_groups(tmp_path):
    ids = [f"p{i}" for i in range(1, 41)]
    ids[20], ids[30] = "p3", " p3 "
    path = tmp_path / "posts.parquet"
    pq.write_table(pa.table({"id": ids, "text": [f"t{i}" for i in range(40)]}), path,
                   row_group_size=6)
    plan = chunks.plan_file(path, 10)
    assert [(c.start, c.end, c.first_line, c.rows) for c in plan.chunks] == [
        (0, 2, 1, 12), (2, 4, 13, 12), (4, 6, 25, 12), (6, 7, 37, 4)]
    assert plan.duplicates == {21: (3, "p3"), 31: (3, "p3")}
    assert batch_by_batch(path, plan, tmp_path) == whole_file(path)


@pytest.mark.parametrize("content", [b"", b"id,keyword\nx,y\n", b"text\nonly text\n"])
def test_a_file_the_plan_cannot_split_is_one_batch(tmp_path, content):
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    plan = chunks.plan_file(path, 2)
    assert plan.whole and [(c.start, c.end) for c in plan.chunks] == [(0, len(content))]


def test_keys_and_execution_names():
    assert safe_filename("C:\\data\\my posts (v2).CSV") == "my-posts-v2.csv"
    key = upload_key("gold", "qa", "a" * 32, "qa set.jsonl")
    assert key == f"gold/qa/{'a' * 32}/qa-set.jsonl"
    assert parse_key(key) == {"kind": "gold", "purpose": "qa", "import_id": "a" * 32,
                              "filename": "qa-set.jsonl"}
    assert parse_key("corpus/anything.csv")["import_id"] is None
    assert parse_key(key + ".rejects.csv") is None and parse_key("work/x/y") is None
    name = execution_name("corpus/x/posts.csv", '"9b2cf535f27731c974343645a3985328"')
    assert name == execution_name("corpus/x/posts.csv", '"9b2cf535f27731c974343645a3985328"')
    assert name != execution_name("corpus/x/posts.csv", '"9b2cf535f27731c974343645a3985328"',
                                  again="1")
    assert len(name) <= 80 and name.replace("-", "").isalnum()
