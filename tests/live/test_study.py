"""A whole study, end to end, as one test: corpus import, gold and practice sets, coders,
a neyman campaign, labeling over HTTP by coders who err at the study's rates, two quality
rounds, the estimate, the label export and the export job, read back with tf.data. The same
flow as bench/study.py, smaller."""

from __future__ import annotations

import json

import pytest

from bench.study import run_study
from tests.factories import make_coder
from tests.live.conftest import Client, token_for


def test_a_whole_study_end_to_end(live_server, db, database_url, tmp_path):
    result = run_study(tmp_path, database_url, keywords=6, per_keyword=60, budget=150,
                       n_gold=30, n_practice=6, n_coders=4, seed=3, progress=lambda m: None,
                       api_url=live_server.base + "/api")
    # Every sampled post got its labels over HTTP, and the re-label round added some.
    assert result.labels >= 2 * 150
    assert result.posts >= 140
    # Consensus is about as good as majority vote on so few posts (bench/study.py shows the
    # difference at scale), and good against the truth.
    assert result.consensus_accuracy >= result.majority_accuracy - 0.08  # ~2.5 points SE
    assert result.consensus_accuracy >= 0.85
    # Every exported answer obeys the codebook; the TFRecords hold every kept post.
    assert result.exported > 0 and result.exported_valid == result.exported
    assert result.tfrecords == result.exported
    # Two labels were asked per post; a coder screened out on a question does not count
    # for it, so some kept posts rest on one answer (the bench shows about 1.8 at scale).
    assert 1 < result.labels_per_kept_post <= 3
    # The consensus estimate of the children's share is near the truth; the raw-vote one is
    # printed beside it.
    child = {e["kind"]: e for e in result.estimates if e["label"] == "is_child"}
    assert abs(child["consensus"]["value"] - child["consensus"]["truth"]) < 0.1
    assert child["consensus"]["low"] < child["consensus"]["value"] < child["consensus"]["high"]
    assert len(result.quality_rounds) == 2

    # The manager's view asks the API for the same estimate: over HTTP, with bootstrap refits,
    # the same point figures as the command line's, each inside its own interval.
    campaign_id = db.run("SELECT id FROM campaigns WHERE name = 'study'")[0][0]
    manager = Client(live_server, token_for(make_coder(db, "study-manager", role="manager")))
    status, body = manager.get(f"/api/campaigns/{campaign_id}/estimate?refits=3")
    assert status == 200, body
    assert body["refits"] == {"asked": 3, "run": 3}
    by_label = {e["label"]: e for e in body["labels"]}
    for e in result.estimates:
        if e["kind"] == "consensus":
            weighted = by_label[e["label"]]["weighted"]
            assert weighted["value"] == pytest.approx(e["value"], abs=1e-9)
            assert weighted["low"] <= weighted["value"] <= weighted["high"]
    # Refits outside 0-100, or not a number, are refused with the field named; a coder may
    # not ask at all.
    for bad in ("101", "-1", "many"):
        status, body = manager.get(f"/api/campaigns/{campaign_id}/estimate?refits={bad}")
        assert status == 400 and "refits" in json.dumps(body), (bad, body)
    coder = Client(live_server, token_for(make_coder(db, "study-coder")))
    assert coder.get(f"/api/campaigns/{campaign_id}/estimate")[0] == 403
