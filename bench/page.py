"""Benchmark: how fast the labeling page shows the first task after sign-in, and per post.

Starts the local stack (embedded PostgreSQL in a temporary folder, the same LocalServer as
`make run`), then in Debian's chromium: types a token, accepts the warning, picks a family,
and times until the first post is on screen; then labels posts with the keyboard and times
each submit-to-next-post. The reference, in the same run, is the bare HTTP calls the page
needs for its first task (config, codebook, /me, /tasks/next) made from Python.

    python bench/page.py [--runs 10] [--posts 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "chalice_app"))
sys.path.insert(0, str(ROOT / "bench"))

from assign import reset  # noqa: E402

from trainset import tokens  # noqa: E402
from trainset.blobs.local import LocalBlobs  # noqa: E402
from trainset.local.server import LocalServer, make_gateway  # noqa: E402
from trainset.store.db import Pool, connect, parse_url  # noqa: E402
from trainset.store.migrations import migrate  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


# Checked on every animation frame, so the timings are not rounded to a polling interval.
VISIBLE = "id => !document.getElementById(id).hidden"
TEXT_NOT = ("old => { const t = document.getElementById('post-text').textContent;"
            " return t && t !== old; }")


def fetch(url: str, token: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        json.loads(response.read() or b"null")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--posts", type=int, default=20)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    import os

    import pgserver
    from playwright.sync_api import expect, sync_playwright

    os.environ.setdefault("TRAINSET_TOKEN_SECRET", "bench-page-secret-0123456789abcdef")
    from app import app

    from chalicelib import runtime

    with tempfile.TemporaryDirectory() as tmp:
        server_pg = pgserver.get_server(str(Path(tmp) / "pg"), cleanup_mode="delete")
        url = server_pg.get_uri()
        conn = connect(parse_url(url))
        migrate(conn)
        coders = reset(conn, args.runs * 2 + args.posts + 10, args.runs + 1)
        conn.close()
        pool = Pool(parse_url(url))
        blobs = LocalBlobs(Path(tmp) / "blobs")
        runtime.configure(database_pool=pool, gold_rate=0.0, image_url=blobs.url)
        http = LocalServer(("127.0.0.1", 0), gateway=make_gateway(app),
                           site_dir=ROOT / "static_site", blobs=blobs)
        threading.Thread(target=http.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{http.server_address[1]}"
        token = {c.name: tokens.mint(c.id, c.name, os.environ["TRAINSET_TOKEN_SECRET"])
                 for c in coders}

        reference = []
        for i in range(args.runs):
            start = time.perf_counter()
            fetch(base + "/config.json")
            fetch(base + "/api/codebook")
            fetch(base + "/api/me", token[coders[i].name])
            fetch(base + "/api/tasks/next?family=child", token[coders[i].name])
            reference.append((time.perf_counter() - start) * 1000)

        first, per_post = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for i in range(args.runs):
                coder = coders[i]
                page = browser.new_context().new_page()
                page.goto(base + "/")
                expect(page.locator("#token")).to_be_focused()
                page.fill("#token", token[coder.name])
                page.evaluate(f"localStorage.setItem('trainset.consent.{coder.id}', 'bench')")
                start = time.perf_counter()
                page.keyboard.press("Enter")
                page.wait_for_function(VISIBLE, arg="view-start", polling="raf")
                page.keyboard.press("2")
                page.wait_for_function(TEXT_NOT, arg="", polling="raf")
                first.append((time.perf_counter() - start) * 1000)
                page.context.close()
            page = browser.new_context().new_page()
            worker = coders[args.runs]
            page.goto(base + "/")
            expect(page.locator("#token")).to_be_focused()
            page.fill("#token", token[worker.name])
            page.evaluate(f"localStorage.setItem('trainset.consent.{worker.id}', 'bench')")
            page.keyboard.press("Enter")
            expect(page.locator("#view-start")).to_be_visible()
            page.keyboard.press("2")
            for _ in range(args.posts):
                text = page.locator("#post-text").inner_text()
                page.keyboard.press("2")
                start = time.perf_counter()
                page.keyboard.press("Enter")
                page.wait_for_function(TEXT_NOT, arg=text, polling="raf")
                per_post.append((time.perf_counter() - start) * 1000)
            browser.close()
        http.shutdown()
        pool.close()
        server_pg.cleanup()

    def summary(values: list[float]) -> str:
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
        return f"median {statistics.median(values):6.1f} ms   p95 {p95:6.1f} ms"

    print(f"page benchmark: local stack, Debian chromium, {args.runs} sign-ins, "
          f"{args.posts} posts")
    print(f"  sign-in -> first task on screen        {summary(first)}")
    print(f"  reference: the same API calls, bare    {summary(reference)}")
    print(f"  ratio page / bare calls (median)       "
          f"{statistics.median(first) / statistics.median(reference):.1f}x")
    print(f"  Enter -> next post on screen           {summary(per_post)}")


if __name__ == "__main__":
    main()
