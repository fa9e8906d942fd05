"""Codebook rules, options and encodings (pure: no database)."""

import csv
import json
from pathlib import Path

import pytest

from trainset import codebook
from trainset.codebook import CHILD, HEALTH, PLACE

DICTIONARY = Path(__file__).resolve().parents[1] / "fixtures" / "data_dictionary.csv"


def errors_by_field(family, answers):
    return {e.field: e.message for e in codebook.validate(family, answers)}


def test_families_and_slot_counts_match_the_study():
    assert codebook.FAMILY_NAMES == ("place", "child", "health")
    assert [len(f.slots) for f in (CHILD, PLACE, HEALTH)] == [6, 10, 7]


def test_option_strings_are_the_ones_labeled_data_carries():
    assert PLACE.question("location").values == (
        "Childcare/daycare",
        "A home",
        "Neigborhood (but not on home property, etc)",
        "Park/playground/child sports center",
        "School",
        "Other",
        "Unsure",
        "No location",
    )
    assert PLACE.question("location_cat").values == (
        "Indoor location", "Outdoor location", "No location/unsure",
    )


def test_every_data_dictionary_option_is_known_byte_exact_or_by_alias():
    with DICTIONARY.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["value"] not in ("", "NA", "True", "False")]
    assert len(rows) > 20
    for row in rows:
        fam = next(f for f in codebook.FAMILIES.values()
                   if row["column"] in {q.name for q in f.questions})
        value = codebook.canonical_option(row["column"], row["value"])
        assert value in fam.question(row["column"]).values, row


def test_every_question_and_option_has_help_text():
    for fam in codebook.FAMILIES.values():
        assert fam.help
        for q in fam.questions:
            assert q.prompt and q.help
            for o in q.options:
                assert o.help, (q.name, o.value)


@pytest.mark.parametrize("family,answers", [
    ("place", {"location_cat": ["Indoor location"], "location": ["School"]}),
    ("place", {"location_cat": ["Indoor location", "Outdoor location"],
               "location": ["A home", "Other"]}),
    ("place", {"location_cat": ["No location/unsure"]}),
    ("child", {"is_child": False}),
    ("child", {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}),
    ("health", {"is_health": False}),
    ("health", {"is_health": True, "health_impact": ["Negative impact"],
                "health_type": ["Physical health", "Cognitive health"]}),
])
def test_valid_labels_pass(family, answers):
    assert codebook.validate(family, answers) == []


def test_every_option_of_every_question_is_accepted():
    base = {
        "place": {"location_cat": ["Indoor location"], "location": ["School"]},
        "child": {"is_child": True, "age": ["Unsure"]},
        "health": {"is_health": True, "health_impact": ["No impact"],
                   "health_type": ["Physical health"]},
    }
    for fam in codebook.FAMILIES.values():
        for q in fam.questions:
            for option in q.options:
                answers = dict(base[fam.name], **{q.name: [option.value]})
                if q.name == "location_cat" and option.value == "No location/unsure":
                    answers.pop("location")
                assert codebook.validate(fam.name, answers) == [], (q.name, option.value)


def test_all_errors_are_returned_at_once():
    errors = errors_by_field("health", {"is_health": "yes", "colour": 1})
    assert set(errors) == {"is_health", "colour"}
    errors = errors_by_field("health", {"is_health": True, "health_impact": ["Bad"]})
    assert set(errors) == {"health_impact", "health_type"}
    assert "'Bad' is not an option" in errors["health_impact"]


def test_conditional_questions_required_only_when_asked():
    assert errors_by_field("child", {"is_child": True}) == {"age": "is required"}
    assert "must be left out" in errors_by_field(
        "child", {"is_child": False, "age": ["Unsure"]})["age"]
    assert "must be left out" in errors_by_field(
        "place", {"location_cat": ["No location/unsure"], "location": ["School"]})["location"]
    assert errors_by_field("place", {"location_cat": ["Outdoor location"]}) == {
        "location": "is required"}
    assert set(errors_by_field("health", {"is_health": True})) == {"health_impact",
                                                                  "health_type"}
    # An empty list for a question that is not asked is the same as leaving it out.
    assert codebook.validate("child", {"is_child": False, "age": []}) == []


def test_malformed_values():
    assert errors_by_field("child", {"is_child": 1}) == {"is_child": "must be true or false"}
    assert "list" in errors_by_field("child", {"is_child": True, "age": "Unsure"})["age"]
    assert "at least one" in errors_by_field("child", {"is_child": True, "age": []})["age"]
    assert "more than once" in errors_by_field(
        "child", {"is_child": True, "age": ["Unsure", "Unsure"]})["age"]
    assert "cannot be combined" in errors_by_field(
        "place", {"location_cat": ["No location/unsure", "Indoor location"],
                  "location": ["School"]})["location_cat"]
    assert codebook.validate("child", ["not", "a", "dict"])[0].field == "answers"
    assert codebook.validate("pets", {})[0].field == "family"


def test_byte_exactness_rejects_near_misses():
    near_miss = "Neighborhood (but not on home property, etc)"
    errors = errors_by_field("place", {"location_cat": ["Indoor location"],
                                       "location": [near_miss]})
    assert "location" in errors


def test_normalize_orders_options_and_drops_unasked_empties():
    out = codebook.normalize("health", {"is_health": True,
                                        "health_impact": ["Positive impact", "Negative impact"],
                                        "health_type": ["Physical health"]})
    assert out["health_impact"] == ["Negative impact", "Positive impact"]
    assert codebook.normalize("child", {"is_child": False, "age": []}) == {"is_child": False}


def test_multi_hot_encodings_in_study_order():
    assert codebook.encode("child", {"is_child": True, "age": [
        "0 to less than 1 year (baby/infant)", "14 to 17 years (high school)"]}) == [
        1, 0, 0, 0, 1, 0]
    assert codebook.encode("child", {"is_child": True, "age": [
        "No specific age (children general)"]}) == [0, 0, 0, 0, 0, 1]
    assert codebook.encode("child", {"is_child": False}) == [0] * 6
    assert codebook.encode("place", {"location_cat": ["Indoor location"],
                                     "location": ["A home", "School"]}) == [
        1, 0, 0, 0, 1, 0, 0, 1, 0, 0]
    assert codebook.encode("place", {"location_cat": ["No location/unsure"]}) == [
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert codebook.encode("health", {"is_health": True, "health_impact": ["Negative impact"],
                                      "health_type": ["Emotional/social health"]}) == [
        1, 1, 0, 0, 0, 1, 0]


def test_real_study_age_strings_encode():
    # Age strings as they appear in the study's 84,811 labels.
    seen = ["0 to less than 1 year (baby/infant)", "1 to 4 years (toddler/pre-school)",
            "5 to 10 years (elementary school)", "11 to 13 years (middle school)",
            "14 to 17 years (high school)", "School age (no specific school type)",
            "No specific age (children general)", "Unsure"]
    for i, age in enumerate(seen):
        vector = codebook.encode("child", {"is_child": True, "age": [age]})
        assert vector.index(1) == min(i, 5)


def test_document_is_json_and_complete():
    doc = json.loads(json.dumps(codebook.as_document()))
    names = [f["name"] for f in doc["families"]]
    assert names == ["place", "child", "health"]
    age = doc["families"][1]["questions"][1]
    assert age["show_when"] == {"field": "is_child", "equals": True, "any_of": []}
    assert len(age["options"]) == 8


# The study's writers turned answer strings into vectors by looking for each option's string
# in the answer, with these positions (restated here from the study's TFRecord writers).
STUDY_CHILD_POSITIONS = {
    "0 to less than 1 year (baby/infant)": 0, "1 to 4 years (toddler/pre-school)": 1,
    "5 to 10 years (elementary school)": 2, "11 to 13 years (middle school)": 3,
    "14 to 17 years (high school)": 4, "School age (no specific school type)": 5,
    "No specific age (children general)": 5, "Unsure": 5,
}
STUDY_PLACE_POSITIONS = {
    "Childcare/daycare": 0, "Park/playground/child sports center": 1, "A home": 2,
    "School": 3, "Neigborhood (but not on home property, etc)": 4, "Other": 5, "Unsure": 5,
    "No location": 6,
}
STUDY_INDOOR_POSITIONS = {"Indoor location": 7, "Outdoor location": 8,
                          "No location/unsure": 9}
STUDY_HEALTH_POSITIONS = {"Negative impact": 1, "Positive impact": 2, "No impact": 3,
                          "Cognitive health": 4, "Emotional/social health": 5,
                          "Physical health": 6}


def study_child_vector(age_text: str) -> list[int]:
    vector = [0] * 6
    for option, position in STUDY_CHILD_POSITIONS.items():
        if option in age_text:
            vector[position] = 1
    if sum(vector):
        vector[5] = 1  # "any child": set whenever an age option is
    return vector


def study_place_vector(location_text: str, location_cat_text: str) -> list[int]:
    vector = [0] * 10
    for option, position in STUDY_PLACE_POSITIONS.items():
        if option in location_text:
            vector[position] = 1
    for option, position in STUDY_INDOOR_POSITIONS.items():
        if option in location_cat_text:
            vector[position] = 1
    return vector


def study_health_vector(is_health: bool, impact_text: str, type_text: str) -> list[int]:
    vector = [int(is_health is True)] + [0] * 6
    for option, position in STUDY_HEALTH_POSITIONS.items():
        if option in impact_text or option in type_text:
            vector[position] = 1
    return vector


def test_child_labels_match_the_study_vectors_for_every_answer_in_its_labels():
    """Every distinct (is_child, age) answer among the study's 84,811 child labels."""
    import ast
    import csv
    from pathlib import Path

    path = Path(__file__).parents[1] / "fixtures" / "study_child_answers.csv"
    rows = list(csv.DictReader(path.open()))
    assert sum(int(r["labels"]) for r in rows) == 84811
    for row in rows:
        ages = [a for a in ast.literal_eval(row["age"]) if a]
        answers = {"is_child": row["is_child"] == "True", "age": ages}
        assert codebook.encode_study("child", answers) == study_child_vector(row["age"]), row
        assert codebook.gate_value("child", answers) == int(row["is_child"] == "True")


def _subsets(values, most=2):
    from itertools import combinations

    for size in range(most + 1):
        yield from (list(c) for c in combinations(values, size))


def test_place_labels_match_the_study_vectors():
    place = codebook.family("place")
    cats, kinds = place.question("location_cat").values, place.question("location").values
    for cat in _subsets(cats):
        for kind in _subsets(kinds, 3):
            answers = {"location_cat": cat, "location": kind}
            expected = study_place_vector(str(kind), str(cat))
            assert codebook.encode_study("place", answers) == expected, answers
            located = any(c in ("Indoor location", "Outdoor location") for c in cat)
            assert codebook.gate_value("place", answers) == int(located)


def test_health_labels_match_the_study_vectors():
    health = codebook.family("health")
    impacts, kinds = health.question("health_impact").values, health.question("health_type").values
    for is_health in (True, False):
        for impact in _subsets(impacts, 3):
            for kind in _subsets(kinds, 3):
                answers = {"is_health": is_health, "health_impact": impact, "health_type": kind}
                expected = study_health_vector(is_health, str(impact), str(kind))
                assert codebook.encode_study("health", answers) == expected, answers
    assert [s.name for s in health.study_slots] == [s.name for s in health.slots]


def test_study_and_detail_layouts_are_both_documented():
    doc = {f["name"]: f for f in codebook.as_document()["families"]}
    assert doc["child"]["study_slots"][5] == "any_child"
    assert doc["child"]["slots"][5] == "child_age_unspecified"
    assert doc["place"]["study_slots"][5] == "other_or_unsure"
    assert [doc[f]["gate"] for f in ("place", "child", "health")] == [
        "has_location", "is_child", "is_health"]


def _items(family_name: str) -> list[str]:
    fam = codebook.family(family_name)
    return [q.name if q.kind == "yes_no" else f"{q.name}={v}"
            for q in fam.questions for v in ([None] if q.kind == "yes_no" else q.values)]


def test_consistent_answers_always_obey_the_codebook():
    import random

    rng = random.Random(5)
    for family_name in codebook.FAMILY_NAMES:
        items = _items(family_name)
        for _ in range(2000):
            # Sparse, skewed and missing posteriors, as consensus gives them.
            posteriors = {i: rng.choice([0.0, 0.02, 0.3, 0.49, 0.5, 0.7, 0.99, rng.random()])
                          for i in items if rng.random() < 0.9}
            answers = codebook.consistent_answers(family_name, posteriors)
            assert codebook.validate(family_name, answers) == [], (posteriors, answers)


def test_a_child_always_gets_its_most_probable_age_group():
    posteriors = {"is_child": 0.8, "age=1 to 4 years (toddler/pre-school)": 0.45,
                  "age=0 to less than 1 year (baby/infant)": 0.3}
    answers = codebook.consistent_answers("child", posteriors)
    assert answers == {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}
    assert codebook.encode_study("child", answers) == [0, 1, 0, 0, 0, 1]
    # Nothing known about the age: the question's unsure option, never an empty answer.
    assert codebook.consistent_answers("child", {"is_child": 0.9})["age"] == ["Unsure"]
    assert codebook.consistent_answers("child", {"is_child": 0.1}) == {"is_child": False}


def test_an_exclusive_option_and_the_others_the_likelier_side_wins():
    base = {"location_cat=Indoor location": 0.9}
    wins = codebook.consistent_answers("place", {**base, "location=No location": 0.8,
                                                 "location=School": 0.6})
    assert wins["location"] == ["No location"]
    loses = codebook.consistent_answers("place", {**base, "location=No location": 0.55,
                                                  "location=School": 0.9, "location=A home": 0.7})
    assert loses["location"] == ["A home", "School"]
