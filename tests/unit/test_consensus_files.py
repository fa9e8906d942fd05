"""The consensus file interface: formats, errors with file and line, and the output rows."""

import csv

import pytest

from trainset.quality.consensus_files import FileError, run

TODDLER = "1 to 4 years (toddler/pre-school)"


def write(path, header, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_labels_and_gold_to_consensus(tmp_path):
    labels = write(tmp_path / "labels.csv", ["post_id", "coder_id", "field", "value"], [
        ["p1", "a", "is_child", "true"], ["p1", "b", "is_child", "true"],
        ["p1", "a", "age", f'["{TODDLER}"]'], ["p1", "b", "age", f'["{TODDLER}"]'],
        ["p2", "a", "is_child", "false"], ["p2", "b", "is_child", "FALSE"],
        ["g1", "a", "is_child", "true"], ["g1", "b", "is_child", "false"],
    ])
    gold = write(tmp_path / "gold.csv", ["post_id", "field", "value"],
                 [["g1", "is_child", "true"]])
    out = tmp_path / "out" / "consensus.csv"
    result = run(labels, gold, out)
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["post_id", "field", "option", "value", "confidence", "n_labels"]
    by_key = {(r["post_id"], r["field"], r["option"]): r for r in rows}
    assert by_key[("p1", "is_child", "")]["value"] == "true"
    assert by_key[("p1", "age", TODDLER)]["value"] == "true"
    assert by_key[("p1", "age", "Unsure")]["value"] == "false"
    assert len([r for r in rows if r["post_id"] == "p1" and r["field"] == "age"]) == 8
    assert by_key[("g1", "is_child", "")]["confidence"] == "1.0000"
    assert by_key[("p2", "is_child", "")]["n_labels"] == "2"
    assert {r.coder for r in result.coders} == {"a", "b"}


@pytest.mark.parametrize("row,message", [
    (["p1", "a", "colour", "true"], "line 2: unknown field 'colour'"),
    (["p1", "a", "is_child", "yes"], "line 2: is_child must be true or false"),
    (["p1", "a", "age", "Unsure"], "line 2: age must be a JSON list"),
    (["p1", "a", "age", '["Teen"]'], "line 2: not an option of age: 'Teen'"),
])
def test_bad_rows_name_the_line(tmp_path, row, message):
    labels = write(tmp_path / "labels.csv", ["post_id", "coder_id", "field", "value"], [row])
    with pytest.raises(FileError, match=message):
        run(labels, None, tmp_path / "out.csv")


def test_missing_columns_and_files(tmp_path):
    bad = write(tmp_path / "bad.csv", ["post", "coder"], [])
    with pytest.raises(FileError, match="missing column"):
        run(bad, None, tmp_path / "out.csv")
    with pytest.raises(FileError, match="cannot read"):
        run(tmp_path / "nope.csv", None, tmp_path / "out.csv")
