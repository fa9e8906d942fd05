"""Importing prior labels into a real database: stored append-only with their provenance, never
as live work, once only, and seen by quality runs and estimates like anyone's labels."""

import csv
import json
from pathlib import Path

import pytest

from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from trainset.codebook import AGE_TODDLER
from trainset.errors import InvalidInput
from trainset.services.label_import import import_labels
from trainset.store.corpus import CorpusStore
from trainset.store.label_import import LabelImportStore
from trainset.store.quality import QualityStore

STUDY_SAMPLE = Path(__file__).resolve().parents[1] / "fixtures" / "study_child_labels_sample.csv"


def run_import(db, path, source="lab", family="child", fmt=None, rejects=None):
    return import_labels(LabelImportStore(db), path, family=family, source=source, fmt=fmt,
                         rejects_path=rejects)


def long_file(tmp_path, rows, name="labels.csv"):
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("post_id", "coder_id", "field", "value"))
        writer.writerows(rows)
    return path


def ls_export(tmp_path, tasks):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    return path


def count(db, sql):
    return db.run(sql)[0][0]


def test_long_import_stores_labels_with_provenance_and_no_work(db, tmp_path):
    make_posts(db, 2)
    path = long_file(tmp_path, [
        ("p00000", "ana", "is_child", "true"), ("p00000", "ana", "age", f'["{AGE_TODDLER}"]'),
        ("p00000", "ben", "is_child", "false"), ("p00001", "ana", "is_child", "false")])
    summary = run_import(db, path)
    assert (summary.format, summary.read, summary.stored, summary.already,
            summary.rejected_total) == ("long", 3, 3, 0, 0)
    assert summary.coders == ["lab.ana", "lab.ben"] and summary.coders_created == 2
    rows = db.run(
        "SELECT l.post_id, c.name, l.kind, l.revision, l.task_id, l.coder_status, l.answers,"
        " l.import_location, i.file, i.format, s.name, i.imported_at IS NOT NULL"
        " FROM labels l JOIN coders c ON c.id = l.coder_id"
        " JOIN label_imports i ON i.id = l.import_id JOIN label_sources s ON s.id = i.source_id"
        " ORDER BY l.post_id, c.name")
    assert rows == [
        ["p00000", "lab.ana", "imported", 1, None, "certified",
         {"is_child": True, "age": [AGE_TODDLER]}, "lines 2-3", str(path.resolve()), "long",
         "lab", True],
        ["p00000", "lab.ben", "imported", 1, None, "certified", {"is_child": False}, "line 4",
         str(path.resolve()), "long", "lab", True],
        ["p00001", "lab.ana", "imported", 1, None, "certified", {"is_child": False}, "line 5",
         str(path.resolve()), "long", "lab", True],
    ]
    assert db.run("SELECT role, status FROM coders ORDER BY name") == [
        ["coder", "certified"], ["coder", "certified"]]
    assert db.run("SELECT c.name, s.source_coder FROM source_coders s"
                  " JOIN coders c ON c.id = s.coder_id ORDER BY 1") == [
        ["lab.ana", "ana"], ["lab.ben", "ben"]]
    assert count(db, "SELECT count(*) FROM tasks") == 0
    assert count(db, "SELECT count(*) FROM gold_leases") == 0


def test_reimport_stores_nothing_new_and_a_change_is_a_revision(db, tmp_path):
    make_posts(db, 1)
    path = long_file(tmp_path, [("p00000", "ana", "is_child", "false")])
    run_import(db, path)
    again = run_import(db, path)
    assert (again.stored, again.already, again.coders_created) == (0, 1, 0)
    assert again.import_id is None
    assert count(db, "SELECT count(*) FROM labels") == 1
    assert count(db, "SELECT count(*) FROM label_imports") == 1
    assert count(db, "SELECT count(*) FROM coders") == 1

    changed = long_file(tmp_path, [("p00000", "ana", "is_child", "true"),
                                   ("p00000", "ana", "age", '["Unsure"]')], "changed.csv")
    summary = run_import(db, changed)
    assert summary.stored == 1
    assert db.run("SELECT revision, answers FROM labels ORDER BY revision") == [
        [1, {"is_child": False}], [2, {"is_child": True, "age": ["Unsure"]}]]
    assert count(db, "SELECT count(*) FROM label_imports") == 2


def test_missing_posts_are_rejected_and_nothing_is_half_written(db, tmp_path):
    make_posts(db, 1)
    path = long_file(tmp_path, [("p00000", "ana", "is_child", "false"),
                                ("nope", "ana", "is_child", "false")])
    rejects = tmp_path / "rejects.csv"
    summary = run_import(db, path, rejects=rejects)
    assert summary.stored == 1 and summary.rejected == {"post not in the corpus": 1}
    [header, row] = list(csv.reader(rejects.open()))
    assert header == ["file", "line", "location", "reason", "post_id", "coder", "raw"]
    assert row[:6] == [str(path), "3", "line 3",
                       "post nope is not in the corpus; import it first", "nope", "lab.ana"]
    assert "  rejected (post not in the corpus): 1" in summary.lines()


def test_an_error_mid_import_stores_nothing(db, tmp_path, monkeypatch):
    make_posts(db, 2)
    path = long_file(tmp_path, [("p00000", "ana", "is_child", "false"),
                                ("p00001", "ana", "is_child", "false")])
    store = LabelImportStore(db)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "insert_labels", broken)
    with pytest.raises(RuntimeError):
        import_labels(store, path, family="child", source="lab")
    assert count(db, "SELECT count(*) FROM labels") == 0
    assert count(db, "SELECT count(*) FROM coders") == 0
    assert count(db, "SELECT count(*) FROM label_imports") == 0


def test_label_studio_import_creates_posts_from_text(db, tmp_path):
    make_posts(db, 1)
    tasks = [
        {"id": 7, "data": {"id": "p00000", "text": "other words, not stored"},
         "annotations": [{"id": 31, "completed_by": 4, "lead_time": 9.5, "result": [
             {"from_name": "is_child", "value": {"choices": ["No"]}}]}]},
        {"id": 8, "data": {"id": "ls-new", "text": "my toddler at the park", "keyword": "toddler"},
         "annotations": [{"id": 32, "completed_by": 4, "result": [
             {"from_name": "is_child", "value": {"choices": ["Yes"]}},
             {"from_name": "age", "value": {"choices": [AGE_TODDLER]}}]}]},
        {"id": 9, "data": {"id": "ls-bad", "text": "x"},
         "annotations": [{"id": 33, "completed_by": 4, "result": [
             {"from_name": "is_child", "value": {"choices": ["Yes"]}},
             {"from_name": "age", "value": {"choices": ["Toddler"]}}]}]},
    ]
    summary = run_import(db, ls_export(tmp_path, tasks), source="ls")
    assert (summary.format, summary.stored, summary.posts_created) == ("labelstudio", 2, 1)
    assert summary.rejected == {"unknown option": 1}
    assert db.run("SELECT id, text, keyword, family FROM posts ORDER BY id") == [
        ["ls-new", "my toddler at the park", "toddler", "child"],
        ["p00000", "post p00000 about a toddler at the park", "toddler", "child"]]
    assert db.run("SELECT post_id, import_location, seconds_spent FROM labels"
                  " ORDER BY post_id") == [["ls-new", "task 8 annotation 32", None],
                                           ["p00000", "task 7 annotation 31", 9.5]]
    assert count(db, "SELECT count(*) FROM posts WHERE id = 'ls-bad'") == 0


def test_the_study_sample_imports_with_its_invalid_rows_rejected(db, tmp_path):
    ids = sorted({r["id"] for r in csv.DictReader(STUDY_SAMPLE.open())})
    CorpusStore(db).upsert_posts(
        {"id": i, "text": f"post {i}", "family": "child", "text_hash": i} for i in ids)
    summary = run_import(db, STUDY_SAMPLE, source="study", rejects=tmp_path / "rejects.csv")
    assert (summary.format, summary.read, summary.stored) == ("wide", 200, 183)
    assert summary.rejected == {"invalid label (age: pick at least one option)": 17}
    assert summary.coders == ["study", "study.2"]
    assert len((tmp_path / "rejects.csv").read_text().splitlines()) == 18
    assert count(db, "SELECT count(*) FROM labels WHERE kind = 'imported'") == 183
    again = run_import(db, STUDY_SAMPLE, source="study")
    assert (again.stored, again.already) == (0, 183)


def test_wide_import_without_posts_rejects_every_row(db, tmp_path):
    summary = run_import(db, STUDY_SAMPLE, source="study")
    assert summary.stored == 0
    assert summary.rejected == {"post not in the corpus": 183,
                                "invalid label (age: pick at least one option)": 17}


def test_a_live_coders_name_is_never_taken_over(db, tmp_path):
    make_posts(db, 1)
    make_coder(db, "lab.ana")
    path = long_file(tmp_path, [("p00000", "ana", "is_child", "false")])
    summary = run_import(db, path)
    assert summary.stored == 0 and summary.rejected == {"coder name taken": 1}
    assert count(db, "SELECT count(*) FROM labels") == 0


def test_bad_input_is_one_clear_error(db, tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        run_import(db, tmp_path / "missing.csv")
    with pytest.raises(InvalidInput, match="source"):
        run_import(db, long_file(tmp_path, []), source="a.b")


def test_quality_and_estimates_see_imported_labels(db, tmp_path):
    ids = make_posts(db, 4)
    campaign = make_campaign(db, ids)
    path = long_file(tmp_path, [(p, coder, "is_child", "false") for p in ids
                                for coder in ("ana", "ben")])
    run_import(db, path)
    labels = QualityStore(db).family_labels("child")
    assert {(lab["coder"], lab["kind"], lab["source"]) for lab in labels} == {
        ("lab.ana", "imported", "lab"), ("lab.ben", "imported", "lab")}
    assert len(labels) == 8 and all(lab["first_labeled_at"] for lab in labels)
    assert len(CorpusStore(db).campaign_labels(campaign)) == 8


def test_imported_labels_show_as_live_labels_do_not(db, tmp_path):
    from tests.factories import service, submission

    ids = make_posts(db, 1)
    make_campaign(db, ids)
    ana = make_coder(db, "ana")
    svc = service(db)
    svc.next_task(ana, "child")
    svc.submit(ana, submission(ids[0], CHILD_YES))
    labels = QualityStore(db).family_labels("child")
    assert [(lab["kind"], lab["source"]) for lab in labels] == [("task", None)]


def test_consensus_runs_over_imported_labels(db, tmp_path):
    from trainset.services.quality import fit_consensus

    ids = make_posts(db, 6)
    rows = []
    for i, p in enumerate(ids):
        for coder in ("ana", "ben", "cid"):
            if i % 2 == 0:
                rows += [(p, coder, "is_child", "true"), (p, coder, "age", f'["{AGE_TODDLER}"]')]
            else:
                rows.append((p, coder, "is_child", "false"))
    run_import(db, long_file(tmp_path, rows))
    fit = fit_consensus(QualityStore(db), "child")
    assert len(fit.work) == 18
    values = {(i.post_id, i.item): i.value for i in fit.items}
    assert {p for p, _ in values} == set(ids)
    assert all(values[(p, "is_child")] == (n % 2 == 0) for n, p in enumerate(ids))


def test_imported_labels_are_append_only(db, tmp_path):
    make_posts(db, 1)
    run_import(db, long_file(tmp_path, [("p00000", "ana", "is_child", "false")]))
    with pytest.raises(Exception, match="append-only"):
        db.run("UPDATE labels SET answers = '{}'::jsonb")
    with pytest.raises(Exception, match="append-only"):
        db.run("DELETE FROM label_imports")


def test_a_coder_made_by_an_import_can_never_sign_in(db, db_pool, database_url, tmp_path,
                                                    monkeypatch):
    """Neither a token minted for an imported coder nor `coders token` lets one act."""
    from chalice.test import Client

    from chalicelib import runtime
    from tests.api.conftest import auth
    from trainset.cli import main
    from trainset.models import Coder
    from trainset.store.labeling import LabelingStore

    ids = make_posts(db, 1)
    run_import(db, long_file(tmp_path, [(ids[0], "ana", "is_child", "false")]))
    row = LabelingStore(db).coder_by_name("lab.ana")
    assert row["imported"] is True
    from app import app

    runtime.configure(database_pool=db_pool)
    with Client(app) as client:
        answer = client.http.get("/me", headers=auth(Coder.from_row(row)))
    assert answer.status_code == 401 and b"imported" in answer.body
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    assert main(["coders", "token", "lab.ana"]) == 2
