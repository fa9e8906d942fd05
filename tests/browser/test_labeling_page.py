"""The coders' page in a real browser: keyboard-only labeling, conditional questions, skips,
revisions, practice feedback, the offline outbox, and a manager certifying a trainee."""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.pages import TODDLER, current_post, open_start_page, outboxes, sign_in
from tests.browser.pages import labels as label_rows

DOCS = Path(__file__).resolve().parents[2] / "docs"


def labels(stack, coder: str):
    return [r[:4] for r in label_rows(stack, coder)]


def test_label_three_posts_with_the_keyboard_only(page, stack):
    sign_in(page, stack, "ana")
    seen = []
    for answer_keys in (["1", "2"], ["2"], ["1", "2", "8"]):
        text = current_post(page)
        seen.append(text)
        for key in answer_keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#post-text")).not_to_have_text(text)
    rows = labels(stack, "ana")
    assert [r[0] for r in rows] == ["post00000", "post00001", "post00002"]
    assert rows[0][2] == {"is_child": True, "age": [TODDLER]}
    assert rows[1][2] == {"is_child": False}
    assert rows[2][2] == {"is_child": True, "age": [TODDLER, "Unsure"]}
    assert len(set(seen)) == 3
    expect(page.locator("#progress")).to_contain_text("ana: 3 posts labeled today · 3 this session")
    # Everything the page loaded came from the local stack: no third-party requests.
    assert all(url.startswith(stack.base_url) for url in page.requests), page.requests


def test_conditional_question_appears_and_disappears(page, stack):
    sign_in(page, stack, "ana")
    age = page.locator("fieldset[data-question=age]")
    expect(age).to_be_hidden()
    page.keyboard.press("1")  # yes: a child is present
    expect(age).to_be_visible()
    expect(page.locator("fieldset[data-question=age].current")).to_be_visible()
    expect(page.locator("#opt-age-0")).to_be_focused()
    page.keyboard.press("p")  # back to the previous question
    page.keyboard.press("2")  # no child: the age question goes away
    expect(age).to_be_hidden()
    # The questions came from the codebook: every age option is rendered by the page.
    page.keyboard.press("1")
    expect(age.locator("label.option")).to_have_count(8)
    page.keyboard.press("h")
    expect(age.locator(".help")).to_contain_text("estimate the ages")


def test_missing_answer_is_explained_and_nothing_is_sent(page, stack):
    sign_in(page, stack, "ana")
    page.keyboard.press("1")
    page.keyboard.press("Enter")  # age still unanswered
    expect(page.locator("#err-age")).to_have_text("Pick at least one option.")
    assert labels(stack, "ana") == []


def test_skip_with_a_reason(page, stack):
    sign_in(page, stack, "ana")
    skipped = current_post(page)
    page.keyboard.press("s")
    expect(page.locator("#dlg-skip")).to_be_visible()
    page.keyboard.type("offensive image")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(skipped)
    rows = stack.db.run("SELECT post_id, reason FROM skips")
    assert rows == [["post00000", "offensive image"]]


def test_go_back_and_revise_keeps_the_old_version(page, stack):
    sign_in(page, stack, "ana")
    first = current_post(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(first)
    page.keyboard.press("[")
    expect(page.locator("#review-banner")).to_be_visible()
    expect(page.locator("#post-text")).to_have_text(first)
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#review-banner")).to_be_hidden()
    rows = labels(stack, "ana")
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("post00000", 1, {"is_child": False}),
        ("post00000", 2, {"is_child": True, "age": [TODDLER]}),
    ]


def test_practice_feedback_for_a_trainee(page, stack):
    sign_in(page, stack, "tia")
    expect(page.locator("#view-task")).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("1")  # baby; the gold answer is toddler
    page.keyboard.press("Enter")
    feedback = page.locator("#feedback")
    expect(feedback).to_contain_text("Not quite.")
    expect(feedback).to_contain_text(f"You missed: {TODDLER}")
    expect(feedback).to_contain_text("You added: 0 to less than 1 year (baby/infant)")
    expect(feedback).to_contain_text("Why: The photo shows a toddler.")
    expect(feedback).to_contain_text("Practice score: 0 of 1 right.")
    before = current_post(page)
    page.keyboard.press("Enter")
    expect(page.locator("#post-text")).not_to_have_text(before)
    assert [r[3] for r in labels(stack, "tia")] == ["practice"]


def test_trainee_start_page_shows_score_and_practice_only(page, stack):
    open_start_page(page, stack, "tia")
    expect(page.locator("#trainee-note")).to_contain_text("practice until a manager certifies")
    expect(page.locator("input[name=mode][value=work]")).to_be_disabled()


def test_offline_submission_is_queued_and_stored_exactly_once(page, stack):
    sign_in(page, stack, "ana")
    state = {"mode": "down", "calls": 0}

    def api_labels(route):
        state["calls"] += 1
        if state["mode"] == "down":
            route.abort("internetdisconnected")
        elif state["mode"] == "lose-answer":
            route.fetch()  # the server stores it, but the answer never arrives
            state["mode"] = "up"
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route("**/api/labels", api_labels)
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    outbox = page.locator("#outbox-state")
    expect(outbox).to_contain_text("1 answer waiting to be sent")
    queued = outboxes(page)["ana"]
    assert len(queued) == 1 and queued[0]["answers"] == {"is_child": False}
    assert labels(stack, "ana") == []

    page.reload()  # the queue survives a reload
    expect(page.locator("#outbox-state")).to_contain_text("1 answer waiting")
    state["mode"] = "lose-answer"
    page.keyboard.press("Escape")
    expect(page.locator("#outbox-state")).to_be_hidden(timeout=20_000)
    rows = labels(stack, "ana")
    assert [(r[0], r[2]) for r in rows] == [("post00000", {"is_child": False})]
    assert state["calls"] >= 3  # down, lost answer, retried


def test_manager_certifies_a_trainee_who_then_gets_real_work(browser, page, stack):
    open_start_page(page, stack, "boss")
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#family-progress")).to_contain_text("child")
    row = page.locator("#coder-progress tr[data-coder=tia]")
    expect(row).to_contain_text("trainee")
    row.get_by_role("button", name="Certify tia").click()
    # tia has not practised: the page asks before certifying a trainee who is not ready.
    page.locator("#dlg-confirm").get_by_role("button", name="Certify anyway").click()
    expect(row).to_contain_text("certified")

    trainee = browser.new_context().new_page()
    open_start_page(trainee, stack, "tia")
    expect(trainee.locator("input[name=mode][value=work]")).to_be_enabled()
    trainee.keyboard.press("2")
    expect(trainee.locator("#post-text")).to_have_text(re.compile("post post0000"))
    trainee.context.close()


def test_screenshot_of_the_labeling_screen(page, stack, tmp_path):
    """Writes docs/labeling.png with TRAINSET_UPDATE_SCREENSHOT=1 (`make screenshot`)."""
    from trainset import demo

    key = "demo/photos/astronaut.jpg"
    stack.blobs.put(key, demo.render_image(key), "image/jpeg")
    stack.db.run("UPDATE posts SET image_key = :key, text = :text WHERE id = 'post00000'",
                 key=key, text="Our little astronaut (3!) loved the space museum today, "
                 "even with the wildfire smoke outside. #toddler")
    sign_in(page, stack, "ana")
    expect(page.locator("#post-image")).to_be_visible()
    page.keyboard.press("1")
    page.keyboard.press("2")
    expect(page.locator("fieldset[data-question=age] input").nth(1)).to_be_checked()
    target = DOCS if os.environ.get("TRAINSET_UPDATE_SCREENSHOT") else tmp_path
    target.mkdir(exist_ok=True)
    page.screenshot(path=str(target / "labeling.png"))
    assert (target / "labeling.png").stat().st_size > 10_000


def test_page_code_names_no_option_string():
    """Options come from GET /codebook only; the page's code must not hard-code any."""
    from trainset import codebook

    site = Path(__file__).resolve().parents[2] / "static_site"
    code = "".join(p.read_text() for p in site.rglob("*") if p.suffix in (".js", ".html"))
    for fam in codebook.FAMILIES.values():
        for q in fam.questions:
            for value in q.values:
                if len(value) > 6:  # short words like "Other" occur in prose
                    assert value not in code, value


def test_tablet_touch_labeling(browser, stack):
    """On a tablet-sized touch screen every control is reachable by tapping."""
    context = browser.new_context(viewport={"width": 820, "height": 1180}, has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    page.goto(stack.base_url + "/")
    page.locator("#token").fill(stack.token("ana"))
    page.get_by_role("button", name="Sign in").tap()
    page.get_by_role("button", name="I understand, continue").tap()
    page.locator("button[data-family=child]").tap()
    page.get_by_text("Yes", exact=True).tap()
    page.locator("label.option", has_text=TODDLER).tap()
    first = current_post(page)
    page.get_by_role("button", name="Submit", exact=True).tap()
    expect(page.locator("#post-text")).not_to_have_text(first)
    assert [r[2] for r in labels(stack, "ana")] == [{"is_child": True, "age": [TODDLER]}]
    context.close()


def test_every_control_has_a_label(page, stack):
    sign_in(page, stack, "ana")
    page.keyboard.press("1")
    unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
        .filter((e) => e.offsetParent !== null || e.closest('dialog'))
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
        .map((e) => e.id || e.name)""")
    assert unlabeled == []
    buttons = page.evaluate("""() => [...document.querySelectorAll('button')]
        .filter((b) => !(b.textContent.trim() || b.getAttribute('aria-label')))
        .map((b) => b.id)""")
    assert buttons == []


def test_cognito_hosted_ui_sign_in_with_pkce_and_refresh(browser, stack):
    """The Cognito flow against a stand-in identity provider (routes intercepted in the
    browser): authorization code + PKCE, the ID token used as bearer, refresh near expiry."""
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlsplit

    domain = "https://auth.trainset.test"
    # The deployed page's policy lets it call the sign-in domain (the CDK site builds it); the
    # local server's policy allows its own origin only, so it is set aside here. The page's
    # own policy is checked in test_csp.py.
    page = browser.new_context(bypass_csp=True).new_page()
    config = {"apiBaseUrl": "/api", "authMode": "cognito",
              "cognito": {"domain": domain, "clientId": "client-1",
                          "redirectUri": stack.base_url + "/"}}
    seen = {}
    page.route("**/config.json", lambda route: route.fulfill(json=config))


    def authorize(route):
        query = parse_qs(urlsplit(route.request.url).query)
        seen["authorize"] = query
        state_redirect = f"{stack.base_url}/?code=abc123"
        route.fulfill(status=302, headers={"Location": state_redirect})

    def token(route):
        form = parse_qs(route.request.post_data)
        seen.setdefault("token", []).append(form)
        # A short-lived first token makes the page refresh before its next call.
        short = form["grant_type"] == ["authorization_code"]
        route.fulfill(json={"id_token": stack.token("ana"), "refresh_token": "r-1",
                            "expires_in": 30 if short else 3600},
                      headers={"Access-Control-Allow-Origin": "*"})

    page.route(f"{domain}/oauth2/authorize*", authorize)
    page.route(f"{domain}/oauth2/token", token)
    page.goto(stack.base_url + "/")
    page.get_by_role("button", name="Sign in with your account").click()
    expect(page.locator("#view-consent")).to_be_visible()
    auth = seen["authorize"]
    assert auth["response_type"] == ["code"] and auth["code_challenge_method"] == ["S256"]
    first = seen["token"][0]
    assert first["grant_type"] == ["authorization_code"] and first["code"] == ["abc123"]
    digest = hashlib.sha256(first["code_verifier"][0].encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert auth["code_challenge"] == [challenge]
    assert "code=" not in page.url  # the code is removed from the address bar
    page.keyboard.press("Enter")
    page.keyboard.press("2")
    expect(page.locator("#post-text")).not_to_be_empty()
    assert any(f["grant_type"] == ["refresh_token"] and f["refresh_token"] == ["r-1"]
               for f in seen["token"])
    page.context.close()
