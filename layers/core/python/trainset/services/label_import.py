"""Importing prior labels: parse a file, check posts and coders, store new labels in one
transaction, and report what was stored, what was already there and what was rejected.

Imported labels are never live work: no task slot, no lease, kind 'imported'. Their coders
are coder rows made by the import and registered in ``source_coders``; this module never
mints or prints a token, and it never attaches a label to a coder that an import did not
make for the same source.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.corpus.label_import import (
    FileProblem,
    ImportedLabel,
    LabelReject,
    check_source,
    parse_file,
)
from trainset.errors import InvalidInput
from trainset.text import file_sha256

REJECT_COLUMNS = ("file", "line", "location", "reason", "post_id", "coder", "raw")
BATCH = 5_000


@dataclass
class LabelImportSummary:
    file: str
    format: str
    family: str
    source: str
    read: int = 0
    stored: int = 0
    already: int = 0
    rejected: Counter = field(default_factory=Counter)
    posts_created: int = 0
    coders_created: int = 0
    coders: list[str] = field(default_factory=list)
    import_id: int | None = None
    rejects_path: Path | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "format": self.format, "family": self.family,
                "source": self.source, "read": self.read, "stored": self.stored,
                "already": self.already, "rejected": dict(self.rejected),
                "posts_created": self.posts_created, "coders_created": self.coders_created}

    def lines(self) -> list[str]:
        out = [f"{self.file} ({self.format}, family {self.family}, source {self.source}): "
               f"{self.read} labels read, {self.stored} stored, {self.already} already there, "
               f"{self.rejected_total} rejected"]
        for reason, count in self.rejected.most_common():
            out.append(f"  rejected ({reason}): {count}")
        out.append(f"posts created from the file's text: {self.posts_created}; coders: "
                   f"{len(self.coders)} ({self.coders_created} new)")
        if self.rejects_path is not None:
            out.append(f"rejected labels, with file, line and reason: {self.rejects_path}")
        return out


def import_labels(
    store: Any,
    path: Path,
    *,
    family: str,
    source: str,
    fmt: str | None = None,
    rejects_path: Path | None = None,
    progress: Callable[[Path, int | None], Callable[[int], None]] | None = None,
) -> LabelImportSummary:
    """Import one file's labels for ``family`` from ``source``. Everything is stored in one
    transaction (an error stores nothing); a label already stored (same source, post, coder
    and answers) is counted, not stored again. Rejected labels go to ``rejects_path``."""
    try:
        codebook.family(family)
        check_source(source)
        parsed = parse_file(path, family, source, fmt)
    except (ValueError, FileProblem) as exc:
        raise InvalidInput(str(exc)) from None
    summary = LabelImportSummary(str(path), parsed.format, family, source, read=parsed.read)
    rejects: list[LabelReject] = list(parsed.rejects)
    with store.transaction():
        store.lock_source(source)
        source_id = store.ensure_source(source)
        labels = _with_known_coders(store, source_id, parsed.labels, rejects, path)
        labels = _with_posts(store, labels, rejects, summary, path)
        wanted = sorted({(lab.coder, lab.source_coder) for lab in labels})
        coder_ids, summary.coders_created = store.ensure_coders(source_id, wanted)
        summary.coders = [name for name, _ in wanted]
        stored = set()
        for start in range(0, len(labels), BATCH):
            stored |= store.existing_submissions(
                [lab.submission_id for lab in labels[start:start + BATCH]])
        new = [lab for lab in labels if lab.submission_id not in stored]
        summary.already = len(labels) - len(new)
        for r in rejects:
            summary.rejected[r.kind] += 1
        if new:
            summary.import_id = store.record_import(
                source_id, family, parsed.format, str(path.resolve()), file_sha256(path),
                {**summary.as_dict(), "stored": len(new)})
        advance = progress(path, len(new)) if progress and new else (lambda n: None)
        for start in range(0, len(new), BATCH):
            chunk = new[start:start + BATCH]
            summary.stored += store.insert_labels(summary.import_id, family, [
                {"submission_id": lab.submission_id, "post_id": lab.post_id,
                 "coder_id": coder_ids[lab.coder], "answers": lab.answers,
                 "location": lab.location, "seconds_spent": lab.seconds_spent}
                for lab in chunk])
            advance(len(chunk))
    summary.rejects_path = _write_rejects(rejects_path, rejects)
    return summary


def _with_known_coders(store: Any, source_id: int, labels: list[ImportedLabel],
                       rejects: list[LabelReject], path: Path) -> list[ImportedLabel]:
    """Labels whose coder name is free or already this source's; others are rejected."""
    taken = store.coder_names_taken(source_id, sorted({lab.coder for lab in labels}))
    kept = []
    for lab in labels:
        if lab.coder in taken:
            rejects.append(_reject(path, lab, "coder name taken",
                                   f"coder name {lab.coder} belongs to a coder who is not "
                                   "from this source; import with another --source"))
        else:
            kept.append(lab)
    return kept


def _with_posts(store: Any, labels: list[ImportedLabel], rejects: list[LabelReject],
                summary: LabelImportSummary, path: Path) -> list[ImportedLabel]:
    """Labels whose post exists or is created from the row's text; others are rejected."""
    existing = store.existing_posts(sorted({lab.post_id for lab in labels}))
    to_create: dict[str, Any] = {}
    for lab in labels:
        if lab.post_id not in existing and lab.post is not None:
            to_create.setdefault(lab.post_id, lab.post)
    summary.posts_created = store.insert_missing_posts(list(to_create.values()))
    kept = []
    for lab in labels:
        if lab.post_id in existing or lab.post_id in to_create:
            kept.append(lab)
        elif lab.post_problem:
            rejects.append(_reject(path, lab, "post not in the corpus",
                                   f"post {lab.post_id} is not in the corpus and its text "
                                   f"cannot make one ({lab.post_problem})"))
        else:
            rejects.append(_reject(path, lab, "post not in the corpus",
                                   f"post {lab.post_id} is not in the corpus; import it first"))
    return kept


def _reject(path: Path, lab: ImportedLabel, kind: str, reason: str) -> LabelReject:
    return LabelReject(str(path), lab.line, lab.location, kind, reason, lab.post_id, lab.coder)



def _write_rejects(path: Path | None, rejects: list[LabelReject]) -> Path | None:
    """The rejects CSV (only when there are rejects), in file order."""
    if path is None or not rejects:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REJECT_COLUMNS)
        for r in sorted(rejects, key=lambda r: r.line):
            writer.writerow((r.file, r.line, r.location, r.reason, r.post_id or "",
                             r.coder or "", r.raw))
    return path
