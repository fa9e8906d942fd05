"""Strict JSON input: a bounded parser and a small validator for the JSON-Schema subset we use.

The API checks every request body, query string and path parameter with the same schema
objects it publishes in ``/openapi.json`` (see ``trainset.api_schema``), so the document and the
server cannot disagree. Our own validator rather than the ``jsonschema`` library: it is a few
dozen lines for the keywords we use, adds nothing to the Lambda layer or its cold start, and
reports problems as the API wants them (one per field, with a path, in a bounded list).

Supported keywords: type, enum, properties, required, additionalProperties (false),
minProperties, items, minItems, maxItems, uniqueItems, minLength, maxLength, pattern, format
(uuid, date), minimum, maximum, oneOf (with ``x-discriminator``, an OpenAPI extension naming
the property that picks the variant). Descriptive keywords (title, description, default) are
ignored. A schema using anything else is refused when checked (``check_supported``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

MAX_DEPTH = 32  # arrays and objects nested deeper than this are refused before parsing
MAX_BODY_BYTES = 64 * 1024  # the largest request body the API reads (API Gateway allows 10 MB)
MAX_PROBLEMS = 20  # an error body lists at most this many problems, then counts the rest
MAX_MESSAGE = 200  # characters of one problem's message
MAX_INT_DIGITS = 30  # longer integers are refused (Python's int() limit is 4300 digits)

SUPPORTED = frozenset({
    "type", "enum", "properties", "required", "additionalProperties", "minProperties", "items",
    "minItems", "maxItems", "uniqueItems", "minLength", "maxLength", "pattern", "format",
    "minimum", "maximum", "oneOf", "x-discriminator", "title", "description", "default",
    "example", "x-pattern-message",
})
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]{1,30}")
_DECIMAL = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")
# NUL (PostgreSQL text cannot hold it) and UTF-16 surrogates (not characters: unencodable).
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_SPECIAL = re.compile(rb'["\\\[\]{}]')


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (``body.answers.age``, ``query.limit``) and what."""

    path: str
    message: str

    @property
    def field(self) -> str:
        """The field a form shows the message next to: the first name after the location (or
        the question's name inside ``answers``)."""
        parts = [p for p in re.split(r"[.\[\]]", self.path) if p][1:]
        if len(parts) >= 2 and parts[0] == "answers":
            return parts[1]
        return parts[0] if parts else ""

    def as_dict(self) -> dict[str, str]:
        message = self.message
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        return {"field": self.field, "path": self.path, "message": message}


class _Rejected:
    """A value the parser refused (NaN, Infinity, an overlong number), reported with its path
    after parsing, where the path is known."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _reject_constant(name: str) -> _Rejected:
    return _Rejected(f"{name} is not a JSON number; send a finite number")


def _parse_float(text: str) -> float | _Rejected:
    value = float(text)
    return value if math.isfinite(value) else _Rejected("this number is out of range")


def _parse_int(text: str) -> int | _Rejected:
    digits = len(text.lstrip("-"))
    return int(text) if digits <= MAX_INT_DIGITS else _Rejected("this number is out of range")


class BadJson(ValueError):
    """The raw bytes are not acceptable JSON; the message says why."""


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects nest deeper than ``limit``, scanning the bytes (strings
    skipped), so a deep body is refused before ``json.loads`` recurses into it."""
    depth = 0
    in_string = False
    skip_to = -1
    for match in _SPECIAL.finditer(raw):
        at = match.start()
        if at < skip_to:
            continue
        char = raw[at]
        if in_string:
            if char == 0x5C:  # backslash: the next byte is escaped
                skip_to = at + 2
            elif char == 0x22:
                in_string = False
        elif char == 0x22:
            in_string = True
        elif char in b"[{":
            depth += 1
            if depth > limit:
                return True
        elif char in b"]}":
            depth -= 1
    return False


def parse_json(raw: bytes) -> tuple[Any, list[Problem]]:
    """Parse a request body strictly: UTF-8, nesting at most ``MAX_DEPTH``, finite numbers,
    strings without NUL or lone surrogates. Raises BadJson for unparseable bytes; returns the
    value and the problems found in it (with paths)."""
    if nesting_depth_exceeds(raw):
        raise BadJson(f"arrays and objects may nest at most {MAX_DEPTH} deep")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("the body is not UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float,
                           parse_int=_parse_int, object_pairs_hook=_unique_keys)
    except BadJson:
        raise
    except json.JSONDecodeError as exc:
        raise BadJson(f"the body is not valid JSON at line {exc.lineno}, column {exc.colno}: "
                      f"{exc.msg}") from None
    except (ValueError, RecursionError):
        raise BadJson("the body is not valid JSON") from None
    return value, scan_values(value, "body")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object, refusing a key given twice (which value would count is a guess)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        raise BadJson("an object lists the same key more than once")
    return out


def bad_text(value: str) -> str | None:
    """Why a string cannot be stored (NUL, unpaired surrogate), or None when it is fine."""
    found = _BAD_CHARS.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain the NUL character"
    return "must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"


def scan_values(value: Any, path: str) -> list[Problem]:
    """Problems no schema expresses: rejected numbers and unstorable characters, anywhere
    (object keys included). Iterative; the depth is already bounded."""
    problems: list[Problem] = []
    stack = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, _Rejected):
            problems.append(Problem(where, item.reason))
        elif isinstance(item, str):
            reason = bad_text(item)
            if reason:
                problems.append(Problem(where, reason))
        elif isinstance(item, dict):
            for key, child in reversed(list(item.items())):
                reason = bad_text(key)
                if reason:
                    problems.append(Problem(where, f"a key {reason}"))
                    continue
                stack.append((_join(where, key), child))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", child) for i, child in reversed(list(enumerate(item))))
    return problems


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else \
        f"{path}[{json.dumps(key)[:40]}]"


def _show(value: Any) -> str:
    """A short rendering of a bad value for a message (never the whole of a huge value)."""
    text = json.dumps(value, default=str, ensure_ascii=True)
    return text if len(text) <= 40 else text[:39] + "…"


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "null":
        return value is None
    raise ValueError(f"unsupported type {kind!r}")


_TYPE_WORDS = {"object": "a JSON object", "array": "a list", "string": "a string",
               "boolean": "true or false", "integer": "a whole number", "number": "a number",
               "null": "null"}


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    # JSON Schema patterns are ECMA-262: "$" ends the string; in Python it also matches before
    # a final newline, so it becomes "\Z".
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def validate(schema: Mapping[str, Any], value: Any, path: str = "body") -> list[Problem]:
    """Every problem with ``value`` against ``schema``; empty when it conforms."""
    problems: list[Problem] = []
    _check(schema, value, path, problems)
    return problems


def _check(schema: Mapping[str, Any], value: Any, path: str, out: list[Problem]) -> None:
    if isinstance(value, _Rejected):
        return  # reported by scan_values
    kind = schema.get("type")
    if kind is not None and not _type_ok(kind, value):
        out.append(Problem(path, f"must be {_TYPE_WORDS[kind]}"))
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append(Problem(path, f"{_show(value)} is not allowed; one of: "
                           + ", ".join(_show(v) for v in schema["enum"])))
        return
    if "oneOf" in schema:
        _check_one_of(schema, value, path, out)
    if isinstance(value, dict):
        _check_object(schema, value, path, out)
    elif isinstance(value, list):
        _check_array(schema, value, path, out)
    elif isinstance(value, str):
        _check_string(schema, value, path, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(Problem(path, f"must be at least {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.append(Problem(path, f"must be at most {schema['maximum']}"))


def _check_object(schema: Mapping[str, Any], value: dict, path: str, out: list[Problem]) -> None:
    props = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            out.append(Problem(_join(path, name), "is required"))
    if schema.get("additionalProperties", True) is False:
        for name in value:
            if name not in props:
                out.append(Problem(_join(path, name), "is not a known field"))
    if len(value) < schema.get("minProperties", 0):
        out.append(Problem(path, "send at least one of: " + ", ".join(props)))
    for name, sub in props.items():
        if name in value:
            _check(sub, value[name], _join(path, name), out)


def _check_array(schema: Mapping[str, Any], value: list, path: str, out: list[Problem]) -> None:
    if len(value) < schema.get("minItems", 0):
        out.append(Problem(path, "pick at least one" if schema["minItems"] == 1
                           else f"needs at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        out.append(Problem(path, f"has more than {schema['maxItems']} items"))
    if schema.get("uniqueItems"):
        seen = [json.dumps(v, sort_keys=True, default=str) for v in value]
        if len(set(seen)) != len(seen):
            out.append(Problem(path, "lists an item more than once"))
    if "items" in schema:
        for i, item in enumerate(value):
            _check(schema["items"], item, f"{path}[{i}]", out)


def _check_string(schema: Mapping[str, Any], value: str, path: str, out: list[Problem]) -> None:
    if len(value) < schema.get("minLength", 0):
        out.append(Problem(path, "must not be empty" if schema["minLength"] == 1
                           else f"needs at least {schema['minLength']} characters"))
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(Problem(path, f"must be at most {schema['maxLength']} characters"))
    if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
        out.append(Problem(path, schema.get("x-pattern-message")
                           or f"must match {schema['pattern']}"))
    fmt = schema.get("format")
    if fmt == "uuid" and not _UUID.fullmatch(value):
        out.append(Problem(path, "must be a UUID (8-4-4-4-12 hex digits)"))
    elif fmt == "date" and not _is_date(value):
        out.append(Problem(path, "must be a date, YYYY-MM-DD"))


def _is_date(value: str) -> bool:
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _check_one_of(schema: Mapping[str, Any], value: Any, path: str, out: list[Problem]) -> None:
    variants = schema["oneOf"]
    key = schema.get("x-discriminator")
    if key is not None and isinstance(value, dict):
        choices = [v for v in variants if value.get(key) in v["properties"][key]["enum"]]
        if not choices:
            if key in value:
                allowed = [e for v in variants for e in v["properties"][key]["enum"]]
                out.append(Problem(_join(path, key), f"{_show(value.get(key))} is not allowed; "
                                   "one of: " + ", ".join(_show(a) for a in allowed)))
            else:
                out.append(Problem(_join(path, key), "is required"))
            return
        variants = choices
    results = [validate(v, value, path) for v in variants]
    passing = sum(1 for r in results if not r)
    if passing == 1:
        return
    if passing > 1:
        out.append(Problem(path, "matches more than one of the allowed forms"))
    elif len(results) == 1:
        out.extend(results[0])
    else:
        out.append(Problem(path, "matches none of the allowed forms"))


def coerce_query(schema: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """Query or path strings as the types their schema says (an integer parameter becomes an
    int when it is one, a number parameter a float when it is a plain decimal); anything else
    is left as the string, for ``validate`` to refuse."""
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, text in params.items():
        kind = props.get(name, {}).get("type")
        if kind == "integer" and _INTEGER.fullmatch(text):
            out[name] = int(text)
        elif kind == "number" and _DECIMAL.fullmatch(text):
            out[name] = float(text)
        else:
            out[name] = text
    return out


def bounded(problems: list[Problem]) -> tuple[list[dict[str, str]], int]:
    """The first ``MAX_PROBLEMS`` problems as dicts, and how many more there were."""
    return [p.as_dict() for p in problems[:MAX_PROBLEMS]], max(0, len(problems) - MAX_PROBLEMS)


def check_supported(schema: Any, where: str = "schema") -> None:
    """Raise ValueError if a schema uses a keyword this validator does not implement; run by a
    test over every published schema so none silently goes unchecked."""
    if not isinstance(schema, Mapping):
        raise ValueError(f"{where} is not a schema")
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise ValueError(f"{where} uses unsupported keywords: {sorted(unknown)}")
    for name, sub in schema.get("properties", {}).items():
        check_supported(sub, f"{where}.{name}")
    if "items" in schema:
        check_supported(schema["items"], f"{where}[]")
    for i, sub in enumerate(schema.get("oneOf", ())):
        check_supported(sub, f"{where}.oneOf[{i}]")
    if schema.get("format") not in (None, "uuid", "date"):
        raise ValueError(f"{where} uses unsupported format {schema['format']!r}")
    if schema.get("additionalProperties", False) not in (False, True):
        raise ValueError(f"{where}: additionalProperties must be true or false")
