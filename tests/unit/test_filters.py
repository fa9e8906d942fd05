"""Sampling-frame filters: each reports what it removed (pure)."""

from trainset.corpus.filters import (
    Candidate,
    FilterSettings,
    apply_filters,
    near_duplicates,
    simhashes,
)
from trainset.text import text_hash

LONG = "a perfectly ordinary post about my toddler at the park today"


def cand(post_id, text, language=None, keyword="kid"):
    return Candidate(post_id, text, text_hash(text), keyword, language)


def removed(steps):
    return {s.name: s.removed for s in steps}


def test_exclusion_phrases_and_min_length():
    posts = [cand("1", LONG), cand("2", "Best SONGS FOR BABIES playlist, listen now!!"),
             cand("3", "our 19th child is here, congratulations"), cand("4", "too short"),
             cand("5", "https://t.co/abcdefghijklmnopqrstuvwxyz")]
    kept, steps = apply_filters(posts, FilterSettings(near_duplicate_bits=None))
    assert [c.id for c in kept] == ["1"]
    assert removed(steps) == {"exclusion phrases": 2, "shorter than 20 characters": 2,
                              "exact duplicates": 0}
    assert steps[0].examples == ["2", "3"]


def test_exact_duplicates_keep_the_smallest_id_whatever_the_order():
    posts = [cand("b", LONG), cand("a", LONG.upper() + "  "), cand("c", LONG + " indeed")]
    kept, steps = apply_filters(posts, FilterSettings(near_duplicate_bits=None))
    assert [c.id for c in kept] == ["a", "c"]
    assert removed(steps)["exact duplicates"] == 1


def test_near_duplicates_found_and_distinct_posts_kept():
    base = ("Wildfire smoke is back in the valley and my son's asthma is acting up again, "
            "we are staying indoors with the purifier on all day long")
    variant = base.replace("son's", "daughter's")
    other = "The city council approved the new playground budget for the east side parks"
    posts = [cand("1", base), cand("2", variant), cand("3", other), cand("4", base + " #air")]
    kept, steps = apply_filters(posts, FilterSettings(near_duplicate_bits=10))
    assert [c.id for c in kept] == ["1", "3"]
    hashes = simhashes([base, variant, other])
    assert bin(int(hashes[0]) ^ int(hashes[2])).count("1") > 10
    assert near_duplicates(hashes, 0) == set()


def test_simhash_is_stable_and_handles_empty_text():
    assert list(simhashes(["", "hello world"])) == list(simhashes(["", "hello world"]))
    assert int(simhashes([""])[0]) == 0


def test_language_filter_keeps_posts_without_a_language():
    posts = [cand("1", LONG, "en"), cand("2", LONG + " en espanol", "es"),
             cand("3", LONG + " unknown", None)]
    kept, steps = apply_filters(posts, FilterSettings(language="EN", near_duplicate_bits=None))
    assert [c.id for c in kept] == ["1", "3"]
    step = next(s for s in steps if s.name.startswith("language"))
    assert step.removed == 1 and "1 posts have no language" in step.note


def test_empty_frame():
    kept, steps = apply_filters([], FilterSettings())
    assert kept == [] and all(s.removed == 0 for s in steps)
