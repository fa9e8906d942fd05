"""Import, sampling and estimates against a real PostgreSQL, end to end into the queue."""

import csv
from pathlib import Path

import pytest

from tests.factories import make_coder, service, submission
from trainset.corpus.filters import FilterSettings
from trainset.errors import Conflict, InvalidInput
from trainset.services.campaigns import SampleRequest, estimate_prevalence, sample
from trainset.services.ingest import import_files
from trainset.store.corpus import CorpusStore
from trainset.store.quality import QualityStore

KEYWORDS = {"toddler": 40, "minor": 80, "middle schooler": 20}


def write_corpus(path: Path, broken: bool = False) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "keyword", "family", "lang"])
        n = 0
        for keyword, count in KEYWORDS.items():
            for i in range(count):
                writer.writerow([f"{keyword[:3]}{i:04d}",
                                 f"Post {n} with unique words {keyword} number {i} " * 2 +
                                 f"and tail {n * 7919 % 1000}", keyword, "child", "en"])
                n += 1
        if broken:
            writer.writerow(["", "no id here", "minor", "child", "en"])
            writer.writerow(["bad1", "", "minor", "child", "en"])


def test_import_is_idempotent_and_reports_rejects(db, tmp_path):
    corpus = tmp_path / "corpus.csv"
    write_corpus(corpus, broken=True)
    store = CorpusStore(db)
    first = import_files(store, [corpus], rejects_path=tmp_path / "rejects.csv", batch_size=50)
    assert (first.inserted, first.updated, first.unchanged, first.rejected_total) == (
        140, 0, 0, 2)
    rejects = list(csv.DictReader((tmp_path / "rejects.csv").open()))
    assert [(r["line"], r["reason"]) for r in rejects] == [("142", "missing id"),
                                                            ("143", "missing text")]
    again = import_files(store, [corpus], rejects_path=tmp_path / "r2.csv")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 140)
    assert db.run("SELECT count(*) FROM posts")[0][0] == 140
    # A changed row is updated, not duplicated. An id twice in one file is ambiguous: the
    # first row is kept and the later one rejected, naming both lines.
    change = tmp_path / "change.csv"
    change.write_text("id,text,keyword\ntod0000,first version,toddler\n"
                      "tod0001,another post,toddler\ntod0000,second version,toddler\n")
    third = import_files(store, [change], rejects_path=tmp_path / "r3.csv")
    assert (third.updated, third.rejected_total) == (2, 1)
    assert third.rejected == {"duplicate id": 1}
    assert db.run("SELECT text FROM posts WHERE id = 'tod0000'") == [["first version"]]
    dup = list(csv.DictReader((tmp_path / "r3.csv").open()))
    assert [(r["line"], r["id"], r["reason"]) for r in dup] == [
        ("4", "tod0000", "duplicate id (also at line 2 of this file, which is kept)")]
    # Across files the later file still updates the post.
    later = tmp_path / "later.jsonl"
    later.write_text('{"id": "tod0000", "text": "third version"}\n'
                     '{"id": "tod0000", "text": "fourth version"}\n')
    fourth = import_files(store, [later], rejects_path=tmp_path / "r4.csv")
    assert (fourth.updated, fourth.rejected_total) == (1, 1)
    assert db.run("SELECT text FROM posts WHERE id = 'tod0000'") == [["third version"]]
    assert list(csv.DictReader((tmp_path / "r4.csv").open()))[0]["line"] == "2"


def test_missing_and_unreadable_files_are_reported_and_others_kept(db, tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "j1", "text": "hello from json"}\n')
    summary = import_files(CorpusStore(db), [tmp_path / "nope.csv", good, tmp_path / "x.txt"],
                           rejects_path=tmp_path / "r.csv")
    assert summary.inserted == 1 and len(summary.file_problems) == 2
    assert summary.rejects_path is None  # nothing rejected: no file written


@pytest.fixture()
def corpus(db, tmp_path):
    path = tmp_path / "corpus.csv"
    write_corpus(path)
    import_files(CorpusStore(db), [path], rejects_path=tmp_path / "r.csv")
    return CorpusStore(db)


def sampled_ids(db, campaign_id):
    return [r[0] for r in db.run(
        "SELECT post_id FROM campaign_posts WHERE campaign_id = :c ORDER BY post_id",
        c=campaign_id)]


def test_sample_creates_campaign_tasks_and_probabilities(db, corpus):
    result = sample(corpus, SampleRequest("child", 30, "equal", seed=7, labels_per_post=2,
                                          name="c1"))
    assert [(s.stratum, s.population, s.sampled) for s in result.plan] == [
        ("middle schooler", 20, 10), ("minor", 80, 10), ("toddler", 40, 10)]
    assert db.run("SELECT count(*) FROM tasks WHERE campaign_id = :c",
                  c=result.campaign_id)[0][0] == 60
    probs = dict(db.run("SELECT stratum, min(inclusion_prob) FROM campaign_posts"
                        " GROUP BY stratum"))
    assert probs == {"middle schooler": 0.5, "minor": 0.125, "toddler": 0.25}
    row = db.run("SELECT strategy, seed, budget, snapshot->>'eligible', filters->'removed'"
                 " FROM campaigns WHERE id = :c", c=result.campaign_id)[0]
    assert row[:4] == ["equal", 7, 30, "140"]
    assert set(row[4]) >= {"exact duplicates", "exclusion phrases"}
    weights = db.run("SELECT sum(weight) FROM post_weights WHERE campaign_id = :c",
                     c=result.campaign_id)[0][0]
    assert float(weights) == pytest.approx(140)  # weights add up to the frame
    with pytest.raises(Conflict):
        sample(corpus, SampleRequest("child", 5, "equal", seed=7, name="c1"))


def test_same_seed_same_sample(db, corpus):
    first = sample(corpus, SampleRequest("child", 25, "proportional", seed=11, name="a"))
    ids = sampled_ids(db, first.campaign_id)
    db.run("TRUNCATE tasks, campaign_posts, campaign_strata, campaigns CASCADE")
    again = sample(corpus, SampleRequest("child", 25, "proportional", seed=11, name="b"))
    assert sampled_ids(db, again.campaign_id) == ids
    db.run("TRUNCATE tasks, campaign_posts, campaign_strata, campaigns CASCADE")
    other = sample(corpus, SampleRequest("child", 25, "proportional", seed=12, name="c"))
    assert sampled_ids(db, other.campaign_id) != ids


def test_a_second_campaign_never_resamples_posts(db, corpus):
    sample(corpus, SampleRequest("child", 50, "random", seed=1, name="first"))
    second = sample(corpus, SampleRequest("child", 500, "random", seed=1, name="second"))
    assert second.frame_size == 90
    overlap = db.run("SELECT count(*) FROM (SELECT post_id FROM campaign_posts"
                     " GROUP BY post_id HAVING count(*) > 1) d")[0][0]
    assert overlap == 0


def test_neyman_needs_yields_then_uses_the_file(db, corpus, tmp_path):
    with pytest.raises(InvalidInput, match="pilot yields"):
        sample(corpus, SampleRequest("child", 30, "neyman", seed=1))
    yields = tmp_path / "y.csv"
    yields.write_text("keyword,percent_true\ntoddler,60\nminor,4\nmiddle schooler,59\n")
    result = sample(corpus, SampleRequest("child", 30, "neyman", seed=1, yields_file=yields))
    counts = {s.stratum: s.sampled for s in result.plan}
    assert counts["toddler"] > counts["minor"]


def test_campaign_feeds_the_queue_and_estimates_use_the_design(db, corpus):
    sample(corpus, SampleRequest("child", 12, "equal", seed=3, name="est",
                                          filters=FilterSettings(near_duplicate_bits=None)))
    coder = make_coder(db, "ana")
    svc = service(db)
    positives = {"toddler"}  # label every toddler post as a child, the others not
    while (task := svc.next_task(coder, "child")["task"]) is not None:
        keyword = db.run("SELECT keyword FROM posts WHERE id = :p", p=task["post_id"])[0][0]
        answers = ({"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}
                   if keyword in positives else {"is_child": False})
        svc.submit(coder, submission(task["post_id"], answers))
    estimates = estimate_prevalence(corpus, QualityStore(db), "child", "est")
    assert estimates["labeled_posts"] == estimates["judged_posts"] == 12
    is_child = next(e for e in estimates["labels"] if e.label == "is_child")
    # Equal allocation (4 per keyword) over populations 20/80/40: the weighted prevalence is
    # the toddler share of the frame, 40/140; the unweighted one is 4/12.
    assert is_child.raw_weighted.value == pytest.approx(40 / 140)
    assert is_child.raw_unweighted.value == pytest.approx(4 / 12)
    # One coder, no gold: the consensus can only echo them, shrunk toward doubt, and its
    # intervals say so.
    assert is_child.weighted.low < 40 / 140 < is_child.weighted.high
    assert is_child.per_keyword["toddler"].value > 0.5 > is_child.per_keyword["minor"].value
    toddler = next(e for e in estimates["labels"] if e.label == "toddler")
    assert toddler.raw_weighted.value == pytest.approx(40 / 140)


def test_import_with_a_second_connection_merges_in_the_background(db, database_url, tmp_path):
    from trainset.store.db import connect, parse_url

    corpus = tmp_path / "corpus.csv"
    write_corpus(corpus, broken=True)
    merge_conn = connect(parse_url(database_url))
    try:
        summary = import_files(CorpusStore(db), [corpus], rejects_path=tmp_path / "r.csv",
                               merge_store=CorpusStore(merge_conn), batch_size=7)
    finally:
        merge_conn.close()
    assert (summary.inserted, summary.rejected_total) == (140, 2)
    assert db.run("SELECT count(*) FROM posts")[0][0] == 140
    assert db.run("SELECT count(*) FROM import_staging")[0][0] == 0  # nothing left behind


def test_a_failing_merge_stops_the_import_and_leaves_no_staging(db, tmp_path):
    corpus = tmp_path / "corpus.csv"
    write_corpus(corpus)

    class Failing(CorpusStore):
        def merge_batch(self, import_id, batch, count):
            if batch == 2:
                raise RuntimeError("database went away")
            return super().merge_batch(import_id, batch, count)

    with pytest.raises(RuntimeError, match="went away"):
        import_files(Failing(db), [corpus], rejects_path=tmp_path / "r.csv", batch_size=50)
    assert db.run("SELECT count(*) FROM posts")[0][0] == 50  # the first batch, whole
    assert db.run("SELECT count(*) FROM import_staging")[0][0] == 0


def test_neyman_target_uses_that_labels_yields_from_the_database(db, corpus):
    pilot = sample(corpus, SampleRequest("child", 30, "equal", seed=2, name="pilot",
                                         filters=FilterSettings(near_duplicate_bits=None)))
    coder = make_coder(db, "ana")
    svc = service(db)
    while (task := svc.next_task(coder, "child")["task"]) is not None:
        keyword = db.run("SELECT keyword FROM posts WHERE id = :p", p=task["post_id"])[0][0]
        middle = keyword == "middle schooler" and task["post_id"][-1] in "02468"
        answers = ({"is_child": True, "age": ["11 to 13 years (middle school)"]} if middle
                   else {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]})
        svc.submit(coder, submission(task["post_id"], answers))
    assert pilot.campaign_id
    result = sample(corpus, SampleRequest("child", 30, "neyman", seed=2, name="aimed",
                                          target="middle"))
    counts = {s.stratum: s.sampled for s in result.plan}
    yields = {s.stratum: s.pilot_yield for s in result.plan}
    assert yields["minor"] == yields["toddler"] == 0.0 and 0 < yields["middle schooler"] < 1
    # Neyman puts the most labels where the target label varies: the middle schoolers.
    assert counts["middle schooler"] > counts["toddler"] and counts["middle schooler"] >= 10
    with pytest.raises(InvalidInput, match="unknown label"):
        sample(corpus, SampleRequest("child", 30, "neyman", seed=2, name="x", target="teen"))


def test_a_manual_campaign_refuses_gold_posts(db):
    from tests.factories import make_campaign, make_gold, make_posts

    ids = make_posts(db, 3)
    make_gold(db, ids[0], "practice")
    with pytest.raises(InvalidInput, match="gold or practice") as refused:
        make_campaign(db, ids)
    assert ids[0] in refused.value.message
    assert db.run("SELECT count(*) FROM campaigns")[0][0] == 0
    make_campaign(db, ids[1:])  # the others are fine


def test_pilot_yields_count_imported_labels(db, corpus, tmp_path):
    """Labels brought from another tool are real labels of real posts: they feed pilot
    yields like labeled tasks do."""
    from trainset.services.label_import import import_labels
    from trainset.store.label_import import LabelImportStore

    posts = [r[0] for r in db.run("SELECT id FROM posts WHERE keyword = 'toddler' LIMIT 4")]
    path = tmp_path / "prior.csv"
    toddler = '"[""1 to 4 years (toddler/pre-school)""]"'
    path.write_text("post_id,coder_id,field,value\n" + "".join(
        f"{p},ann,is_child,true\n{p},ann,age,{toddler}\n" if i < 3 else f"{p},ann,is_child,false\n"
        for i, p in enumerate(posts)))
    import_labels(LabelImportStore(db), path, family="child", source="pilot")
    rows = CorpusStore(db).labeled_answers_by_keyword("child")
    assert sorted(a["is_child"] for k, a in rows if k == "toddler") == [False, True, True, True]
