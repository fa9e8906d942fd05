"""Agreement, gold scoring and consensus against hand-computed cases and reference packages."""

from datetime import UTC, datetime

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from trainset.corpus.estimate import Observation, calibrate, compare
from trainset.quality.agreement import (
    bootstrap_interval,
    cohen_kappa,
    jaccard,
    krippendorff_alpha,
    masi,
    pairwise_kappa,
    percent_agreement,
)
from trainset.quality.consensus import BinaryLabel, dawid_skene, encode, fit, majority_vote
from trainset.quality.goldscore import (
    GoldAnswer,
    QuestionScore,
    binary_items,
    cohort,
    gold_period,
    judge_questions,
    question_scores,
    score,
    wilson,
)

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


def test_all_time_gold_period_is_the_span_of_the_answers_not_the_epoch():
    gold = {"is_child": True, "age": [TODDLER]}
    answers = [GoldAnswer("ana", "child", "g1", datetime(2026, 3, 4, 23, tzinfo=UTC), gold, gold),
               GoldAnswer("ben", "child", "g1", datetime(2026, 3, 9, 1, tzinfo=UTC), gold, gold)]
    assert {r["period"] for r in score(answers)} == {"2026-03-04/2026-03-09"}
    assert gold_period(answers) == {"from": "2026-03-04", "to": "2026-03-09", "answers": 2}
    assert gold_period([]) == {"from": None, "to": None, "answers": 0}
    assert {r["period"] for r in cohort(score(answers))} == {"2026-03-04/2026-03-09"}


def test_question_scores_count_each_gold_post_once_per_question():
    when = datetime(2026, 3, 4, tzinfo=UTC)
    toddler = {"is_child": True, "age": [TODDLER]}
    answers = [
        GoldAnswer("ana", "child", "g1", when, {"is_child": True, "age": [BABY]}, toddler),
        GoldAnswer("ana", "child", "g2", when, {"is_child": False}, toddler),
        # Not judged on age: the gold answer does not ask it (no child).
        GoldAnswer("ana", "child", "g3", when, {"is_child": True, "age": [BABY]},
                   {"is_child": False}),
    ]
    scores = {s.question: s for s in question_scores(answers)}
    assert (scores["is_child"].right, scores["is_child"].n) == (1, 3)  # only g1 right
    # g1: toddler missed and baby wrongly picked: 6 of the 8 options right; g2: not asked,
    # so all options absent: toddler missed, 7 of 8 right.
    assert scores["age"].n == 2
    assert scores["age"].right == pytest.approx(6 / 8 + 7 / 8)


def test_the_screen_judges_on_the_wilson_lower_bound():
    few = QuestionScore("few", "child", "is_child", 4, 5)
    many = QuestionScore("many", "child", "is_child", 80, 100)
    coin = QuestionScore("coin", "child", "is_child", 45, 88)
    assert few.accuracy == many.accuracy == 0.8
    verdicts = {v.coder: v for v in judge_questions(
        [few, many, coin], ["few", "many", "coin", "new"], ["is_child"], 70.0, 5)}
    assert verdicts["few"].verdict == "dropped"  # 80% of 5: lower bound 37.6%
    assert verdicts["few"].wilson_low_pct == pytest.approx(37.55, abs=0.01)
    assert verdicts["many"].verdict == "kept"  # 80% of 100: lower bound 71.1%
    assert verdicts["many"].wilson_low_pct == pytest.approx(71.12, abs=0.01)
    assert verdicts["coin"].verdict == "dropped"
    assert verdicts["new"].verdict == "no gold answers"
    # Under the minimum a coder is not judged; a per-question threshold overrides.
    later = {v.coder: v.verdict for v in judge_questions([few, many], ["few", "many"],
                                                         ["is_child"], 70.0, 10)}
    assert later == {"few": "too few gold answers", "many": "kept"}
    strict = judge_questions([many], ["many"], ["is_child"], 50.0, 5, {"is_child": 75.0})
    assert strict[0].verdict == "dropped" and strict[0].threshold_pct == 75.0


def test_calibrated_weights_sum_to_each_strata_population():
    rows = [("a1", "A", 4.0, True), ("a2", "A", 4.0, False), ("a3", "A", 4.0, True),
            ("b1", "B", 10.0, False), ("b2", "B", 10.0, True), ("c1", "C", 5.0, False),
            ("x", "none", None, True)]
    weights, strata = calibrate(rows, {"A": 12, "B": 20, "C": 5})
    assert weights == {"a1": 6.0, "a3": 6.0, "b2": 20.0}  # A: 12 / 8; B: 20 / 10
    assert strata["A"] == {"population": 12, "judged": 3, "kept": 2, "factor": 1.5}
    assert strata["C"]["factor"] is None  # nothing kept: the stratum is unrepresented
    # Without a known population the judged posts' weights stand in for it.
    assert calibrate([("a1", "A", 4.0, True), ("a2", "A", 4.0, False)], {})[0] == {"a1": 8.0}


def test_compare_flags_a_kept_estimate_outside_the_judged_interval():
    judged = [Observation(f"p{i}", "A" if i < 50 else "B", "k", float(i % 3 == 0))
              for i in range(100)]
    kept = [o for o in judged if o.value == 0.0]
    out = compare(judged, kept, {"A": 500, "B": 500})
    assert out["method"] == "design-weighted" and out["shifted"] is True
    assert out["kept"]["value"] == 0.0 and out["shift"] < 0
    same = compare(judged, judged, None)
    assert same["method"] == "unweighted" and same["shifted"] is False and same["shift"] == 0


def _child_crowd(seed: int) -> tuple[list, dict, dict]:
    """Coders who tell ages apart well on real children but, having wrongly said "child" on
    a post with none, pick an age that is nearly always "toddler"; gold fixes which posts
    have a child."""
    from trainset import codebook

    rng = np.random.default_rng(seed)
    baby, toddler = (f"age={codebook.AGE_BABY}", f"age={codebook.AGE_TODDLER}")
    labels, truth = [], {}
    for i in range(400):
        post = f"p{i}"
        child = rng.random() < 0.4
        is_baby = bool(child and rng.random() < 0.5)
        truth[post] = (child, is_baby)
        for coder in ("ana", "ben"):
            says_child = child if rng.random() < 0.85 else not child
            labels.append(BinaryLabel(post, "is_child", coder, says_child))
            if not says_child:
                continue
            picked_baby = (is_baby if rng.random() < 0.95 else not is_baby) if child else (
                rng.random() < 0.1)
            labels.append(BinaryLabel(post, baby, coder, picked_baby))
            labels.append(BinaryLabel(post, toddler, coder, not picked_baby))
    gold = {(f"p{i}", "is_child"): truth[f"p{i}"][0] for i in range(0, 400, 4)}
    return labels, gold, truth


def test_ages_picked_for_posts_with_no_child_do_not_count_against_the_coder():
    from trainset.services.quality import item_conditions

    labels, gold, truth = _child_crowd(7)
    plain = dawid_skene(labels, gold)
    conditioned = dawid_skene(labels, gold, conditions=item_conditions("child"))
    baby = next(k for k in conditioned.priors if k.startswith("age=0"))

    # P(baby | a child) is the share of babies among the children, not diluted by the ages
    # given to posts with no child (the plain model mixes them in).
    children = [t for t in truth.values() if t[0]]
    share = sum(1 for t in children if t[1]) / len(children)
    assert conditioned.priors[baby] == pytest.approx(share, abs=0.08)
    assert abs(conditioned.priors[baby] - share) < abs(plain.priors[baby] - share)


def test_a_child_nobody_gave_an_age_counts_toward_each_age_at_its_prior():
    from trainset.services.quality import label_posteriors

    priors = {"age=0 to less than 1 year (baby/infant)": 0.3}
    without = label_posteriors("child", {"is_child": 0.4})
    with_prior = label_posteriors("child", {"is_child": 0.4}, priors)
    assert without["baby"] == 0.0
    assert with_prior["baby"] == pytest.approx(0.4 * 0.3, abs=1e-4)
    # A post whose coders answered the age keeps its own posterior.
    answered = label_posteriors("child", {"is_child": 1.0,
                                          "age=0 to less than 1 year (baby/infant)": 0.9},
                                priors)
    assert answered["baby"] == pytest.approx(0.9)


def test_option_rates_shrink_toward_all_coders_not_toward_eighty_percent():
    # Twelve coders who never pick a rare option wrongly, each with a dozen labels.
    labels = [BinaryLabel(f"p{c}-{i}", "age=rare", f"c{c}", False)
              for c in range(12) for i in range(12)]
    labels += [BinaryLabel(f"p{c}-{i}", "is_child", f"c{c}", False)
               for c in range(12) for i in range(12)]
    result = dawid_skene(labels)
    spec = {r.item: r.specificity for r in result.coders if r.coder == "c0"}
    assert spec["age=rare"] > 0.97  # pooled: all coders are right on it
    assert spec["is_child"] < spec["age=rare"]  # yes/no gate: the fixed 80% prior


def test_the_ages_a_coder_gives_tell_a_real_child_from_a_stray_yes():
    """Where the two coders disagree on "child", the one who said yes gave ages: ages as a
    real child gets them make "child" likelier; the stray ones (nearly always "toddler")
    make it less likely. The gate's own answers cannot tell these posts apart."""
    from collections import defaultdict

    from trainset.services.quality import item_conditions

    for seed in (7, 8):
        labels, gold, truth = _child_crowd(seed)
        votes = defaultdict(list)
        for label in labels:
            if label.item == "is_child":
                votes[label.post_id].append(label.value)
        split = [p for p, v in votes.items() if sum(v) == 1 and (p, "is_child") not in gold]

        def gate(result, child, split=split, truth=truth):
            by_post = {i.post_id: i.posterior for i in result.items if i.item == "is_child"}
            return np.mean([by_post[p] for p in split if truth[p][0] is child])

        plain = dawid_skene(labels, gold)
        conditioned = dawid_skene(labels, gold, conditions=item_conditions("child"))
        assert gate(plain, True) == pytest.approx(gate(plain, False), abs=0.03)
        assert gate(conditioned, True) > gate(conditioned, False) + 0.08


def test_model_variance_is_the_refits_spread_beyond_the_fixed_posteriors():
    obs = [Observation(f"p{i}", "a" if i % 2 else "b", "", v)
           for i, v in enumerate([0.1, 0.9, 0.2, 0.8, 0.3, 0.7])]
    populations = {"a": 100, "b": 100}
    from trainset.corpus.estimate import model_variance, weighted

    # Replicates no more spread than resampling the fixed values: nothing to add.
    assert model_variance(obs, populations, [0.5, 0.5, 0.5]) == 0.0
    assert model_variance(obs, populations, [0.5]) == 0.0
    # A wide spread adds its excess over sum_h W_h^2 var_h / n_h.
    fixed = 0.25 * np.var([0.9, 0.8, 0.7], ddof=1) / 3 + 0.25 * np.var([0.1, 0.2, 0.3],
                                                                         ddof=1) / 3
    spread = np.var([0.3, 0.5, 0.7], ddof=1)
    assert model_variance(obs, populations, [0.3, 0.5, 0.7]) == pytest.approx(spread - fixed)
    base, wider = weighted(obs, populations), weighted(obs, populations, 0.01)
    assert base.value == wider.value and wider.high - wider.low > base.high - base.low


def test_a_chosen_gold_set_does_not_pull_the_judged_posts_toward_its_mix():
    """Gold posts anchor the coders' rates, but a gold set is chosen (half positive here, as
    the study's was) while the posts judged are about 10% positive: the prior and the mean
    posterior follow the judged posts, not the gold's mix."""
    rng = np.random.default_rng(3)
    labels, gold, truth = [], {}, {}
    coders = ["a", "b", "c", "d"]
    for i in range(600):
        post = f"w{i}"
        truth[post] = bool(rng.random() < 0.1)
        for coder in rng.choice(coders, 2, replace=False):
            right = rng.random() < 0.85
            labels.append(BinaryLabel(post, "is_child", str(coder),
                                      truth[post] if right else not truth[post]))
    for i in range(200):
        post, value = f"g{i}", i % 2 == 0
        gold[(post, "is_child")] = value
        for coder in coders:
            right = rng.random() < 0.85
            labels.append(BinaryLabel(post, "is_child", coder, value if right else not value))
    result = dawid_skene(labels, gold)
    share = np.mean(list(truth.values()))
    judged = [i.posterior for i in result.items if i.post_id.startswith("w")]
    assert result.priors["is_child"] == pytest.approx(share, abs=0.03)
    assert np.mean(judged) == pytest.approx(share, abs=0.03)
