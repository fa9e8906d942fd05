"""``python -m trainset``: the command line for managers and for the local stack.

Every command explains bad input in one line and exits non-zero; no stack traces.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainset.errors import TrainsetError

DEMO_CODERS = (
    ("manager", "manager", "certified"),
    ("coder1", "coder", "certified"),
    ("coder2", "coder", "certified"),
    ("trainee1", "coder", "trainee"),
)


def repo_root() -> Path:
    """The checkout this package lives in (layers/core/python/trainset -> repo)."""
    return Path(__file__).resolve().parents[4]


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
    """Start the embedded database (unless configured), migrate, load the demo, serve."""
    import os

    from trainset.local.embedded import project_home
    from trainset.models import Coder
    from trainset.store.config import database_url
    from trainset.store.db import Pool, connect, parse_url
    from trainset.store.labeling import LabelingStore
    from trainset.store.migrations import migrate

    if not os.environ.get("TRAINSET_DATABASE_URL"):
        _say(f"starting the embedded PostgreSQL (data in {project_home() / 'pgdata'})...")
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
    from trainset.local.server import LocalServer, make_gateway

    blobs = _local_blobs()
    pool = Pool(settings)
    runtime.configure(database_pool=pool, image_url=blobs.url)
    server = LocalServer((args.host, args.port), gateway=make_gateway(app),
                         site_dir=repo_root() / "static_site", blobs=blobs)
    base = f"http://{args.host}:{args.port}"
    _say("")
    _say(f"trainset is running: {base}/  (API under {base}/api/, Ctrl-C stops)")
    for name, token in demo_tokens:
        _say(f"  token for {name}: {token}")
    if demo_tokens:
        _say("")
        _say("try:  curl -H \"Authorization: Bearer $TOKEN\" "
             f"'{base}/api/tasks/next?family=child'")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        _say("\nstopping...")
    finally:
        server.server_close()
        pool.close()
        _stop_embedded()
    _say("stopped; data kept in " + str(project_home()))
    return 0


def _stop_embedded() -> None:
    import os

    if os.environ.get("TRAINSET_DATABASE_URL"):
        return
    from trainset.local.embedded import stop_embedded

    stop_embedded()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trainset",
        description="trainset: label social-media posts into a trustworthy training set. "
        "The database is TRAINSET_DATABASE_URL, or an embedded PostgreSQL in .trainset/.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="start the local system (database, API, page)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
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
