"""The keyboard follows the platform: Tab reaches every control, arrow keys belong to the
focused radio group, history uses [ and ], unfinished answers survive history, and the form is
locked between Enter and the next post."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.pages import (
    TODDLER,
    current_post,
    labels,
    open_start_page,
    pick_family,
    sign_in,
)

FOCUSED = """() => { const e = document.activeElement;
    return e === document.body ? 'body' : (e.id || e.getAttribute('data-family') || e.tagName); }"""


def tab_through(page, presses: int, key: str = "Tab") -> list[str]:
    seen = []
    for _ in range(presses):
        page.keyboard.press(key)
        seen.append(page.evaluate(FOCUSED))
    return seen


def test_tab_cycles_through_every_control_of_the_labeling_screen(page, stack):
    sign_in(page, stack, "ana")
    page.keyboard.press("1")  # yes: the age question with its 8 options appears
    expect(page.locator("#opt-age-0")).to_be_focused()
    forward = tab_through(page, 40)
    must = {"btn-submit", "btn-skip", "btn-back", "btn-home", "btn-signout", "btn-shortcuts",
            "post-text", "opt-is_child-0"} | {f"opt-age-{i}" for i in range(8)}
    assert must <= set(forward), must - set(forward)
    assert forward.count("btn-submit") >= 2  # it went round and came back: a cycle, no trap
    backward = tab_through(page, 40, "Shift+Tab")
    assert must <= set(backward), must - set(backward)
    # Tab never changed an answer.
    expect(page.locator("#opt-is_child-0")).to_be_checked()


def test_arrow_keys_stay_with_the_focused_radio_group(page, stack):
    sign_in(page, stack, "ana")
    first = current_post(page)
    yes = page.locator("#opt-is_child-0")
    no = page.locator("#opt-is_child-1")
    expect(yes).to_be_focused()
    page.keyboard.press("ArrowRight")  # the platform's radio behaviour: the next option
    expect(no).to_be_checked()
    expect(no).to_be_focused()
    page.keyboard.press("ArrowLeft")  # ... and back; history does not open
    expect(yes).to_be_checked()
    expect(page.locator("fieldset[data-question=age]")).to_be_visible()
    expect(page.locator("#review-banner")).to_be_hidden()
    expect(page.locator("#post-text")).to_have_text(first)


def test_history_round_trip_keeps_a_half_finished_answer(page, stack):
    sign_in(page, stack, "ana")
    first = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(first)
    second = current_post(page)
    page.keyboard.press("1")  # yes, a child; the age is not answered yet
    page.keyboard.press("2")  # toddler
    page.keyboard.press("2")  # ... and untick it again: unfinished
    page.keyboard.press("4")  # 11 to 13 years
    expect(page.locator("#btn-forward")).to_be_disabled()  # nothing newer than the current post
    page.keyboard.press("[")
    expect(page.locator("#review-banner")).to_be_visible()
    expect(page.locator("#post-text")).to_have_text(first)
    expect(page.locator("#opt-is_child-1")).to_be_checked()
    expect(page.locator("#btn-forward")).to_be_enabled()
    expect(page.locator("#btn-back")).to_be_disabled()  # no label older than this one
    page.keyboard.press("1")  # start changing the old label, then leave it unfinished too
    page.keyboard.press("]")
    expect(page.locator("#review-banner")).to_be_hidden()
    expect(page.locator("#post-text")).to_have_text(second)
    expect(page.locator("#opt-is_child-0")).to_be_checked()
    expect(page.locator("#opt-age-1")).not_to_be_checked()
    expect(page.locator("#opt-age-3")).to_be_checked()
    page.keyboard.press("[")
    expect(page.locator("#review-banner")).to_be_visible()
    expect(page.locator("#opt-is_child-0")).to_be_checked()  # the unfinished revision, too
    page.keyboard.press("]")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(second)
    rows = labels(stack, "ana")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("post00000", 1, {"is_child": False}),
        ("post00001", 1, {"is_child": True, "age": ["11 to 13 years (middle school)"]}),
    ]


def test_a_slow_server_locks_the_form_between_enter_and_the_next_post(page, stack):
    sign_in(page, stack, "ana")
    first = current_post(page)

    # A 3 s delay on every label (inside the page, so the test keeps running meanwhile).
    page.evaluate("""() => { const send = window.fetch;
        window.fetch = (url, options) => String(url).includes('/api/labels')
          ? new Promise((resolve) => setTimeout(resolve, 3000)).then(() => send(url, options))
          : send(url, options); }""")
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    view = page.locator("#view-task")
    expect(view).to_have_attribute("aria-busy", "true")
    expect(page.locator("#busy-note")).to_be_visible()
    assert page.evaluate("document.getElementById('task-body').inert")
    page.keyboard.press("1")  # would add a baby to the answer just sent
    page.keyboard.press("Enter")
    page.keyboard.press("s")
    page.locator("label.option", has_text="Yes").click(force=True)  # nor the mouse
    expect(page.locator("#opt-age-0")).not_to_be_checked()
    expect(page.locator("#dlg-skip")).to_be_hidden()
    expect(page.locator("#post-text")).to_have_text(first)
    expect(page.locator("#post-text")).not_to_have_text(first, timeout=10_000)
    expect(view).to_have_attribute("aria-busy", "false")
    expect(page.locator("#opt-is_child-0")).to_be_focused()
    rows = labels(stack, "ana")
    assert [(r[0], r[2]) for r in rows] == [("post00000", {"is_child": True, "age": [TODDLER]})]


def test_shortcuts_for_families_and_sign_out(page, stack):
    sign_in(page, stack, "ana")
    page.keyboard.press("f")
    expect(page.locator("#view-start")).to_be_visible()
    pick_family(page)
    page.keyboard.press("q")  # nothing waiting: signs out at once
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#signin-error")).to_have_text("You are signed out.")


def test_empty_queue_shows_only_what_can_be_done(page, stack):
    stack.db.run("DELETE FROM tasks")  # nothing to label
    open_start_page(page, stack, "ana")
    page.keyboard.press("2")
    message = page.locator("#task-message")
    expect(message).to_contain_text("No posts are waiting in this family right now")
    for control in ("#btn-back", "#btn-forward", "#btn-skip", "#btn-submit"):
        expect(page.locator(control)).to_be_hidden()
    expect(page.get_by_role("button", name="Check again")).to_be_focused()
    expect(page.locator("#task-body")).to_be_hidden()
