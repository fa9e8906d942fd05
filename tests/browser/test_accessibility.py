"""Accessible and legible: axe-core finds nothing on any screen; every focus ring is one ring of
>= 3:1; options are named by their text; a new post is announced; right-to-left posts read
right to left; long posts scroll in their own box on a phone; touch screens show no keyboard
hints; the page has a favicon."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.pages import (
    TODDLER,
    check_focus_rings,
    current_post,
    open_start_page,
    pick_family,
    run_axe,
    sign_in,
)


def new_page(browser, **options):
    # bypass_csp: axe-core is injected as a script, which the page's own policy forbids.
    context = browser.new_context(bypass_csp=True, **options)
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


def test_axe_finds_no_violation_on_any_screen(browser, stack, axe_source):
    page = new_page(browser, viewport={"width": 1280, "height": 860})
    page.goto(stack.base_url + "/")
    expect(page.locator("#token")).to_be_focused()
    run_axe(page, axe_source, "sign-in")
    page.locator("#token").fill("wrong")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_be_visible()
    run_axe(page, axe_source, "sign-in with an error")
    page.locator("#token").fill(stack.token("ana"))
    page.keyboard.press("Enter")
    expect(page.locator("#view-consent")).to_be_visible()
    run_axe(page, axe_source, "content warning")
    page.keyboard.press("Enter")
    expect(page.locator("#view-start")).to_be_visible()
    run_axe(page, axe_source, "start (certified)")
    pick_family(page)
    run_axe(page, axe_source, "labeling")
    page.keyboard.press("1")
    page.keyboard.press("h")
    expect(page.locator("#help-age")).to_be_visible()
    run_axe(page, axe_source, "labeling, age question with help")
    page.keyboard.press("Enter")  # no age: errors on the form
    expect(page.locator("#err-age")).to_be_visible()
    run_axe(page, axe_source, "labeling with a field error")
    labeled = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(labeled)
    expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
    page.keyboard.press("[")
    expect(page.locator("#review-banner")).to_be_visible()
    run_axe(page, axe_source, "reviewing history")
    page.keyboard.press("]")
    page.keyboard.press("?")
    expect(page.locator("#dlg-shortcuts")).to_be_visible()
    run_axe(page, axe_source, "shortcuts dialog")
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    expect(page.locator("#dlg-skip")).to_be_visible()
    run_axe(page, axe_source, "skip dialog")
    page.keyboard.press("Escape")
    page.route("**/api/labels", lambda route: route.fulfill(status=503, body="down"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#task-message")).to_contain_text("Sending your last answer")
    run_axe(page, axe_source, "sending your last answer")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#dlg-signout")).to_be_visible()
    run_axe(page, axe_source, "sign-out with answers waiting")
    page.get_by_role("button", name="Sign out now").click()
    page.unroute("**/api/labels")
    page.locator("#token").fill(stack.token("tia"))
    page.keyboard.press("Enter")
    page.locator("#btn-consent").click()
    expect(page.locator("#notices")).to_contain_text("1 answer of ana is waiting")
    run_axe(page, axe_source, "start (trainee), another coder's answers waiting")
    pick_family(page)
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#feedback")).to_be_visible()
    run_axe(page, axe_source, "practice feedback")
    page.context.close()

    page = new_page(browser)
    open_start_page(page, stack, "boss")
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#coder-progress tr[data-coder=tia]")).to_be_visible()
    run_axe(page, axe_source, "manager view")
    page.context.close()

    page = new_page(browser)
    stack.db.run("DELETE FROM tasks WHERE post_id NOT IN (SELECT post_id FROM labels)")
    open_start_page(page, stack, "bea")
    page.keyboard.press("2")
    expect(page.locator("#task-message")).to_contain_text("No posts are waiting")
    run_axe(page, axe_source, "empty queue")
    page.context.close()


def test_every_focus_ring_is_one_ring_at_three_to_one(page, stack):
    page.goto(stack.base_url + "/")
    check_focus_rings(page, 4, "sign-in")
    sign_in(page, stack, "ana")
    page.keyboard.press("1")
    seen = check_focus_rings(page, 30, "labeling")
    assert {"btn-submit", "opt-age-0", "btn-signout", "post-text"} <= set(seen)
    page.keyboard.press("f")
    check_focus_rings(page, 8, "start")
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#view-signin")).to_be_visible()


def test_options_are_named_by_their_text_and_a_new_post_is_announced(page, stack):
    sign_in(page, stack, "ana")
    announce = page.locator("#announce")
    expect(announce).to_have_text(f"New post: {current_post(page)}")
    expect(announce).to_have_attribute("aria-live", "polite")
    yes = page.get_by_role("radio", name="Yes", exact=True)
    expect(yes).to_have_accessible_description("key 1")
    page.keyboard.press("1")
    toddler = page.get_by_role("checkbox", name=TODDLER, exact=True)
    expect(toddler).to_have_accessible_description("key 2")
    group = page.get_by_role("radiogroup", name=re.compile("^Does this tweet mention"))
    expect(group).to_be_visible()
    expect(page.get_by_role("button", name="Submit", exact=True)).to_have_attribute(
        "aria-keyshortcuts", "Enter")
    first = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(first)
    expect(announce).to_have_text(f"New post: {current_post(page)}")


def test_right_to_left_posts_and_long_posts_on_a_phone(browser, stack):
    arabic = "الأطفال يلعبون في الحديقة اليوم رغم الدخان"
    stack.db.run("UPDATE posts SET text = :t WHERE id = 'post00000'", t=arabic)
    stack.db.run("UPDATE posts SET text = :t WHERE id = 'post00001'",
                 t="A very long post about the smoke and the children. " * 150)
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True,
                                  is_mobile=True, device_scale_factor=2)
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.locator("#token").fill(stack.token("ana"))
    page.get_by_role("button", name="Sign in").tap()
    page.get_by_role("button", name="I understand, continue").tap()
    page.locator("button[data-family=child]").tap()
    text = page.locator("#post-text")
    expect(text).to_have_text(arabic)
    expect(text).to_have_attribute("dir", "auto")
    assert page.evaluate("getComputedStyle(document.getElementById('post-text')).direction") \
        == "rtl"
    # Touch screen: no keyboard hints anywhere.
    assert page.evaluate("matchMedia('(hover: none) and (pointer: coarse)').matches")
    hints = page.evaluate("""() => [...document.querySelectorAll('.key-hint')]
        .filter((e) => e.offsetParent !== null).length""")
    assert hints == 0
    page.get_by_text("No", exact=True).tap()
    page.get_by_role("button", name="Submit", exact=True).tap()
    expect(text).not_to_have_text(arabic)
    # The long post scrolls in its own box; the first question stays in view.
    box = text.bounding_box()
    assert box["height"] <= 844 * 0.35
    assert page.evaluate("(e) => e.scrollHeight > e.clientHeight", text.element_handle())
    question = page.locator("fieldset[data-question=is_child]").bounding_box()
    assert question["y"] < 844, question
    context.close()


def test_favicon_and_no_failed_requests(page, stack):
    sign_in(page, stack, "ana")
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "favicon.svg")
    page.wait_for_timeout(300)
    assert page.failed_responses == []
    assert any(url.endswith("/favicon.svg") for url in page.requests)
