"""Coder reports: per coder and day, how much, how fast, how often unsure or "no", how right
on gold, how close to consensus, and a sample of labels to look at. Rendered as an HTML page
with charts (inline SVG, no external assets) and as an Excel workbook, one sheet per view."""

from __future__ import annotations

import html
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from trainset import codebook
from trainset.quality.goldscore import binary_items

SAMPLE_PER_CODER = 10

VIEWS = {
    "coders": "Summary per coder",
    "daily": "Per coder per day",
    "gold_trend": "Gold accuracy per week",
    "gold_by_option": "Gold accuracy per option: right on positive gold vs negative gold",
    "consensus_agreement": "Agreement with consensus",
    "samples": "Random labels to review",
}


def build(labels: Sequence[Mapping[str, Any]], gold_rows: Iterable[Mapping[str, Any]],
          consensus: Mapping[tuple[str, str], bool], seed: str = "",
          option_rows: Iterable[Mapping[str, Any]] = ()) -> dict[str, list[dict]]:
    """All views from current labels (of any family), weekly gold rows, gold rows over the
    whole period (``option_rows``, for the per-option table) and consensus values keyed by
    (post_id, item)."""
    # A coder's daily count is what the page and the manager table show: every first label
    # of real work, QA gold included (a coder cannot tell gold apart, so counts may not either).
    counted = [lab for lab in labels if lab["kind"] in ("task", "qa")]
    daily: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for lab in counted:
        daily[(lab["coder"], _labeled_on(lab).isoformat())].append(lab)
    daily_rows = [_activity({"coder": coder, "day": day}, labs)
                  for (coder, day), labs in sorted(daily.items())]

    by_coder: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for lab in counted:
        by_coder[lab["coder"]].append(lab)
    agree_rows = []
    for coder, labs in sorted(by_coder.items()):
        same = total = 0
        for lab in labs:
            for item, value in binary_items(lab["family"], lab["answers"]).items():
                key = (lab["post_id"], item)
                if key in consensus:
                    total += 1
                    same += consensus[key] == value
        agree_rows.append({"coder": coder, "items_compared": total,
                           "agreement_pct": None if not total else round(100 * same / total, 1)})

    trend = [{"coder": r["coder"], "family": r["family"], "week": r["period"],
              "gold_items": r["n"], "correct_pct": _round(r["correct_pct"]),
              "ci_low": _round(r["ci"][0]) if r["ci"] else None,
              "ci_high": _round(r["ci"][1]) if r["ci"] else None}
             for r in gold_rows if r["label"] == "(all)"]

    samples = []
    for coder, labs in sorted(by_coder.items()):
        rng = random.Random(f"{seed}:{coder}")
        for lab in rng.sample(labs, min(SAMPLE_PER_CODER, len(labs))):
            samples.append({"coder": coder, "family": lab["family"], "post_id": lab["post_id"],
                            "labeled_at": lab["created_at"].isoformat(timespec="seconds"),
                            "answers": _answer_text(lab["answers"])})

    coders = []
    agreement_of = {r["coder"]: r["agreement_pct"] for r in agree_rows}
    latest_gold: dict[str, Any] = {}
    for r in sorted(trend, key=lambda r: r["week"]):
        latest_gold[r["coder"]] = r["correct_pct"]
    for coder, labs in sorted(by_coder.items()):
        row = _activity({"coder": coder}, labs)
        row["days_active"] = len({_labeled_on(lab) for lab in labs})
        row["latest_gold_pct"] = latest_gold.get(coder)
        row["agreement_with_consensus_pct"] = agreement_of.get(coder)
        coders.append(row)
    return {"coders": coders, "daily": daily_rows, "gold_trend": trend,
            "gold_by_option": gold_by_option(option_rows),
            "consensus_agreement": agree_rows, "samples": samples}


def gold_by_option(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The study's QA layout: per family, option and coder, percent right on negative gold
    (the option absent) and positive gold (present) with counts; Wilson 95% bounds after."""
    out = []
    for r in sorted((r for r in rows if r["label"] != "(all)"),
                    key=lambda r: (r["family"], r["label"], r["coder"])):
        neg, pos = r["neg_gold_ci"] or [None, None], r["pos_gold_ci"] or [None, None]
        out.append({"family": r["family"], "label": r["label"], "coder": r["coder"],
                    "neg_gold_correct_pct": _round(r["neg_gold_correct_pct"]),
                    "neg_gold_n": r["neg_gold_n"],
                    "pos_gold_correct_pct": _round(r["pos_gold_correct_pct"]),
                    "pos_gold_n": r["pos_gold_n"],
                    "neg_ci_low": _round(neg[0]), "neg_ci_high": _round(neg[1]),
                    "pos_ci_low": _round(pos[0]), "pos_ci_high": _round(pos[1])})
    return out


def _labeled_on(lab: Mapping[str, Any]) -> Any:
    """The UTC day a post was first labeled: the day it counts for, as in the coder's own
    counter and the manager's table (a revision on a later day does not move it)."""
    first = lab.get("first_labeled_at") or lab["created_at"]
    return first.astimezone(UTC).date() if first.tzinfo else first.date()


def _activity(row: dict[str, Any], labs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    seconds = [lab["seconds_spent"] for lab in labs if lab["seconds_spent"] is not None]
    n = len(labs)
    row.update({
        "labels": n,
        "median_seconds": _round(statistics.median(seconds)) if seconds else None,
        "unsure_pct": _round(100 * sum(codebook.is_unsure(lab["family"], lab["answers"])
                                       for lab in labs) / n),
        "no_pct": _round(100 * sum(codebook.says_no(lab["family"], lab["answers"])
                                   for lab in labs) / n),
    })
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _answer_text(answers: Mapping[str, Any]) -> str:
    parts = []
    for key, value in answers.items():
        if isinstance(value, bool):
            parts.append(f"{key}: {'yes' if value else 'no'}")
        else:
            parts.append(f"{key}: {'; '.join(value) or '-'}")
    return " | ".join(parts)


# ---- rendering ---------------------------------------------------------------------------------

EXPLANATIONS = {
    "labels": "posts labeled for the first time in the period, on the day of the first label "
              "(revisions, practice and gold checks not counted)",
    "median_seconds": "median seconds from seeing a post to submitting its label",
    "unsure_pct": "percent of labels with an 'unsure' option picked",
    "no_pct": "percent of labels answering the family's first question with no",
    "latest_gold_pct": "percent right on gold items in the coder's latest week with gold",
    "agreement_with_consensus_pct": "percent of the coder's answers (each yes/no question and "
    "each option) equal to the consensus of the latest quality run",
    "correct_pct": "percent right on gold items that week (95% Wilson interval beside)",
    "neg_gold_correct_pct": "per option, over the whole period: percent right on gold posts "
    "without the option (it was left out); neg_gold_n counts them",
    "pos_gold_correct_pct": "per option, over the whole period: percent right on gold posts "
    "with the option (it was picked); pos_gold_n counts them. A question not asked counts as "
    "all its options absent",
}


def write_html(report: Mapping[str, list[dict]], path: Path, title: str) -> None:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font:15px/1.45 system-ui,sans-serif;margin:2rem;color:#1a1a1a}",
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
        "th,td{border:1px solid #c9ced6;padding:.25rem .5rem;text-align:left}"
        "th{background:#f2f4f7}caption{text-align:left;font-weight:600;margin:.25rem 0}",
        "dt{font-weight:600}dd{margin:0 0 .4rem}svg text{font:11px sans-serif}",
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<h2>What the numbers mean</h2><dl>",
    ]
    parts += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
              for k, v in EXPLANATIONS.items()]
    parts.append("</dl>")
    parts.append("<h2>Labels per coder</h2>")
    parts.append(_bar_chart([(r["coder"], r["labels"]) for r in report["coders"]], "labels"))
    parts.append("<h2>Gold accuracy per week</h2>")
    parts.append(_line_chart(report["gold_trend"]))
    for key, caption in VIEWS.items():
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(_table(report[key]))
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>No data in this period.</p>"
    columns = list(rows[0])
    head = "".join(f"<th scope='col'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>"
                         for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _bar_chart(values: Sequence[tuple[str, float]], unit: str) -> str:
    if not values:
        return "<p>No data in this period.</p>"
    top = max(v for _, v in values) or 1
    height = 22 * len(values) + 10
    bars = []
    for i, (name, value) in enumerate(values):
        width = 380 * value / top
        y = 5 + 22 * i
        bars.append(f"<text x='0' y='{y + 14}'>{html.escape(name)}</text>"
                    f"<rect x='150' y='{y}' width='{width:.1f}' height='16' fill='#0b57d0'/>"
                    f"<text x='{155 + width:.1f}' y='{y + 13}'>{value:g} {unit}</text>")
    return (f"<svg role='img' aria-label='{unit} per coder' width='640' height='{height}'>"
            + "".join(bars) + "</svg>")


def _line_chart(trend: Sequence[Mapping[str, Any]]) -> str:
    points = [r for r in trend if r["correct_pct"] is not None]
    if not points:
        return "<p>No gold answers in this period.</p>"
    weeks = sorted({r["week"] for r in points})
    coders = sorted({r["coder"] for r in points})
    width, height, left = 640, 220, 40
    step = (width - left - 20) / max(len(weeks) - 1, 1)
    colours = ["#0b57d0", "#a40000", "#0a6b2d", "#7a4b00", "#6b2d8f", "#006d75"]
    lines = [f"<line x1='{left}' y1='10' x2='{left}' y2='{height - 30}' stroke='#888'/>",
             f"<text x='0' y='14'>100%</text><text x='8' y='{height - 30}'>0%</text>"]
    for i, coder in enumerate(coders):
        colour = colours[i % len(colours)]
        series = [(weeks.index(r["week"]), r["correct_pct"]) for r in points
                  if r["coder"] == coder]
        coords = " ".join(f"{left + x * step:.1f},{10 + (height - 40) * (1 - y / 100):.1f}"
                          for x, y in sorted(series))
        lines.append(f"<polyline points='{coords}' fill='none' stroke='{colour}' "
                     "stroke-width='2'/>")
        lines.append(f"<text x='{left + 10 + 90 * (i % 6)}' y='{height - 5 - 12 * (i // 6)}' "
                     f"fill='{colour}'>{html.escape(coder)}</text>")
    for i, week in enumerate(weeks):
        lines.append(f"<text x='{left + i * step - 20:.1f}' y='{height - 18}'>{week}</text>")
    return (f"<svg role='img' aria-label='gold accuracy per week' width='{width}' "
            f"height='{height + 12 * (len(coders) // 6)}'>" + "".join(lines) + "</svg>")


def write_xlsx(report: Mapping[str, list[dict]], path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    book.remove(book.active)
    for key, caption in VIEWS.items():
        sheet = book.create_sheet(key[:31])
        rows = report[key]
        sheet.append([caption])
        sheet["A1"].font = Font(bold=True)
        if not rows:
            sheet.append(["No data in this period."])
            continue
        columns = list(rows[0])
        sheet.append(columns)
        for cell in sheet[2]:
            cell.font = Font(bold=True)
        for r in rows:
            sheet.append([r[c] for c in columns])
        for column in sheet.columns:
            width = max(len(str(c.value or "")) for c in column[1:])
            sheet.column_dimensions[column[0].column_letter].width = min(60, width + 2)
    notes = book.create_sheet("notes")
    for k, v in EXPLANATIONS.items():
        notes.append([k, v])
    book.save(path)
