"""``python -m trainset``: the command line for managers and for the local stack.

The core commands (run, db, coders, corpus, labels, sample, estimate, demo) live here; the
image, quality, export-job and gold commands register themselves from this package's
``images``, ``quality``, ``pipeline`` and ``gold`` modules. Every command explains bad input
in one line and exits non-zero; no stack traces.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainset.corpus.estimate import BOOTSTRAP_REFITS
from trainset.corpus.ingest import DEFAULT_MAX_TEXT
from trainset.errors import TrainsetError

DEMO_CODERS = (
    ("manager", "manager", "certified"),
    ("coder1", "coder", "certified"),
    ("coder2", "coder", "certified"),
    ("trainee1", "coder", "trainee"),
)


def repo_root() -> Path:
    """The checkout this package lives in (layers/core/python/trainset/cli -> repo)."""
    return Path(__file__).resolve().parents[5]


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero (argparse then says what was wrong)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, zero or more."""
    if text.strip() == "0":
        return 0
    return positive_int(text)


def _say(message: str) -> None:
    print(message, flush=True)


@contextlib.contextmanager
def _connection() -> Iterator[Any]:
    from trainset.store.config import database_url
    from trainset.store.db import connect, parse_url

    conn = connect(parse_url(database_url()))
    try:
        yield conn
    finally:
        conn.close()


def cmd_migrate(args: argparse.Namespace) -> int:
    from trainset.store.migrations import migrate

    with _connection() as conn:
        applied = migrate(conn)
    _say("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


def _coder_admin(conn: Any) -> Any:
    from trainset.services.labeling import CoderAdmin
    from trainset.store.labeling import LabelingStore

    return CoderAdmin(LabelingStore(conn))


def _token_for(coder: Any) -> str:
    from trainset import tokens
    from trainset.local.secrets import local_token_secret

    return tokens.mint(coder.id, coder.name, local_token_secret())


def cmd_coders_add(args: argparse.Namespace) -> int:
    from trainset.store.migrations import migrate

    with _connection() as conn:
        migrate(conn)
        coder = _coder_admin(conn).create(None, {
            "name": args.name,
            "role": "manager" if args.manager else "coder",
            "status": "certified" if (args.certified or args.manager) else "trainee",
        })
    _say(f"created {coder.role} {coder.name} (id {coder.id}, {coder.status})")
    _say(f"token: {_token_for(coder)}")
    return 0


def cmd_coders_token(args: argparse.Namespace) -> int:
    from trainset.models import Coder
    from trainset.store.labeling import LabelingStore

    with _connection() as conn:
        row = LabelingStore(conn).coder_by_name(args.name)
    if row is None:
        raise TrainsetError(f"no coder named {args.name}; add one with 'coders add'")
    if row["imported"]:
        raise TrainsetError(f"{args.name} only holds labels imported from another tool "
                            "and cannot sign in; no token is made for such coders")
    _say(_token_for(Coder.from_row(row)))
    return 0


def cmd_coders_list(args: argparse.Namespace) -> int:
    with _connection() as conn:
        coders = _coder_admin(conn).list()
    if not coders:
        _say("no coders yet; add one with: python -m trainset coders add NAME")
    for c in coders:
        _say(f"{c['id']:>5}  {c['name']:<24} {c['role']:<8} {c['status']}")
    return 0


def _local_blobs() -> Any:
    from trainset.blobs.local import LocalBlobs
    from trainset.local.embedded import project_home

    return LocalBlobs(project_home() / "blobs")


def ensure_demo(conn: Any, per_family: int) -> bool:
    """Load the demo corpus and coders into an empty database; False when data exists."""
    from trainset.services.corpus import load_demo
    from trainset.store.corpus import CorpusStore

    store = CorpusStore(conn)
    if store.count_posts() > 0:
        return False
    _say("loading the demo corpus (first start only)...")
    load_demo(store, _local_blobs(), per_family, progress=lambda m: _say(f"  {m}"))
    admin = _coder_admin(conn)
    for name, role, status in DEMO_CODERS:
        admin.create(None, {"name": name, "role": role, "status": status})
    return True


def cmd_demo_load(args: argparse.Namespace) -> int:
    from trainset.store.migrations import migrate

    with _connection() as conn:
        migrate(conn)
        loaded = ensure_demo(conn, args.posts_per_family)
    _say("demo loaded" if loaded else "the database already has posts; nothing loaded")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Start the embedded database (unless configured), migrate, load the demo, serve.

    SIGTERM and SIGINT (Ctrl-C) both end in the same ``finally``, which stops the HTTP server,
    the pool, the import runner, the image stand-in and the embedded PostgreSQL, in that
    order, every step even when an earlier one fails; a second signal during that shutdown is
    ignored."""
    import os

    from trainset.local.embedded import project_home
    from trainset.local.server import StopSignals, run_steps

    auth = os.environ.get("TRAINSET_AUTH", "local").strip()
    if auth.lower() == "cognito":
        raise TrainsetError(
            "TRAINSET_AUTH=cognito is for AWS only: the local server cannot verify Cognito "
            "tokens (Chalice's local gateway decodes them without checking signatures); "
            "unset TRAINSET_AUTH to use local tokens"
        )
    if auth and auth.lower() != "local":
        raise TrainsetError(f"TRAINSET_AUTH={auth!r} is unknown; the local server uses local "
                            "tokens (unset TRAINSET_AUTH or set it to local)")

    with StopSignals() as stops:
        steps: list[tuple[str, Any]] = []  # what was started, in order; stopped in reverse
        try:
            _start_and_serve(args, stops, steps)
        except KeyboardInterrupt:
            _say("\nstopping...")
        finally:
            stops.begin_stop()
            failures = run_steps([*reversed(steps), ("the embedded PostgreSQL", _stop_embedded)])
            for line in failures:
                print(f"warning: could not stop {line}", file=sys.stderr, flush=True)
    _say("stopped; data kept in " + str(project_home()))
    return 0


def _start_and_serve(args: argparse.Namespace, stops: Any,
                     steps: list[tuple[str, Any]]) -> None:
    """``cmd_run``'s start-up and serving; each started part goes into ``steps`` at once, so
    an interruption at any point stops exactly what runs."""
    import os

    from trainset.local.embedded import project_home
    from trainset.models import Coder
    from trainset.store.config import database_url
    from trainset.store.db import Pool, connect, parse_url
    from trainset.store.labeling import LabelingStore
    from trainset.store.migrations import migrate

    if not os.environ.get("TRAINSET_DATABASE_URL"):
        _say(f"starting the embedded PostgreSQL (data in {project_home() / 'pgdata'})...")
    with stops.deferred():  # a half-registered embedded server could not be stopped
        settings = parse_url(database_url())
    conn = connect(settings)
    try:
        applied = migrate(conn)
        if applied:
            _say("applied migrations: " + ", ".join(applied))
        if not args.no_demo:
            ensure_demo(conn, args.posts_per_family)
        store = LabelingStore(conn)
        demo_tokens = [
            (name, _token_for(Coder.from_row(row)))
            for name, _, _ in DEMO_CODERS
            if (row := store.coder_by_name(name)) is not None
        ]
    finally:
        conn.close()

    sys.path.insert(0, str(repo_root() / "chalice_app"))
    from app import app  # the same Chalice app that runs in Lambda

    from chalicelib import runtime
    from trainset.local.images import start_local_images
    from trainset.local.imports import start_local_imports
    from trainset.local.server import LocalServer, make_gateway
    from trainset.web_headers import LOCAL_PAGE_HEADERS, page_csp

    blobs = _local_blobs()
    images = start_local_images()
    steps.append(("the image stand-in", images.stop))
    imports = start_local_imports()
    steps.append(("the import runner", imports.stop))
    pool = Pool(settings)
    steps.append(("the connection pool", pool.close))
    runtime.configure(database_pool=pool, image_url=blobs.url)
    # The page PUTs corpus and gold files straight to the S3 stand-in (presigned URLs, as to
    # S3 in AWS): its origin joins the page's connect-src.
    page_headers = {**LOCAL_PAGE_HEADERS,
                    "Content-Security-Policy": page_csp([images.endpoint_url], [])}
    try:
        server = LocalServer((args.host, args.port), gateway=make_gateway(app),
                             site_dir=repo_root() / "static_site", blobs=blobs,
                             page_headers=page_headers)
    except OSError as exc:
        raise TrainsetError(f"cannot listen on {args.host}:{args.port}: "
                            f"{exc.strerror or exc} (is trainset already running? try --port)"
                            ) from None

    def stop_server() -> None:
        server.server_close()
        server.wait_idle(5.0)  # requests in progress finish before the pool closes

    steps.append(("the HTTP server", stop_server))
    base = f"http://{args.host}:{args.port}"
    _say("")
    _say(f"trainset is running: {base}/  (API under {base}/api/, Ctrl-C stops)")
    _say(images.describe())
    _say(imports.describe())
    for name, token in demo_tokens:
        _say(f"  token for {name}: {token}")
    if demo_tokens:
        _say("")
        _say("try:  curl -H \"Authorization: Bearer $TOKEN\" "
             f"'{base}/api/tasks/next?family=child'")
    server.serve_forever()


def _stop_embedded() -> None:
    """Let go of the embedded PostgreSQL (it stops when no other process uses it)."""
    import os

    if os.environ.get("TRAINSET_DATABASE_URL"):
        return
    from trainset.local.embedded import stop_embedded

    stop_embedded()


def _progress_bar(path: Path, total: int | None) -> Any:
    """A tqdm bar per file (shown on a terminal only); returns its advance function."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=path.name, unit=" rows", unit_scale=True, disable=None,
               leave=True, dynamic_ncols=True)
    _open_bars.append(bar)
    return bar.update


_open_bars: list[Any] = []


def cmd_corpus_import(args: argparse.Namespace) -> int:
    from trainset.services.ingest import import_files
    from trainset.store.corpus import CorpusStore
    from trainset.store.migrations import migrate

    for raw in args.files:
        if not Path(raw).exists():
            _say(f"warning: {raw} does not exist; it will be reported as skipped")
    with _connection() as conn, _connection() as merge_conn:
        migrate(conn)
        try:
            summary = import_files(
                CorpusStore(conn), [Path(f) for f in args.files],
                rejects_path=Path(args.rejects), merge_store=CorpusStore(merge_conn),
                batch_size=args.batch_size, max_text=args.max_text, progress=_progress_bar,
            )
        finally:
            while _open_bars:
                _open_bars.pop().close()
    for line in summary.lines():
        _say(line)
    return 2 if summary.file_problems else 0


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> list[str]:
    cells = [[("" if r[c] is None else str(r[c])) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return out


def cmd_sample(args: argparse.Namespace) -> int:
    from trainset.corpus.filters import FilterSettings
    from trainset.services.campaigns import SampleRequest, sample
    from trainset.store.corpus import CorpusStore
    from trainset.store.migrations import migrate

    filters = FilterSettings(
        exclude_phrases=tuple(args.exclude) if args.exclude is not None
        else FilterSettings().exclude_phrases,
        min_length=args.min_length,
        near_duplicate_bits=None if args.near_duplicate_bits < 0 else args.near_duplicate_bits,
        language=args.language,
    )
    request = SampleRequest(
        family=args.family, budget=args.budget, strategy=args.strategy, seed=args.seed,
        labels_per_post=args.labels_per_post, name=args.name, filters=filters,
        yields_file=Path(args.yields) if args.yields else None, target=args.target,
    )
    with _connection() as conn:
        migrate(conn)
        result = sample(CorpusStore(conn), request)
    _say(f"campaign {result.name} (id {result.campaign_id}): {len(result.sampled)} posts x "
         f"{args.labels_per_post} label(s), strategy {args.strategy}, seed {args.seed}")
    _say("filters:")
    for step in result.steps:
        note = f" ({step.note})" if step.note else ""
        _say(f"  {step.name}: {step.removed} removed{note}")
    _say(f"sampling frame: {result.frame_size} posts; pilot yields from {result.yields_source}")
    rows = result.allocation_rows()
    for line in _table(rows, list(rows[0])):
        _say("  " + line)
    out = Path(args.allocation_out or f"allocation-{result.name}.csv")
    _write_csv(out, rows)
    _say(f"allocation table saved to {out}")
    return 0


def _fmt(e: Any) -> str:
    if e.value is None:
        return "n/a"
    return f"{100 * e.value:5.1f}% [{100 * e.low:5.1f}, {100 * e.high:5.1f}]"


def cmd_estimate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from trainset.services.campaigns import estimate_prevalence
    from trainset.store.corpus import CorpusStore
    from trainset.store.quality import QualityStore

    bar = tqdm(total=args.refits, desc="model refits", unit=" fits", disable=None,
               leave=False)

    def advance(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    try:
        with _connection() as conn:
            result = estimate_prevalence(CorpusStore(conn), QualityStore(conn), args.family,
                                         args.campaign, bootstrap=args.refits,
                                         progress=advance)
    finally:
        bar.close()
    c = result["campaign"]
    _say(f"campaign {c['name']} ({c['strategy']}, seed {c['seed']}): "
         f"{result['labeled_posts']} of {result['sampled_posts']} sampled posts labeled, "
         f"{result['judged_posts']} with a consensus")
    if not result["labeled_posts"]:
        _say("no labels yet: nothing to estimate")
        return 0
    if result["em_converged"] is False:
        _say("warning: the consensus stopped at its iteration cap before settling; "
             "treat the figures with care")
    _say("consensus: each post's P(label | all its answers), gold-anchored; the interval "
         "includes the labeling uncertainty"
         + (f" and the model's own ({args.refits} bootstrap refits)" if args.refits > 1
            else "") + ". raw votes: the share of coders who gave it.")
    _say(f"{'label':<24} {'weighted, consensus':<26} {'weighted, raw votes':<26} "
         f"{'unweighted, consensus':<26}")
    for item in result["labels"]:
        _say(f"{item.label:<24} {_fmt(item.weighted):<26} {_fmt(item.raw_weighted):<26} "
             f"{_fmt(item.unweighted):<26}")
    first = result["labels"][0]
    _say(f"per keyword ({first.label}, consensus):")
    for keyword, e in first.per_keyword.items():
        _say(f"  {keyword:<30} {_fmt(e)}  n={e.n}")
    if args.out:
        rows = []
        for item in result["labels"]:
            for name, e in (("(all, weighted)", item.weighted),
                            ("(all, unweighted)", item.unweighted),
                            ("(all, weighted, raw votes)", item.raw_weighted),
                            ("(all, unweighted, raw votes)", item.raw_unweighted)):
                rows.append({"label": item.label, "keyword": name, **e.as_dict()})
            rows += [{"label": item.label, "keyword": k, **e.as_dict()}
                     for k, e in item.per_keyword.items()]
        _write_csv(Path(args.out), rows)
        _say(f"saved to {args.out}")
    return 0


def cmd_labels_import(args: argparse.Namespace) -> int:
    from trainset.services.label_import import import_labels
    from trainset.store.label_import import LabelImportStore
    from trainset.store.migrations import migrate

    with _connection() as conn:
        migrate(conn)
        try:
            summary = import_labels(
                LabelImportStore(conn), Path(args.file), family=args.family,
                source=args.source, fmt=args.format, rejects_path=Path(args.rejects),
                progress=_progress_bar)
        finally:
            while _open_bars:
                _open_bars.pop().close()
    for line in summary.lines():
        _say(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainset",
        description="trainset: label social-media posts into a trustworthy training set. "
        "The database is TRAINSET_DATABASE_URL, or an embedded PostgreSQL in .trainset/.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run", help="start the local system (database, API, page)",
        description="Starts the embedded PostgreSQL (unless TRAINSET_DATABASE_URL is set), "
        "applies migrations, loads the demo on first start, and serves the API (/api), the "
        "images (/blobs) and the labeling page. Ctrl-C or SIGTERM stops everything, the "
        "embedded PostgreSQL included. Local tokens only: with TRAINSET_AUTH=cognito it "
        "refuses to start (exit 2), because the local gateway cannot verify Cognito tokens' "
        "signatures. Request bodies are limited to 64 KiB with a Content-Length (no chunked "
        "bodies) and must arrive within 10 seconds.",
    )
    run.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: %(default)s, this machine only)")
    run.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    run.add_argument("--no-demo", action="store_true", help="do not load the demo corpus")
    run.add_argument("--posts-per-family", type=int, default=120, help=argparse.SUPPRESS)
    run.set_defaults(func=cmd_run)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("migrate", help="apply pending migrations from sql/").set_defaults(
        func=cmd_migrate)

    coders = sub.add_parser("coders", help="manage coders and their local tokens")
    c_sub = coders.add_subparsers(dest="coders_command", required=True, metavar="ACTION")
    add = c_sub.add_parser("add", help="create a coder and print their token")
    add.add_argument("name", help="login name: letters, digits, _ . @ -")
    add.add_argument("--manager", action="store_true", help="give the manager role")
    add.add_argument("--certified", action="store_true",
                     help="certified at once (default: trainee, practice only)")
    add.set_defaults(func=cmd_coders_add)
    token = c_sub.add_parser("token", help="print a fresh token for an existing coder")
    token.add_argument("name")
    token.set_defaults(func=cmd_coders_token)
    c_sub.add_parser("list", help="list coders").set_defaults(func=cmd_coders_list)

    corpus = sub.add_parser("corpus", help="the corpus of posts")
    corpus_sub = corpus.add_subparsers(dest="corpus_command", required=True, metavar="ACTION")
    imp = corpus_sub.add_parser(
        "import",
        help="import posts from CSV, JSONL or Parquet files (re-importing updates, never "
        "duplicates)",
        description="Columns: id and text (required); keyword, family (place/child/health), "
        "image_key or image_url, author, created_at (ISO 8601 or X's format); any other "
        "column is kept as JSON. Bad rows go to the rejects file with file, line and reason; "
        "every good row is kept.",
    )
    imp.add_argument("files", nargs="+", metavar="FILE")
    imp.add_argument("--rejects", default="trainset-rejects.csv",
                     help="where rejected rows are written (default: %(default)s)")
    imp.add_argument("--batch-size", type=int, default=50_000, help=argparse.SUPPRESS)
    imp.add_argument("--max-text", type=positive_int, default=DEFAULT_MAX_TEXT,
                     help="longest text accepted, in characters (default: %(default)s)")
    imp.set_defaults(func=cmd_corpus_import)

    from trainset.codebook import FAMILY_NAMES
    from trainset.corpus.sampling import STRATEGIES

    smp = sub.add_parser(
        "sample", help="draw a labeling campaign from the corpus, with inclusion probabilities",
        description="Filters the family's posts, allocates the budget over keywords by the "
        "strategy, draws with the seed (the same seed and corpus give the same sample), and "
        "creates the campaign's tasks. Prints and saves the allocation table.",
    )
    smp.add_argument("--family", required=True, choices=FAMILY_NAMES)
    smp.add_argument("--budget", required=True, type=int, help="posts to sample")
    smp.add_argument("--strategy", default="equal", choices=STRATEGIES,
                     help="default: %(default)s (the same count per keyword)")
    smp.add_argument("--seed", type=int, default=1)
    smp.add_argument("--labels-per-post", type=int, default=1,
                     help="distinct coders per post (default: %(default)s)")
    smp.add_argument("--name", help="campaign name (default: family-strategy-seed-time)")
    smp.add_argument("--yields", help="pilot yields CSV (keyword, percent_true) for neyman; "
                     "default: from labels already in the database")
    smp.add_argument("--target", metavar="LABEL",
                     help="optimise neyman for this label (e.g. middle, is_health, school) "
                     "using its yields in the labels already in the database; default: the "
                     "family's subject (a child, a health mention, a location)")
    smp.add_argument("--exclude", action="append", metavar="PHRASE",
                     help="exclusion phrase (repeatable; replaces the default list)")
    smp.add_argument("--min-length", type=int, default=20,
                     help="shortest text kept, in characters (default: %(default)s)")
    smp.add_argument("--near-duplicate-bits", type=int, default=3,
                     help="SimHash distance for near-duplicates; -1 turns it off "
                     "(default: %(default)s)")
    smp.add_argument("--language", help="keep only posts in this language (by their lang "
                     "field; posts without one are kept)")
    smp.add_argument("--allocation-out", help="where to save the allocation table CSV")
    smp.set_defaults(func=cmd_sample)

    est = sub.add_parser(
        "estimate", help="prevalence per label with design weights and 95%% intervals",
        description="Weighted (Horvitz-Thompson / stratified) and unweighted prevalence of "
        "each label, overall and per keyword, from a campaign's current labels.",
    )
    est.add_argument("--family", required=True, choices=FAMILY_NAMES)
    est.add_argument("--campaign", help="campaign name (default: the family's newest)")
    est.add_argument("--out", help="also save every figure to this CSV")
    est.add_argument("--refits", type=non_negative_int, default=BOOTSTRAP_REFITS,
                     help="bootstrap refits of the consensus model whose spread widens the "
                     "intervals; 0 leaves the model's own uncertainty out "
                     "(default: %(default)s)")
    est.set_defaults(func=cmd_estimate)

    labels = sub.add_parser("labels", help="labels made elsewhere")
    labels_sub = labels.add_subparsers(dest="labels_command", required=True, metavar="ACTION")
    limp = labels_sub.add_parser(
        "import", help="import prior labels (long CSV, the study's wide CSV, Label Studio JSON)",
        description="Stores labels made elsewhere beside live work (kind 'imported': no tasks, "
        "no leases), each checked against the codebook, with its source, file and line. "
        "Formats: long (post_id,coder_id,field,value, as 'consensus' reads), wide (id and one "
        "column per question, True/False and lists like ['Unsure']; no coder_id column: one "
        "coder named after the source, a post's 2nd, 3rd... row going to SOURCE.2, "
        "SOURCE.3), labelstudio (a JSON export: post id in data.id, text in data.text, "
        "from_name is the question, value.choices the options, completed_by the coder). "
        "Coders are named SOURCE.CODER and cannot sign in. Posts must exist, or are created "
        "from the row's text. Re-importing the same file stores nothing new.",
    )
    limp.add_argument("file", metavar="FILE")
    limp.add_argument("--family", required=True, choices=FAMILY_NAMES)
    limp.add_argument("--source", required=True, metavar="NAME",
                      help="where the labels come from (1-32 letters, digits, _ -), e.g. study")
    limp.add_argument("--format", choices=("long", "wide", "labelstudio"),
                      help="default: from the extension and columns")
    limp.add_argument("--rejects", default="trainset-label-rejects.csv",
                      help="where rejected labels are written (default: %(default)s)")
    limp.set_defaults(func=cmd_labels_import)

    from trainset.cli import gold as gold_commands
    from trainset.cli import images as image_commands
    from trainset.cli import pipeline as pipeline_commands
    from trainset.cli import quality as quality_commands

    image_commands.register(sub)
    quality_commands.register(sub)
    pipeline_commands.register(sub)
    gold_commands.register(sub)

    demo = sub.add_parser("demo", help="the demo corpus")
    d_sub = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    load = d_sub.add_parser("load", help="load demo posts, images, gold and coders if empty")
    load.add_argument("--posts-per-family", type=int, default=120)
    load.set_defaults(func=cmd_demo_load)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TrainsetError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if isinstance(exc.details, list):
            for d in exc.details:
                print(f"  {d.get('field', '')}: {d.get('message', '')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
