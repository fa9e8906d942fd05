"""Loading your own gold and practice sets into a real PostgreSQL, and using them."""

import csv
import json

import pytest

from tests.factories import make_campaign, make_coder, make_posts, service, submission
from trainset import codebook
from trainset.errors import InvalidInput
from trainset.services.campaigns import SampleRequest, sample
from trainset.services.gold import (
    export_gold,
    import_gold,
    import_gold_text,
    list_gold,
    practice_overview,
)
from trainset.store.corpus import CorpusStore

YES = {"is_child": True, "age": [codebook.AGE_TODDLER]}
NO = {"is_child": False}


def gold_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "family", "answers", "rationale", "keyword"])
        for post_id, answers, rationale in rows:
            writer.writerow([post_id, f"practice text {post_id} with a child", "child",
                             json.dumps(answers), rationale, "toddler"])
    return path


def gold_rows(db):
    return db.run("SELECT post_id, family, purpose, answers, rationale FROM gold_posts"
                  " ORDER BY post_id")


def test_import_creates_posts_and_gold_and_reimport_updates(db, tmp_path):
    store = CorpusStore(db)
    make_posts(db, 1, prefix="known")  # an existing corpus post may become gold
    path = gold_csv(tmp_path / "gold.csv", [("g1", YES, "a toddler"), ("g2", NO, "no child"),
                                            ("known00000", YES, "")])
    first = import_gold(store, [path], purpose="practice", rejects_path=tmp_path / "r.csv")
    assert (first.new, first.updated, first.unchanged, len(first.rejects)) == (3, 0, 0, 0)
    assert first.posts_created == 2 and first.rejects_path is None
    assert db.run("SELECT id, family, keyword FROM posts ORDER BY id") == [
        ["g1", "child", "toddler"], ["g2", "child", "toddler"], ["known00000", "child",
                                                                  "toddler"]]
    assert gold_rows(db) == [["g1", "child", "practice", YES, "a toddler"],
                             ["g2", "child", "practice", NO, "no child"],
                             ["known00000", "child", "practice", YES, ""]]

    again = import_gold(store, [path], purpose="practice")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)

    gold_csv(path, [("g1", NO, "looked again: no child"), ("g2", NO, "no child")])
    changed = import_gold(store, [path], purpose="qa")
    assert (changed.new, changed.updated, changed.unchanged) == (0, 2, 0)
    assert gold_rows(db)[:2] == [["g1", "child", "qa", NO, "looked again: no child"],
                                 ["g2", "child", "qa", NO, "no child"]]
    assert db.run("SELECT count(*) FROM gold_posts")[0][0] == 3
    assert db.run("SELECT count(*) FROM posts")[0][0] == 3
    assert "3 rows read from 1 file(s): 0 new, 0 updated, 3 unchanged, 0 rejected" in (
        again.lines()[0])


def test_rejects_file_and_posts_in_campaigns(db, tmp_path):
    store = CorpusStore(db)
    ids = make_posts(db, 2)
    make_campaign(db, ids[:1], name="spring")
    path = gold_csv(tmp_path / "gold.csv", [
        (ids[0], YES, ""), (ids[1], YES, ""), ("dup", YES, ""), ("dup", NO, ""),
        ("bad", {"is_child": True}, "")])
    rejects = tmp_path / "out" / "rejects.csv"
    summary = import_gold(store, [path], purpose="qa", rejects_path=rejects)
    assert (summary.new, len(summary.rejects)) == (1, 4)
    rows = list(csv.DictReader(rejects.open(encoding="utf-8")))
    assert [(r["file"], r["line"], r["id"]) for r in rows] == [
        (str(path), "2", ids[0]), (str(path), "4", "dup"), (str(path), "5", "dup"),
        (str(path), "6", "bad")]
    assert "already in campaign 'spring'" in rows[0]["reason"]
    assert f"{path}:4" in rows[1]["reason"] and f"{path}:5" in rows[1]["reason"]
    assert rows[3]["reason"] == "answers are not a valid child label: age: is required"
    assert rows[3]["raw"].startswith("bad,")
    assert [r[0] for r in gold_rows(db)] == [ids[1]]
    assert db.run("SELECT count(*) FROM posts WHERE id IN ('dup', 'bad')")[0][0] == 0


def test_a_file_problem_imports_nothing(db, tmp_path):
    good = gold_csv(tmp_path / "gold.csv", [("g1", YES, "")])
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\nx,hello\n")
    for other in (posts, tmp_path / "missing.csv"):
        with pytest.raises(InvalidInput, match="nothing was imported"):
            import_gold(CorpusStore(db), [good, other], purpose="qa")
    assert db.run("SELECT count(*) FROM posts")[0][0] == 0


def test_a_gold_post_is_never_sampled_into_a_campaign(db, tmp_path):
    store = CorpusStore(db)
    make_posts(db, 12)
    # Some corpus posts become gold (one for another family: still never sampled).
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i:05d}", "text": "t", "family": family,
                                        "answers": answers}) + "\n"
                            for i, family, answers in ((0, "child", YES), (1, "child", NO),
                                                       (2, "health", {"is_health": False}))))
    assert import_gold(store, [path], purpose="qa").new == 3
    result = sample(store, SampleRequest("child", 100, "random", seed=3, name="all",
                                         filters=_no_filters()))
    sampled = {r[0] for r in db.run("SELECT post_id FROM campaign_posts")}
    assert result.frame_size == 9 and len(sampled) == 9
    assert not sampled & {"p00000", "p00001", "p00002"}


def _no_filters():
    from trainset.corpus.filters import FilterSettings

    return FilterSettings(exclude_phrases=(), min_length=0, near_duplicate_bits=None)


def test_export_then_import_round_trips(db, tmp_path):
    store = CorpusStore(db)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"id": "r1", "text": 'quotes " and,\ncommas', "family": "child",
                                "answers": {"is_child": True, "age": [codebook.AGE_TODDLER,
                                                                      codebook.AGE_BABY]},
                                "rationale": "two ages", "image_url": "demo/a.jpg",
                                "created_at": "2022-03-01T12:00:00Z"}) + "\n")
    import_gold(store, [path], purpose="practice")
    before = list_gold(store)
    for name in ("gold.csv", "gold.jsonl"):
        out = tmp_path / "export" / name
        assert export_gold(store, out, purpose="practice") == 1
        db.run("TRUNCATE gold_leases, gold_posts, posts CASCADE")
        summary = import_gold(store, [out], purpose="practice")
        assert (summary.new, len(summary.rejects)) == (1, 0)
        after = list_gold(store)
        assert [{k: v for k, v in r.items() if k != "gold_created_at"} for r in after] == [
            {k: v for k, v in r.items() if k != "gold_created_at"} for r in before]
    assert before[0]["answers"]["age"] == [codebook.AGE_BABY, codebook.AGE_TODDLER]
    with pytest.raises(InvalidInput, match=r"\.csv or \.jsonl"):
        export_gold(store, tmp_path / "x.parquet")


def test_a_trainee_practices_on_an_imported_set_and_is_scored(db, tmp_path):
    store = CorpusStore(db)
    tia = make_coder(db, "tia", status="trainee")
    path = gold_csv(tmp_path / "practice.csv", [("pr1", YES, "the toddler in the sandbox"),
                                                ("pr2", NO, "only adults")])
    import_gold(store, [path], purpose="practice")
    counts, done = practice_overview(store)
    assert counts["child"] == {"practice": 2, "qa": 0} and done == {}
    svc = service(db)
    seen = {}
    for _ in range(2):
        task = svc.next_task(tia, "child", "practice")["task"]
        receipt = svc.submit(tia, submission(task["post_id"], YES))
        seen[task["post_id"]] = receipt["practice"]
    assert seen["pr1"]["correct"] is True
    assert seen["pr1"]["rationale"] == "the toddler in the sandbox"
    assert seen["pr2"]["correct"] is False and seen["pr2"]["correct_answers"] == NO
    assert svc.me(tia)["practice"]["score"] == 0.5
    empty = svc.next_task(tia, "child", "practice")
    assert empty["task"] is None and "ask a manager" in empty["message"]
    assert practice_overview(store)[1] == {tia.id: ["child"]}


def test_api_text_import_is_refused_when_nothing_can_be_stored(db):
    store = CorpusStore(db)
    with pytest.raises(InvalidInput) as refused:
        import_gold_text(store, "id,text,family,answers\nx,t,child,{}\n", "csv", "qa")
    assert refused.value.details[0]["field"] == "content line 2"
    with pytest.raises(InvalidInput, match="content: no 'family' or 'answers' column"):
        import_gold_text(store, "id,text\nx,t\n", "csv", "qa")
    assert db.run("SELECT count(*) FROM posts")[0][0] == 0
    ok = import_gold_text(store, json.dumps({"id": "a", "text": "t", "family": "child",
                                             "answers": NO}) + "\n{oops\n", "jsonl", "qa")
    assert ok.new == 1 and [(r.file, r.line) for r in ok.rejects] == [("content", 2)]
