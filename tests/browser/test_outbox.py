"""Nothing is lost, nothing is misattributed, nothing is labeled twice: the outbox against an
expired sign-in, a second coder on the same machine, a failing server and a refused answer.
Every check ends in the labels table in PostgreSQL."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from tests.browser.pages import (
    TODDLER,
    current_post,
    labels,
    outboxes,
    pick_family,
    sign_in,
    sign_in_again,
)
from trainset import tokens
from trainset.local.secrets import local_token_secret


def count_requests(page, path: str) -> list[str]:
    return [u for u in page.requests if path in u]


def test_expired_sign_in_keeps_the_answer_until_the_same_coder_signs_in_again(page, stack):
    sign_in(page, stack, "ana")
    first = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # stored
    expect(page.locator("#post-text")).not_to_have_text(first)
    second = current_post(page)

    # The network drops; the coder answers; the answer waits in the outbox.
    page.route("**/api/labels", lambda route: route.abort("internetdisconnected"))
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    message = page.locator("#task-message")
    expect(message).to_contain_text("Sending your last answer")
    expect(page.locator("#task-body")).to_be_hidden()  # the post is not offered again

    # Meanwhile the sign-in expires: the server answers 401 to the next retry.
    expired = tokens.mint(stack.coders["ana"].id, "ana", local_token_secret(), ttl_seconds=-60)
    page.evaluate("""(t) => { const s = JSON.parse(localStorage.getItem('trainset.tokens'));
        s.idToken = t; localStorage.setItem('trainset.tokens', JSON.stringify(s)); }""", expired)
    page.unroute("**/api/labels")
    page.get_by_role("button", name="Try now").click()
    expect(message).to_contain_text("Sign in again to send your answers")
    expect(message).to_contain_text("Your sign-in has expired or was not accepted.")
    expect(message).to_contain_text("1 answer of ana is kept on this device; nothing is lost.")
    page.get_by_role("button", name="Sign in again").click()
    expect(page.locator("#signin-error")).to_contain_text("sign-in has expired")
    expect(page.locator("#signin-error")).to_contain_text("1 answer of ana is kept on this device")
    assert [b["post_id"] for b in outboxes(page)["ana"]] == ["post00001"]

    # Paused: neither the retry timer nor the browser coming back online sends anything.
    sent = len(count_requests(page, "/api/labels"))
    page.evaluate("window.dispatchEvent(new Event('online'))")
    page.wait_for_timeout(2500)
    assert len(count_requests(page, "/api/labels")) == sent
    assert [r[0] for r in labels(stack)] == ["post00000"]

    # Ana signs in again: the answer goes first, then the next post.
    sign_in_again(page, stack, "ana")
    expect(page.locator("#outbox-state")).to_be_hidden()
    assert outboxes(page) == {}
    pick_family(page)
    assert current_post(page) not in (first, second)
    rows = labels(stack)
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("post00000", 1, {"is_child": False}, "ana"),
        ("post00001", 1, {"is_child": True, "age": [TODDLER]}, "ana"),
    ]


def test_answers_of_coder_a_are_never_sent_as_coder_b_nor_lost(page, stack):
    sign_in(page, stack, "ana")
    ana_post = current_post(page)
    page.route("**/api/labels", lambda route: route.abort("internetdisconnected"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#task-message")).to_contain_text("Sending your last answer")

    # Ana signs out: the page says answers are waiting and offers to wait for them.
    page.keyboard.press("q")
    dialog = page.locator("#dlg-signout")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("1 answer of yours has not reached the server yet")
    expect(page.locator("#btn-signout-wait")).to_be_focused()
    page.locator("#btn-signout-wait").click()  # still offline: it says so and keeps waiting
    expect(page.locator("#signout-status")).to_contain_text("still waiting")
    page.get_by_role("button", name="Sign out now").click()
    expect(page.locator("#signin-error")).to_contain_text("1 answer of ana is kept on this device")
    page.unroute("**/api/labels")

    # Bea signs in on the same machine: she is told ana's answer waits; it is not sent.
    requests_before = len(page.requests)
    sign_in_again(page, stack, "bea")
    notice = page.locator("#notices")
    expect(notice).to_contain_text("1 answer of ana is waiting on this device")
    assert ana_post not in notice.inner_text()  # no content of ana's answer
    pick_family(page)
    assert current_post(page) != ana_post  # ana still holds her post
    bea_post = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(bea_post)
    page.wait_for_timeout(1500)
    sent = [r for r in page.requests[requests_before:] if "/api/labels" in r]
    assert len(sent) == 1  # bea's own answer only
    assert [(r[0], r[4]) for r in labels(stack)] == [("post00001", "bea")]
    assert list(outboxes(page)) == ["ana"]

    # Bea signs out (nothing pending: no question), ana signs in: her answer is stored as hers.
    page.keyboard.press("q")
    expect(page.locator("#view-signin")).to_be_visible()
    sign_in_again(page, stack, "ana")
    expect(page.locator("#outbox-state")).to_be_hidden()
    expect(page.locator("#notices")).to_be_empty()
    assert sorted((r[0], r[1], r[4]) for r in labels(stack)) == [
        ("post00000", 1, "ana"), ("post00001", 1, "bea")]


def test_a_failing_server_never_serves_the_same_post_twice(page, stack):
    sign_in(page, stack, "ana")
    shown = []
    page.expose_function("postShown", lambda text: shown.append(text))
    # Every time the page puts a post's text on screen (even the same text again).
    page.evaluate("""() => new MutationObserver(() => {
        postShown(document.getElementById('post-text').textContent);
      }).observe(document.getElementById('post-text'), {childList: true, characterData: true})""")
    first = current_post(page)
    failures = {"left": 3, "seen": 0}

    def flaky(route):
        failures["seen"] += 1
        if failures["left"] > 0:
            failures["left"] -= 1
            route.fulfill(status=500, body="Internal Server Error")
        else:
            route.continue_()

    page.route("**/api/labels", flaky)
    next_calls = len(count_requests(page, "/api/tasks/next"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    message = page.locator("#task-message")
    expect(message).to_contain_text("Sending your last answer")
    expect(message).to_contain_text("The server had a problem (error 500)")
    page.keyboard.press("1")  # nothing to change: no post is on screen
    page.keyboard.press("Enter")  # on "Try now": one more try, not a second answer
    # No next post was asked for while the answer was waiting.
    assert len(count_requests(page, "/api/tasks/next")) == next_calls
    expect(page.locator("#post-text")).not_to_have_text(first, timeout=15_000)
    expect(page.locator("#task-body")).to_be_visible()
    assert failures["seen"] >= 4
    assert shown.count(first) == 0 and len(set(shown)) == 1
    rows = labels(stack, "ana")
    assert [(r[0], r[1], r[2]) for r in rows] == [("post00000", 1, {"is_child": False})]
    expect(page.locator("#progress")).to_contain_text("ana: 1 post labeled today · 1 this session")


def test_a_refused_answer_is_shown_with_its_post_and_then_leaves(page, stack):
    import urllib.request

    sign_in(page, stack, "ana")
    first = current_post(page)
    # Ana's lease runs out while she reads, and the post goes to bea.
    stack.db.run("UPDATE tasks SET lease_expires_at = now() - interval '1 minute'"
                 " WHERE post_id = 'post00000'")
    request = urllib.request.Request(stack.base_url + "/api/tasks/next?family=child",
                                     headers={"Authorization": f"Bearer {stack.token('bea')}"})
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["task"]["post_id"] == "post00000"
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    notice = page.locator("#notices .error-notice")
    expect(notice).to_contain_text(f"Not stored: your answer to “{first}” (post post00000)")
    expect(notice).to_contain_text("not leased to you")
    expect(page.locator("#post-text")).not_to_have_text(first)  # the next post comes
    assert outboxes(page) == {}  # refused for good: not retried, not kept
    page.reload()  # the notice stays until dismissed
    expect(page.locator("#notices .error-notice")).to_contain_text("post post00000")
    page.get_by_role("button", name="Dismiss the notice about post post00000").click()
    expect(page.locator("#notices")).to_be_empty()
    assert labels(stack, "ana") == []  # nothing stored for ana; the post is bea's now


def test_each_failure_is_worded_for_what_it_is(page, stack):
    page.goto(stack.base_url + "/")
    page.locator("#token").fill("not-a-token")
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_contain_text("This is not a whole token")
    forged = tokens.mint(stack.coders["ana"].id, "ana", "another-secret-0123456789abcdef012")
    page.locator("#token").fill(forged)
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_have_text(
        "This token was not accepted: it may be incomplete, or from another trainset "
        "installation. Copy all of it again, or ask your manager for a new one.")
    expired = tokens.mint(stack.coders["ana"].id, "ana", local_token_secret(), ttl_seconds=-5)
    page.locator("#token").fill(expired)
    page.keyboard.press("Enter")
    expect(page.locator("#signin-error")).to_have_text(
        "This token has expired. Ask your manager for a new one.")

    sign_in_again(page, stack, "ana")
    pick_family(page)
    toast = page.locator("#toast")
    for status, body, words in [
        (413, {"error": "too_large", "message": "body over 65536 bytes"},
         "This answer is too large for the server (over 64 KiB)."),
        (403, {"error": "forbidden", "message": "coder ana is revoked"},
         "The server refused this for your account: coder ana is revoked"),
    ]:
        def refuse(route, s=status, b=body):
            route.fulfill(status=s, json=b)

        page.route("**/api/tasks/*/skip", lambda route, _request, f=refuse: f(route), times=1)
        expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
        if status == 413:
            page.keyboard.press("s")
            page.keyboard.type("too long")
            page.keyboard.press("Enter")
            expect(toast).to_contain_text(f"Could not skip: {words}")
        else:
            page.keyboard.press("s")
            page.keyboard.type("revoked")
            page.keyboard.press("Enter")
            expect(page.locator("#signin-error")).to_contain_text(words)
    sign_in_again(page, stack, "ana")
    pick_family(page)
    expect(page.locator("#signin-error")).to_be_hidden()
    page.context.set_offline(True)
    page.keyboard.press("s")
    page.keyboard.type("offline")
    page.keyboard.press("Enter")
    expect(toast).to_contain_text("This device is offline (no network connection).")
    page.context.set_offline(False)


def test_sign_out_waits_for_the_answers_when_asked(page, stack):
    sign_in(page, stack, "ana")
    state = {"delay": True}

    def slow(route):
        if state["delay"]:
            time.sleep(0.05)
            route.abort("connectionrefused")
        else:
            route.continue_()

    page.route("**/api/labels", slow)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#task-message")).to_contain_text("Sending your last answer")
    expect(page.locator("#outbox-state")).to_contain_text("The server cannot be reached")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#dlg-signout")).to_be_visible()
    state["delay"] = False
    page.get_by_role("button", name="Send them, then sign out").click()
    expect(page.locator("#view-signin")).to_be_visible()
    expect(page.locator("#signin-error")).to_have_text("You are signed out.")
    assert outboxes(page) == {}
    assert [(r[0], r[4]) for r in labels(stack)] == [("post00000", "ana")]
    stored = json.loads(page.evaluate("JSON.stringify(Object.keys(localStorage))"))
    assert "trainset.tokens" not in stored


def test_a_revision_the_rule_refuses_is_shown_not_taken_for_a_lost_sign_in(page, stack):
    """A 403 under the revision rule (window closed) refuses that answer only: the outbox
    must not pause and ask for a sign-in, or the coder would be stuck behind it for good."""
    sign_in(page, stack, "ana")
    first = current_post(page)

    def window_closed(route):
        route.fulfill(status=403, json={
            "error": "forbidden", "message": "labels can be revised for 7 day(s) after the "
            "first answer; this one can no longer be changed",
            "details": {"reason": "revision_window_closed"}})

    page.route("**/api/labels", window_closed, times=1)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    notice = page.locator("#notices .error-notice")
    expect(notice).to_contain_text(f"Not stored: your answer to “{first}” (post post00000)")
    expect(notice).to_contain_text("can no longer be changed")
    # Work goes on (here the same post: the refusal was staged, its lease is still ana's).
    expect(page.locator("#task-body")).to_be_visible()
    expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#view-signin")).to_be_hidden()
    assert outboxes(page) == {}
    assert labels(stack, "ana") == []
