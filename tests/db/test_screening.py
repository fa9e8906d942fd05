"""Screening judged against a known truth, with simulated coders at the study's measured rates
(never perfect labels): the per-question gold screen, what screening does to the sample
(prevalence among kept posts, calibrated weights) and what the data card says about it."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pandas as pd
import pytest

from tests.factories import make_campaign, make_coder, make_gold, service
from trainset import codebook, simulate
from trainset.corpus.filters import FilterSettings
from trainset.services import corpus as corpus_service
from trainset.services.campaigns import SampleRequest, sample
from trainset.services.quality import (
    ScreeningRules,
    export_labels,
    fit_consensus,
    run_quality,
)
from trainset.store.corpus import CorpusStore
from trainset.store.quality import QualityStore

TODDLER = {"is_child": True, "age": [codebook.AGE_TODDLER]}
NO_CHILD = {"is_child": False}


def add_gold(db, n: int) -> dict[str, dict]:
    """n QA gold posts, half with a toddler, half without a child."""
    ids = [f"gold{i:03d}" for i in range(n)]
    corpus_service.add_posts(CorpusStore(db), [
        {"id": g, "text": f"gold post {g} maybe a toddler", "keyword": "gold", "family": None}
        for g in ids])
    gold = {g: (TODDLER if i % 2 else NO_CHILD) for i, g in enumerate(ids)}
    for g, answers in gold.items():
        make_gold(db, g, "qa", answers)
    return gold


def work_through(db, pairs, truth, rng, gold_rate=1.0):
    """Each simulated coder takes tasks in turn until none is left; with gold_rate 1 every
    coder answers every gold post first, as the crowd fixture of test_quality does."""
    simulate.label_in_process(service(db, gold_rate=gold_rate), list(pairs), truth, rng)


def good_coders(n: int) -> list[simulate.SimulatedCoder]:
    """The study's coders best on the gate question (their measured rates)."""
    crowd = simulate.load_coders("child")
    return sorted(crowd, key=lambda c: -sum(c.rates("is_child")))[:n]


def test_a_coder_weak_on_one_question_loses_only_those_answers(db):
    rng = random.Random(51)
    gold = add_gold(db, 90)
    ids = [f"p{i:04d}" for i in range(80)]
    truth = {i: (TODDLER if rng.random() < 0.4 else NO_CHILD) for i in ids}
    corpus_service.add_posts(CorpusStore(db), [
        {"id": i, "text": f"post {i} about a child", "keyword": "toddler", "family": "child"}
        for i in ids])
    make_campaign(db, ids, labels_per_post=2)
    crowd = good_coders(3)
    # A coder at chance on "is there a child" who is as good as the best on the age groups.
    coin = simulate.SimulatedCoder("coin", "child", dict(crowd[0].sensitivity),
                                   dict(crowd[0].specificity), crowd[0].default)
    coin.sensitivity["is_child"], coin.specificity["is_child"] = 0.51, 0.51
    sims = [*crowd, coin]
    coders = [make_coder(db, c.name.replace("_", "-")) for c in sims]
    work_through(db, zip(sims, coders, strict=True), {**truth, **gold}, rng)

    store = QualityStore(db)
    summary = run_quality(store, "child", ScreeningRules(min_confidence=0.0, relabel=False))
    pooled = {r["coder"]: r for r in summary["gold"] if r["label"] == "(all)"}
    per_item = {(r["coder"], r["label"]): r for r in summary["gold"]}
    assert per_item[("coin", "is_child")]["n"] == 90
    assert per_item[("coin", "is_child")]["correct_pct"] < 65
    # The old pooled screen (70% of all gold items, point estimate) would have kept coin.
    assert pooled["coin"]["correct_pct"] >= 70

    screen = next(s for s in summary["screening"]
                  if s["step"] == "coders below the gold accuracy threshold")
    verdicts = {(v["coder"], v["question"]): v for v in screen["verdicts"]}
    assert verdicts[("coin", "is_child")]["verdict"] == "dropped"
    assert verdicts[("coin", "is_child")]["wilson_low_pct"] < 55
    assert verdicts[("coin", "age")]["verdict"] == "kept"  # judged on the 45 toddler posts
    assert verdicts[("coin", "age")]["gold_answers"] == 45
    for sim in crowd:
        name = sim.name.replace("_", "-")
        assert verdicts[(name, "is_child")]["verdict"] == "kept", verdicts[(name, "is_child")]
    assert set(screen["by_coder"]) == {"coin"} and set(screen["by_question"]) == {"is_child"}
    assert "coin on is_child" in screen["why"]

    fit = fit_consensus(store, "child", ScreeningRules())
    coin_posts = {p for c, p, q in fit.dropped if c == "coin"}
    assert coin_posts and {q for c, _, q in fit.dropped} == {"is_child"}
    # Where coin and another coder both said there is a child, both age answers count,
    # while the post's is_child consensus rests on the other coder alone.
    both_said_child = {lab["post_id"] for lab in fit.work if lab["coder"] == "coin"
                       and lab["answers"]["is_child"]} & {
        lab["post_id"] for lab in fit.work if lab["coder"] != "coin"
        and lab["answers"]["is_child"]}
    assert both_said_child
    items = {(i.post_id, i.item): i for i in fit.items}
    for post_id in both_said_child & coin_posts:
        assert items[(post_id, "is_child")].n_labels == 1
        assert items[(post_id, f"age={codebook.AGE_TODDLER}")].n_labels == 2
    # The screened consensus gets the gate question right more often than coin alone.
    right = sum(items[(p, "is_child")].value == truth[p]["is_child"] for p in ids)
    assert right / len(ids) > 0.7


def test_study_coders_pass_the_screen_with_enough_gold(db):
    """The study's own coders at their measured rates are not screened wholesale by noise:
    on 90 gold answers the best ones clear the default bar on both questions."""
    rng = random.Random(7)
    gold = add_gold(db, 90)
    crowd = good_coders(3)
    coders = [make_coder(db, c.name.replace("_", "-")) for c in crowd]
    work_through(db, zip(crowd, coders, strict=True), gold, rng)
    fit = fit_consensus(QualityStore(db), "child")
    screen = fit.log[-1]
    assert all(v["verdict"] == "no gold answers" or v["verdict"] == "kept"
               for v in screen["verdicts"])


def test_imported_labels_are_work_and_pass_unjudged():
    """Labels of kind 'imported' (from other tools) count like tasks; with no gold answers
    the per-question screen cannot judge their coder, and says so."""

    class Store:
        def family_labels(self, family):
            when = datetime(2026, 3, 4, tzinfo=UTC)
            base = {"family": "child", "coder_status": "certified", "created_at": when}
            return [
                {**base, "post_id": "p1", "coder": "tool", "kind": "imported",
                 "answers": TODDLER},
                {**base, "post_id": "p1", "coder": "ana", "kind": "task", "answers": TODDLER},
                {**base, "post_id": "g1", "coder": "ana", "kind": "qa", "answers": TODDLER},
            ]

        def gold_answers(self, family):
            return {"g1": TODDLER}

        def adjudicated_answers(self, family):
            return {}

    fit = fit_consensus(Store(), "child", ScreeningRules(min_gold_answers=5))
    assert {lab["coder"] for lab in fit.work} == {"tool", "ana"}
    item = next(i for i in fit.items if i.item == "is_child")
    assert item.n_labels == 2
    screen = fit.log[-1]
    tool = next(v for v in screen["verdicts"]
                if v["coder"] == "tool" and v["question"] == "is_child")
    assert tool["verdict"] == "no gold answers" and "imported" in tool["note"]
    assert "Imported labels (tool)" in screen["why"]
    assert fit.log[0]["removed"] == 1  # only the gold answer left the training data


@pytest.fixture()
def stratified(db):
    """Two keyword strata of 60 posts, 30 drawn from each (weight 2), two simulated coders
    per post, and 40 gold posts."""
    rng = random.Random(2026)
    store = CorpusStore(db)
    yields = {"toddler": 0.6, "minor": 0.2}
    truth, posts = {}, []
    for keyword, share in yields.items():
        for i in range(60):
            post_id = f"{keyword[:3]}{i:03d}"
            truth[post_id] = TODDLER if rng.random() < share else NO_CHILD
            posts.append({"id": post_id, "text": f"post {i} on a {keyword} {post_id}",
                          "keyword": keyword, "family": "child"})
    gold = add_gold(db, 40)
    corpus_service.add_posts(store, posts)
    sample(store, SampleRequest("child", 60, "equal", seed=3, name="study", labels_per_post=2,
                                filters=FilterSettings(near_duplicate_bits=None,
                                                       exclude_phrases=())))
    crowd = good_coders(4)
    coders = [make_coder(db, c.name.replace("_", "-")) for c in crowd]
    work_through(db, zip(crowd, coders, strict=True), {**truth, **gold}, rng)
    return {"truth": truth}


def test_data_card_shows_the_shift_and_calibrated_weights(db, stratified, tmp_path):
    store = QualityStore(db)
    # A very strict confidence bar screens by the answer: a child is kept only when its age
    # group is as certain as the child itself, so far fewer children than posts without one
    # pass, and the kept posts' share of children falls well below the judged sample's.
    run_quality(store, "child", ScreeningRules(min_confidence=0.99, relabel=False))
    result = export_labels(store, "child", tmp_path)
    card = result["card"]
    effect = card["screening_effect"]
    is_child = next(e for e in effect["prevalence"] if e["label"] == "is_child")
    assert is_child["method"] == "design-weighted"
    assert is_child["labeled"]["n"] == 60 and is_child["kept"]["n"] == card["records"] < 60
    assert is_child["shift"] < -0.1 and is_child["shifted"] is True, is_child
    assert not is_child["labeled"]["low"] <= is_child["kept"]["value"] <= is_child[
        "labeled"]["high"]
    assert any(w.startswith("screening shifts is_child") for w in card["warnings"])
    markdown = (tmp_path / "datacard.md").read_text()
    assert "## Warnings" in markdown and "screening shifts is_child" in markdown
    assert "judged sample vs kept posts" in markdown and "calibrated_weight" in markdown
    assert "ignorable" in markdown  # the calibration's assumption is stated

    frame = pd.read_parquet(result["paths"]["parquet"])
    assert set(frame["sampling_weight"]) == {2.0}  # 30 of 60 in each stratum
    sums = frame.groupby("keyword")["calibrated_weight"].sum()
    assert sums.to_dict() == {"minor": pytest.approx(60), "toddler": pytest.approx(60)}
    kept = frame.groupby("keyword").size()
    for keyword in ("minor", "toddler"):
        factor = 30 / kept[keyword]
        got = frame[frame["keyword"] == keyword]["calibrated_weight"]
        assert got.tolist() == pytest.approx([2.0 * factor] * kept[keyword])
    strata = effect["calibration"]["strata"]
    assert sorted(s.split(":", 1)[1] for s in strata) == ["minor", "toddler"]
    assert all(s["population"] == 60 and s["judged"] == 30 for s in strata.values())
    assert effect["calibration"]["strata_without_kept_posts"] == []
    csv_frame = pd.read_csv(result["paths"]["csv"])
    assert {"sampling_weight", "calibrated_weight"} <= set(csv_frame.columns)


def test_no_warning_when_screening_keeps_everything(db, stratified, tmp_path):
    store = QualityStore(db)
    run_quality(store, "child", ScreeningRules(min_confidence=0.0, relabel=False))
    card = export_labels(store, "child", tmp_path)["card"]
    assert card["warnings"] == []
    for e in card["screening_effect"]["prevalence"]:
        assert e["labeled"] == e["kept"] and e["shifted"] is False
    frame = pd.read_parquet(tmp_path / "child_labels.parquet")
    assert (frame["calibrated_weight"] == frame["sampling_weight"]).all()


def test_gold_period_and_em_cap_on_the_data_card(db, stratified, tmp_path):
    store = QualityStore(db)
    summary = run_quality(store, "child", ScreeningRules(em_max_iterations=2, relabel=False))
    assert summary["em_converged"] is False and summary["em_iterations"] == 2
    card = export_labels(store, "child", tmp_path)["card"]
    today = datetime.now(UTC).date().isoformat()
    gold_answers = db.run("SELECT count(*) FROM labels WHERE kind = 'qa'")[0][0]
    assert card["gold_period"] == {"from": today, "to": today, "answers": gold_answers}
    assert {r["period"] for r in card["gold_cohort"]} == {f"{today}/{today}"}
    assert card["em"] == {"iterations": 2, "converged": False}
    assert "without converging" in card["warnings"][0]
    markdown = (tmp_path / "datacard.md").read_text()
    assert "1970" not in markdown and f"from {today} to {today}" in markdown
    assert "**did not converge**" in markdown
    # A run that converges says so, without a warning.
    run_quality(store, "child", ScreeningRules(relabel=False))
    card = export_labels(store, "child", tmp_path / "again")["card"]
    assert card["em"]["converged"] is True
    assert not any("without converging" in w for w in card["warnings"])


def test_quality_run_command_reports_em_and_question_thresholds(db, database_url, tmp_path):
    from tests.test_cli import run_cli

    gold = add_gold(db, 12)
    ids = [f"p{i:04d}" for i in range(6)]
    corpus_service.add_posts(CorpusStore(db), [
        {"id": i, "text": f"post {i}", "keyword": "toddler", "family": "child"} for i in ids])
    make_campaign(db, ids, labels_per_post=2)
    crowd = good_coders(2)
    coders = [make_coder(db, c.name.replace("_", "-")) for c in crowd]
    work_through(db, zip(crowd, coders, strict=True),
                 {**{i: TODDLER for i in ids}, **gold}, random.Random(3))
    ran = run_cli(["quality", "run", "--family", "child", "--em-max-iterations", "1",
                   "--question-min-accuracy", "is_child=99", "--min-gold-answers", "5"],
                  database_url, tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "WARNING: the consensus model (EM) stopped at its cap of 1 iterations" in ran.stdout
    assert "is_child 99%" in ran.stdout  # the per-question threshold is in the log
    assert "/ is_child:" in ran.stdout and "answers dropped" in ran.stdout
    bad = run_cli(["quality", "run", "--family", "child", "--question-min-accuracy", "nope=5"],
                  database_url, tmp_path)
    assert bad.returncode == 2 and "QUESTION=PERCENT" in bad.stderr
