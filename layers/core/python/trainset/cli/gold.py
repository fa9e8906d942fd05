"""Commands for your own gold and practice sets: ``gold import``, ``gold list``, ``gold export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from trainset.cli import _say, positive_int
from trainset.codebook import FAMILY_NAMES
from trainset.corpus.goldsets import PURPOSES, short
from trainset.corpus.ingest import DEFAULT_MAX_TEXT


def cmd_gold_import(args: argparse.Namespace) -> int:
    from trainset.cli import _connection, _open_bars, _progress_bar
    from trainset.services.gold import import_gold
    from trainset.store.corpus import CorpusStore
    from trainset.store.migrations import migrate

    with _connection() as conn:
        migrate(conn)
        try:
            summary = import_gold(CorpusStore(conn), [Path(f) for f in args.files],
                                  purpose=args.purpose, rejects_path=Path(args.rejects),
                                  max_text=args.max_text, progress=_progress_bar)
        finally:
            while _open_bars:
                _open_bars.pop().close()
    for line in summary.lines():
        _say(line)
    return 0


def _gold_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    from trainset.cli import _connection
    from trainset.services.gold import list_gold
    from trainset.store.corpus import CorpusStore

    with _connection() as conn:
        return list_gold(CorpusStore(conn), args.family, args.purpose)


def cmd_gold_list(args: argparse.Namespace) -> int:
    from trainset.cli import _table

    rows = _gold_rows(args)
    if not rows:
        _say("no gold posts yet; add some with: python -m trainset gold import FILE "
             "--purpose practice|qa")
        return 0
    table = [{"post id": r["id"], "family": r["family"], "purpose": r["purpose"],
              "text": short(r["text"]),
              "answers": json.dumps(r["answers"], ensure_ascii=False)} for r in rows]
    for line in _table(table, list(table[0])):
        _say(line)
    _say(f"{len(rows)} gold post(s)")
    return 0


def cmd_gold_export(args: argparse.Namespace) -> int:
    from trainset.cli import _connection
    from trainset.services.gold import export_gold
    from trainset.store.corpus import CorpusStore

    with _connection() as conn:
        count = export_gold(CorpusStore(conn), Path(args.out), args.family, args.purpose)
    _say(f"{count} gold post(s) written to {args.out}")
    return 0


def register(sub: Any) -> None:
    gold = sub.add_parser("gold", help="your own gold (QA) and practice posts")
    g_sub = gold.add_subparsers(dest="gold_command", required=True, metavar="ACTION")
    imp = g_sub.add_parser(
        "import", help="import gold or practice posts from CSV, JSONL or Parquet files",
        description="Columns: id, text, family and answers (required; answers is a JSON "
        "object exactly as POST /labels takes it, in CSV a JSON string), rationale (shown to "
        "trainees after a practice answer), keyword, image_key or image_url, author, "
        "created_at, purpose (if given, must equal --purpose). A post not yet in the corpus is "
        "created. Answers are checked against the codebook and stored in canonical form. An "
        "id given twice for a family in one import (across its files too) is rejected on "
        "every line it appears; a post already in a campaign cannot become gold. Bad rows go "
        "to the rejects file with file, line and reason; good rows are stored in one "
        "transaction. Re-importing updates answers, rationale and purpose, never duplicates.")
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--purpose", required=True, choices=PURPOSES,
                     help="practice: trains new coders, with feedback; qa: mixed unseen into "
                     "real work to score coders")
    imp.add_argument("--rejects", default="gold-rejects.csv",
                     help="where rejected rows are written (default: %(default)s)")
    imp.add_argument("--max-text", type=positive_int, default=DEFAULT_MAX_TEXT,
                     help="longest text accepted, in characters (default: %(default)s)")
    imp.set_defaults(func=cmd_gold_import)

    for name, func, text in (("list", cmd_gold_list, "list gold posts with their answers"),
                             ("export", cmd_gold_export,
                              "write gold posts to CSV or JSONL (the columns gold import "
                              "reads)")):
        cmd = g_sub.add_parser(name, help=text, description=text + ".")
        cmd.add_argument("--family", choices=FAMILY_NAMES)
        cmd.add_argument("--purpose", choices=PURPOSES)
        if name == "export":
            cmd.add_argument("--out", required=True, metavar="FILE",
                             help="a .csv or .jsonl file")
        cmd.set_defaults(func=func)
