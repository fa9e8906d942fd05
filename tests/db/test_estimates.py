"""Prevalence estimates judged against a known truth, with coders who err at the study's
measured rates (trainset/data/coder_gold_accuracy.csv) and gold posts mixed into their work."""

from __future__ import annotations

import random

import pytest

from tests.factories import make_coder, make_gold, service
from trainset import codebook, simulate
from trainset.corpus.filters import FilterSettings
from trainset.services import corpus as corpus_service
from trainset.services.campaigns import SampleRequest, estimate_prevalence, sample
from trainset.store.corpus import CorpusStore
from trainset.store.quality import QualityStore

YIELDS = {"preschooler": 0.70, "toddler": 0.45, "teen": 0.25, "minor": 0.05}
PER_KEYWORD = 150
AGE_OF = {"preschooler": codebook.AGE_TODDLER, "toddler": codebook.AGE_TODDLER,
          "teen": codebook.AGE_HIGH, "minor": codebook.AGE_GENERAL}


def true_answers(rng: random.Random, keyword: str) -> dict:
    if rng.random() < YIELDS[keyword]:
        return {"is_child": True, "age": [AGE_OF[keyword]]}
    return {"is_child": False}


def test_consensus_estimate_covers_the_truth_where_raw_votes_do_not(db):
    rng = random.Random(20261129)
    store = CorpusStore(db)
    truth: dict[str, dict] = {}
    posts = []
    for keyword in YIELDS:
        for i in range(PER_KEYWORD):
            post_id = f"{keyword[:4]}{i:04d}"
            truth[post_id] = true_answers(rng, keyword)
            posts.append({"id": post_id, "text": f"post number {i} about a {keyword}",
                          "keyword": keyword, "family": "child"})
    gold_ids = [f"gold{i:03d}" for i in range(40)]
    corpus_service.add_posts(store, [
        {"id": g, "text": f"gold post {g} about a toddler", "keyword": "gold", "family": None}
        for g in gold_ids])
    corpus_service.add_posts(store, posts)
    for i, g in enumerate(gold_ids):
        make_gold(db, g, "qa", {"is_child": True, "age": [codebook.AGE_TODDLER]}
                  if i % 2 else {"is_child": False})
    drawn = sample(store, SampleRequest("child", 360, "proportional", seed=4, name="study",
                                        labels_per_post=2,
                                        filters=FilterSettings(near_duplicate_bits=None,
                                                               exclude_phrases=())))
    assert drawn.frame_size == len(posts) and len(drawn.sampled) == 360
    crowd = simulate.load_coders("child")[:8]
    coders = [make_coder(db, c.name.replace("_", "-")) for c in crowd]
    gold_truth = {g: a for g, a in zip(gold_ids, [
        {"is_child": True, "age": [codebook.AGE_TODDLER]} if i % 2 else {"is_child": False}
        for i in range(len(gold_ids))], strict=True)}
    simulate.label_in_process(service(db, gold_rate=0.25, seed=7),
                              list(zip(crowd, coders, strict=True)), {**truth, **gold_truth},
                              rng)

    result = estimate_prevalence(store, QualityStore(db), "child", "study")
    assert result["em_converged"] is True
    # The frame's true prevalence (proportional sampling over equal keyword populations).
    frame = [truth[p["id"]]["is_child"] for p in posts]
    true_share = sum(frame) / len(frame)
    is_child = next(e for e in result["labels"] if e.label == "is_child")
    judged, raw = is_child.weighted, is_child.raw_weighted
    assert judged.low <= true_share <= judged.high, (judged, true_share)
    assert abs(judged.value - true_share) < abs(raw.value - true_share)
    # The interval carries the labeling uncertainty: wider than the sampling error alone.
    assert judged.high - judged.low > raw.high - raw.low
    assert result["judged_posts"] == result["labeled_posts"] == 360
    # Without the model refits the intervals leave the model's own uncertainty out: never
    # wider, and narrower for some label.
    bare = estimate_prevalence(store, QualityStore(db), "child", "study", bootstrap=0)
    widths = [(e.weighted.high - e.weighted.low, b.weighted.high - b.weighted.low)
              for e, b in zip(result["labels"], bare["labels"], strict=True)]
    assert all(full >= plain - 1e-12 for full, plain in widths)
    assert any(full > plain + 1e-6 for full, plain in widths)
    assert judged.value == pytest.approx(true_share, abs=0.06)
    # Every refit asked for ran; given no time at all, two still run (a spread needs two) and
    # the answer says so.
    assert result["refits_run"] == 40 and bare["refits_run"] == 0
    hurried = estimate_prevalence(store, QualityStore(db), "child", "study", bootstrap=10,
                                  seconds=0.0)
    assert hurried["refits_run"] == 2
    assert all(h.weighted.value == e.weighted.value
               for h, e in zip(hurried["labels"], result["labels"], strict=True))
