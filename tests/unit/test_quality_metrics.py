"""Agreement, gold scoring and consensus against hand-computed cases and reference packages."""

from datetime import UTC, datetime

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from trainset.agreement import (
    bootstrap_interval,
    cohen_kappa,
    jaccard,
    krippendorff_alpha,
    masi,
    pairwise_kappa,
    percent_agreement,
)
from trainset.consensus import BinaryLabel, dawid_skene, encode, fit, majority_vote
from trainset.goldscore import GoldAnswer, binary_items, cohort, score, wilson

TODDLER = "1 to 4 years (toddler/pre-school)"
BABY = "0 to less than 1 year (baby/infant)"


def test_alpha_nominal_by_hand_and_against_the_krippendorff_package():
    # Krippendorff's own textbook example: 4 coders... here a small hand case:
    units = [[1, 1], [1, 0], [0, 0], [0, 0], [1, 1, 1]]
    # values: 1 x6, 0 x5 -> n = 11; disagreements: unit 2 has one 1-0 pair (2 ordered)
    observed = (2 / 1) / 11
    expected = (6 * 5 * 2) / (11 * 10)
    assert krippendorff_alpha(units) == pytest.approx(1 - observed / expected)
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 3, size=(4, 40)).astype(float)
    matrix[rng.random((4, 40)) < 0.3] = np.nan
    ours = krippendorff_alpha([[int(v) for v in col if not np.isnan(v)] for col in matrix.T])
    reference = krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal")
    assert ours == pytest.approx(reference)


def test_alpha_edge_cases():
    assert krippendorff_alpha([[1, 1], [1, 1]]) is None  # no variation: undefined
    assert krippendorff_alpha([[1]]) is None
    assert krippendorff_alpha([[1, 1], [0, 0]]) == 1.0


def test_set_distances():
    a, b = frozenset({"x"}), frozenset({"x", "y"})
    assert masi(a, a) == 0 and jaccard(a, b) == pytest.approx(0.5)
    assert masi(a, b) == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi(frozenset({"x", "z"}), b) == pytest.approx(1 - (1 / 3) * (1 / 3))
    assert masi(frozenset({"q"}), b) == 1.0
    units = [[a, a], [a, b], [b, b]]
    assert 0 < krippendorff_alpha(units, masi) < 1


def test_kappa_against_scikit_learn():
    first = [1, 1, 0, 0, 1, 0, 1, 1, 0, 1]
    second = [1, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert cohen_kappa(first, second) == pytest.approx(cohen_kappa_score(first, second))
    assert cohen_kappa([1, 1], [1, 1]) is None
    pairs = pairwise_kappa({"a": dict(enumerate(first)), "b": dict(enumerate(second)),
                            "c": {0: 1}}, min_common=5)
    assert [(a, b, n) for a, b, _, n in pairs] == [("a", "b", 10)]


def test_percent_agreement_and_bootstrap():
    units = [[1, 1], [1, 0], [0, 0], [1]]
    assert percent_agreement(units) == pytest.approx(2 / 3)
    low, high = bootstrap_interval(units * 10, percent_agreement, rounds=100)
    assert low <= 2 / 3 <= high
    assert bootstrap_interval([[1]], percent_agreement) is None


def test_wilson_interval_matches_known_values():
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None


def test_binary_items_follow_the_codebook():
    items = binary_items("child", {"is_child": True, "age": [TODDLER]})
    assert items["is_child"] is True and items[f"age={TODDLER}"] is True
    assert items[f"age={BABY}"] is False and len(items) == 9
    assert not any(binary_items("child", {"is_child": False}).values())


def test_gold_scores_positive_and_negative_by_hand():
    when = datetime(2026, 3, 4, tzinfo=UTC)
    gold = {"is_child": True, "age": [TODDLER]}
    answers = [
        GoldAnswer("ana", "child", "g1", when, {"is_child": True, "age": [TODDLER]}, gold),
        GoldAnswer("ana", "child", "g2", when, {"is_child": True, "age": [BABY]}, gold),
        GoldAnswer("ana", "child", "g3", when, {"is_child": False}, {"is_child": False}),
    ]
    rows = {(r["label"]): r for r in score(answers)}
    toddler = rows[f"age={TODDLER}"]
    assert (toddler["pos_gold_n"], toddler["pos_gold_correct_pct"]) == (2, 50.0)
    assert (toddler["neg_gold_n"], toddler["neg_gold_correct_pct"]) == (1, 100.0)
    baby = rows[f"age={BABY}"]
    assert (baby["neg_gold_n"], baby["neg_gold_correct_pct"]) == (3, pytest.approx(200 / 3))
    assert rows["is_child"]["correct_pct"] == 100.0
    weekly = score(answers, "week")
    assert {r["period"] for r in weekly} == {"2026-03-02"}
    summary = cohort(score(answers))
    assert all(r["coders"] == 1 for r in summary)


def test_dawid_skene_recovers_truth_better_than_majority_vote():
    rng = np.random.default_rng(11)
    n_posts, n_coders = 3000, 6
    accuracy = np.array([0.95, 0.9, 0.85, 0.65, 0.6, 0.55])
    truth = rng.random(n_posts) < 0.3
    units, coders, values = [], [], []
    for post in range(n_posts):
        for c in rng.choice(n_coders, size=3, replace=False):
            right = rng.random() < accuracy[c]
            units.append(post)
            coders.append(c)
            values.append(truth[post] if right else not truth[post])
    data = encode(np.array(units), np.zeros(len(units), dtype=int), np.array(coders),
                  np.array(values))
    gold = np.zeros(n_posts, dtype=bool)
    gold[:150] = True
    posterior, sens, spec, _, _ = fit(data, gold, truth.astype(float))
    judged = ~gold
    ds_acc = ((posterior >= 0.5) == truth)[judged].mean()
    mv_acc = ((majority_vote(data) >= 0.5) == truth)[judged].mean()
    assert ds_acc > mv_acc + 0.02
    # The good coders are found to be good, the weak ones weak.
    assert sens[0] > 0.85 and spec[0] > 0.85 and spec[5] < 0.7


def test_dawid_skene_api_single_labels_and_gold():
    labels = [BinaryLabel("p1", "is_child", "ana", True),
              BinaryLabel("p2", "is_child", "ana", True),
              BinaryLabel("p2", "is_child", "ben", False),
              BinaryLabel("g1", "is_child", "ana", True),
              BinaryLabel("g1", "is_child", "ben", False)]
    result = dawid_skene(labels, gold={("g1", "is_child"): True})
    by_post = {i.post_id: i for i in result.items}
    assert by_post["g1"].posterior == 1.0 and by_post["g1"].n_labels == 2
    assert by_post["p1"].value is True and 0.5 < by_post["p1"].confidence < 1
    assert by_post["p2"].n_labels == 2
    assert {r.coder for r in result.coders} == {"ana", "ben"}
    assert dawid_skene([]).items == []
