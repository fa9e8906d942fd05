"""The strict JSON parser and the schema validator, and their agreement with jsonschema."""

from __future__ import annotations

import json

import jsonschema
import pytest

from trainset import api_schema, validation
from trainset.validation import BadJson, Problem, parse_json, validate


def paths(problems: list[Problem]) -> list[str]:
    return [p.path for p in problems]


def test_parse_refuses_what_json_loads_would_let_through():
    value, problems = parse_json(b'{"a": NaN, "b": [Infinity, -Infinity], "c": 1e400, "d": 1e39}')
    assert paths(problems) == ["body.a", "body.b[0]", "body.b[1]", "body.c"]
    assert value["d"] == 1e39
    _, problems = parse_json(('{"n": ' + "9" * 5000 + "}").encode())
    assert paths(problems) == ["body.n"]
    _, problems = parse_json(b'{"s": "a\\u0000", "t": ["\\ud800"], "\\udc00": 1, '
                             b'"ok": "\\ud83d\\ude00"}')
    assert sorted(paths(problems)) == ["body", "body.s", "body.t[0]"]


@pytest.mark.parametrize("raw", [b"[" * 20000, b"[" * 33 + b"]" * 33,
                                 b'{"a":' * 40 + b"1" + b"}" * 40, b'{"a": 1, "a": 2}', b"\xff",
                                 b"{", b'"\\x"'])
def test_parse_raises_for_bytes_it_will_not_parse(raw):
    with pytest.raises(BadJson):
        parse_json(raw)


def test_depth_scan_skips_strings_and_escapes():
    assert not validation.nesting_depth_exceeds(b"[" * 32 + b"]" * 32)
    assert validation.nesting_depth_exceeds(b"[" * 33)
    assert not validation.nesting_depth_exceeds(json.dumps(["[" * 100, '\\"[[[[' * 50]).encode())
    assert validation.nesting_depth_exceeds(b'["\\\\"' + b"[" * 40)


def test_validator_messages_and_paths():
    schema = api_schema.LABEL_SUBMISSION
    problems = validate(schema, {"submission_id": "nope", "post_id": "", "family": "child",
                                 "answers": {"is_child": "yes", "age": ["x", "x"], "z": 1},
                                 "seconds_spent": -1, "extra": True})
    assert set(paths(problems)) == {
        "body.submission_id", "body.post_id", "body.answers.is_child", "body.answers.age",
        "body.answers.age[0]", "body.answers.age[1]", "body.answers.z", "body.seconds_spent",
        "body.extra"}
    assert paths(validate(schema, {"family": ["child"]})) == ["body.family"]
    assert paths(validate(schema, {})) == ["body.family"]
    assert paths(validate(schema, [])) == ["body"]
    assert Problem("body.answers.age[3]", "m").field == "age"
    assert Problem("query.limit", "m").field == "limit"
    assert Problem("body.families[0]", "m").field == "families"


def test_patterns_end_at_the_end_of_the_string():
    name = api_schema.CODER_NAME
    assert validate(name, "ana.b@x-1") == []
    assert validate(name, "ana\n") and validate(name, "-ana") and validate(name, "a" * 65)


def test_bounded_lists_twenty_and_counts_the_rest():
    problems = [Problem(f"body.x[{i}]", "m" * 1000) for i in range(57)]
    shown, omitted = validation.bounded(problems)
    assert len(shown) == 20 and omitted == 37
    assert all(len(d["message"]) == validation.MAX_MESSAGE for d in shown)


def test_unsupported_keywords_are_caught():
    with pytest.raises(ValueError):
        validation.check_supported({"type": "object", "properties": {"a": {"allOf": []}}})
    with pytest.raises(ValueError):
        validation.check_supported({"type": "string", "format": "email"})


# Instances checked by both our validator and jsonschema: the verdicts must agree.
UUID = "123e4567-e89b-12d3-a456-426614174000"
CASES = [
    (api_schema.LABEL_SUBMISSION, [
        {"submission_id": UUID, "post_id": "p", "family": "child",
         "answers": {"is_child": True, "age": ["Unsure"]}},
        {"submission_id": UUID, "post_id": "p", "family": "child", "answers": {"is_child": False},
         "seconds_spent": 86400},
        {"submission_id": UUID, "post_id": "p", "family": "place",
         "answers": {"location_cat": ["Indoor location"]}},
        {"submission_id": UUID, "post_id": "p", "family": "place", "answers": {"is_child": True}},
        {"submission_id": UUID, "post_id": "p", "family": "child", "answers": {"age": []}},
        {"submission_id": UUID, "post_id": "p", "family": "health",
         "answers": {"is_health": True}, "seconds_spent": 86400.5},
        {"submission_id": "x", "post_id": "p", "family": "child", "answers": {"is_child": True}},
        {"submission_id": UUID, "post_id": "p" * 65, "family": "child",
         "answers": {"is_child": True}},
        {"submission_id": UUID, "post_id": "p", "family": "pets", "answers": {}},
        {"submission_id": UUID, "post_id": "p", "family": "child", "answers": {"is_child": True},
         "more": 1},
    ]),
    (api_schema.SKIP, [{"family": "child", "reason": "x"}, {"family": "child", "reason": " "},
                       {"family": "child", "reason": ""}, {"family": "child"},
                       {"family": "child", "reason": "r" * 501}]),
    (api_schema.CODER_CREATE, [{"name": "a"}, {"name": "a", "role": "boss"}, {"name": "a b"},
                               {"name": "a", "x": 1}, {}]),
    (api_schema.CODER_UPDATE, [{}, {"status": "revoked"}, {"role": None}, {"role": "manager"}]),
    (api_schema.EXPORT_REQUEST, [{}, {"families": []}, {"families": ["child", "child"]},
                                 {"families": ["child"]}, {"families": 123}]),
    (api_schema.UPLOAD_REQUEST, [{}, {"filename": None}, {"filename": "a.png"},
                                 {"content_type": "application/pdf"}]),
    (api_schema.REPORT_QUERY, [{"from": "2024-01-01"}, {"to": "2024-02-30"}, {"to": "20240101"},
                               {"family": "child", "x": "1"}]),
    (api_schema.HISTORY_QUERY, [{"limit": 0}, {"limit": 200}, {"before": 1}, {"before": "1"}]),
]


@pytest.mark.parametrize("schema,instance", [(s, i) for s, items in CASES for i in items])
def test_agrees_with_jsonschema(schema, instance):
    reference = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    assert (validate(schema, instance) == []) == reference.is_valid(instance), instance
