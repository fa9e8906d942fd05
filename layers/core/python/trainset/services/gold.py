"""Loading your own gold and practice sets, listing and exporting them; used by the CLI and API.

Rows are read and checked first (``trainset.corpus.goldsets``); then, in one transaction, rows about
posts already in a campaign are rejected, new posts are created and gold rows are inserted or
updated. A failure leaves nothing half-written; a rejected row never stops the good ones.
"""

from __future__ import annotations

import csv
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.corpus import goldsets
from trainset.corpus.goldsets import GoldRow
from trainset.corpus.ingest import DEFAULT_MAX_TEXT, FileProblem, Reject
from trainset.errors import InvalidInput

REJECT_COLUMNS = ("file", "line", "reason", "id", "raw")
API_REJECTS_SHOWN = 20


@dataclass
class GoldImportSummary:
    purpose: str
    files: int = 0
    rows_read: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    posts_created: int = 0
    rejects: list[Reject] = field(default_factory=list)
    rejects_path: Path | None = None

    @property
    def accepted(self) -> int:
        return self.new + self.updated + self.unchanged

    def lines(self) -> list[str]:
        out = [f"gold ({self.purpose}): {self.rows_read} rows read from {self.files} file(s): "
               f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
               f"{len(self.rejects)} rejected; {self.posts_created} post(s) added to the corpus"]
        kinds = Counter(_kind(r.reason) for r in self.rejects)
        out += [f"  rejected ({kind}): {n}" for kind, n in kinds.most_common()]
        if self.rejects_path is not None:
            out.append(f"rejected rows, with file, line and reason: {self.rejects_path}")
        return out

    def as_dict(self, shown: int = API_REJECTS_SHOWN) -> dict[str, Any]:
        """The API's answer: counts and the first ``shown`` rejects."""
        return {
            "purpose": self.purpose, "rows": self.rows_read, "new": self.new,
            "updated": self.updated, "unchanged": self.unchanged,
            "posts_created": self.posts_created, "rejected": len(self.rejects),
            "rejects": [{"line": r.line, "id": r.id, "reason": r.reason}
                        for r in self.rejects[:shown]],
        }


def _kind(reason: str) -> str:
    for stop in (":", " (", " at ", " for family"):
        reason = reason.split(stop, 1)[0]
    return reason.strip()


def import_gold(
    store: Any,
    paths: Iterable[Path],
    *,
    purpose: str,
    rejects_path: Path | None = None,
    max_text: int = DEFAULT_MAX_TEXT,
    progress: Callable[[Path, int | None], Callable[[int], None]] | None = None,
) -> GoldImportSummary:
    """Import gold rows of ``purpose`` from every file, in one transaction. A file that cannot
    be read (missing, unknown type, no answers column) stops the import before anything is
    stored (``InvalidInput`` naming the file); rejected rows go to ``rejects_path``."""
    try:
        goldsets.require_purpose(purpose)
    except ValueError as exc:
        raise InvalidInput(str(exc), [{"field": "purpose", "message": str(exc)}]) from None
    summary = GoldImportSummary(purpose)
    checked: list[GoldRow] = []
    order: dict[str, int] = {}
    for path in paths:
        order[str(path)] = len(order)
        summary.files += 1
        advance = progress(path, _count_rows(path)) if progress else (lambda n: None)
        try:
            if not path.is_file():
                raise FileProblem(f"{path}: no such file")
            for row in goldsets.read_gold_file(path, purpose, max_text):
                summary.rows_read += 1
                advance(1)
                if isinstance(row, Reject):
                    summary.rejects.append(row)
                else:
                    checked.append(row)
        except FileProblem as problem:
            raise InvalidInput(f"{problem}; nothing was imported") from None
    kept, duplicates = goldsets.split_duplicates(checked)
    summary.rejects += duplicates
    with store.transaction():
        in_campaigns = store.campaigns_of_posts(sorted({r.post.id for r in kept}))
        stored = [r for r in kept if r.post.id not in in_campaigns]
        summary.rejects += [goldsets.in_campaign_reject(r, in_campaigns[r.post.id])
                            for r in kept if r.post.id in in_campaigns]
        posts = list({r.post.id: r.post for r in stored}.values())
        created, changed = store.upsert_gold_posts(posts)
        inserted, updated = store.upsert_gold_rows(
            [(r.post.id, r.family, r.purpose, r.answers, r.rationale) for r in stored])
    for row in stored:
        key = (row.post.id, row.family)
        if key in inserted:
            summary.new += 1
        elif key in updated or row.post.id in changed:
            summary.updated += 1
        else:
            summary.unchanged += 1
    summary.posts_created = len(created)
    summary.rejects.sort(key=lambda r: (order.get(r.file, len(order)), r.line))
    if rejects_path is not None and summary.rejects:
        summary.rejects_path = write_rejects(rejects_path, summary.rejects)
    return summary


def import_gold_text(store: Any, content: str, fmt: str, purpose: str) -> GoldImportSummary:
    """The API's import: ``content`` is a whole CSV or JSONL file. Refused with every reject
    (and nothing stored) when it cannot be read or not one row can be imported; else the good
    rows are stored and the rejects returned. Rejects name the file ``content``."""
    if fmt not in ("csv", "jsonl"):
        raise InvalidInput("format must be csv or jsonl",
                           [{"field": "format", "message": "must be csv or jsonl"}])
    with tempfile.TemporaryDirectory(prefix="trainset-gold-") as folder:
        path = Path(folder) / f"content.{fmt}"
        path.write_text(content, encoding="utf-8", newline="")
        try:
            summary = import_gold(store, [path], purpose=purpose)
        except InvalidInput as exc:
            message = exc.message.replace(str(path), "content")
            raise InvalidInput(message, [{"field": "content", "path": "body.content",
                                          "message": message}]) from None
    summary.rejects = [replace(r, file="content", reason=r.reason.replace(str(path), "content"))
                       for r in summary.rejects]
    if summary.accepted == 0:  # no row was stored: the transaction wrote nothing
        what = f"{len(summary.rejects)} rejected" if summary.rejects else "it has no rows"
        raise InvalidInput(
            f"no row of the content can be imported ({what}); nothing was changed",
            [{"field": f"content line {r.line}", "path": "body.content", "message": r.reason}
             for r in summary.rejects] or [{"field": "content", "path": "body.content",
                                            "message": "no rows"}])
    return summary


def write_rejects(path: Path, rejects: Iterable[Reject]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REJECT_COLUMNS)
        for r in rejects:
            raw = r.raw.encode("utf-8", errors="replace").decode("utf-8")
            writer.writerow((r.file, r.line, r.reason, r.id or "", raw))
    return path


def _count_rows(path: Path) -> int | None:
    from trainset.services.ingest import count_rows

    return count_rows(path)


# ---- listing and exporting -----------------------------------------------------------------

def list_gold(store: Any, family: str | None = None,
              purpose: str | None = None) -> list[dict[str, Any]]:
    _check_filters(family, purpose)
    return store.gold_all(family, purpose)


def gold_page(store: Any, family: str | None, purpose: str | None, limit: int = 50,
              before: str | None = None) -> dict[str, Any]:
    """One page of gold posts for the API; ``next_before`` continues it."""
    _check_filters(family, purpose)
    cursor = None
    if before:
        fam, _, post_id = before.partition(":")
        if fam not in codebook.FAMILY_NAMES or not post_id:
            raise InvalidInput("bad before", [{"field": "before", "message":
                                               "use next_before of the last page"}])
        cursor = (fam, post_id)
    rows = store.gold_page(family, purpose, limit, cursor)
    items = [{
        "post_id": r["id"], "family": r["family"], "purpose": r["purpose"],
        "text": r["text"], "answers": r["answers"], "rationale": r["rationale"],
        "keyword": r["keyword"], "image_key": r["image_key"],
        "added_at": r["gold_created_at"].isoformat() if r["gold_created_at"] else None,
    } for r in rows]
    last = rows[-1] if len(rows) == limit else None
    return {"items": items, "next_before": f"{last['family']}:{last['id']}" if last else None}


def export_gold(store: Any, out: Path, family: str | None = None,
                purpose: str | None = None) -> int:
    """Write gold posts to ``out`` (.csv or .jsonl) in the import's columns; returns the count."""
    try:
        fmt = goldsets.export_format(out)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    rows = list_gold(store, family, purpose)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        return goldsets.write_export(handle, fmt, rows)


def _check_filters(family: str | None, purpose: str | None) -> None:
    if family is not None and family not in codebook.FAMILY_NAMES:
        raise InvalidInput(f"unknown family {family!r}",
                           [{"field": "family", "message":
                             f"must be one of: {', '.join(codebook.FAMILY_NAMES)}"}])
    if purpose is not None and purpose not in goldsets.PURPOSES:
        raise InvalidInput(f"unknown purpose {purpose!r}",
                           [{"field": "purpose", "message": "must be practice or qa"}])


# ---- what managers see ---------------------------------------------------------------------

def practice_overview(store: Any) -> tuple[dict[str, dict[str, int]], dict[int, list[str]]]:
    """Gold posts per family and purpose, and per trainee the families whose practice posts
    they have all answered (they need more practice posts, or certification)."""
    counts = {f: {"practice": 0, "qa": 0} for f in codebook.FAMILY_NAMES}
    for family, purpose, n in store.gold_counts():
        counts.setdefault(family, {"practice": 0, "qa": 0})[purpose] = n
    done: dict[int, list[str]] = {}
    for coder_id, family in store.trainees_out_of_practice():
        done.setdefault(coder_id, []).append(family)
    return counts, done


def with_practice_overview(progress: Mapping[str, Any], store: Any) -> dict[str, Any]:
    """``GET /progress`` with gold counts per family and each coder's ``practice_done``."""
    counts, done = practice_overview(store)
    return {**progress, "gold": counts,
            "coders": [{**c, "practice_done": done.get(c["id"], [])}
                       for c in progress["coders"]]}
