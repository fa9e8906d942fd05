"""Honest feedback: the trainee's score and what certification needs, live after each practice
answer; counters that count first labels only and agree with the manager's table and the coder
report; demo practice posts that do not give the gold posts away."""

from __future__ import annotations

import json
import urllib.request

from playwright.sync_api import expect

from tests.browser.pages import current_post, open_start_page, pick_family, sign_in


def test_trainee_sees_score_and_what_certification_needs_after_each_answer(page, stack):
    open_start_page(page, stack, "tia")
    note = page.locator("#trainee-note")
    expect(note).to_contain_text("Your practice score: no practice answers yet")
    expect(page.locator("#progress")).to_contain_text("tia's practice: no practice answers yet")
    pick_family(page)
    header = page.locator("#progress")
    expect(header).not_to_contain_text("left in")  # not the real-work queue
    answers = [["1", "2"], ["2"]]  # toddler (right), then "no child" (wrong)
    for i, keys in enumerate(answers, start=1):
        post = current_post(page)
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#feedback")).to_be_visible()
        right = 1
        expect(page.locator("#feedback .score")).to_have_text(
            f"Practice score: {right} of {i} right.")
        expect(page.locator("#feedback .needs")).to_contain_text(
            f"certification needs {10 - i} more practice posts")
        pct = 100 * right // i
        expect(header).to_contain_text(f"tia's practice: {right} of {i} right ({pct}%)")
        page.keyboard.press("Enter")
        expect(page.locator("#post-text")).not_to_have_text(post)
    page.keyboard.press("f")
    expect(note).to_contain_text("Your practice score: 1 of 2 right (50%); certification needs "
                                 "8 more practice posts and a score of at least 80%.")


def test_counters_count_first_labels_the_same_way_everywhere(browser, page, stack):
    sign_in(page, stack, "ana")
    for keys in (["2"], ["1", "2"]):
        post = current_post(page)
        for key in keys:
            page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#post-text")).not_to_have_text(post)
        expect(page.locator("#view-task")).to_have_attribute("aria-busy", "false")
    page.keyboard.press("[")  # a revision is not a new label
    expect(page.locator("#review-banner")).to_be_visible()
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#review-banner")).to_be_hidden()
    expect(page.locator("#toast")).to_contain_text("Revision saved (revision 2)")
    page.keyboard.press("f")  # practice is not counted either
    page.locator("input[name=mode][value=practice]").check()
    pick_family(page)
    page.keyboard.press("1")
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.locator("#feedback")).to_be_visible()
    page.keyboard.press("f")
    page.locator("input[name=mode][value=work]").check()
    pick_family(page)
    header = page.locator("#progress")
    expect(header).to_contain_text("ana: 2 posts labeled today · 2 this session")
    rows = stack.db.run("SELECT kind, revision FROM labels ORDER BY id")
    assert rows == [["task", 1], ["task", 1], ["task", 2], ["practice", 1]]

    manager = browser.new_context().new_page()
    open_start_page(manager, stack, "boss")
    manager.get_by_role("button", name="Manager view").click()
    cells = manager.locator("#coder-progress tr[data-coder=ana] td")
    expect(cells.nth(2)).to_have_text("2")  # labels today
    expect(cells.nth(3)).to_have_text("2")  # labels this week
    manager.context.close()

    request = urllib.request.Request(stack.base_url + "/api/reports/coders",
                                     headers={"Authorization": f"Bearer {stack.token('boss')}"})
    with urllib.request.urlopen(request) as response:
        report = json.loads(response.read())
    ana = next(c for c in report["coders"] if c["coder"] == "ana")
    assert ana["labels"] == 2
    assert sum(d["labels"] for d in report["daily"] if d["coder"] == "ana") == 2


def test_demo_practice_posts_have_texts_of_their_own():
    import re

    from trainset import codebook, demo

    def skeleton(text: str) -> str:
        return re.sub(r"\s+", " ", text.replace("{kw}", "")).strip().lower()

    practice = {skeleton(t.text) for ts in demo.PRACTICE_TEMPLATES.values() for t in ts}
    gold = {skeleton(t.text) for ts in demo.GOLD_TEMPLATES.values() for t in ts}
    assert practice.isdisjoint(gold)
    rows = list(demo.gold())
    texts = {purpose: {post["text"] for post, p, _, _ in rows if p == purpose}
             for purpose in ("practice", "qa")}
    assert texts["practice"].isdisjoint(texts["qa"])
    for post, _, answers, _ in rows:
        assert not codebook.validate(post["family"], answers), post
