"""The page works under its Content-Security-Policy (trainset.web_headers.LOCAL_PAGE_HEADERS):
no inline script or style, no inline handlers, no eval. Every screen is walked through with the
policy enforced, and not one violation is reported."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.pages import current_post, open_start_page, pick_family
from trainset.web_headers import LOCAL_PAGE_HEADERS

POLICY = LOCAL_PAGE_HEADERS["Content-Security-Policy"]

LISTEN = """document.addEventListener('securitypolicyviolation', (e) => {
    (window.__violations = window.__violations || []).push(
      e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '') + ':' + e.lineNumber);
  });"""


def test_the_page_runs_under_its_content_security_policy(page, stack):
    policies = []

    def with_policy(route):
        # The local server sends the policy: make sure it is there, and exact.
        response = route.fetch()
        policies.append(response.headers.get("content-security-policy"))
        headers = {**response.headers, "content-security-policy": POLICY}
        route.fulfill(response=response, headers=headers)

    page.route(lambda url: url.startswith(stack.base_url) and not urlsplit(url).path
               .startswith("/api/"), with_policy)
    page.add_init_script(LISTEN)
    messages = []
    page.on("console", lambda m: messages.append(m.text) if m.type == "error" else None)

    open_start_page(page, stack, "ana")
    pick_family(page)
    page.keyboard.press("1")
    page.keyboard.press("h")
    page.keyboard.press("2")
    first = current_post(page)
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(first)
    expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
    page.keyboard.press("[")
    expect(page.locator("#review-banner")).to_be_visible()
    page.keyboard.press("]")
    page.keyboard.press("?")
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.keyboard.press("Escape")
    page.keyboard.press("f")
    expect(page.locator("#view-start")).to_be_visible()
    page.keyboard.press("q")
    expect(page.locator("#view-signin")).to_be_visible()

    open_start_page(page, stack, "boss")
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#coder-progress tr[data-coder=tia]")).to_be_visible()
    page.locator("#coder-name").fill("newcoder")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#coder-created")).to_contain_text("Added newcoder")

    violations = page.evaluate("window.__violations || []")
    assert violations == []
    assert [m for m in messages if "Content Security Policy" in m] == []
    assert policies and all(p == POLICY for p in policies), set(policies)
    # No inline styles or handlers in what the page builds either.
    inline = page.evaluate("""() => [...document.querySelectorAll('*')].filter((e) =>
        [...e.attributes].some((a) => a.name.startsWith('on'))).map((e) => e.outerHTML)""")
    assert inline == []
