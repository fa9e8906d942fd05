"""Benchmark: the import job on one machine, one batch vs the Distributed Map path.

Generates N posts (default 400,000) as `bench/ingest.py` does, then imports the file three
ways into an emptied database, timing each from the moment it is there to the moment the last
post is stored:

- the reference: the `corpus import` command's service, on the file on disk (two connections);
- the import job with one batch (`TRAINSET_IMPORT_BATCH_ROWS` above N): the file is put in the
  S3 stand-in, its trigger starts the state machine of `trainset/data/import_job.asl.json` in
  moto's interpreter, and Plan, ImportOneBatch and Finish run in-process;
- the same job with `--batches` batches: the Distributed Map path (4 batches at a time).

Locally every task shares this process (and its interpreter lock) and the machine's cores with
PostgreSQL, so the Distributed Map cannot be faster here; in AWS each batch is a Lambda of its
own. What this measures is what the job adds to the CLI's import: planning (one extra read of
the file), storage round trips, and the state machine.

    python bench/imports.py [--posts 400000] [--batches 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import database  # noqa: E402
from bench.ingest import generate  # noqa: E402
from trainset.services.imports import BATCH_ROWS_VARIABLE  # noqa: E402
from trainset.services.ingest import import_files  # noqa: E402
from trainset.store.corpus import CorpusStore  # noqa: E402
from trainset.store.db import connect, parse_url  # noqa: E402
from trainset.store.imports import ImportStore  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402


def empty(conn) -> None:
    conn.run("TRUNCATE posts, imports CASCADE")


def run_job(local, conn, corpus: Path, key: str, batch_rows: int) -> tuple[float, dict]:
    os.environ[BATCH_ROWS_VARIABLE] = str(batch_rows)
    data = corpus.read_bytes()
    start = time.perf_counter()
    local.s3().put_object(Bucket=local.bucket, Key=key, Body=data)
    store = ImportStore(conn)
    deadline = start + 3600
    while True:  # the database says when it is done (polling storage would load the process)
        row = store.by_key(key)
        if row is not None and row["status"] in ("succeeded", "failed"):
            break
        if time.perf_counter() > deadline:
            raise RuntimeError("the import job did not finish within an hour")
        time.sleep(0.05)
    took = time.perf_counter() - start
    if row["status"] != "succeeded":
        raise RuntimeError(f"the import job failed: {row['error']}")
    posts = conn.run("SELECT count(*) FROM posts")[0][0]
    # every row stored once (a batch retried after a transient error finds its earlier rows
    # unchanged, so new + unchanged is what adds up)
    assert posts == row["rows_read"] == row["inserted"] + row["unchanged"], row
    assert row["rejected"] == 0, row
    local.wait_idle(600)  # its rejects file kept, before the next run
    return took, row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=400_000)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        corpus = folder / "corpus.csv"
        generate(corpus, args.posts)
        size_mb = corpus.stat().st_size / 1e6
        print(f"import job benchmark: {args.posts:,} posts, {size_mb:.0f} MB CSV")
        url, drop = database(folder)
        os.environ["TRAINSET_DATABASE_URL"] = url
        os.environ["TRAINSET_HOME"] = str(folder / "home")
        conn = connect(parse_url(url))
        migrate(conn)

        merge = connect(parse_url(url))
        start = time.perf_counter()
        summary = import_files(CorpusStore(conn), [corpus], rejects_path=folder / "r.csv",
                               merge_store=CorpusStore(merge))
        cli = time.perf_counter() - start
        merge.close()
        assert summary.inserted == args.posts, summary.lines()

        from trainset.local import pipeline
        from trainset.local.imports import start_local_imports

        stand_in = pipeline.ensure_stand_in()
        urllib.request.urlopen(urllib.request.Request(f"{stand_in}/moto-api/reset",
                                                      method="POST"), timeout=10).close()
        local = start_local_imports(poll_seconds=0.2, home=folder / "home")
        try:
            empty(conn)
            one, one_row = run_job(local, conn, corpus, "corpus/bench/one.csv", args.posts + 1)
            empty(conn)
            per_batch = -(-args.posts // args.batches)
            many, many_row = run_job(local, conn, corpus, "corpus/bench/many.csv", per_batch)
        finally:
            local.stop()
            pipeline.stop_stand_in()
        conn.close()
        drop()

    def line(label: str, seconds: float, note: str = "") -> None:
        print(f"  {label:<44} {seconds:6.1f} s   {args.posts / seconds:9,.0f} rows/s   "
              f"{seconds / cli:4.2f}x the CLI{note}")

    line("reference: corpus import (the CLI's service)", cli)
    line("import job, one batch (ImportOneBatch)", one, f"   ({one_row['batches']} batch)")
    line(f"import job, Distributed Map ({many_row['batches']} batches)", many,
         "   (4 at a time, one process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
