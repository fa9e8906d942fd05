"""Gold and practice sets: file rows into checked gold posts, or rejects with file and line.

Pure: no database. The files are read by the corpus import's reader (``trainset.corpus.ingest``), so
a gold file accepts every corpus column (``keyword``, ``image_key``/``image_url``, ``author``,
``created_at``) plus ``family`` (required here), ``answers`` (a JSON object exactly as
``POST /labels`` takes it; in CSV a JSON string), ``rationale`` and ``purpose``. Answers are
checked against the codebook and stored in canonical form, so a gold post can always be
matched by a valid label.

Duplicates: the same id twice for one family within one import (across its files too) is
rejected on every line it appears, naming all of them: which copy holds the intended answers
is a guess, and a gold answer must never be one. The same id for two families is fine, but
then both rows must carry the same text (it is one post).
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.corpus.ingest import (
    DEFAULT_MAX_TEXT,
    FileProblem,
    PostRow,
    RawRow,
    Reject,
    check_row,
    detect_format,
    read_rows,
)

PURPOSES = ("practice", "qa")
GOLD_COLUMNS = ("answers", "rationale", "purpose")  # kept out of the post's extra JSON
REQUIRED_COLUMNS = ("id", "text", "family", "answers")
EXPORT_COLUMNS = ("id", "text", "family", "purpose", "answers", "rationale", "keyword",
                  "image_key", "author", "created_at")
MAX_RATIONALE = 5_000
EXAMPLE_ANSWERS = '{"is_child": true, "age": ["1 to 4 years (toddler/pre-school)"]}'


@dataclass(frozen=True)
class GoldRow:
    """A checked gold row: the post it is about and its known answers (normalized)."""

    post: PostRow
    family: str
    purpose: str
    answers: dict[str, Any]
    rationale: str
    file: str
    line: int
    raw: str

    def reject(self, reason: str) -> Reject:
        return Reject(self.file, self.line, reason, self.post.id, self.raw)


def require_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of: {', '.join(PURPOSES)} (got {purpose!r})")
    return purpose


def read_gold_file(path: Path, purpose: str,
                   max_text: int = DEFAULT_MAX_TEXT) -> Iterator[GoldRow | Reject]:
    """Each row of one file as a gold row or a reject. A CSV or Parquet file without a
    required column is a ``FileProblem`` (reported once, not once per row)."""
    require_purpose(purpose)
    columns_checked = detect_format(path) == "jsonl"  # JSONL rows are checked one by one
    for raw in read_rows(path):
        if not columns_checked and raw.values:
            missing = [c for c in REQUIRED_COLUMNS if c not in raw.values]
            if missing:
                raise FileProblem(
                    f"{path}: no {' or '.join(repr(m) for m in missing)} column (a gold file "
                    f"needs {', '.join(REQUIRED_COLUMNS)}; found: {', '.join(raw.values)})")
            columns_checked = True
        yield check_gold_row(raw, purpose, max_text)


def check_gold_row(raw: RawRow, purpose: str,
                   max_text: int = DEFAULT_MAX_TEXT) -> GoldRow | Reject:
    """The row as a gold post, or the first reason it cannot be one."""
    checked = check_row(raw, max_text)  # id, text, family, created_at: as the corpus import
    if isinstance(checked, Reject):
        return checked

    def reject(reason: str) -> Reject:
        return Reject(raw.file, raw.line, reason, checked.id, raw.raw)

    family = checked.family
    if not family:
        return reject(f"missing family (a gold post needs one of: "
                      f"{', '.join(codebook.FAMILY_NAMES)})")
    answers = parse_answers(raw.values.get("answers"))
    if isinstance(answers, str):
        return reject(answers)
    errors = codebook.validate(family, answers)
    if errors:
        listed = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return reject(f"answers are not a valid {family} label: {listed}")
    given_purpose = _cell(raw.values.get("purpose"))
    if given_purpose and given_purpose != purpose:
        return reject(f"purpose is {given_purpose!r} in the file but this import is for "
                      f"{purpose!r}; import each purpose separately")
    rationale = raw.values.get("rationale")
    rationale = "" if rationale is None else str(rationale).strip()
    if len(rationale) > MAX_RATIONALE:
        return reject(f"rationale longer than {MAX_RATIONALE} characters ({len(rationale)})")
    if "\x00" in rationale:
        return reject("rationale contains a NUL character")
    post = checked._replace(extra={k: v for k, v in checked.extra.items()
                                   if k not in GOLD_COLUMNS})
    return GoldRow(post, family, purpose, codebook.normalize(family, answers), rationale,
                   raw.file, raw.line, raw.raw)


def parse_answers(value: Any) -> dict[str, Any] | str:
    """The answers as an object, or why they are not one (a reject reason)."""
    if isinstance(value, Mapping):
        return dict(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        return f"missing answers (a JSON object as POST /labels takes it, e.g. {EXAMPLE_ANSWERS})"
    if not isinstance(value, str):
        return f"answers must be a JSON object, not {type(value).__name__}"
    try:
        parsed = json.loads(value, object_pairs_hook=_unique_keys,
                            parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return f"bad JSON in answers: {exc.msg} at column {exc.colno}"
    except ValueError as exc:
        return f"bad JSON in answers: {exc}"
    if not isinstance(parsed, dict):
        return f"answers must be a JSON object like {EXAMPLE_ANSWERS}"
    return parsed


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a question is given more than once")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def split_duplicates(rows: Sequence[GoldRow]) -> tuple[list[GoldRow], list[Reject]]:
    """Rows whose id appears once per family in the import, and rejects for every copy of the
    others (naming all lines); an id given for two families with different texts is rejected
    on all its lines too."""
    by_key: dict[tuple[str, str], list[GoldRow]] = defaultdict(list)
    for row in rows:
        by_key[(row.post.id, row.family)].append(row)
    rejects: list[Reject] = []
    single: list[GoldRow] = []
    for (post_id, family), group in by_key.items():
        if len(group) == 1:
            single.append(group[0])
            continue
        where = ", ".join(f"{r.file}:{r.line}" for r in group)
        rejects += [r.reject(f"duplicate id {post_id} for family {family} in this import "
                             f"(lines {where}): every copy rejected") for r in group]
    by_id: dict[str, list[GoldRow]] = defaultdict(list)
    for row in single:
        by_id[row.post.id].append(row)
    kept: list[GoldRow] = []
    for post_id, group in by_id.items():
        if len({r.post.text for r in group}) > 1:
            where = ", ".join(f"{r.file}:{r.line}" for r in group)
            rejects += [r.reject(f"id {post_id} has different texts in this import (lines "
                                 f"{where}): every copy rejected") for r in group]
        else:
            kept += group
    order = {id(row): i for i, row in enumerate(rows)}
    kept.sort(key=lambda row: order[id(row)])
    return kept, rejects


def in_campaign_reject(row: GoldRow, campaign: str) -> Reject:
    return row.reject(f"post {row.post.id} is already in campaign {campaign!r}: coders label "
                      "it for real, so it cannot be gold")


# ---- export ---------------------------------------------------------------------------------

def export_format(path: Path) -> str:
    """csv or jsonl, from the file name."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ValueError(f"{path}: export to .csv or .jsonl (got {suffix or 'no extension'})")


def export_record(gold: Mapping[str, Any]) -> dict[str, Any]:
    """One stored gold post as a file row with ``EXPORT_COLUMNS`` (what the import reads)."""
    created = gold.get("created_at")
    return {
        "id": gold["id"],
        "text": gold["text"],
        "family": gold["family"],
        "purpose": gold["purpose"],
        "answers": gold["answers"],
        "rationale": gold.get("rationale") or "",
        "keyword": gold.get("keyword"),
        "image_key": gold.get("image_key"),
        "author": gold.get("author"),
        "created_at": created.isoformat() if isinstance(created, datetime) else created,
    }


def write_export(handle: io.TextIOBase, fmt: str, golds: Iterable[Mapping[str, Any]]) -> int:
    """Write gold posts as CSV (answers as a JSON string) or JSONL; returns the row count."""
    count = 0
    if fmt == "csv":
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        for gold in golds:
            record = export_record(gold)
            record["answers"] = json.dumps(record["answers"], ensure_ascii=False)
            writer.writerow({k: "" if v is None else v for k, v in record.items()})
            count += 1
        return count
    for gold in golds:
        record = {k: v for k, v in export_record(gold).items() if v is not None}
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def short(text: str, width: int = 40) -> str:
    """A one-line preview of a post's text, for tables."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
