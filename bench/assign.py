"""Benchmark: concurrent task assignment + label submission against a real PostgreSQL.

N simulated coders (threads, one connection each) run next-task + submit cycles through the
service layer; then the same work runs as bare SQL statements from Python; then the same two
statements driven by pgbench from N clients (the database's own floor, free of Python's
interpreter lock); then next task + submit over real HTTP against the real local server
(`python -m trainset run`) from N concurrent clients, each with its own token. Prints
cycles/s, p50/p99 latency, duplicate assignments, lost and misattributed labels, and the
service/pgbench and HTTP/pgbench ratios; then one coder's API latency per route.

    python bench/assign.py [--threads 32] [--cycles 6000] [--api-requests 400]

Uses TRAINSET_DATABASE_URL when set (a scratch database is created there), else an embedded
PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "chalice_app"))

from harness import database, local_server  # noqa: E402

from trainset.models import Coder  # noqa: E402
from trainset.services import corpus  # noqa: E402
from trainset.services.labeling import CoderAdmin, LabelingService, LabelingSettings  # noqa: E402
from trainset.store.corpus import CorpusStore  # noqa: E402
from trainset.store.db import Pool, connect, parse_url  # noqa: E402
from trainset.store.labeling import LabelingStore  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402

ANSWERS = {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def reset(conn, n_posts: int, n_coders: int) -> list[Coder]:
    conn.run("TRUNCATE labels, skips, gold_leases, gold_posts, tasks, campaign_posts, campaigns,"
             " posts, audit_log, coders RESTART IDENTITY CASCADE")
    corpus.add_posts(CorpusStore(conn), (
        {"id": f"b{i:07d}", "text": f"bench post {i} about a toddler", "keyword": "toddler",
         "family": "child"} for i in range(n_posts)))
    corpus.add_campaign(CorpusStore(conn), name="bench", family="child",
                        post_ids=[f"b{i:07d}" for i in range(n_posts)], labels_per_post=1)
    admin = CoderAdmin(LabelingStore(conn))
    return [admin.create(None, {"name": f"bench{i}", "status": "certified"})
            for i in range(n_coders)]


def run_threads(url: str, coders: list[Coder], cycles: int,
                make_cycle: Callable) -> dict:
    """Run ``cycles`` next+submit cycles through ``make_cycle(conn, coder)``, split across
    one thread (and database connection) per coder."""

    def open_cycle(coder: Coder) -> tuple[Callable[[], Any], Callable[[], None]]:
        conn = connect(parse_url(url))
        return make_cycle(conn, coder), conn.close

    result = timed_threads(coders, cycles, open_cycle)
    result["served"] = [p for row in result.pop("results") for p in row]
    return result


def timed_threads(coders: list[Coder], cycles: int,
                  open_cycle: Callable[[Coder], tuple[Callable[[], Any], Callable[[], None]]]
                  ) -> dict:
    """One thread per coder, all released at once, running ``cycles`` in all: each thread's
    cycle returns what it served (None: nothing left). Cycles/s and latency percentiles;
    ``results`` holds what each coder's cycles returned."""
    per_thread = [cycles // len(coders) + (i < cycles % len(coders)) for i in range(len(coders))]
    latencies: list[list[float]] = [[] for _ in coders]
    results: list[list[Any]] = [[] for _ in coders]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(coders) + 1)

    def worker(i: int) -> None:
        cycle, close = open_cycle(coders[i])
        try:
            barrier.wait()
            for _ in range(per_thread[i]):
                start = time.perf_counter()
                served = cycle()
                if served is None:
                    break
                latencies[i].append(time.perf_counter() - start)
                results[i].append(served)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(coders))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    flat = [x for row in latencies for x in row]
    done = sum(len(row) for row in results)
    return {
        "cycles": done,
        "seconds": elapsed,
        "cycles_per_s": done / elapsed,
        "p50_ms": percentile(flat, 0.50) * 1000,
        "p99_ms": percentile(flat, 0.99) * 1000,
        "results": results,
    }


def service_cycle(conn, coder: Coder) -> Callable[[], str | None]:
    svc = LabelingService(LabelingStore(conn), LabelingSettings(gold_rate=0.0))

    def cycle() -> str | None:
        task = svc.next_task(coder, "child")["task"]
        if task is None:
            return None
        svc.submit(coder, {"submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                           "family": "child", "answers": ANSWERS})
        return task["post_id"]

    return cycle


LEASE_SQL = (
    "WITH pick AS (SELECT id FROM tasks WHERE family = 'child' AND status = 'open'"
    " ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)"
    " UPDATE tasks t SET status = 'leased', coder_id = {coder}, leased_at = now(),"
    " lease_expires_at = now() + interval '15 minutes' FROM pick WHERE t.id = pick.id"
    " RETURNING t.id AS task_id, t.post_id AS post_id"
)
STORE_SQL = (
    "WITH l AS (INSERT INTO labels (submission_id, post_id, family, coder_id, revision,"
    " kind, task_id, answers, coder_status) VALUES ({sid}, {post}, 'child',"
    " {coder}, 1, 'task', {task}, CAST({answers} AS jsonb), 'certified'))"
    " UPDATE tasks SET status = 'done', done_at = now() WHERE id = {task}"
)


def bare_sql_cycle(conn, coder: Coder) -> Callable[[], str | None]:
    """The least work that still leases atomically and stores a label: two autocommit
    statements, no validation, no checks, no progress counts."""
    answers = json.dumps(ANSWERS)

    def cycle() -> str | None:
        rows = conn.run(LEASE_SQL.format(coder=":coder"), coder=coder.id)
        if not rows:
            return None
        task_id, post_id = rows[0]
        conn.run(STORE_SQL.format(sid="CAST(:sid AS uuid)", post=":post", coder=":coder",
                                  task=":task", answers=":answers"),
                 sid=str(uuid.uuid4()), post=post_id, coder=coder.id, task=task_id,
                 answers=answers)
        return post_id

    return cycle


def pgbench_floor(url: str, coders: list[Coder], cycles: int) -> dict:
    """The bare cycle's two statements run by pgbench: one client per coder, prepared
    statements, ``cycles`` transactions in all. Returns cycles/s and latency."""
    script = "\n".join([
        "\\set coder :client_id + " + str(coders[0].id),
        LEASE_SQL.format(coder=":coder") + " \\gset",
        STORE_SQL.format(sid="gen_random_uuid()", post=":post_id", coder=":coder",
                         task=":task_id", answers="'" + json.dumps(ANSWERS) + "'") + ";",
    ]) + "\n"
    return run_pgbench(url, script, len(coders), cycles, {})


def run_pgbench(url: str, script: str, clients: int, cycles: int,
                constants: dict[str, str]) -> dict:
    """Run ``script`` as one transaction of pgbench (``clients`` clients, prepared
    statements, ``cycles`` in all) and read its throughput and mean latency."""
    import pgserver

    binary = shutil.which("pgbench") or str(Path(pgserver.__file__).parent / "pginstall" / "bin"
                                            / "pgbench")
    settings = parse_url(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    env = {**os.environ, "PGPASSWORD": settings.password or ""}
    host = str(Path(settings.unix_sock).parent) if settings.unix_sock else settings.host
    command = [binary, "-n", "-M", "prepared", "-c", str(clients), "-j", "2",
               "-t", str(cycles // clients), "-f", handle.name, "-h", host,
               "-p", str(settings.port), "-U", settings.user, settings.database]
    command += [f"-D{name}={value}" for name, value in constants.items()]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    os.unlink(handle.name)
    if done.returncode != 0:
        raise RuntimeError("pgbench failed: " + done.stderr.strip()[-800:])
    tps = latency = None
    for line in done.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
        if line.startswith("latency average ="):
            latency = float(line.split()[3])
    return {"cycles_per_s": tps, "latency_ms": latency,
            "cycles": (cycles // clients) * clients}


def record_cycles(url: str, coder: Coder, n: int = 2) -> list[list[tuple]]:
    """The statements one service cycle sends (SQL, parameters, columns, first row), for
    ``n`` consecutive cycles of ``coder``: what the pgbench run of the same statements
    replays."""
    conn = connect(parse_url(url))
    cycle = service_cycle(conn, coder)
    cycle()  # the first cycle prepares statements; record the next ones
    recorded: list[list[tuple]] = []
    real = conn.run

    def run(sql: str, stream: Any = None, types: Any = None, **params: Any) -> Any:
        rows = real(sql, stream=stream, types=types, **params)
        columns = [c["name"] for c in (conn.columns or [])] if rows else []
        recorded[-1].append((sql, params, columns, rows[0] if rows else None))
        return rows

    conn.run = run
    for _ in range(n):
        recorded.append([])
        cycle()
    conn.close()
    return recorded


def service_script(recorded: list[list[tuple]], first_coder: int) -> tuple[str, dict[str, str]]:
    """A pgbench script replaying one recorded service cycle, and its ``-D`` constants.

    Each parameter becomes: the client's coder (``:client_id`` + the first coder's id); a
    value an earlier statement of the cycle returned (``\\gset``); a fresh UUID where the
    caller made one (the submission id); or, when it was the same in both recorded cycles, a
    constant."""
    first, second = recorded
    lines = [f"\\set coder :client_id + {first_coder}"]
    constants: dict[str, str] = {}
    produced: dict[Any, str] = {}
    needed: set[int] = set()
    bodies = []
    for j, ((sql, params, columns, row), (_, again, _, _)) in enumerate(
            zip(first, second, strict=True)):
        text = sql
        for name, value in params.items():
            if name == "coder":
                target = "coder"
            elif value is None:
                text = re.sub(rf"(?<![:\w]):{name}\b", "NULL", text)
                continue
            elif value == again[name]:
                target = f"c{j}_{name}"
                constants[target] = (value.isoformat() if hasattr(value, "isoformat")
                                     else json.dumps(value) if isinstance(value, dict | list)
                                     else str(value).lower() if isinstance(value, bool)
                                     else str(value))
            elif isinstance(value, str | int) and value in produced:
                target = produced[value]
                needed.add(int(target.split("_")[0][1:]))
            else:  # made by the caller each cycle: the submission id
                uuid.UUID(str(value))
                target = f"u{j}_{name}"
                lines.append(f"SELECT gen_random_uuid() AS {target} \\gset")
                produced[value] = target
            text = re.sub(rf"(?<![:\w]):{name}\b", ":" + target, text)
        bodies.append(text)
        if row is not None:
            for column, value in zip(columns, row, strict=True):
                if isinstance(value, str | int) and not isinstance(value, bool):
                    produced.setdefault(value, f"s{j}_{column}")
    for j, text in enumerate(bodies):
        lines.append(text + (f" \\gset s{j}_" if j in needed else ";"))
    return "\n".join(lines) + "\n", constants


def pgbench_service(url: str, coders: list[Coder], cycles: int) -> dict:
    """The service's own statements (recorded from one of its cycles), run by pgbench."""
    script, constants = service_script(record_cycles(url, coders[0]), coders[0].id)
    return run_pgbench(url, script, len(coders), cycles, constants)


def http_cycles(url: str, coders: list[Coder], cycles: int, tmp: Path) -> dict:
    """Next task + submit over HTTP against ``python -m trainset run`` on the same database,
    one keep-alive connection and token per coder, all coders at once."""
    import http.client

    from trainset import tokens

    secret = os.environ.setdefault("TRAINSET_TOKEN_SECRET", "bench-secret-" + uuid.uuid4().hex)
    env = {**os.environ, "TRAINSET_DATABASE_URL": url, "TRAINSET_HOME": str(tmp / "home"),
           "TRAINSET_GOLD_RATE": "0"}
    with local_server(env, tmp / "home") as base:
        port = int(base.rsplit(":", 1)[1].split("/")[0])

        def open_cycle(coder: Coder) -> tuple[Callable[[], Any], Callable[[], None]]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            headers = {"Authorization": "Bearer " + tokens.mint(coder.id, coder.name, secret),
                       "Content-Type": "application/json"}

            def cycle() -> tuple[str, str] | None:
                conn.request("GET", "/api/tasks/next?family=child", headers=headers)
                answer = conn.getresponse()
                body = answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"GET /tasks/next {answer.status}: {body[:200]!r}")
                task = json.loads(body)["task"]
                if task is None:
                    return None
                sid = str(uuid.uuid4())
                conn.request("POST", "/api/labels", headers=headers, body=json.dumps({
                    "submission_id": sid, "post_id": task["post_id"], "family": "child",
                    "answers": ANSWERS}))
                answer = conn.getresponse()
                body = answer.read()
                if answer.status != 200:
                    raise RuntimeError(f"POST /labels {answer.status}: {body[:200]!r}")
                return sid, task["post_id"]

            return cycle, conn.close

        result = timed_threads(coders, cycles, open_cycle)
    result["sent"] = {sid: (coders[i].id, post) for i, row in enumerate(result.pop("results"))
                      for sid, post in row}
    return result


def check_http(conn, result: dict) -> tuple[int, int, int]:
    """(duplicate assignments, acknowledged labels missing, labels under another coder)."""
    stored = {sid: (coder, post) for sid, coder, post in conn.run(
        "SELECT submission_id::text, coder_id, post_id FROM labels")}
    sent = result["sent"]
    posts = [post for _, post in sent.values()]
    missing = sum(1 for sid in sent if sid not in stored)
    wrong = sum(1 for sid, who in sent.items() if sid in stored and stored[sid] != who)
    return len(posts) - len(set(posts)), missing, wrong


def check(conn, result: dict) -> tuple[int, int]:
    """(duplicate assignments, lost labels) for a labels_per_post=1 campaign."""
    served = result["served"]
    duplicates = len(served) - len(set(served))
    stored = conn.run("SELECT count(*) FROM labels")[0][0]
    return duplicates, len(served) - stored


def api_latency(url: str, requests: int) -> dict:
    from app import app
    from chalice.test import Client

    from chalicelib import runtime
    from trainset import tokens

    os.environ.setdefault("TRAINSET_TOKEN_SECRET", "bench-secret-" + uuid.uuid4().hex)
    pool = Pool(parse_url(url))
    runtime.configure(database_pool=pool, gold_rate=0.0)
    conn = connect(parse_url(url))
    coder = reset(conn, requests, 1)[0]
    conn.close()
    headers = {"Authorization": "Bearer " + tokens.mint(coder.id, coder.name,
                                                        os.environ["TRAINSET_TOKEN_SECRET"]),
               "Content-Type": "application/json"}
    get_ms, post_ms = [], []
    with Client(app) as client:
        for _ in range(requests):
            start = time.perf_counter()
            task = json.loads(client.http.get("/tasks/next?family=child",
                                              headers=headers).body)["task"]
            get_ms.append((time.perf_counter() - start) * 1000)
            body = json.dumps({"submission_id": str(uuid.uuid4()), "post_id": task["post_id"],
                               "family": "child", "answers": ANSWERS})
            start = time.perf_counter()
            response = client.http.post("/labels", body=body, headers=headers)
            post_ms.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.body
    pool.close()
    return {"get_p50": statistics.median(get_ms), "get_p99": percentile(get_ms, 0.99),
            "post_p50": statistics.median(post_ms), "post_p99": percentile(post_ms, 0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--cycles", type=int, default=6000)
    parser.add_argument("--api-requests", type=int, default=400)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = database(Path(tmp))
        try:
            conn = connect(parse_url(url))
            migrate(conn)
            print(f"assign benchmark: {args.threads} coders, {args.cycles} cycles "
                  f"(next task + submit), PostgreSQL via pg8000")
            results = {}
            for name, make_cycle in (("bare SQL", bare_sql_cycle), ("service", service_cycle)):
                coders = reset(conn, args.cycles, args.threads)
                result = run_threads(url, coders, args.cycles, make_cycle)
                dup, lost = check(conn, result)
                results[name] = result
                print(f"  {name:<9} {result['cycles_per_s']:8.0f} cycles/s   "
                      f"p50 {result['p50_ms']:6.1f} ms   p99 {result['p99_ms']:6.1f} ms   "
                      f"duplicates {dup}   lost {lost}   ({result['cycles']} cycles in "
                      f"{result['seconds']:.1f} s)")
            coders = reset(conn, args.cycles, args.threads)
            floor = pgbench_floor(url, coders, args.cycles)
            stored = conn.run("SELECT count(*) FROM labels")[0][0]
            print(f"  pgbench   {floor['cycles_per_s']:8.0f} cycles/s   "
                  f"mean {floor['latency_ms']:6.1f} ms   ({floor['cycles']} cycles, "
                  f"{stored} labels stored; the two bare statements, {args.threads} clients)")
            coders = reset(conn, args.cycles + 10, args.threads)
            same = pgbench_service(url, coders, args.cycles)
            stored = conn.run("SELECT count(*) FROM labels")[0][0]
            print(f"  pgbench   {same['cycles_per_s']:8.0f} cycles/s   "
                  f"mean {same['latency_ms']:6.1f} ms   ({same['cycles']} cycles, {stored} "
                  "labels stored; the service's own statements, recorded from a cycle)")
            coders = reset(conn, args.cycles, args.threads)
            web = http_cycles(url, coders, args.cycles, Path(tmp))
            dup, lost, wrong = check_http(conn, web)
            print(f"  {'HTTP':<9} {web['cycles_per_s']:8.0f} cycles/s   "
                  f"p50 {web['p50_ms']:6.1f} ms   p99 {web['p99_ms']:6.1f} ms   "
                  f"duplicates {dup}   lost {lost}   wrong coder {wrong}   ({web['cycles']} "
                  f"cycles in {web['seconds']:.1f} s; {args.threads} clients, one token each, "
                  "python -m trainset run)")
            conn.close()
            service_rate = results["service"]["cycles_per_s"]
            print(f"  ratios: service / bare SQL "
                  f"{service_rate / results['bare SQL']['cycles_per_s']:.2f}")
            for name, floor_rate in (("pgbench, the service statements", same["cycles_per_s"]),
                                     ("pgbench, two bare statements", floor["cycles_per_s"])):
                print(f"  against {name}: service {service_rate / floor_rate:.2f} (target >= 0.5),"
                      f" HTTP {web['cycles_per_s'] / floor_rate:.2f} (target >= 0.25)")
            api = api_latency(url, args.api_requests)
            print(f"  API (chalice.test.Client, 1 coder, {args.api_requests} cycles): "
                  f"GET /tasks/next p50 {api['get_p50']:.1f} ms p99 {api['get_p99']:.1f} ms; "
                  f"POST /labels p50 {api['post_p50']:.1f} ms p99 {api['post_p99']:.1f} ms")
        finally:
            cleanup()


if __name__ == "__main__":
    main()
