"""Allocation, drawing and inclusion probabilities (pure)."""

import math

import pytest

from trainset.corpus.sampling import (
    MIN_PER_STRATUM,
    SamplingError,
    allocate,
    draw,
    load_yields_csv,
)

POPULATIONS = {"baby": 1000, "minor": 4000, "toddler": 500, "tiny": 3}
YIELDS = {"baby": 0.5, "minor": 0.05, "toddler": 0.6}


def counts(plan):
    return {s.stratum: s.sampled for s in plan}


def frame_for(populations):
    return {k: [f"{k}-{i:05d}" for i in range(n)] for k, n in populations.items()}


def test_equal_gives_the_same_count_and_redistributes_capped_strata():
    plan = allocate(POPULATIONS, 303, "equal")
    assert counts(plan) == {"baby": 100, "minor": 100, "toddler": 100, "tiny": 3}
    plan = allocate({"a": 10, "b": 1000, "c": 1000}, 300, "equal")
    assert counts(plan) == {"a": 10, "b": 145, "c": 145}


def test_proportional_follows_population():
    plan = allocate({"a": 100, "b": 300}, 40, "proportional")
    assert counts(plan) == {"a": 10, "b": 30}


def test_neyman_matches_the_hand_computed_allocation():
    pops = {"a": 1000, "b": 1000}
    plan = allocate(pops, 100, "neyman", {"a": 0.5, "b": 0.1})
    # n_h proportional to N_h * sqrt(p(1-p)): 0.5 vs 0.3 -> 62.5 / 37.5 -> 63 / 37 (ties by name)
    assert counts(plan) == {"a": 63, "b": 37}
    assert plan[0].expected_positives == pytest.approx(31.5)


def test_neyman_needs_yields_and_floors_zero_yields():
    with pytest.raises(SamplingError, match="pilot yields"):
        allocate(POPULATIONS, 100, "neyman")
    plan = allocate({"a": 1000, "b": 1000}, 100, "neyman", {"a": 0.5, "b": 0.0})
    assert counts(plan)["b"] >= MIN_PER_STRATUM  # never starved to probability zero
    # A keyword missing from the yields takes the mean of the known ones.
    plan = allocate({"a": 100, "b": 100, "c": 100}, 30, "neyman", {"a": 0.2, "b": 0.4})
    assert plan[2].pilot_yield == pytest.approx(0.3)


def test_every_strategy_spends_exactly_the_budget_and_probabilities_sum_to_it():
    for strategy in ("equal", "proportional", "neyman", "random"):
        plan = allocate(POPULATIONS, 700, strategy, YIELDS)
        assert sum(s.sampled for s in plan) == 700
        assert math.isclose(sum(s.population * s.inclusion_prob for s in plan), 700)
        sampled = draw(frame_for(POPULATIONS), plan, seed=5)
        assert len(sampled) == 700 == len({p.post_id for p in sampled})
        # Weights 1/pi add up to the population (Horvitz-Thompson estimate of N).
        assert math.isclose(sum(1 / p.inclusion_prob for p in sampled),
                            sum(POPULATIONS.values()))


def test_draw_is_reproducible_by_seed():
    plan = allocate(POPULATIONS, 50, "equal")
    first = draw(frame_for(POPULATIONS), plan, seed=42)
    again = draw(frame_for(POPULATIONS), plan, seed=42)
    other = draw(frame_for(POPULATIONS), plan, seed=43)
    assert first == again and first != other
    # Frame order does not matter: ids are sorted before drawing.
    shuffled = {k: list(reversed(v)) for k, v in frame_for(POPULATIONS).items()}
    assert draw(shuffled, plan, seed=42) == first


def test_budget_beyond_the_frame_takes_everything():
    plan = allocate({"a": 5, "b": 7}, 100, "equal")
    assert counts(plan) == {"a": 5, "b": 7}
    assert all(s.inclusion_prob == 1 for s in plan)


def test_bad_requests_are_explained():
    with pytest.raises(SamplingError, match="unknown strategy"):
        allocate(POPULATIONS, 10, "lottery")
    with pytest.raises(SamplingError, match="at least 1"):
        allocate(POPULATIONS, 0, "equal")
    with pytest.raises(SamplingError, match="no posts"):
        allocate({}, 10, "equal")
    with pytest.raises(SamplingError, match="raise the budget"):
        allocate({f"k{i}": 10 for i in range(10)}, 5, "equal")


def test_yields_file(tmp_path):
    good = tmp_path / "y.csv"
    good.write_text("keyword,count (n),percent_true\nbaby,10,40\nminor,5,4.5\ntotal,15,20\n")
    assert load_yields_csv(good) == {"baby": 0.4, "minor": 0.045}
    bad = tmp_path / "bad.csv"
    bad.write_text("keyword,percent_true\nbaby,lots\n")
    with pytest.raises(SamplingError, match="line 2"):
        load_yields_csv(bad)
    with pytest.raises(SamplingError, match="needs a keyword column"):
        load_yields_csv(tmp_path / "y.csv").__class__  # noqa: B018 - the file is fine
        wrong = tmp_path / "w.csv"
        wrong.write_text("word,share\n")
        load_yields_csv(wrong)
