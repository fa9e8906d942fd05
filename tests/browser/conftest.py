"""A real browser (Debian's chromium, driven by Playwright) against the local stack.

The stack is the same LocalServer `make run` uses, on a free port, over the session's real
database (emptied per test) with a small corpus, practice posts and coders. ``live`` is the
real `python -m trainset run` (with its S3 stand-in, import runner and export runner), and
``manager_page`` a manager's page on it with the policy's violations recorded.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from chalicelib import runtime
from tests.factories import make_campaign, make_coder, make_gold, make_posts
from trainset import tokens
from trainset.blobs.local import LocalBlobs
from trainset.cli import repo_root
from trainset.local.secrets import local_token_secret
from trainset.local.server import LocalServer, make_gateway

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed; `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()


@dataclass
class Stack:
    base_url: str
    db: object
    coders: dict
    blobs: LocalBlobs

    def token(self, name: str) -> str:
        coder = self.coders[name]
        return tokens.mint(coder.id, coder.name, local_token_secret())


@pytest.fixture()
def stack(db, db_pool, tmp_path):
    from app import app

    blobs = LocalBlobs(tmp_path / "blobs")
    runtime.configure(database_pool=db_pool, gold_rate=0.0, lease_seconds=600,
                      image_url=blobs.url)
    ids = make_posts(db, 6, prefix="post", family="child")
    make_campaign(db, ids, family="child")
    practice = make_posts(db, 3, prefix="practice", family="child")
    for post_id in practice:
        make_gold(db, post_id, "practice")
    coders = {
        "ana": make_coder(db, "ana"),
        "bea": make_coder(db, "bea"),
        "tia": make_coder(db, "tia", status="trainee"),
        "boss": make_coder(db, "boss", role="manager"),
    }
    server = LocalServer(("127.0.0.1", 0), gateway=make_gateway(app),
                         site_dir=repo_root() / "static_site", blobs=blobs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Stack(f"http://127.0.0.1:{server.server_address[1]}", db, coders, blobs)
    server.shutdown()
    server.server_close()


@pytest.fixture()
def page(browser, stack):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(10_000)
    requests: list[str] = []
    failed: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.requests = requests
    page.failed_responses = failed
    yield page
    context.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    """axe-core's script, fetched from npm into .venv/node when missing (`make axe`)."""
    from tests.browser import vendor_axe

    return vendor_axe.ensure().read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory):
    """`python -m trainset run` on the session's database, for a module's tests."""
    from tests.live.conftest import serving

    with serving(database_url, tmp_path_factory.mktemp("browser-live")) as server:
        yield server


@pytest.fixture()
def manager_page(browser, live, db):
    """boss (a manager) in the manager view of ``live``; downloads accepted, the page's
    Content-Security-Policy violations in ``window.__violations``, console errors kept in
    ``page.console_errors``, ``page.live_stack`` for signing in again."""
    from tests.browser.pages import LiveStack, open_manager_view
    from tests.browser.test_csp import LISTEN
    from tests.live.conftest import token_for

    boss = make_coder(db, "boss", role="manager")
    stack = LiveStack(live.base, {"boss": token_for(boss)})
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.console_errors = errors
    page.live_stack = stack
    open_manager_view(page, stack)
    yield page
    context.close()
