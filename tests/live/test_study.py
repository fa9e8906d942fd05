"""A whole study, end to end, as one test: corpus import, gold and practice sets, coders,
a neyman campaign, labeling over HTTP by coders who err at the study's rates, two quality
rounds, the estimate, the label export and the export job, read back with tf.data. The same
flow as bench/study.py, smaller."""

from __future__ import annotations

from bench.study import run_study


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
