"""The manager's console in Chromium against the local stack: drawing a campaign after its
allocation preview, reviewing and adjudicating a post, certifying a trainee who is not ready
(the page asks first), revoking (the page asks first), an export with thresholds whose download
links work; axe-core on every new screen, and the page's Content-Security-Policy throughout."""

from __future__ import annotations

import io
import json
import random
import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.pages import download, open_manager_view, run_axe
from tests.browser.test_csp import LISTEN, POLICY
from tests.factories import CHILD_NO, CHILD_YES, service, submission
from trainset.services import corpus
from trainset.services.quality import ScreeningRules, run_quality
from trainset.store.corpus import CorpusStore
from trainset.store.quality import QualityStore

WORDS = ("clinic", "asthma", "smoke", "heat", "river", "garden", "vaccine", "doctor",
         "fever", "pollen", "flood", "school", "park", "water", "cough", "sleep")


def health_corpus(db) -> None:
    """Health posts over three keywords, texts distinct enough to pass the duplicate filters."""
    rng = random.Random(3)
    posts = []
    for keyword, n in (("asthma", 8), ("heat", 12), ("smoke", 4)):
        for i in range(n):
            posts.append({"id": f"h-{keyword}-{i:02d}", "keyword": keyword, "family": "health",
                          "text": f"{keyword} {i} {' '.join(rng.sample(WORDS, 8))} "
                                  f"{rng.randrange(10**9)}"})
    corpus.add_posts(CorpusStore(db), posts)


def manager_view(page, stack):
    open_manager_view(page, stack)
    expect(page.locator("#coder-progress tr[data-coder=tia]")).to_be_visible()


def label_everything(stack):
    """ana and bea label the child campaign (a second slot per post is added for bea): they
    disagree on post00000 only."""
    stack.db.run("INSERT INTO tasks (campaign_id, post_id, family, slot)"
                 " SELECT campaign_id, post_id, family, 2 FROM tasks")
    svc = service(stack.db)
    for name in ("ana", "bea"):
        coder = stack.coders[name]
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            post = task["post_id"]
            answers = CHILD_NO if post == "post00000" and name == "bea" else CHILD_YES
            svc.submit(coder, {**submission(post, answers), "seconds_spent": 5})


def new_page(browser, **options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


def test_drawing_a_campaign_after_its_preview(page, stack):
    health_corpus(stack.db)
    manager_view(page, stack)
    page.locator("#cmp-family").select_option("health")
    page.locator("#cmp-strategy").select_option("equal")
    page.locator("#cmp-budget").fill("9")
    page.locator("#cmp-labels").fill("2")
    page.locator("#cmp-seed").fill("4")
    page.locator("#cmp-name").fill("health-spring")
    page.get_by_role("button", name="Preview allocation").click()
    preview = page.locator("#campaign-preview")
    expect(preview).to_be_visible()
    expect(page.locator("#campaign-preview-summary")).to_contain_text(
        "Campaign health-spring: 9 posts from a frame of 24 posts")
    rows = page.locator("#allocation tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("asthma")
    assert stack.db.run("SELECT count(*) FROM campaigns WHERE family = 'health'")[0][0] == 0

    # Changing the request hides the preview: what is drawn is what was previewed.
    page.locator("#cmp-budget").fill("12")
    expect(preview).to_be_hidden()
    page.get_by_role("button", name="Preview allocation").click()
    expect(page.locator("#btn-draw")).to_have_text("Draw this campaign (12 posts)")
    page.locator("#btn-draw").click()
    expect(page.locator("#campaign-status")).to_contain_text(
        "Campaign health-spring drawn: 12 posts × 2 label(s)")
    expect(preview).to_be_hidden()
    assert stack.db.run("SELECT count(*), min(seed) FROM campaigns WHERE name = 'health-spring'"
                        )[0] == [1, 4]
    assert stack.db.run("SELECT stratum, count(*) FROM campaign_posts cp JOIN campaigns c ON"
                        " c.id = cp.campaign_id WHERE c.name = 'health-spring'"
                        " GROUP BY stratum ORDER BY stratum") == [
        ["asthma", 4], ["heat", 4], ["smoke", 4]]
    listed = page.locator("details.campaign[data-campaign=health-spring]")
    expect(listed).to_contain_text("0 of 24 labels done")
    listed.locator("summary").click()
    expect(listed.locator("tbody tr")).to_have_count(3)


def test_adjudicating_a_disputed_post(page, stack):
    label_everything(stack)
    run_quality(QualityStore(stack.db), "child", ScreeningRules(min_gold_accuracy=None))
    manager_view(page, stack)
    page.locator("#review-family").select_option("child")
    page.get_by_role("button", name="List posts").click()
    first = page.locator("#review-list tbody tr").first
    expect(first).to_have_attribute("data-post", "post00000")  # the least certain
    first.get_by_role("button", name="Open post post00000").click()
    detail = page.locator("#post-detail")
    expect(page.locator("#post-detail-title")).to_have_text("Post post00000 (child, toddler)")
    expect(page.locator("#post-labels tbody tr")).to_have_count(2)
    expect(page.locator("#post-labels")).to_contain_text("is_child: no")
    expect(page.locator("#post-consensus")).to_contain_text("from 2 label(s)")
    expect(page.locator("#post-adjudications")).to_contain_text("Not adjudicated")

    detail.locator("#adj-opt-is_child-1").check()  # No: there is no child in it
    expect(detail.locator("#adj-q-age")).to_be_hidden()
    page.locator("#adjudicate-note").fill("the toddler is a doll")
    page.get_by_role("button", name="Save adjudication").click()
    expect(page.locator("#post-adjudications")).to_contain_text("In force: boss")
    expect(page.locator("#post-adjudications")).to_contain_text(
        "is_child: no — the toddler is a doll")
    rows = stack.db.run("SELECT a.post_id, a.family, a.answers, a.note, c.name"
                        " FROM adjudications a JOIN coders c ON c.id = a.author_id")
    assert rows == [["post00000", "child", {"is_child": False}, "the toddler is a doll", "boss"]]
    expect(first.locator("td").nth(5)).to_have_text("yes")


def test_certifying_a_trainee_who_is_not_ready_asks_first(page, stack):
    manager_view(page, stack)
    row = page.locator("#coder-progress tr[data-coder=tia]")
    expect(row.locator("td.practice")).to_have_text("none yet")
    expect(row).to_contain_text("not ready")
    dialog = page.locator("#dlg-confirm")
    row.get_by_role("button", name="Certify tia").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("tia is not ready by the practice rule: none yet")
    expect(dialog).to_contain_text("needs 10 answers and 80%")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert stack.db.run("SELECT status FROM coders WHERE name = 'tia'")[0][0] == "trainee"
    row.get_by_role("button", name="Certify tia").click()
    dialog.get_by_role("button", name="Cancel").click()
    assert stack.db.run("SELECT status FROM coders WHERE name = 'tia'")[0][0] == "trainee"
    row.get_by_role("button", name="Certify tia").click()
    dialog.get_by_role("button", name="Certify anyway").click()
    expect(row.locator("td").nth(1)).to_have_text("certified")
    audit = stack.db.run("SELECT details FROM audit_log WHERE action = 'coder.update'")
    assert audit[-1][0]["confirmed_not_ready"] is True
    assert audit[-1][0]["practice"]["answered"] == 0


def test_revoking_asks_first(page, stack):
    manager_view(page, stack)
    row = page.locator("#coder-progress tr[data-coder=ana]")
    dialog = page.locator("#dlg-confirm")
    row.get_by_role("button", name="Revoke ana").click()
    expect(dialog).to_contain_text("ana will no longer be able to label")
    dialog.get_by_role("button", name="Cancel").click()
    assert stack.db.run("SELECT status FROM coders WHERE name = 'ana'")[0][0] == "certified"
    row.get_by_role("button", name="Revoke ana").click()
    dialog.get_by_role("button", name="Revoke", exact=True).click()
    expect(row.locator("td").nth(1)).to_have_text("revoked")
    assert stack.db.run("SELECT status FROM coders WHERE name = 'ana'")[0][0] == "revoked"


@pytest.fixture()
def export_stand_in(monkeypatch, database_url, tmp_path):
    """The export job's local runner: moto's Step Functions and S3 in this process, the
    finished job's files under $TRAINSET_HOME/exports."""
    from trainset.local import pipeline as local

    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    monkeypatch.setenv("TRAINSET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("TRAINSET_EXPORT_STATE_MACHINE_ARN", raising=False)
    monkeypatch.setenv("TRAINSET_EXPORTS_BUCKET", "trainset-exports")
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    yield local.ensure_stand_in()
    local.stop_stand_in()


def test_an_export_with_thresholds_and_its_download_links(page, stack, export_stand_in,
                                                           tmp_path):
    import pandas as pd

    label_everything(stack)
    manager_view(page, stack)
    for family in ("place", "health"):
        page.locator(f"input[name=export-family][value={family}]").uncheck()
    page.locator("#exp-min-confidence").fill("0.5")
    page.get_by_role("button", name="Export now").click()
    status = page.locator("#export-status")
    expect(status).to_contain_text(re.compile(r"finished: child: \d+ records"), timeout=240_000)
    job = stack.db.run("SELECT id, settings FROM export_jobs")[0]
    assert job[1]["rules"]["min_confidence"] == 0.5
    files = page.locator("#export-files")
    expect(files).to_contain_text(f"Files of {job[0]}")
    for name in ("child_labels.csv", "child_labels.parquet", "datacard.md", "datacard.json",
                 "coder_report.html", "coder_report.xlsx", "dataset.json", "features.json"):
        expect(files.locator(f"a[data-file='child/{name}']")).to_be_visible()
    expect(files.locator("a[data-file='/summary.json']")).to_be_visible()

    saved = download(page, files.locator("a[data-file='child/child_labels.csv']"), tmp_path)
    frame = pd.read_csv(saved)
    kept = stack.db.run("SELECT count(*) FROM screened_posts WHERE kept")[0][0]
    assert len(frame) == kept > 0 and saved.name == "child_labels.csv"
    report = download(page, files.locator("a[data-file='child/coder_report.html']")).read_text(
        encoding="utf-8")
    assert report.startswith("<!doctype html>") and "ana" in report
    card = json.loads(download(page, files.locator("a[data-file='child/datacard.json']"))
                      .read_text(encoding="utf-8"))
    assert card["family"] == "child" and card["records"] == kept
    parquet = download(page, files.locator("a[data-file='child/child_labels.parquet']"))
    assert len(pd.read_parquet(io.BytesIO(parquet.read_bytes()))) == kept

    # The job is listed; its files can be shown again later.
    page.locator("#export-files").evaluate("(node) => node.replaceChildren()")
    page.get_by_role("button", name=f"Show the files of {job[0]}").click()
    expect(files.locator("a[data-file='child/child_labels.csv']")).to_be_visible()


def test_axe_and_the_content_security_policy_on_the_console(browser, stack, axe_source):
    """Every new screen of the console: no axe violation (with axe injected, so without the
    policy), and the same walk again under the policy without one violation."""
    health_corpus(stack.db)
    label_everything(stack)
    run_quality(QualityStore(stack.db), "child", ScreeningRules(min_gold_accuracy=None))

    def walk(page, check):
        manager_view(page, stack)
        check("manager view")
        page.locator("#cmp-family").select_option("health")
        page.locator("#cmp-budget").fill("9")
        page.get_by_role("button", name="Preview allocation").click()
        expect(page.locator("#campaign-preview")).to_be_visible()
        page.locator("#form-campaign summary").click()
        check("campaign preview")
        page.locator("details.campaign summary").first.click()
        page.locator("details.campaign").first.get_by_role("button").click()
        expect(page.locator("#estimate-table tbody tr").first).to_be_visible()
        check("estimate")
        page.locator("#quality-family").select_option("child")
        page.locator("#form-quality").get_by_role("button", name="Show").click()
        expect(page.locator("#quality-panel")).to_be_visible()
        check("quality run")
        page.locator("#review-family").select_option("child")
        page.get_by_role("button", name="List posts").click()
        page.get_by_role("button", name="Open post post00000").click()
        expect(page.locator("#post-labels tbody tr")).to_have_count(2)
        check("post detail")
        page.locator("#coder-progress tr[data-coder=tia]").get_by_role(
            "button", name="Certify tia").click()
        expect(page.locator("#dlg-confirm")).to_be_visible()
        check("confirmation dialog")
        page.keyboard.press("Escape")

    axe_page = new_page(browser, bypass_csp=True)
    walk(axe_page, lambda what: run_axe(axe_page, axe_source, what))
    axe_page.context.close()

    page = new_page(browser)

    def with_policy(route):
        response = route.fetch()
        route.fulfill(response=response,
                      headers={**response.headers, "content-security-policy": POLICY})

    page.route(lambda url: url.startswith(stack.base_url) and not urlsplit(url).path
               .startswith("/api/"), with_policy)
    page.add_init_script(LISTEN)
    walk(page, lambda what: None)
    assert page.evaluate("window.__violations || []") == []
    page.context.close()
