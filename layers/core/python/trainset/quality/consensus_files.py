"""The consensus file interface, for analysis outside the database.

``labels.csv``: ``post_id,coder_id,field,value`` (``true``/``false`` for yes/no fields, a JSON
list of option strings for multi-select fields); ``gold.csv``: ``post_id,field,value``. The
output has ``post_id,field,option,value,confidence,n_labels``: ``option`` is empty for yes/no
fields, and each multi-select field gives one row per option.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from trainset import codebook
from trainset.quality.consensus import BinaryLabel, ConsensusResult, dawid_skene

OUTPUT_COLUMNS = ("post_id", "field", "option", "value", "confidence", "n_labels")


class FileError(ValueError):
    """A problem in an input file, naming the file and line."""


def _questions() -> dict[str, codebook.Question]:
    return {q.name: q for fam in codebook.FAMILIES.values() for q in fam.questions}


def _items(path: Path, line: int, field: str, raw: str) -> list[tuple[str, bool]]:
    """The binary items one answer stands for."""
    question = _questions().get(field)
    if question is None:
        raise FileError(f"{path}, line {line}: unknown field {field!r}")
    text = raw.strip()
    if question.kind == "yes_no":
        if text.lower() not in ("true", "false"):
            raise FileError(f"{path}, line {line}: {field} must be true or false, got {raw!r}")
        return [(field, text.lower() == "true")]
    try:
        chosen = json.loads(text)
    except json.JSONDecodeError:
        raise FileError(f"{path}, line {line}: {field} must be a JSON list of options, "
                        f"got {raw!r}") from None
    if not isinstance(chosen, list):
        raise FileError(f"{path}, line {line}: {field} must be a JSON list of options")
    chosen = [codebook.canonical_option(field, str(c)) for c in chosen]
    unknown = [c for c in chosen if c not in question.values]
    if unknown:
        raise FileError(f"{path}, line {line}: not an option of {field}: "
                        + ", ".join(repr(u) for u in unknown))
    return [(f"{field}={v}", v in chosen) for v in question.values]


def _rows(path: Path, required: tuple[str, ...]):
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise FileError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise FileError(f"{path}: missing column(s) {', '.join(missing)} "
                            f"(expected {','.join(required)})")
        for row in reader:
            yield reader.line_num, row


def read_labels(path: Path) -> list[BinaryLabel]:
    labels = []
    for line, row in _rows(path, ("post_id", "coder_id", "field", "value")):
        for item, value in _items(path, line, row["field"], row["value"]):
            labels.append(BinaryLabel(row["post_id"], item, row["coder_id"], value))
    return labels


def read_gold(path: Path) -> dict[tuple[str, str], bool]:
    gold = {}
    for line, row in _rows(path, ("post_id", "field", "value")):
        for item, value in _items(path, line, row["field"], row["value"]):
            gold[(row["post_id"], item)] = value
    return gold


def write_consensus(result: ConsensusResult, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(OUTPUT_COLUMNS)
        for i in sorted(result.items, key=lambda i: (i.post_id, i.item)):
            field, _, option = i.item.partition("=")
            writer.writerow((i.post_id, field, option, "true" if i.value else "false",
                             f"{i.confidence:.4f}", i.n_labels))
    return len(result.items)


def run(labels_path: Path, gold_path: Path | None, out_path: Path) -> ConsensusResult:
    labels = read_labels(labels_path)
    gold = read_gold(gold_path) if gold_path else {}
    result = dawid_skene(labels, gold)
    write_consensus(result, out_path)
    return result
