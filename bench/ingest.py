"""Benchmark: importing a large CSV corpus (`corpus import`) into PostgreSQL.

Generates N posts (default 1,000,000) from the study's keyword lists, imports them through the
same service the CLI uses (read and check every row in columnar blocks, hash, binary COPY in
batches on a second connection), then imports the same file again (everything unchanged: the
staging and upsert path). The reference, in the same run, is a bare COPY of the file into an
unindexed table: the floor for moving the bytes into the database, taken before and after the
imports (other work on the machine slows both alike). The figure to watch is the bare COPY's
time over the import's (target: 1,000,000 posts in < 15 s, >= 0.17 of the bare COPY); the CPU
each used is printed too, as it does not depend on what else the machine runs.

    python bench/ingest.py [--posts 1000000]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from trainset.demo import FILLER, keywords  # noqa: E402
from trainset.services.ingest import import_files  # noqa: E402
from trainset.store.corpus import CorpusStore  # noqa: E402
from trainset.store.db import connect, parse_url  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402


def generate(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    words = {f: keywords(f) for f in ("place", "child", "health")}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "keyword", "family", "author", "created_at", "lang"])
        families = list(words)
        for i in range(n):
            family = families[i % 3]
            kw = words[family][i % len(words[family])]
            text = f"{rng.choice(FILLER).format(kw=kw)} #{i % 997} {rng.random():.8f}"
            writer.writerow([f"{1_400_000_000_000_000_000 + i}", text, kw, family,
                             f"user{i % 50_000}", f"2022-{1 + i % 12:02d}-{1 + i % 28:02d}T"
                             f"{i % 24:02d}:00:00Z", "en"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.csv"
        start = time.perf_counter()
        generate(corpus, args.posts)
        size_mb = corpus.stat().st_size / 1e6
        print(f"ingest benchmark: {args.posts:,} posts, {size_mb:.0f} MB CSV "
              f"(generated in {time.perf_counter() - start:.1f} s)")
        server = pgserver.get_server(str(Path(tmp) / "pg"), cleanup_mode="delete")
        conn = connect(parse_url(server.get_uri()))
        migrate(conn)

        def bare_copy() -> tuple[float, float]:
            """The floor: the file COPied into an unindexed table (wall s, server CPU s)."""
            conn.run("CREATE UNLOGGED TABLE bare_copy (id text, text text, keyword text,"
                     " family text, author text, created_at text, lang text)")
            cpu, start = backend_cpu(conn), time.perf_counter()
            with corpus.open("rb") as handle:
                handle.readline()
                conn.run("COPY bare_copy FROM STDIN WITH (FORMAT csv)", stream=handle)
            took = time.perf_counter() - start, backend_cpu(conn) - cpu
            conn.run("DROP TABLE bare_copy")
            return took

        bare_before = bare_copy()
        store = CorpusStore(conn)
        merge_conn = connect(parse_url(server.get_uri()))
        merger = CorpusStore(merge_conn)  # a second connection, as the CLI uses
        cpu = time.process_time(), backend_cpu(merge_conn)
        start = time.perf_counter()
        first = import_files(store, [corpus], rejects_path=Path(tmp) / "rejects.csv",
                             merge_store=merger)
        took = time.perf_counter() - start
        python_cpu, db_cpu = time.process_time() - cpu[0], backend_cpu(merge_conn) - cpu[1]
        start = time.perf_counter()
        again = import_files(store, [corpus], rejects_path=Path(tmp) / "rejects2.csv",
                             merge_store=merger)
        took_again = time.perf_counter() - start
        bare_after = bare_copy()
        merge_conn.close()
        conn.close()
        server.cleanup()

    bare = (bare_before[0] + bare_after[0]) / 2
    print(f"  corpus import (new posts)        {took:6.1f} s   {args.posts / took:9,.0f} posts/s"
          f"   ({first.inserted:,} new, {first.rejected_total} rejected)")
    print(f"  corpus import again (unchanged)  {took_again:6.1f} s   "
          f"{args.posts / took_again:9,.0f} posts/s   ({again.unchanged:,} unchanged)")
    print(f"  reference: bare COPY, no checks  {bare:6.1f} s   {args.posts / bare:9,.0f} posts/s"
          f"   (before the imports {bare_before[0]:.1f} s, after {bare_after[0]:.1f} s)")
    print(f"  bare COPY / import (new posts)   {bare / took:6.2f}    (target: >= 0.17, and "
          f"1,000,000 posts in < 15 s)")
    if db_cpu == db_cpu:  # known (the server's processes are readable here)
        print(f"  CPU: import {python_cpu:.1f} s in Python + {db_cpu:.1f} s in PostgreSQL; "
              f"bare COPY {(bare_before[1] + bare_after[1]) / 2:.1f} s in PostgreSQL")


def backend_cpu(conn: Any) -> float:
    """CPU seconds the connection's server process has used (NaN when it cannot be read)."""
    pid = conn.run("SELECT pg_backend_pid()")[0][0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

if __name__ == "__main__":
    sys.exit(main())
