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
