"""Reading labels made elsewhere (prior labels) into checked label rows, and rows we reject.

Pure: no database. Three formats, one result shape:

- ``long``: the file ``python -m trainset consensus`` reads: ``post_id,coder_id,field,value``
  (``true``/``false`` for yes/no fields, a JSON list of option strings for multi-select ones;
  the study's Python-list strings are read too). A coder's rows for one post make one label.
- ``wide``: the study's files: ``id`` plus one column per question (``True``/``False`` and
  Python-list strings such as ``['1 to 4 years (toddler/pre-school)']``, ``['']`` for none).
  With no ``coder_id`` column the file is one coder named after the source; a post's second,
  third... row goes to ``<source>.2``, ``<source>.3`` (the study's file holds several coders'
  labels of one post without saying whose). A ``text`` column creates missing posts.
- ``labelstudio``: a Label Studio JSON export (a list of tasks). The post id is ``data.id``
  and its text ``data.text``; each annotation (``completed_by`` is the coder) is one label,
  its ``result[]`` items map ``from_name`` to a question and ``value.choices`` to options.

Option texts must match the codebook byte for byte, or be one of ``codebook.ALIASES``; every
label must pass ``codebook.validate`` and is stored as ``codebook.normalize`` gives it. A row
that cannot be a label becomes a ``LabelReject`` naming the file, line (or task and
annotation) and reason, so nothing goes silently missing.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.corpus.ingest import (
    KNOWN_COLUMNS,
    MAX_ID_LENGTH,
    FileProblem,
    PostRow,
    RawRow,
    check_row,
)

FORMATS = ("long", "wide", "labelstudio")
LONG_COLUMNS = ("post_id", "coder_id", "field", "value")
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
CODER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")  # coders.name's CHECK
YES = ("True", "true", "Yes", "yes")
NO = ("False", "false", "No", "no")
# Fixed forever: submission ids of imported labels are uuid5 in this namespace, so the same
# label from the same source always gets the same id and is stored once.
NAMESPACE = uuid.UUID("4f0b8a4e-2d47-5c1e-9a53-7e1c0d6b2a91")

__all__ = ["FileProblem", "FORMATS", "ImportedLabel", "LabelReject", "ParsedFile",
           "check_source", "coder_name", "detect_format", "parse_file", "submission_id"]


@dataclass(frozen=True)
class ImportedLabel:
    """One label ready to store (answers valid and normalized)."""

    post_id: str
    source_coder: str  # the coder as the file names them ("" for a wide file's one coder)
    coder: str  # the coder row's name: <source> or <source>.<coder>
    answers: dict[str, Any]
    line: int  # first line (JSON: the task's position in the list)
    location: str  # "line 12", "lines 4-5", "task 7 annotation 31"
    submission_id: str
    post: PostRow | None = None  # the post to create when missing (the row had text)
    post_problem: str | None = None  # why the row's text cannot make a post
    seconds_spent: float | None = None


@dataclass(frozen=True)
class LabelReject:
    file: str
    line: int
    location: str
    kind: str  # short and countable: "unknown option", "invalid label (age: ...)"
    reason: str  # the whole explanation
    post_id: str | None = None
    coder: str | None = None
    raw: str = ""


@dataclass
class ParsedFile:
    format: str
    labels: list[ImportedLabel] = field(default_factory=list)
    rejects: list[LabelReject] = field(default_factory=list)
    read: int = 0  # labels read (long: coder-post groups; wide: rows; Label Studio: annotations)


class _Bad(Exception):
    """One label cannot be imported: ``kind`` counts it, the message explains it."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass
class _Draft:
    post_id: str
    source_coder: str
    answers: dict[str, Any]
    line: int
    location: str
    raw: str
    post_values: dict[str, Any] | None = None
    seconds_spent: float | None = None


def check_source(source: str) -> str:
    """The source name, or a ValueError saying what a source name may be."""
    if not SOURCE_NAME.match(source or ""):
        raise ValueError(f"source {source!r} must be 1-32 letters, digits, _ or - "
                         "(it starts each imported coder's name: <source>.<coder>)")
    return source


def coder_name(source: str, source_coder: str) -> str:
    return f"{source}.{source_coder}" if source_coder else source


def submission_id(source: str, family: str, post_id: str, coder: str,
                  answers: Mapping[str, Any]) -> str:
    """The same label from the same source always has this id (re-imports store nothing)."""
    key = "\x1f".join((source, family, post_id, coder,
                       json.dumps(answers, sort_keys=True, ensure_ascii=False)))
    return str(uuid.uuid5(NAMESPACE, key))


# ---- format detection -----------------------------------------------------------------------

def detect_format(path: Path, family: str) -> str:
    """long, wide or labelstudio, from the extension and the columns (or the JSON's shape)."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "labelstudio"
    if suffix not in (".csv", ".tsv"):
        raise FileProblem(f"{path}: unknown file type {path.suffix or '(none)'}; use .csv "
                          "(long or wide) or .json (Label Studio), or give --format")
    header = _csv_header(path)
    if all(c in header for c in LONG_COLUMNS):
        return "long"
    questions = {q.name for q in codebook.family(family).questions}
    if "id" in header and questions & set(header):
        return "wide"
    raise FileProblem(
        f"{path}: cannot tell the format from its columns ({', '.join(header) or 'none'}): "
        f"long needs {','.join(LONG_COLUMNS)}; wide needs id and question columns of the "
        f"{family} family ({', '.join(sorted(questions))})")


def _open_text(path: Path) -> io.TextIOWrapper:
    try:
        return path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise FileProblem(f"{path}: cannot read ({exc.strerror})") from None


def _csv_header(path: Path) -> list[str]:
    with _open_text(path) as handle:
        try:
            return [h.strip() for h in next(csv.reader(handle, _dialect(path)))]
        except StopIteration:
            return []
        except (UnicodeDecodeError, csv.Error) as exc:
            raise FileProblem(f"{path}: not a readable CSV file ({exc})") from None


def _dialect(path: Path) -> type[csv.Dialect]:
    return csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel


def parse_file(path: Path, family: str, source: str, fmt: str | None = None) -> ParsedFile:
    """Every label of the file, checked, or the reason it is rejected. A whole-file problem
    (unreadable, wrong columns, not a Label Studio export) raises ``FileProblem``."""
    fam = codebook.family(family)
    check_source(source)
    if not path.is_file():
        raise FileProblem(f"{path}: no such file")
    fmt = fmt or detect_format(path, family)
    if fmt not in FORMATS:
        raise FileProblem(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    reader = {"long": _read_long, "wide": _read_wide, "labelstudio": _read_labelstudio}[fmt]
    parsed = ParsedFile(fmt)
    drafts: list[_Draft] = []
    try:
        for item in reader(path, fam):
            parsed.read += 1
            if isinstance(item, LabelReject):
                parsed.rejects.append(item)
            else:
                drafts.append(item)
    except UnicodeDecodeError:
        raise FileProblem(f"{path}: bad encoding (not valid UTF-8)") from None
    except csv.Error as exc:
        raise FileProblem(f"{path}: not a readable CSV file ({exc})") from None
    _finish(parsed, drafts, path, fam, source)
    return parsed


def _finish(parsed: ParsedFile, drafts: list[_Draft], path: Path, fam: codebook.Family,
            source: str) -> None:
    """Validate, normalize and name each draft; one label per post and coder."""
    seen: dict[tuple[str, str], _Draft] = {}
    for d in drafts:
        name = coder_name(source, d.source_coder)

        def reject(kind: str, reason: str, d: _Draft = d, name: str = name) -> None:
            parsed.rejects.append(LabelReject(str(path), d.line, d.location, kind, reason,
                                              d.post_id or None, name, d.raw[:200]))

        if not d.post_id:
            reject("missing post id", "no post id")
            continue
        if len(d.post_id) > MAX_ID_LENGTH:
            reject("bad post id", f"post id longer than {MAX_ID_LENGTH} characters")
            continue
        if not CODER_NAME.match(name):
            reject("bad coder name",
                   f"coder {d.source_coder!r} cannot be named {name!r}: a coder name is "
                   "letters, digits, _ . @ - (64 at most, the source included)")
            continue
        errors = codebook.validate(fam.name, d.answers)
        if errors:
            first = errors[0]
            reject(f"invalid label ({first.field}: {first.message})",
                   f"not a valid {fam.name} label: "
                   + "; ".join(f"{e.field}: {e.message}" for e in errors))
            continue
        answers = codebook.normalize(fam.name, d.answers)
        earlier = seen.get((d.post_id, name))
        if earlier is not None:
            if codebook.normalize(fam.name, earlier.answers) == answers:
                reject("duplicate label", f"the same label as {earlier.location} "
                       f"(post {d.post_id}, coder {name})")
            else:
                reject("conflicting label", f"coder {name} labeled post {d.post_id} "
                       f"differently at {earlier.location}")
            continue
        seen[(d.post_id, name)] = d
        post, problem = None, None
        if d.post_values is not None:
            checked = check_row(RawRow(str(path), d.line, d.post_values, d.post_values))
            if isinstance(checked, PostRow):
                post = checked
            else:
                problem = checked.reason
        parsed.labels.append(ImportedLabel(
            d.post_id, d.source_coder, name, answers, d.line, d.location,
            submission_id(source, fam.name, d.post_id, name, answers), post, problem,
            d.seconds_spent))


# ---- values ---------------------------------------------------------------------------------

def _yes_no(q: codebook.Question, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip()
    if text in YES:
        return True
    if text in NO:
        return False
    raise _Bad("bad value", f"{q.name} must be True or False, got {str(raw)[:60]!r}")


def _option_list(q: codebook.Question, raw: Any) -> list[str]:
    """A multi-select answer from a JSON list or the study's Python-list string; '' entries
    (the study's ``['']``) mean no option."""
    if isinstance(raw, list):
        values = raw
    else:
        text = str(raw).strip()
        try:
            values = json.loads(text)
        except json.JSONDecodeError:
            try:
                values = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                raise _Bad("bad value", f"{q.name} must be a list of options like "
                           f"['{q.values[0]}'], got {text[:60]!r}") from None
    if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
        raise _Bad("bad value", f"{q.name} must be a list of option strings, "
                   f"got {str(raw)[:60]!r}")
    return _options(q, [v for v in values if v != ""])


def _options(q: codebook.Question, values: Iterable[str]) -> list[str]:
    out = []
    for v in values:
        canonical = codebook.canonical_option(q.name, v)
        if canonical not in q.values:
            raise _Bad("unknown option", f"{v!r} is not an option of {q.name} (options: "
                       + "; ".join(repr(o) for o in q.values) + ")")
        out.append(canonical)
    return out


def _question(fam: codebook.Family, name: str) -> codebook.Question:
    try:
        return fam.question(name)
    except KeyError:
        pass
    for other in codebook.FAMILIES.values():
        if other.name != fam.name and name in {q.name for q in other.questions}:
            raise _Bad("question of another family",
                       f"{name!r} is a question of the {other.name} family, not {fam.name} "
                       f"(import it with --family {other.name})") from None
    raise _Bad("unknown question", f"{name!r} is not a question of the {fam.name} family "
               f"(questions: {', '.join(q.name for q in fam.questions)})") from None


# ---- long -----------------------------------------------------------------------------------

def _csv_rows(path: Path) -> Iterator[tuple[int, list[str], list[str]]]:
    """(line, header, cells) for each non-blank row."""
    with _open_text(path) as handle:
        reader = csv.reader(handle, _dialect(path))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            return
        start = reader.line_num + 1
        for record in reader:
            line, start = start, reader.line_num + 1
            if any(cell.strip() for cell in record):
                yield line, header, record


def _read_long(path: Path, fam: codebook.Family) -> Iterator[_Draft | LabelReject]:
    _csv_header_check(path)
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for line, header, record in _csv_rows(path):
        raw = ",".join(record)
        if len(record) != len(header):
            yield LabelReject(str(path), line, f"line {line}", "wrong number of fields",
                              f"{len(record)} fields; the header has {len(header)}", raw=raw)
            continue
        row = dict(zip(header, record, strict=True))
        key = (row["post_id"].strip(), row["coder_id"].strip())
        group = groups.setdefault(key, {"lines": [], "answers": {}, "bad": None, "raw": raw})
        group["lines"].append(line)
        if group["bad"] is not None:
            continue
        try:
            q = _question(fam, row["field"].strip())
            value = (_yes_no(q, row["value"]) if q.kind == "yes_no"
                     else _option_list(q, row["value"]))
            if q.name in group["answers"] and group["answers"][q.name] != value:
                raise _Bad("conflicting label", f"{q.name} is given twice with different "
                           "values for this post and coder")
            group["answers"][q.name] = value
        except _Bad as bad:
            group["bad"] = (line, bad)
    for (post_id, coder), group in groups.items():
        lines = group["lines"]
        location = _lines(lines)
        if group["bad"] is not None:
            line, bad = group["bad"]
            yield LabelReject(str(path), line, location, bad.kind, f"line {line}: {bad.reason}",
                              post_id or None, coder, group["raw"])
        elif not coder:
            yield LabelReject(str(path), lines[0], location, "missing coder", "no coder_id",
                              post_id or None, None, group["raw"])
        else:
            yield _Draft(post_id, coder, group["answers"], lines[0], location, group["raw"])


def _csv_header_check(path: Path) -> None:
    header = _csv_header(path)
    missing = [c for c in LONG_COLUMNS if c not in header]
    if missing:
        raise FileProblem(f"{path}: missing column(s) {', '.join(missing)} "
                          f"(long format: {','.join(LONG_COLUMNS)})")


def _lines(lines: list[int]) -> str:
    if len(lines) == 1:
        return f"line {lines[0]}"
    if lines == list(range(lines[0], lines[-1] + 1)):
        return f"lines {lines[0]}-{lines[-1]}"
    return "lines " + ", ".join(str(n) for n in lines)


# ---- wide -----------------------------------------------------------------------------------

def _read_wide(path: Path, fam: codebook.Family) -> Iterator[_Draft | LabelReject]:
    occurrences: dict[str, int] = {}
    questions: list[codebook.Question] = []
    has_coder = False
    for line, header, record in _csv_rows(path):
        if not questions:
            questions, has_coder = _wide_columns(path, header, fam)
        raw = ",".join(record)
        if len(record) != len(header):
            yield LabelReject(str(path), line, f"line {line}", "wrong number of fields",
                              f"{len(record)} fields; the header has {len(header)}", raw=raw)
            continue
        row = {k: v for k, v in zip(header, record, strict=True)}
        post_id = row["id"].strip()
        if has_coder:
            coder = row["coder_id"].strip()
            if not coder:
                yield LabelReject(str(path), line, f"line {line}", "missing coder",
                                  "no coder_id", post_id or None, None, raw)
                continue
        else:
            occurrences[post_id] = occurrences.get(post_id, 0) + 1
            coder = "" if occurrences[post_id] == 1 else str(occurrences[post_id])
        try:
            answers: dict[str, Any] = {}
            for q in questions:
                cell = row[q.name].strip()
                if cell == "":
                    continue
                answers[q.name] = _yes_no(q, cell) if q.kind == "yes_no" else _option_list(q, cell)
        except _Bad as bad:
            yield LabelReject(str(path), line, f"line {line}", bad.kind, bad.reason,
                              post_id or None, coder or None, raw)
            continue
        post_values = None
        if row.get("text", "").strip():
            post_values = {k: v for k, v in row.items()
                           if k in KNOWN_COLUMNS and v.strip() != ""}
            post_values.setdefault("family", fam.name)
        yield _Draft(post_id, coder, answers, line, f"line {line}", raw, post_values)


def _wide_columns(path: Path, header: list[str], fam: codebook.Family
                  ) -> tuple[list[codebook.Question], bool]:
    """The question columns, and whether the file names its coders; unknown columns are a
    whole-file problem (every row would carry them)."""
    if "id" not in header:
        raise FileProblem(f"{path}: no 'id' column (wide format: id and one column per "
                          "question)")
    known = {q.name for q in fam.questions}
    extra = [h for h in header if h not in known and h != "coder_id" and h not in KNOWN_COLUMNS]
    if extra:
        raise FileProblem(
            f"{path}: column(s) {', '.join(repr(e) for e in extra)} are not questions of the "
            f"{fam.name} family ({', '.join(sorted(known))}) nor known columns "
            f"(coder_id, {', '.join(KNOWN_COLUMNS)})")
    questions = [q for q in fam.questions if q.name in header]
    if not questions:
        raise FileProblem(f"{path}: no question column of the {fam.name} family "
                          f"({', '.join(sorted(known))})")
    return questions, "coder_id" in header


# ---- Label Studio ---------------------------------------------------------------------------

def _read_labelstudio(path: Path, fam: codebook.Family) -> Iterator[_Draft | LabelReject]:
    try:
        with path.open("rb") as handle:
            tasks = json.loads(handle.read().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise FileProblem(f"{path}: bad encoding (not valid UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise FileProblem(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(tasks, list):
        raise FileProblem(f"{path}: not a Label Studio JSON export (expected a list of tasks, "
                          f"found {type(tasks).__name__})")
    for number, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            yield LabelReject(str(path), number, f"task #{number}", "not a task",
                              "not a Label Studio task (no data object)",
                              raw=json.dumps(task, default=str)[:200])
            continue
        data = task["data"]
        task_name = f"task {task.get('id', '#' + str(number))}"
        post_id = _id_text(data.get("id"))
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            annotations = []
        for index, ann in enumerate(annotations, 1):
            if not isinstance(ann, dict):
                continue
            where = f"{task_name} annotation {ann.get('id', '#' + str(index))}"
            coder = _coder_text(ann.get("completed_by"))
            raw = json.dumps(ann.get("result"), default=str, ensure_ascii=False)

            def reject(kind: str, reason: str, where: str = where, coder: str = coder,
                       raw: str = raw, number: int = number,
                       post_id: str | None = post_id) -> LabelReject:
                return LabelReject(str(path), number, where, kind, reason, post_id or None,
                                   coder or None, raw)

            if post_id is None:
                yield reject("missing post id", "the task has no data.id (the post id)")
                continue
            if ann.get("was_cancelled"):
                yield reject("cancelled annotation", "the annotation was cancelled (skipped "
                             "in Label Studio)")
                continue
            if not coder:
                yield reject("missing coder", "the annotation has no completed_by")
                continue
            try:
                answers = _ls_answers(fam, ann.get("result"))
            except _Bad as bad:
                yield reject(bad.kind, bad.reason)
                continue
            post_values = None
            if isinstance(data.get("text"), str) and data["text"].strip():
                post_values = {**data, "id": post_id}
                post_values.setdefault("family", fam.name)
            seconds = ann.get("lead_time")
            ok_seconds = isinstance(seconds, int | float) and not isinstance(seconds, bool) \
                and seconds >= 0
            yield _Draft(post_id, coder, answers, number, where, raw, post_values,
                         float(seconds) if ok_seconds else None)


def _id_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _coder_text(value: Any) -> str:
    """``completed_by``: a user id, or (some exports) a user object: its email, else id."""
    if isinstance(value, dict):
        value = value.get("email") or value.get("id")
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip()


def _ls_answers(fam: codebook.Family, result: Any) -> dict[str, Any]:
    if not isinstance(result, list):
        raise _Bad("bad value", "the annotation has no result list")
    answers: dict[str, Any] = {}
    for item in result:
        if not isinstance(item, dict):
            raise _Bad("bad value", "a result item is not an object")
        q = _question(fam, str(item.get("from_name", "")))
        value = item.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
            raise _Bad("bad value", f"{q.name}: the result has no value.choices list")
        if q.kind == "yes_no":
            if len(choices) != 1:
                raise _Bad("bad value", f"{q.name} needs one choice (Yes or No), got "
                           f"{len(choices)}")
            answer: Any = _yes_no(q, choices[0])
        else:
            answer = _options(q, choices)
        if q.name in answers and answers[q.name] != answer:
            raise _Bad("conflicting label", f"{q.name} is answered twice differently")
        answers[q.name] = answer
    return answers
