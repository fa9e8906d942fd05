"""Gold scoring, consensus, screening and the re-label loop through the real database, and
what the exports and reports contain."""

import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pandas as pd
import pytest
from openpyxl import load_workbook

from tests.factories import (
    CHILD_NO,
    CHILD_YES,
    make_campaign,
    make_coder,
    make_gold,
    make_posts,
    service,
    submission,
)
from trainset.errors import NotFound
from trainset.quality import reporting
from trainset.services.quality import (
    ScreeningRules,
    coder_report,
    export_labels,
    run_quality,
)
from trainset.store.quality import QualityStore

BABY = {"is_child": True, "age": ["0 to less than 1 year (baby/infant)"]}


def label_all(db, coder, answer_for, gold_rate=0.0):
    svc = service(db, gold_rate=gold_rate)
    done = []
    while (task := svc.next_task(coder, "child")["task"]) is not None:
        svc.submit(coder, submission(task["post_id"], answer_for(task["post_id"])))
        done.append(task["post_id"])
    return done


@pytest.fixture()
def crowd(db):
    """Ten posts, two labels each; ana and ben agree on eight; cid answers gold badly."""
    ids = make_posts(db, 10)
    make_campaign(db, ids, labels_per_post=2)
    gold_ids = make_posts(db, 6, prefix="g")
    gold = {g: (CHILD_YES if i % 2 == 0 else CHILD_NO) for i, g in enumerate(gold_ids)}
    for g, answers in gold.items():
        make_gold(db, g, "qa", answers)
    ana, ben, cid = make_coder(db, "ana"), make_coder(db, "ben"), make_coder(db, "cid")
    truth = {i: (CHILD_YES if int(i[-1]) % 2 == 0 else CHILD_NO) for i in ids}
    label_all(db, ana, lambda p: truth.get(p) or gold[p], gold_rate=1.0)
    disagree = {"p00008", "p00009"}
    label_all(db, ben, lambda p: BABY if p in disagree else (truth.get(p) or gold[p]),
              gold_rate=1.0)
    # cid answers every gold post the wrong way round (no work is left for cid).
    label_all(db, cid, lambda p: CHILD_NO if gold[p]["is_child"] else CHILD_YES,
              gold_rate=1.0)
    return {"ids": ids, "truth": truth, "coders": (ana, ben, cid)}


def test_quality_run_scores_screens_and_requeues(db, crowd):
    store = QualityStore(db)
    summary = run_quality(store, "child", ScreeningRules(min_confidence=0.9))
    steps = {s["step"]: s for s in summary["screening"]}
    assert steps["gold and practice posts"]["removed"] == 18  # 6 gold x 3 coders
    gold = {(r["coder"], r["label"]): r for r in summary["gold"]}
    assert gold[("cid", "is_child")]["pos_gold_correct_pct"] == 0.0
    assert gold[("cid", "is_child")]["neg_gold_correct_pct"] == 0.0
    assert gold[("ana", "is_child")]["pos_gold_n"] == 3
    assert gold[("ana", "(all)")]["correct_pct"] == 100.0
    cohort = {r["label"]: r for r in summary["gold_cohort"]}
    assert cohort["(all)"]["coders"] == 3 and cohort["(all)"]["max_pct"] == 100.0
    assert summary["posts"] == 10
    # The two posts where the coders disagree (on the age; on whether there is a child at
    # all) are not certain enough: screened out and sent back for a third coder.
    weak = db.run("SELECT post_id FROM screened_posts WHERE NOT kept ORDER BY post_id")
    assert [r[0] for r in weak] == ["p00008", "p00009"]
    assert summary["relabel_requested"] == 2
    extra = db.run("SELECT post_id, slot, reason FROM tasks WHERE reason IS NOT NULL"
                   " ORDER BY post_id")
    assert extra == [["p00008", 3, "re-label: confidence below 0.9"],
                     ["p00009", 3, "re-label: confidence below 0.9"]]
    # The loop closes: a new coder gets exactly that post.
    dee = make_coder(db, "dee")
    assert service(db).next_task(dee, "child")["task"]["post_id"] == "p00008"
    # Running again does not add a second open slot.
    run_quality(store, "child", ScreeningRules(min_confidence=0.9))
    assert db.run("SELECT count(*) FROM tasks WHERE reason IS NOT NULL")[0][0] == 2
    # is_child: 9 posts agree, p00009 splits no/yes. 11 yes and 9 no values in all:
    # alpha = 1 - D_o / D_e = 1 - (2 / 20) / (2 * 11 * 9 / (20 * 19)).
    alpha = summary["agreement"]["is_child"]["alpha"]
    assert alpha == pytest.approx(1 - (2 / 20) / (198 / 380))
    assert summary["agreement"]["age"]["distance"] == "MASI"


def test_weak_and_uncertified_coders_are_screened(db, crowd):
    ids = make_posts(db, 2, prefix="x")
    make_campaign(db, ids)
    eve = make_coder(db, "eve", status="certified")
    label_all(db, eve, lambda p: CHILD_YES)
    db.run("UPDATE coders SET status = 'trainee' WHERE name = 'eve'")
    store = QualityStore(db)
    summary = run_quality(store, "child", ScreeningRules(min_gold_accuracy=90,
                                                         min_gold_answers=5))
    steps = {s["step"]: s for s in summary["screening"]}
    # eve was certified when labeling: her labels stay even though she is a trainee now.
    assert steps["not certified when labeling"]["removed"] == 0
    # Per question, on the Wilson lower bound: 6 of 6 right on is_child is not evidence of
    # 90% (lower bound 61%), so ana's is_child answers go; her 3 age gold answers are too
    # few to judge. cid did no work: nothing of theirs to screen.
    screen = steps["coders below the gold accuracy threshold"]
    verdicts = {(v["coder"], v["question"]): v for v in screen["verdicts"]}
    assert verdicts[("ana", "is_child")]["verdict"] == "dropped"
    assert verdicts[("ana", "is_child")]["wilson_low_pct"] == pytest.approx(60.97, abs=0.01)
    assert verdicts[("ana", "age")]["verdict"] == "too few gold answers"
    assert verdicts[("eve", "is_child")]["verdict"] == "no gold answers"
    assert "cid" not in {c for c, _ in verdicts}
    # Both are dropped on is_child, so on each post their answers are the only ones left:
    # they stay (the post then gets an uncertain consensus and is re-labeled) rather than
    # leaving the post without an answer to the question.
    assert screen["removed"] == 0 and screen["kept_as_only_answer"] == 20
    db.run("UPDATE labels SET answers = answers WHERE false")  # labels stay append-only


def test_export_reads_back_with_pandas(db, crowd, tmp_path):
    store = QualityStore(db)
    with pytest.raises(NotFound):
        export_labels(store, "child", tmp_path)
    run_quality(store, "child", ScreeningRules(min_confidence=0.5, relabel=False))
    result = export_labels(store, "child", tmp_path / "out")
    csv_frame = pd.read_csv(result["paths"]["csv"])
    parquet = pd.read_parquet(result["paths"]["parquet"])
    assert len(csv_frame) == len(parquet) == result["records"] == 10
    row = parquet.set_index("post_id").loc["p00000"]
    assert bool(row["is_child"]) is True
    assert row["age"] == "['1 to 4 years (toddler/pre-school)']"  # the study's format
    assert list(row["multi_hot"]) == [0, 1, 0, 0, 0, 0]
    assert list(row["study_labels"]) == [0, 1, 0, 0, 0, 1] and row["gate"] == 1
    assert len(row["soft_labels"]) == 6 and 0 <= row["confidence"] <= 1
    assert row["n_coders"] == 2
    no_child = parquet.set_index("post_id").loc["p00001"]
    assert no_child["age"] == "['']" and list(no_child["multi_hot"]) == [0] * 6
    assert no_child["gate"] == 0 and list(no_child["study_labels"]) == [0] * 6
    assert json.loads(csv_frame.loc[0, "multi_hot"]) == list(parquet.loc[0, "multi_hot"])
    card = json.loads((tmp_path / "out" / "datacard.json").read_text())
    toddlers = int(sum(v[1] for v in parquet["multi_hot"]))
    assert card["records"] == 10 and card["positives_per_slot"]["toddler"] == toddlers >= 4
    markdown = (tmp_path / "out" / "datacard.md").read_text()
    assert "Screening log" in markdown and "Krippendorff" in markdown


class _Parser(HTMLParser):
    """Tags seen, and every table as rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tags = []
        self.tables = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell)
            self._cell = None


STUDY_QA_COLUMNS = ["family", "label", "coder", "neg_gold_correct_pct", "neg_gold_n",
                    "pos_gold_correct_pct", "pos_gold_n"]


def test_coder_report_files_open(db, crowd, tmp_path):
    store = QualityStore(db)
    run_quality(store, "child", ScreeningRules(relabel=False))
    now = datetime.now(UTC)
    report = coder_report(store, now - timedelta(days=1), now + timedelta(days=1))
    coders = {r["coder"]: r for r in report["coders"]}
    # Counts are first labels of real work, QA gold included, as the page and the manager
    # table count them: ana labeled 10 posts and answered the 6 gold posts; cid only gold.
    assert coders["ana"]["labels"] == 16
    assert coders["cid"]["labels"] == 6
    # Agreement with consensus, recomputed from the stored consensus items.
    consensus = dict(((p, i), v) for p, i, v in db.run(
        "SELECT post_id, item, value FROM consensus_items"))
    from trainset.quality.goldscore import binary_items

    for name in ("ana", "ben"):
        same = total = 0
        for post_id, answers in db.run(
                "SELECT l.post_id, l.answers FROM labels l JOIN coders c ON c.id = l.coder_id"
                " WHERE c.name = :n AND l.kind = 'task'", n=name):
            for item, value in binary_items("child", answers).items():
                if (post_id, item) in consensus:
                    total += 1
                    same += consensus[(post_id, item)] == value
        assert coders[name]["agreement_with_consensus_pct"] == round(100 * same / total, 1)
    assert len([s for s in report["samples"] if s["coder"] == "ana"]) == 10
    trend = {r["coder"]: r for r in report["gold_trend"]}
    assert trend["cid"]["correct_pct"] < trend["ana"]["correct_pct"]
    reporting.write_html(report, tmp_path / "r.html", "report")
    reporting.write_xlsx(report, tmp_path / "r.xlsx")
    parser = _Parser()
    parser.feed((tmp_path / "r.html").read_text())
    assert parser.tags.count("table") == 6 and "svg" in parser.tags
    book = load_workbook(tmp_path / "r.xlsx")
    assert set(book.sheetnames) >= set(reporting.VIEWS)
    assert book["coders"]["A2"].value == "coder"
    # The per-option gold table, in the study's QA layout, in all three outputs: cid answered
    # 3 child gold posts "no" (toddler missed: 0% of 3 positive) and 3 no-child posts "yes,
    # toddler" (0% of 3 negative); ana was right on all.
    option = {(r["coder"], r["label"]): r for r in report["gold_by_option"]}
    toddler = "age=1 to 4 years (toddler/pre-school)"
    assert list(report["gold_by_option"][0])[:7] == STUDY_QA_COLUMNS
    assert [option[("cid", toddler)][k] for k in STUDY_QA_COLUMNS[3:]] == [0.0, 3, 0.0, 3]
    assert [option[("ana", toddler)][k] for k in STUDY_QA_COLUMNS[3:]] == [100.0, 3, 100.0, 3]
    baby = option[("cid", "age=0 to less than 1 year (baby/infant)")]
    assert (baby["neg_gold_n"], baby["pos_gold_n"]) == (6, 0)
    assert baby["pos_gold_correct_pct"] is None
    html_table = next(t for t in parser.tables if t[0][:7] == STUDY_QA_COLUMNS)
    html_rows = {(r[2], r[1]): r for r in html_table[1:]}
    assert html_rows[("cid", toddler)][3:7] == ["0.0", "3", "0.0", "3"]
    sheet = book["gold_by_option"]
    assert [c.value for c in sheet[2]][:7] == STUDY_QA_COLUMNS
    xlsx_rows = {(r[2], r[1]): r for r in sheet.iter_rows(min_row=3, values_only=True)}
    assert xlsx_rows[("ana", toddler)][3:7] == (100, 3, 100, 3)
    assert len(xlsx_rows) == len(report["gold_by_option"]) == 3 * 9  # 3 coders x 9 items


def test_exported_answers_always_obey_the_codebook(db, tmp_path):
    """Three coders agree there is a child but each names another age group, or disagree on
    the child: the consensus still names an age group for every child, and the gate
    feature agrees with the answers."""
    import ast

    from trainset import codebook

    ids = make_posts(db, 12)
    make_campaign(db, ids, labels_per_post=3)
    coders = [make_coder(db, name) for name in ("ana", "ben", "cid")]
    ages = ["1 to 4 years (toddler/pre-school)", "0 to less than 1 year (baby/infant)",
            "5 to 10 years (elementary school)"]
    for k, coder in enumerate(coders):
        def answer(post_id, k=k):
            n = int(post_id[-2:])
            if n % 4 == 3 and k == 0:
                return CHILD_NO
            return {"is_child": True, "age": [ages[k] if n % 2 else ages[0]]}
        label_all(db, coder, answer)
    store = QualityStore(db)
    run_quality(store, "child", ScreeningRules(min_confidence=0.0, relabel=False))
    parquet = pd.read_parquet(export_labels(store, "child", tmp_path)["paths"]["parquet"])
    assert len(parquet) == 12
    for row in parquet.itertuples():
        ages_given = [a for a in ast.literal_eval(row.age) if a]
        answers = {"is_child": bool(row.is_child),
                   **({"age": ages_given} if row.is_child else {})}
        assert codebook.validate("child", answers) == [], answers
        assert row.gate == int(row.is_child)
        assert list(row.study_labels) == codebook.encode_study("child", answers)
