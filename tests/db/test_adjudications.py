"""Adjudications in the quality run: ``QualityStore.gold_answers`` counts a post's newest
adjudication as its known truth, beside the QA gold answers."""

from __future__ import annotations

import pytest

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
from trainset.services.quality import ScreeningRules, fit_consensus
from trainset.services.review import adjudicate
from trainset.store.quality import QualityStore

RULES = ScreeningRules(min_gold_accuracy=None)


@pytest.fixture()
def work(db):
    """Six posts; ana and bea both call each a child; one QA gold post."""
    ids = make_posts(db, 6)
    make_campaign(db, ids, labels_per_post=2)
    make_gold(db, make_posts(db, 1, prefix="qa")[0], "qa", CHILD_NO)
    coders = [make_coder(db, "ana"), make_coder(db, "bea")]
    boss = make_coder(db, "boss", role="manager")
    svc = service(db)
    for coder in coders:
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            svc.submit(coder, submission(task["post_id"], CHILD_YES))
    return {"ids": ids, "boss": boss}


def rates(fit, item="is_child"):
    return {r.coder: r for r in fit.result.coders if r.item == item}


def test_gold_answers_hold_qa_gold_and_each_posts_newest_adjudication(db, work):
    store = QualityStore(db)
    assert store.gold_answers("child") == {"qa00000": CHILD_NO}
    for answers in (CHILD_YES, CHILD_NO):
        adjudicate(store, work["boss"].id, {"post_id": "p00000", "family": "child",
                                            "answers": answers})
    assert store.adjudicated_answers("child") == {"p00000": CHILD_NO}
    assert store.gold_answers("child") == {"qa00000": CHILD_NO, "p00000": CHILD_NO}
    assert store.gold_answers("health") == {}


def test_the_next_quality_run_takes_the_adjudication_as_truth(db, work):
    store = QualityStore(db)
    before = fit_consensus(store, "child", RULES)
    assert before.posteriors()["p00000"]["is_child"] > 0.5
    for post_id in work["ids"][:3]:
        adjudicate(store, work["boss"].id, {"post_id": post_id, "family": "child",
                                            "answers": CHILD_NO})
    after = fit_consensus(store, "child", RULES)
    truths = {(i.post_id, i.item): i.posterior for i in after.result.items}
    # The adjudicated posts' consensus is fixed at the adjudicated answer ...
    assert all(truths[(p, "is_child")] == 0.0 for p in work["ids"][:3])
    # ... and the coders, who called them children, are rated against it: their
    # specificity on is_child falls.
    for coder in ("ana", "bea"):
        assert rates(after)[coder].specificity < rates(before)[coder].specificity


def test_an_adjudicated_post_stays_in_the_dataset_and_scores_the_coders(db, work):
    store = QualityStore(db)
    adjudicate(store, work["boss"].id, {"post_id": "p00000", "family": "child",
                                        "answers": CHILD_NO})
    fit = fit_consensus(store, "child", RULES)
    assert "p00000" in fit.posteriors()
    assert fit.posteriors()["p00000"]["is_child"] == 0.0
    scored = {(r["coder"], r["label"]): r for r in fit.gold_rows}
    assert scored[("ana", "is_child")]["neg_gold_n"] == 1  # p00000 (no QA gold answered)
