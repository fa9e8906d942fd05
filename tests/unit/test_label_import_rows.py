"""Reading prior labels: each format parses into codebook-valid labels, and every row that
cannot be a label is rejected with its file, line (or task and annotation) and reason."""

import json
from collections import Counter
from pathlib import Path

import pytest

from trainset.codebook import AGE_BABY, AGE_TODDLER, AGE_UNSURE
from trainset.corpus.label_import import FileProblem, detect_format, parse_file, submission_id

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STUDY_SAMPLE = FIXTURES / "study_child_labels_sample.csv"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def kinds(parsed):
    return Counter(r.kind for r in parsed.rejects)


def ls_task(task_id, data, *annotations):
    return {"id": task_id, "data": data, "annotations": list(annotations)}


def ls_annotation(ann_id, coder, *results, **extra):
    return {"id": ann_id, "completed_by": coder, "was_cancelled": False,
            "result": [{"from_name": q, "to_name": "text", "type": "choices",
                        "value": {"choices": c}} for q, c in results], **extra}


# ---- long ------------------------------------------------------------------------------------

def test_long_format_groups_a_coders_rows_into_one_label(tmp_path):
    path = write(tmp_path, "labels.csv",
                 "post_id,coder_id,field,value\n"
                 f'p1,ana,is_child,true\np1,ana,age,"[""{AGE_TODDLER}""]"\n'
                 "p1,ben,is_child,false\n"
                 "p2,ana,is_child,false\n")
    parsed = parse_file(path, "child", "lab")
    assert parsed.format == "long" and parsed.rejects == []
    got = {(lab.post_id, lab.coder): (lab.answers, lab.location) for lab in parsed.labels}
    assert got == {
        ("p1", "lab.ana"): ({"is_child": True, "age": [AGE_TODDLER]}, "lines 2-3"),
        ("p1", "lab.ben"): ({"is_child": False}, "line 4"),
        ("p2", "lab.ana"): ({"is_child": False}, "line 5"),
    }


def test_long_format_reject_reasons_name_the_line(tmp_path):
    path = write(tmp_path, "labels.csv",
                 "post_id,coder_id,field,value\n"
                 "p1,ana,is_child,maybe\n"  # 2: bad yes/no
                 'p2,ana,is_child,true\np2,ana,age,"[""Toddler""]"\n'  # 3-4: unknown option
                 "p3,ana,is_child,true\n"  # 5: child without an age
                 "p4,ana,colour,true\n"  # 6: unknown question
                 "p5,ana,is_health,true\n"  # 7: another family's question
                 "p6,ana,is_child\n"  # 8: a field missing
                 ",ana,is_child,false\n"  # 9: no post id
                 'p7,ana,age,"not a list"\n')  # 10: bad list
    parsed = parse_file(path, "child", "lab")
    assert parsed.labels == []
    by_line = {r.line: r for r in parsed.rejects}
    assert by_line[2].kind == "bad value" and "is_child must be True or False" in by_line[2].reason
    assert by_line[4].kind == "unknown option" and "'Toddler' is not an option of age" in \
        by_line[4].reason and by_line[4].location == "lines 3-4"
    assert by_line[5].kind == "invalid label (age: is required)"
    assert by_line[6].kind == "unknown question" and "'colour'" in by_line[6].reason
    assert by_line[7].kind == "question of another family" and "--family health" in \
        by_line[7].reason
    assert by_line[8].kind == "wrong number of fields"
    assert by_line[9].kind == "missing post id"
    assert by_line[10].kind == "bad value" and "list of options" in by_line[10].reason
    assert all(r.file == str(path) for r in parsed.rejects)


def test_long_format_missing_columns_is_a_file_problem(tmp_path):
    path = write(tmp_path, "labels.csv", "post_id,coder,field,value\np1,ana,is_child,true\n")
    with pytest.raises(FileProblem, match="missing column"):
        parse_file(path, "child", "lab", "long")


def test_conflicting_and_duplicate_labels_in_one_file(tmp_path):
    path = write(tmp_path, "labels.csv",
                 "post_id,coder_id,field,value\n"
                 "p1,ana,is_child,false\np1,ana,is_child,true\n")
    parsed = parse_file(path, "child", "lab")
    assert kinds(parsed) == {"conflicting label": 1}


# ---- wide ------------------------------------------------------------------------------------

def test_wide_format_reads_the_study_encoding(tmp_path):
    path = write(tmp_path, "study.csv",
                 "is_child,age,id\n"
                 "False,[''],1001\n"
                 f"True,\"['{AGE_BABY}', '{AGE_TODDLER}']\",1002\n"
                 f"True,['{AGE_UNSURE}'],1003\n")
    parsed = parse_file(path, "child", "study")
    assert parsed.format == "wide" and parsed.rejects == []
    assert [(lab.post_id, lab.coder, lab.answers) for lab in parsed.labels] == [
        ("1001", "study", {"is_child": False}),
        ("1002", "study", {"is_child": True, "age": [AGE_BABY, AGE_TODDLER]}),
        ("1003", "study", {"is_child": True, "age": [AGE_UNSURE]}),
    ]


def test_wide_format_child_without_an_age_is_rejected(tmp_path):
    path = write(tmp_path, "study.csv", "is_child,age,id\nTrue,[''],1001\nFalse,[''],1002\n")
    parsed = parse_file(path, "child", "study")
    [reject] = parsed.rejects
    assert (reject.line, reject.kind, reject.post_id) == (
        2, "invalid label (age: pick at least one option)", "1001")
    assert "not a valid child label" in reject.reason and reject.file == str(path)


def test_wide_format_repeated_posts_are_further_coders(tmp_path):
    path = write(tmp_path, "study.csv",
                 "is_child,age,id\nFalse,[''],1001\nFalse,[''],1001\nTrue,['Unsure'],1001\n")
    parsed = parse_file(path, "child", "study")
    assert [lab.coder for lab in parsed.labels] == ["study", "study.2", "study.3"]


def test_wide_format_unknown_column_is_a_file_problem(tmp_path):
    path = write(tmp_path, "study.csv", "is_child,colour,id\nFalse,red,1\n")
    with pytest.raises(FileProblem, match="'colour' are not questions of the child family"):
        parse_file(path, "child", "study", "wide")


def test_alias_spellings_map_to_the_codebook(tmp_path):
    path = write(tmp_path, "study.csv",
                 "is_child,age,id\nTrue,['0 to less than 1 years (baby/infant)'],1\n")
    [label] = parse_file(path, "child", "study").labels
    assert label.answers == {"is_child": True, "age": [AGE_BABY]}
    place = write(tmp_path, "place.csv", "location_cat,location,id\n"
                  "['Indoor location'],\"['A Home', 'Neighborhood']\",2\n")
    [label] = parse_file(place, "place", "study").labels
    assert label.answers["location"] == ["A home", "Neigborhood (but not on home property, etc)"]


def test_the_study_sample_rejects_exactly_its_children_without_age():
    parsed = parse_file(STUDY_SAMPLE, "child", "study")
    assert parsed.format == "wide" and parsed.read == 200
    assert kinds(parsed) == {"invalid label (age: pick at least one option)": 17}
    assert len(parsed.labels) == 183
    assert Counter(lab.coder for lab in parsed.labels) == {"study": 173, "study.2": 10}


# ---- Label Studio ----------------------------------------------------------------------------

def test_label_studio_export_parses_with_text_and_coders(tmp_path):
    tasks = [
        ls_task(7, {"id": "t1", "text": "my toddler at the park", "keyword": "toddler"},
                ls_annotation(31, 4, ("is_child", ["Yes"]), ("age", [AGE_TODDLER]),
                              lead_time=12.5),
                ls_annotation(32, {"id": 5, "email": "ben@lab.org"}, ("is_child", ["No"]))),
        ls_task(8, {"id": 123456789012345678, "text": "no kids here"},
                ls_annotation(33, 4, ("is_child", ["False"]))),
    ]
    path = write(tmp_path, "export.json", json.dumps(tasks))
    parsed = parse_file(path, "child", "ls")
    assert parsed.format == "labelstudio" and parsed.rejects == [] and parsed.read == 3
    first, second, third = parsed.labels
    assert (first.post_id, first.coder, first.location, first.seconds_spent) == (
        "t1", "ls.4", "task 7 annotation 31", 12.5)
    assert first.answers == {"is_child": True, "age": [AGE_TODDLER]}
    assert first.post.text == "my toddler at the park" and first.post.keyword == "toddler"
    assert first.post.family == "child"
    assert (second.coder, second.answers) == ("ls.ben@lab.org", {"is_child": False})
    assert third.post_id == "123456789012345678"


def test_label_studio_unknown_option_and_question_are_rejected(tmp_path):
    tasks = [
        ls_task(1, {"id": "a", "text": "x"},
                ls_annotation(10, 1, ("is_child", ["Yes"]), ("age", ["Toddler"]))),
        ls_task(2, {"id": "b", "text": "x"},
                ls_annotation(11, 1, ("is_child", ["No"]), ("mood", ["Happy"]))),
        ls_task(3, {"id": "c", "text": "x"},
                ls_annotation(12, 1, ("is_child", ["No"]), was_cancelled=True)),
        ls_task(4, {"post_id": "d", "text": "x"}, ls_annotation(13, 1, ("is_child", ["No"]))),
        ls_task(5, {"id": "e", "text": "x"}, ls_annotation(14, 1, ("is_child", ["Yes"]))),
    ]
    path = write(tmp_path, "export.json", json.dumps(tasks))
    parsed = parse_file(path, "child", "ls")
    assert parsed.labels == []
    by_where = {r.location: r for r in parsed.rejects}
    option = by_where["task 1 annotation 10"]
    assert option.kind == "unknown option" and option.line == 1
    assert "'Toddler' is not an option of age" in option.reason
    assert by_where["task 2 annotation 11"].kind == "unknown question"
    assert "'mood' is not a question of the child family" in \
        by_where["task 2 annotation 11"].reason
    assert by_where["task 3 annotation 12"].kind == "cancelled annotation"
    assert by_where["task 4 annotation 13"].kind == "missing post id"
    assert "data.id" in by_where["task 4 annotation 13"].reason
    assert by_where["task 5 annotation 14"].kind == "invalid label (age: is required)"


def test_label_studio_file_that_is_not_an_export(tmp_path):
    with pytest.raises(FileProblem, match="expected a list of tasks"):
        parse_file(write(tmp_path, "x.json", '{"tasks": []}'), "child", "ls")
    with pytest.raises(FileProblem, match="not valid JSON"):
        parse_file(write(tmp_path, "y.json", "[{"), "child", "ls")


# ---- detection and ids -----------------------------------------------------------------------

def test_format_is_detected_from_extension_and_columns(tmp_path):
    assert detect_format(write(tmp_path, "a.csv", "post_id,coder_id,field,value\n"),
                         "child") == "long"
    assert detect_format(write(tmp_path, "b.csv", "is_child,age,id\n"), "child") == "wide"
    assert detect_format(write(tmp_path, "c.json", "[]"), "child") == "labelstudio"
    with pytest.raises(FileProblem, match="cannot tell the format"):
        detect_format(write(tmp_path, "d.csv", "id,text\n"), "child")
    with pytest.raises(FileProblem, match="unknown file type"):
        detect_format(write(tmp_path, "e.xlsx", ""), "child")


def test_bad_source_and_coder_names(tmp_path):
    path = write(tmp_path, "labels.csv",
                 "post_id,coder_id,field,value\np1,ana maria,is_child,false\n")
    assert kinds(parse_file(path, "child", "lab")) == {"bad coder name": 1}
    with pytest.raises(ValueError, match="source"):
        parse_file(path, "child", "my.lab")


def test_submission_ids_are_deterministic():
    a = submission_id("s", "child", "p1", "s.ana", {"is_child": False})
    assert a == submission_id("s", "child", "p1", "s.ana", {"is_child": False})
    assert a != submission_id("s", "child", "p1", "s.ana", {"is_child": True})
    assert a != submission_id("t", "child", "p1", "t.ana", {"is_child": False})
