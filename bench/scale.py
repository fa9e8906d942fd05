"""Benchmark: the pieces of the load model (docs/scale.md) that can be measured on one machine.

1. **Connection storm.** An embedded PostgreSQL started with ``max_connections`` set to a
   db.t4g.micro's; 200 short-lived clients released at once, each one coder of the labeling
   API: connect, ``GET /tasks/next`` (the service's ``next_task``), ``POST /labels``
   (``submit``), stay connected for ``--hold`` seconds as a warm Lambda container keeps its
   connection, disconnect. Run twice in the same process:

   - through a model of the RDS Proxy settings used in AWS (``infra_cdk``: the pool may open at
     most ``db_proxy_max_connections_percent`` = 70% of max_connections; a client borrows a
     database connection for one request (one transaction's worth) and gives it back; a client
     that finds every pooled connection busy waits up to the 20 s borrow timeout): failed
     requests (must be 0), the most connections the server saw (``pg_stat_activity``), borrow
     wait p50/p99;
   - each client connecting straight to the database, as the API did without a proxy: the
     reference, where the clients over the server's limit fail ("too many clients").

   Clients connect as an ordinary role (not a superuser), so PostgreSQL's
   ``superuser_reserved_connections`` (3) are kept from them as RDS keeps its reserved slots.

2. **Export.** ``trainset.export.tfrecords.export_posts`` (build Examples from columns, shard,
   write, verify: what the export job's Export task runs after reading the rows) over N
   generated text records of the child family (default 1,000,000) in one process: records/s
   and memory per record. Then the steps a sharded export adds around that work and that stay
   serial, measured on the same records (the plan: read the ids from PostgreSQL, then the
   export job's own plan, ``plan_family``, and every shard's stored input; the merge: sum the
   shards' manifests into one), and the speedup a sharded run with concurrency C would give by
   Amdahl's rule from that serial fraction. The sharded path itself
   (``trainset.export.shards.export_sharded``) runs on a subset against the single writer,
   and the files are compared byte for byte.

3. **Storage per image post**: the bytes of bench/augment.py's 1024x768 JPEG and of the ten
   variants the image function stores for it.

    python bench/scale.py [--clients 200] [--max-connections 80] [--records 1000000]

Always starts its own embedded PostgreSQL (TRAINSET_DATABASE_URL is not used: the server's
max_connections is part of the experiment).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import random
import re
import resource
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

from trainset import codebook  # noqa: E402
from trainset.demo import FILLER, keywords  # noqa: E402
from trainset.models import Coder  # noqa: E402
from trainset.services import corpus  # noqa: E402
from trainset.services.labeling import CoderAdmin, LabelingService, LabelingSettings  # noqa: E402
from trainset.store.corpus import CorpusStore  # noqa: E402
from trainset.store.db import Connection, ConnectionSettings, connect, parse_url  # noqa: E402
from trainset.store.labeling import LabelingStore  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402

# RDS for PostgreSQL's default: max_connections = LEAST({DBInstanceClassMemory/9531392}, 5000).
# db.t4g.micro has 1 GiB: 1,073,741,824 / 9,531,392 = 112 if all of it counted, but
# DBInstanceClassMemory is what is left after the memory RDS reserves for the operating system
# and its own processes, so the server reports fewer; infra_cdk (README "Scaling",
# constructs/database.py) budgets ~80 on a micro, and that budget is what the proxy's 70% and
# the direct clients' share were sized from. --max-connections 112 runs the nominal figure.
RDS_MAX_CONNECTIONS_DIVISOR = 9_531_392
T4G_MICRO_BYTES = 2**30
PROXY_PERCENT = 70  # infra_cdk/config.py: db_proxy_max_connections_percent
BORROW_TIMEOUT_S = 20.0  # infra_cdk/constructs/database.py: PROXY_BORROW_TIMEOUT
ANSWERS = {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}
STORM_ROLE = "storm"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# ---- 1. the connection storm -------------------------------------------------------------------


def start_postgres(tmp: Path, max_connections: int) -> tuple[Any, str]:
    """An embedded PostgreSQL (pgserver) in ``tmp`` restarted with ``max_connections``."""
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import pgserver

    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "pg"
    first = pgserver.get_server(str(data), cleanup_mode="stop")
    conn = connect(parse_url(first.get_uri()))
    conn.run(f"ALTER SYSTEM SET max_connections = {int(max_connections)}")  # needs a restart
    conn.close()
    first.cleanup()  # stops the server, keeps the data folder
    server = pgserver.get_server(str(data), cleanup_mode="delete")
    return server, server.get_uri()


def prepare(admin: Connection, n_posts: int, n_tasks: int, n_coders: int) -> list[Coder]:
    """Posts (10% with an image key) in the study's keyword style, a one-label campaign over the
    first ``n_tasks`` of them and ``n_coders`` certified coders."""
    admin.run("TRUNCATE labels, skips, gold_leases, gold_posts, tasks, campaign_posts, campaigns,"
              " posts, audit_log, coders RESTART IDENTITY CASCADE")
    rng = random.Random(7)
    words = keywords("child")
    corpus.add_posts(CorpusStore(admin), (
        {"id": f"{1_500_000_000_000_000_000 + i}",
         "text": f"{rng.choice(FILLER).format(kw=words[i % len(words)])} #{i % 997} "
                 f"{rng.random():.8f}",
         "keyword": words[i % len(words)], "family": "child", "author": f"user{i % 50_000}",
         "image_key": f"uploads/{i}.jpg" if i % 10 == 0 else None}
        for i in range(n_posts)))
    corpus.add_campaign(CorpusStore(admin), name="storm", family="child",
                        post_ids=[f"{1_500_000_000_000_000_000 + i}" for i in range(n_tasks)],
                        labels_per_post=1)
    people = CoderAdmin(LabelingStore(admin))
    return [people.create(None, {"name": f"storm{i}", "status": "certified"})
            for i in range(n_coders)]


def storm_role(admin: Connection, uri: str) -> ConnectionSettings:
    """An ordinary login role with the app's table rights: the connection settings to use it."""
    admin.run(f"DROP ROLE IF EXISTS {STORM_ROLE}")
    admin.run(f"CREATE ROLE {STORM_ROLE} LOGIN")
    admin.run(f"GRANT USAGE ON SCHEMA public TO {STORM_ROLE}")
    admin.run("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public"
              f" TO {STORM_ROLE}")
    admin.run(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {STORM_ROLE}")
    return dataclasses.replace(parse_url(uri), user=STORM_ROLE, password=None)


class ProxyModel:
    """What the RDS Proxy does for the API, modelled in the client: at most ``size`` database
    connections, opened on demand and kept; a request borrows one and gives it back when it is
    done; a request that finds them all busy waits up to ``borrow_timeout`` seconds, then fails.
    (The real proxy lends a connection per transaction; here per request, which holds it at
    least as long.)"""

    def __init__(self, settings: ConnectionSettings, size: int, borrow_timeout: float) -> None:
        self.settings = settings
        self.borrow_timeout = borrow_timeout
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self.opened = 0

    @contextmanager
    def borrow(self, waits: list[float]) -> Iterator[Connection]:
        start = time.perf_counter()
        if not self._slots.acquire(timeout=self.borrow_timeout):
            raise TimeoutError(f"no pooled connection within {self.borrow_timeout:.0f} s "
                               "(the proxy's borrow timeout)")
        try:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                conn = connect(self.settings, application_name="storm")
                with self._lock:
                    self.opened += 1
            waits.append(time.perf_counter() - start)  # borrow latency, as the proxy reports it
            ok = False
            try:
                yield conn
                ok = True
            finally:
                if ok:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    conn.close()
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            for conn in self._idle:
                conn.close()
            self._idle.clear()


class Peak:
    """The most ``STORM_ROLE`` backends ``pg_stat_activity`` shows, polled on a thread."""

    def __init__(self, uri: str) -> None:
        self.conn = connect(parse_url(uri), application_name="storm-monitor")
        self.most = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            n = self.conn.run("SELECT count(*) FROM pg_stat_activity WHERE usename = :u",
                              u=STORM_ROLE)[0][0]
            self.most = max(self.most, n)
            time.sleep(0.002)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.conn.close()


def storm(uri: str, settings: ConnectionSettings, coders: list[Coder], hold: float,
          proxy: ProxyModel | None) -> dict[str, Any]:
    """Every coder a client, all released at once: connect, next task, submit, hold, leave.
    With ``proxy``, each request borrows a pooled connection instead."""
    service_settings = LabelingSettings(gold_rate=0.0)
    barrier = threading.Barrier(len(coders) + 1)
    lock = threading.Lock()
    outcome: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    waits: list[float] = []
    request_s: list[float] = []
    open_now = [0, 0]  # connections the clients hold now, and the most at once

    def fail(exc: BaseException) -> None:
        text = str(exc)
        reason = re.search(r"'M': '([^']*)'", text)  # the server's FATAL message, when read
        message = reason.group(1) if reason else text.rsplit(": ", 1)[-1]
        with lock:
            outcome["failed"] += 1
            errors[f"{type(exc).__name__}: {message[:100]}"] += 1

    def request(conn: Connection, work: Any) -> Any:
        start = time.perf_counter()
        result = work(LabelingService(LabelingStore(conn), service_settings))
        with lock:
            request_s.append(time.perf_counter() - start)
            outcome["ok"] += 1
        return result

    def client(coder: Coder) -> None:
        barrier.wait()
        get = lambda svc: svc.next_task(coder, "child")["task"]  # noqa: E731
        try:
            if proxy is None:  # straight to the database: one connection for the client's life
                start = time.perf_counter()
                conn = connect(settings, application_name="storm")
                with lock:
                    waits.append(time.perf_counter() - start)
                    open_now[0] += 1
                    open_now[1] = max(open_now[1], open_now[0])
                try:
                    task = request(conn, get)
                    request(conn, lambda svc: svc.submit(coder, submission(task)))
                    time.sleep(hold)
                finally:
                    conn.close()
                    with lock:
                        open_now[0] -= 1
            else:
                with proxy.borrow(waits) as conn:
                    task = request(conn, get)
                with proxy.borrow(waits) as conn:
                    request(conn, lambda svc: svc.submit(coder, submission(task)))
                time.sleep(hold)  # connected to the proxy, holding no database connection
        except Exception as exc:  # noqa: BLE001 - every failure is a figure
            fail(exc)

    def submission(task: dict) -> dict:
        return {"submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                "family": "child", "answers": ANSWERS}

    threads = [threading.Thread(target=client, args=(c,)) for c in coders]
    for t in threads:
        t.start()
    with Peak(uri) as peak:
        start = time.perf_counter()
        barrier.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
    if proxy is not None:
        proxy.close()
    return {"ok": outcome["ok"], "failed": outcome["failed"],
            "not_sent": 2 * len(coders) - outcome["ok"] - outcome["failed"],
            "errors": errors, "server_peak": peak.most,
            "client_peak": proxy.opened if proxy is not None else open_now[1],
            "wait_p50": percentile(waits, 0.5) * 1000, "wait_p99": percentile(waits, 0.99) * 1000,
            "request_p50": percentile(request_s, 0.5) * 1000,
            "request_p99": percentile(request_s, 0.99) * 1000, "seconds": elapsed}


def run_storm(tmp: Path, clients: int, max_connections: int, hold: float,
              posts: int) -> dict[str, Any]:
    server, uri = start_postgres(tmp, max_connections)
    try:
        admin = connect(parse_url(uri))
        migrate(admin)
        shown = int(admin.run("SHOW max_connections")[0][0])
        reserved = int(admin.run("SHOW superuser_reserved_connections")[0][0])
        cap = max_connections * PROXY_PERCENT // 100
        settings = storm_role(admin, uri)
        start = time.perf_counter()
        coders = prepare(admin, posts, 2 * clients, clients)
        loaded = time.perf_counter() - start
        admin.run("VACUUM ANALYZE posts")
        post_bytes = admin.run("SELECT pg_total_relation_size('posts')")[0][0] / posts
        print(f"  PostgreSQL 16 (pgserver), max_connections {shown} (a db.t4g.micro's budget; "
              f"1 GiB / {RDS_MAX_CONNECTIONS_DIVISOR:,} = "
              f"{T4G_MICRO_BYTES // RDS_MAX_CONNECTIONS_DIVISOR} before RDS's reserved memory), "
              f"superuser_reserved_connections {reserved}; {clients} clients as an ordinary "
              f"role, each: connect, next task, submit, hold {hold:.1f} s, disconnect")
        print(f"  posts table: {posts:,} posts (10% with an image key) loaded in {loaded:.1f} s; "
              f"{post_bytes:,.0f} bytes per post with its indexes (pg_total_relation_size)")
        results = {}
        for name, proxy in (
                (f"proxy model: pool <= {PROXY_PERCENT}% = {cap}, borrow timeout "
                 f"{BORROW_TIMEOUT_S:.0f} s", ProxyModel(settings, cap, BORROW_TIMEOUT_S)),
                ("direct: each client its own connection (no proxy)", None)):
            before = admin.run("SELECT count(*) FROM labels")[0][0]
            log_at = server.log.stat().st_size
            result = storm(uri, settings, coders, hold, proxy)
            stored = admin.run("SELECT count(*) FROM labels")[0][0] - before
            with server.log.open("rb") as handle:
                handle.seek(log_at)
                log = handle.read().decode(errors="replace")
            refused = sum(log.count(m) for m in ("too many clients already",
                                                  "remaining connection slots are reserved"))
            results["proxy" if proxy else "direct"] = result
            print(f"  {name}")
            print(f"    requests: {result['ok']} ok, {result['failed']} failed, "
                  f"{result['not_sent']} not sent (their client had failed); labels stored "
                  f"{stored}; {result['seconds']:.1f} s")
            print(f"    most connections at once: {result['server_peak']} seen by the server "
                  f"(pg_stat_activity, polled), {result['client_peak']} opened by the clients"
                  f"{' (the pool)' if proxy else ' at once'}")
            label = "borrow wait" if proxy else "connect"
            print(f"    {label} p50 {result['wait_p50']:.1f} ms, p99 {result['wait_p99']:.1f} ms;"
                  f" request (next task or submit) p50 {result['request_p50']:.1f} ms, "
                  f"p99 {result['request_p99']:.1f} ms")
            for message, n in result["errors"].most_common():
                print(f"    {n} x {message}")
            print(f"    the server's log: {refused} connections refused over its limit (FATAL "
                  "53300; a client that had not read the FATAL before the server closed the "
                  "socket reports a network error)")
        admin.close()
        return results
    finally:
        server.cleanup()


# ---- 2. export ---------------------------------------------------------------------------------


def text_rows(n: int, seed: int = 3) -> list[dict]:
    """``n`` kept rows of the child family as ``kept_rows`` gives them (text only), each with
    its own lists, answers drawn over every age option."""
    fam = codebook.family("child")
    ages = [o.value for q in fam.questions if q.name == "age" for o in q.options]
    patterns = [codebook.label_columns("child", {"is_child": False})] * 3 + [
        codebook.label_columns("child", {"is_child": True, "age": [a]}) for a in ages]
    rng = random.Random(seed)
    words = keywords("child")
    rows = []
    for i in range(n):
        columns = patterns[rng.randrange(len(patterns))]
        kw = words[i % len(words)]
        rows.append({
            "post_id": f"{1_400_000_000_000_000_000 + i}",
            "text": f"{FILLER[i % len(FILLER)].format(kw=kw)} #{i % 997} {rng.random():.8f}",
            "keyword": kw, "image_key": None, "author": f"user{i % 50_000}",
            "gate": columns["gate"], "study_labels": list(columns["study_labels"]),
            "multi_hot": list(columns["multi_hot"]),
            "study_soft_labels": [float(v) for v in columns["study_labels"]],
            "soft_labels": [float(v) for v in columns["multi_hot"]],
            "confidence": 0.9 + rng.random() / 10, "n_coders": 1 + i % 3,
            "sampling_weight": 1.0, "calibrated_weight": None})
    return rows


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def plan_and_merge(uri: str, rows: list[dict], shards: int, manifest: dict,
                   tmp: Path) -> dict[str, float]:
    """The serial steps of a sharded export: the plan reads the family from PostgreSQL (here
    its post ids, a stand-in: the job reads whole rows), then plans it as the export job's
    Plan task does (``trainset.export.shards.plan_family``: the stable hash of every id,
    author figures, the records' columns) and stores each shard's input
    (``shard_payload``, written to a file as the job puts it in S3); the merge sums
    ``shards`` manifests into one."""
    from trainset.export import shards as sharding

    conn = connect(parse_url(uri))
    conn.run("CREATE UNLOGGED TABLE plan_ids (post_id text PRIMARY KEY)")
    conn.run("COPY plan_ids FROM STDIN", stream=iter_lines([r["post_id"] for r in rows]))
    start = time.perf_counter()
    ids = [r[0] for r in conn.run("SELECT post_id FROM plan_ids")]
    read_s = time.perf_counter() - start
    conn.run("DROP TABLE plan_ids")
    conn.close()
    del ids

    start = time.perf_counter()
    plan = sharding.plan_family(rows, "child")
    plan_s = time.perf_counter() - start
    start = time.perf_counter()
    stored = 0
    items = plan.items()
    for item in items:
        payload = sharding.shard_payload(plan, item)
        (tmp / f"{item['file']}.npz").write_bytes(payload)
        stored += len(payload)
        del payload
    store_s = time.perf_counter() - start
    del plan

    # The merge: each child's manifest (its share of the splits' counts and its shard files).
    parts = []
    for s in range(shards):
        parts.append({**manifest, "records": manifest["records"] // shards,
                      "splits": {name: {**v, "records": v["records"] // shards}
                                 for name, v in manifest["splits"].items()},
                      "shards": manifest["shards"][s::shards]})
    (tmp / "parts.json").write_text(json.dumps(parts, default=str))
    start = time.perf_counter()
    loaded = json.loads((tmp / "parts.json").read_text())
    merged = {**loaded[0], "records": sum(p["records"] for p in loaded),
              "shards": [s for p in loaded for s in p["shards"]],
              "splits": {name: {"records": sum(p["splits"][name]["records"] for p in loaded),
                                "labels": dict(sum((Counter(p["splits"][name]["labels"])
                                                    for p in loaded), Counter()))}
                         for name in loaded[0]["splits"]}}
    (tmp / "dataset.json").write_text(json.dumps(merged, default=str))
    merge_s = time.perf_counter() - start
    return {"read": read_s, "plan": plan_s, "store": store_s, "merge": merge_s,
            "inputs": len(items), "input_mb": stored / 1e6}


def iter_lines(values: list[str]) -> Any:
    import io

    return io.BytesIO(("\n".join(values) + "\n").encode())


def run_export(tmp: Path, n: int, uri: str, concurrencies: list[int]) -> dict[str, Any]:
    from trainset.export import tfrecords

    start = time.perf_counter()
    import tensorflow as tf  # noqa: F401 - a cold import: what each new export child pays

    tf_import = time.perf_counter() - start
    gc.collect()
    base = rss_mb()
    start = time.perf_counter()
    rows = text_rows(n)
    made = time.perf_counter() - start
    rows_mb = rss_mb() - base
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = tmp / "export"
    out.mkdir()
    start = time.perf_counter()
    manifest = tfrecords.export_posts(rows, "child", out)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = sum(s["bytes"] for s in manifest["shards"]) / 1e6
    print(f"  {n:,} text records (child family, generated in {made:.1f} s; held as rows: "
          f"{rows_mb:,.0f} MB, {rows_mb * 2**20 / n:,.0f} bytes per record)")
    print(f"    serial export_posts (build from columns, shard, write GZIP, verify): "
          f"{total:.1f} s, {n / total:,.0f} rec/s, {size:,.0f} MB in "
          f"{len(manifest['shards'])} shards, {manifest['records']:,} records verified")
    print(f"    process peak memory {peak:,.0f} MB (before the export {peak_before:,.0f} MB; "
          f"TensorFlow and the rows included); a cold `import tensorflow`: {tf_import:.1f} s")
    sharded_figures(rows[:SHARDED_ROWS], tmp)
    shards = max(concurrencies)
    parts = plan_and_merge(uri, rows, shards, manifest, tmp)
    del rows
    gc.collect()
    # The serial export plans too (plan_family is part of ``total``): the children do the rest.
    children = total - parts["plan"]
    serial = parts["read"] + parts["plan"] + parts["store"] + parts["merge"]
    fraction = serial / (serial + children)
    merge_only = parts["merge"] / (parts["merge"] + total)
    print(f"    serial steps of a sharded run, measured on the same {n:,} records: plan "
          f"{serial - parts['merge']:.2f} s (read the ids from PostgreSQL {parts['read']:.2f} s, "
          f"a stand-in for reading the rows; plan_family {parts['plan']:.2f} s; every shard's "
          f"stored input {parts['store']:.2f} s: {parts['inputs']} inputs, "
          f"{parts['input_mb']:,.0f} MB), merge {shards} manifests {parts['merge']:.3f} s; "
          f"the children's work is the serial export less its plan: {children:.1f} s")
    print(f"    serial fraction s = (plan + merge) / (plan + children + merge) = {fraction:.3f}; "
          f"{merge_only:.4f} if the plan only hands out shard numbers (each child selecting "
          "and planning its posts by the hash in SQL) and the merge alone stays serial")
    print("    wall time with C children = serial steps + children's work / C (Amdahl), against "
          f"the serial export's {total:.1f} s; and with each child's cold TensorFlow import "
          f"({tf_import:.1f} s here) once:")
    for c in concurrencies:
        wall = serial + children / c
        best = parts["merge"] + total / c
        print(f"      C = {c:>3}: {wall:6.1f} s ({total / wall:4.1f}x), merge only {best:6.1f} s "
              f"({total / best:5.1f}x); with each child's start {wall + tf_import:6.1f} s")
    return {"total": total, "fraction": fraction, "merge_only": merge_only,
            "tf_import": tf_import, **parts}


SHARDED_ROWS = 200_000  # the sharded path serialises each shard's input: a subset keeps memory low


def sharded_figures(rows: list[dict], tmp: Path, workers: int = 2) -> None:
    """The sharded path (``trainset.export.shards.export_sharded``, as the export job's
    Distributed Map runs it, here ``workers`` threads on this machine) against the single
    writer (``export_family``) on the same rows: wall time, speedup, and the bytes compared."""
    from trainset.export import shards

    def digests(folder: Path) -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.glob("*.tfrecord*"))}

    single_dir, sharded_dir = tmp / "single", tmp / "sharded"
    single_dir.mkdir()
    sharded_dir.mkdir()
    start = time.perf_counter()
    single = shards.export_family(rows, "child", single_dir)
    single_s = time.perf_counter() - start
    start = time.perf_counter()
    shards.export_sharded(rows, "child", sharded_dir, workers=workers)
    sharded_s = time.perf_counter() - start
    same = digests(single_dir) == digests(sharded_dir)
    print(f"    sharded path on {len(rows):,} of these records, {workers} threads here: "
          f"{sharded_s:.1f} s against the single writer's {single_s:.1f} s "
          f"({single_s / sharded_s:.2f}x) over {len(single['shards'])} shards; files byte for "
          f"byte equal: {same} (each shard's input serialised as the export job stores it; "
          "in AWS each shard is a Lambda of its own: the estimates below divide the build by C)")


# ---- 3. storage per image post -------------------------------------------------------------------


def image_storage() -> dict[str, float]:
    """Bytes an image post stores in S3: bench/augment.py's 1024x768 JPEG as the upload and the
    ten 280x280 variants ``trainset.images.augment`` makes of it (JPEG, the Lambda's settings)."""
    from augment import bench_jpeg

    from trainset.images.augment import augment_bytes

    upload = bench_jpeg()
    variants = augment_bytes(upload).variants
    sizes = [len(v.data) for v in variants]
    print(f"  upload {len(upload) / 1e3:.0f} kB (1024x768 JPEG, bench/augment.py's input) + "
          f"{len(sizes)} variants {sum(sizes) / 1e3:.0f} kB ({min(sizes) / 1e3:.0f}-"
          f"{max(sizes) / 1e3:.0f} kB each) = {(len(upload) + sum(sizes)) / 1e3:.0f} kB per "
          "image post")
    return {"upload": len(upload), "variants": sum(sizes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--max-connections", type=int, default=80,
                        help="the server's max_connections (default: a db.t4g.micro's ~80)")
    parser.add_argument("--hold", type=float, default=1.0,
                        help="seconds each client stays connected after its requests")
    parser.add_argument("--posts", type=int, default=20_000,
                        help="posts in the storm's database (for bytes per post)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 10, 20, 50, 100])
    args = parser.parse_args()

    print("scale benchmark: the load model's local pieces (docs/scale.md)")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"connection storm: {args.clients} clients at once")
        results = run_storm(Path(tmp) / "storm", args.clients, args.max_connections,
                            args.hold, args.posts)
        print(f"export: {args.records:,} text records, serial, and what sharding would give")
        server, uri = start_postgres(Path(tmp) / "export-db", 100)
        try:
            run_export(Path(tmp), args.records, uri, sorted(set(args.concurrency)))
        finally:
            server.cleanup()
    print("storage per image post (S3)")
    image_storage()
    failed = results["proxy"]["failed"]
    print(f"result: through the proxy model {failed} failed requests (must be 0); without it "
          f"{results['direct']['failed']} failed")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    sys.exit(main())
