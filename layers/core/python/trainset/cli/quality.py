"""Commands for label quality: ``quality run``, ``consensus``, ``report``, ``export labels``."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from trainset.cli import _say
from trainset.codebook import FAMILY_NAMES
from trainset.errors import InvalidInput
from trainset.quality import EM_MAX_ITERATIONS


def _store(conn: Any) -> Any:
    from trainset.store.quality import QualityStore

    return QualityStore(conn)


def cmd_quality_run(args: argparse.Namespace) -> int:
    from trainset.cli import _connection
    from trainset.services.quality import ScreeningRules, run_quality
    from trainset.store.migrations import migrate

    rules = ScreeningRules(
        min_gold_accuracy=None if args.min_gold_accuracy < 0 else args.min_gold_accuracy,
        min_gold_answers=args.min_gold_answers,
        question_min_accuracy=_question_thresholds(args.family, args.question_min_accuracy),
        em_max_iterations=args.em_max_iterations,
        require_certified=not args.allow_uncertified,
        min_confidence=args.min_confidence,
        relabel=not args.no_relabel,
        max_labels_per_post=args.max_labels_per_post,
    )
    with _connection() as conn:
        migrate(conn)
        summary = run_quality(_store(conn), args.family, rules)
    _say(f"quality run {summary['run_id']} ({args.family}): {summary['labels']} labels, "
         f"{summary['labels_used']} used for consensus over {summary['posts']} posts")
    _say("screening:")
    for step in summary["screening"]:
        _say(f"  {step['step']}: {step['removed']} removed - {step['why']}")
        for v in step.get("verdicts", []):
            if v["verdict"] == "dropped":
                _say(f"    {v['coder']} / {v['question']}: {v['accuracy_pct']:g}% of "
                     f"{v['gold_answers']} gold, lower bound {v['wilson_low_pct']:g}% < "
                     f"{v['threshold_pct']:g}%: answers dropped")
    if summary.get("em_converged") is False:
        _say(f"WARNING: the consensus model (EM) stopped at its cap of "
             f"{summary['em_iterations']} iterations without converging")
    else:
        _say(f"consensus model: converged in {summary['em_iterations']} EM iterations")
    _say(f"kept {summary['posts_kept']} of {summary['posts']} posts; re-labeling requested for "
         f"{summary['relabel_requested']}")
    _say("agreement:")
    for question, a in summary["agreement"].items():
        alpha = "n/a" if a["alpha"] is None else f"{a['alpha']:.3f}"
        agree = ("n/a" if a["percent_agreement"] is None
                 else f"{100 * a['percent_agreement']:.0f}%")
        _say(f"  {question}: alpha {alpha}, full agreement {agree} "
             f"({a['posts_with_2_or_more']} posts with 2+ coders)")
    return 0


def _question_thresholds(family: str, given: list[str] | None) -> dict[str, float]:
    """``QUESTION=PERCENT`` options as a mapping, checked against the family's questions."""
    from trainset import codebook

    names = [q.name for q in codebook.family(family).questions]
    out: dict[str, float] = {}
    for text in given or []:
        name, sep, value = text.partition("=")
        try:
            percent = float(value)
        except ValueError:
            percent = -1.0
        if not sep or name not in names or not 0 <= percent <= 100:
            raise InvalidInput(f"--question-min-accuracy takes QUESTION=PERCENT with a question "
                               f"of {family} ({', '.join(names)}) and 0-100; got {text!r}")
        out[name] = percent
    return out


def cmd_consensus(args: argparse.Namespace) -> int:
    from trainset.quality.consensus_files import FileError, run

    try:
        result = run(Path(args.labels), Path(args.gold) if args.gold else None, Path(args.out))
    except FileError as exc:
        raise InvalidInput(str(exc)) from None
    posts = len({i.post_id for i in result.items})
    _say(f"consensus for {posts} posts ({len(result.items)} rows) written to {args.out}; "
         f"{len({r.coder for r in result.coders})} coders, {result.iterations} EM iterations")
    return 0


def _day(text: str | None, default: date) -> datetime:
    try:
        day = date.fromisoformat(text) if text else default
    except ValueError:
        raise InvalidInput(f"dates are YYYY-MM-DD, got {text!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def cmd_report(args: argparse.Namespace) -> int:
    from trainset.cli import _connection
    from trainset.quality import reporting
    from trainset.services.quality import coder_report

    today = datetime.now(UTC).date()
    start = _day(args.date_from, today - timedelta(days=27))
    end = _day(args.date_to, today) + timedelta(days=1)  # inclusive of the --to day
    if end <= start:
        raise InvalidInput("--to must not be before --from")
    with _connection() as conn:
        report = coder_report(_store(conn), start, end, args.family)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    title = (f"trainset coder report, {start.date()} to {(end - timedelta(days=1)).date()}"
             + (f", {args.family}" if args.family else ""))
    reporting.write_html(report, out / "coder_report.html", title)
    reporting.write_xlsx(report, out / "coder_report.xlsx")
    _say(f"{len(report['coders'])} coders, {sum(r['labels'] for r in report['coders'])} labels")
    _say(f"written: {out / 'coder_report.html'} and {out / 'coder_report.xlsx'}")
    return 0


def cmd_export_labels(args: argparse.Namespace) -> int:
    from trainset.cli import _connection
    from trainset.services.quality import export_labels

    with _connection() as conn:
        result = export_labels(_store(conn), args.family, args.out)
    _say(f"{result['records']} records exported:")
    for path in result["paths"].values():
        _say(f"  {path}")
    return 0


def register(sub: Any) -> None:
    quality = sub.add_parser("quality", help="gold scoring, consensus and screening")
    q_sub = quality.add_subparsers(dest="quality_command", required=True, metavar="ACTION")
    run = q_sub.add_parser(
        "run", help="score gold, find consensus, screen, and queue re-labels",
        description="Scores coders on gold posts, drops labels from uncertified coders and, "
        "per question, the answers of coders weak on it, "
        "finds each post's consensus with its confidence (Dawid-Skene with gold as known "
        "truths), screens out posts below the confidence threshold and sends them back for "
        "one more coder. Each step reports what it removed and why; the run is kept.")
    run.add_argument("--family", required=True, choices=FAMILY_NAMES)
    run.add_argument("--min-confidence", type=float, default=0.8,
                     help="a post's least certain answer must reach this (default %(default)s)")
    run.add_argument("--min-gold-accuracy", type=float, default=55.0,
                     help="per question, drop a coder's answers when the 95%% Wilson lower "
                     "bound of their gold accuracy on it is below this percent; -1 keeps all "
                     "(default %(default)s)")
    run.add_argument("--min-gold-answers", type=int, default=10,
                     help="gold answers to a question before a coder is judged on it "
                     "(default %(default)s)")
    run.add_argument("--question-min-accuracy", action="append", metavar="QUESTION=PERCENT",
                     help="a threshold for one question (repeatable), e.g. age=65")
    run.add_argument("--em-max-iterations", type=int, default=EM_MAX_ITERATIONS,
                     help="cap on the consensus model's EM iterations; reaching it is "
                     "reported (default %(default)s)")
    run.add_argument("--allow-uncertified", action="store_true",
                     help="keep labels made while the coder was not certified")
    run.add_argument("--no-relabel", action="store_true",
                     help="do not send weak posts back to the queue")
    run.add_argument("--max-labels-per-post", type=int, default=3,
                     help="re-label a post until it has this many slots (default %(default)s)")
    run.set_defaults(func=cmd_quality_run)

    cons = sub.add_parser(
        "consensus", help="consensus from label files (no database)",
        description="labels.csv: post_id,coder_id,field,value (true/false, or a JSON list of "
        "options); gold.csv: post_id,field,value. Writes post_id,field,option,value,"
        "confidence,n_labels.")
    cons.add_argument("--labels", required=True)
    cons.add_argument("--gold")
    cons.add_argument("--out", required=True)
    cons.set_defaults(func=cmd_consensus)

    report = sub.add_parser("report", help="coder reports as HTML and Excel")
    report.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD "
                        "(default: 4 weeks ago)")
    report.add_argument("--to", dest="date_to", help="last day, YYYY-MM-DD (default: today)")
    report.add_argument("--family", choices=FAMILY_NAMES, help="one family only")
    report.add_argument("--out", required=True, help="folder for the report files")
    report.set_defaults(func=cmd_report)

    export = sub.add_parser("export", help="export datasets")
    e_sub = export.add_subparsers(dest="export_command", required=True, metavar="WHAT")
    labels = e_sub.add_parser(
        "labels", help="the screened consensus labels as CSV and Parquet, with a data card")
    labels.add_argument("--family", required=True, choices=FAMILY_NAMES)
    labels.add_argument("--out", required=True, help="folder for the files")
    labels.set_defaults(func=cmd_export_labels)
