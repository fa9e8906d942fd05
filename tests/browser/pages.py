"""Helpers the browser tests share: signing in with the keyboard, reading the outbox and the
labels table, running axe-core, checking focus rings; the manager view's uploads, imports and
downloads under the real local server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import expect

TODDLER = "1 to 4 years (toddler/pre-school)"


def open_start_page(page, stack, name: str, consent: bool = True) -> None:
    """Keyboard only: type the token, Enter, accept the content warning with Enter."""
    page.goto(stack.base_url + "/")
    expect(page.locator("#token")).to_be_focused()  # the page puts the cursor there
    page.keyboard.type(stack.token(name))
    page.keyboard.press("Enter")
    if consent:
        expect(page.locator("#btn-consent")).to_be_focused()
        page.keyboard.press("Enter")
    expect(page.locator("#view-start")).to_be_visible()


def sign_in_again(page, stack, name: str) -> None:
    """From the sign-in screen, on a page already loaded."""
    expect(page.locator("#token")).to_be_visible()
    page.locator("#token").fill(stack.token(name))
    page.keyboard.press("Enter")
    page.wait_for_function("""() => !document.getElementById('view-consent').hidden
        || !document.getElementById('view-start').hidden""")
    consent = page.locator("#btn-consent")
    if consent.is_visible():
        consent.click()
    expect(page.locator("#view-start")).to_be_visible()


def sign_in(page, stack, name: str, family_key: str = "2") -> None:
    """Sign in, then pick a family by its number (2 = child)."""
    open_start_page(page, stack, name)
    pick_family(page, family_key)


def pick_family(page, key: str = "2") -> None:
    """On the start screen: press a family's number and wait for its first post."""
    page.keyboard.press(key)
    expect(page.locator("#task-body")).to_be_visible()
    expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#post-text")).not_to_be_empty()


def current_post(page) -> str:
    return page.locator("#post-text").inner_text()


def labels(stack, coder: str | None = None):
    """Rows of the labels table: (post_id, revision, answers, kind, coder name)."""
    rows = stack.db.run(
        "SELECT l.post_id, l.revision, l.answers, l.kind, c.name FROM labels l"
        " JOIN coders c ON c.id = l.coder_id ORDER BY l.id")
    return [r for r in rows if coder is None or r[4] == coder]


def outboxes(page) -> dict:
    """Every outbox on this device: {coder name: [queued bodies]}."""
    raw = page.evaluate("""() => Object.keys(localStorage)
        .filter((k) => k.startsWith('trainset.outbox.v2|'))
        .map((k) => localStorage.getItem(k))""")
    out = {}
    for text in raw:
        record = json.loads(text)
        if record["items"]:
            out[record["coder"]["name"]] = [i["body"] for i in record["items"]]
    return out


def run_axe(page, axe_source: str, what: str) -> None:
    """axe-core on the page as it is now: no violations (any impact, WCAG 2.x A/AA and best
    practices)."""
    if not page.evaluate("() => Boolean(window.axe)"):
        page.evaluate(axe_source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary)}));
    }""")
    assert result == [], f"axe violations on {what}: {json.dumps(result, indent=1)}"


FOCUS_RING = "\n".join(
    line for line in (Path(__file__).parent / "focus_ring.js").read_text(encoding="utf-8")
    .splitlines() if not line.startswith("//"))


def check_focus_rings(page, presses: int, what: str) -> list:
    """Tab `presses` times; each focused control shows one ring of >= 2px at >= 3:1."""
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        ring = page.evaluate(FOCUS_RING)
        if ring is None:
            continue
        seen.append(ring["element"])
        assert ring["rings"] == 1, f"{what}: {ring}"
        assert ring["width"] >= 2 and ring["offset"] >= 1 and ring["ratio"] >= 3, f"{what}: {ring}"
    return seen


@dataclass
class LiveStack:
    """What the sign-in helpers need under the real local server (`trainset run`): where the
    page is and each person's token."""

    base_url: str
    tokens: dict

    def token(self, name: str) -> str:
        return self.tokens[name]


def open_manager_view(page, stack, name: str = "boss") -> None:
    """Sign in as a manager and open the manager view."""
    open_start_page(page, stack, name)
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#import-list")).to_be_visible()


def upload(page, name: str, data: bytes, mime: str = "text/csv", kind: str = "corpus",
           purpose: str | None = None) -> None:
    """Upload a file from the manager view's uploads form (kind, and purpose for gold)."""
    page.locator("#upload-kind").select_option(kind)
    if purpose is not None:
        page.locator("#upload-purpose").select_option(purpose)
    page.locator("#upload-file").set_input_files({"name": name, "mimeType": mime, "buffer": data})
    page.get_by_role("button", name="Upload").click()


def import_row(page, filename: str):
    """The imports list's row for an uploaded file."""
    return page.locator("#import-list tr[data-import]", has_text=filename)


def download(page, link, folder: Path | None = None) -> Path:
    """Click a download link; the downloaded file's path (saved under its suggested name in
    ``folder`` when given). Chromium starts at most 10 downloads a second from a page: click
    fewer in a row, or fetch the rest with ``fetch_link``."""
    with page.expect_download() as event:
        link.click()
    if folder is None:
        return Path(event.value.path())
    target = folder / event.value.suggested_filename
    event.value.save_as(target)
    return target


def fetch_link(page, link, folder: Path) -> Path:
    """Fetch the file a link on the page points to (its href, with the page's context), saved
    under the link's download name in ``folder``."""
    from urllib.parse import urljoin

    response = page.context.request.get(urljoin(page.url, link.get_attribute("href")))
    assert response.ok, f"{response.status} {response.url}"
    assert "attachment" in response.headers.get("content-disposition", "")
    target = folder / link.get_attribute("download")
    target.write_bytes(response.body())
    return target
