"""Uploads from the manager view in Chromium, under the real local server (`trainset run`): the
page PUTs a file straight to the S3 stand-in with a presigned URL, the upload starts the import
job, and the list shows its counts and a rejects download that holds the bad row. The page's
Content-Security-Policy is enforced throughout (the stand-in's origin is in its connect-src),
and axe-core finds nothing on the new section."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.browser.pages import open_start_page, run_axe
from tests.browser.test_csp import LISTEN
from tests.factories import make_coder
from tests.live.conftest import serving, token_for

CORPUS = (b"id,text,keyword\n"
          b"u1,a toddler at the park,park\n"
          b"u2,,park\n"
          b"u3,a baby asleep in the shade,park\n")


@dataclass
class LiveStack:
    """What the sign-in helpers need: where the page is and each person's token."""

    base_url: str
    tokens: dict

    def token(self, name: str) -> str:
        return self.tokens[name]


@pytest.fixture(scope="module")
def live(database_url, tmp_path_factory):
    with serving(database_url, tmp_path_factory.mktemp("browser-imports")) as server:
        yield server


@pytest.fixture()
def manager_page(browser, live, db):
    boss = make_coder(db, "boss", role="manager")
    stack = LiveStack(live.base, {"boss": token_for(boss)})
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.console_errors = errors
    open_start_page(page, stack, "boss")
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#import-list")).to_be_visible()
    yield page
    context.close()


def import_row(page, filename: str):
    return page.locator("#import-list tr[data-import]", has_text=filename)


def test_a_manager_uploads_a_corpus_with_a_bad_row_and_downloads_its_rejects(
        manager_page, db, axe_source):
    page = manager_page
    expect(page.locator("#upload-purpose")).to_be_disabled()
    page.locator("#upload-file").set_input_files(
        {"name": "spring posts.csv", "mimeType": "text/csv", "buffer": CORPUS})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("spring posts.csv is uploaded")

    row = import_row(page, "spring posts.csv")
    expect(row.locator("[data-status]")).to_have_text("done")
    expect(row.locator("[data-count=inserted]")).to_have_text("2")
    expect(row.locator("[data-count=rejected]")).to_have_text("1")
    link = row.locator("a[data-rejects]")
    expect(link).to_have_text("1 rejected row")
    assert sorted(r[0] for r in db.run("SELECT id FROM posts")) == ["u1", "u3"]

    with page.expect_download() as download:
        link.click()
    path = download.value.path()
    assert download.value.suggested_filename == "spring-posts.csv.rejects.csv"
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8").read())))
    assert [(r["file"], r["line"], r["id"], r["reason"]) for r in rows] == [
        ("spring posts.csv", "3", "u2", "missing text")]

    run_axe(page, axe_source, "the uploads section with an import")
    assert page.evaluate("window.__violations || []") == []
    assert [m for m in page.console_errors if "Content Security Policy" in m] == []


def test_a_gold_upload_takes_its_purpose(manager_page, db):
    page = manager_page
    rows = [{"id": "pg1", "text": "a toddler with a kite", "family": "child",
             "answers": {"is_child": True, "age": ["1 to 4 years (toddler/pre-school)"]},
             "rationale": "the kite is hers"}]
    page.locator("#upload-kind").select_option("gold")
    expect(page.locator("#upload-purpose")).to_be_enabled()
    page.locator("#upload-purpose").select_option("practice")
    page.locator("#upload-file").set_input_files(
        {"name": "practice.jsonl", "mimeType": "application/x-ndjson",
         "buffer": "\n".join(json.dumps(r) for r in rows).encode()})
    page.get_by_role("button", name="Upload").click()
    row = import_row(page, "practice.jsonl")
    expect(row.locator("[data-status]")).to_have_text("done")
    expect(row).to_contain_text("gold, practice")
    expect(row.locator("[data-count=inserted]")).to_have_text("1")
    expect(row.locator("a[data-rejects]")).to_have_count(0)
    assert db.run("SELECT post_id, purpose FROM gold_posts") == [["pg1", "practice"]]
    assert page.evaluate("window.__violations || []") == []


def test_a_file_of_an_unknown_format_is_refused_before_anything_is_sent(manager_page, db):
    page = manager_page
    page.locator("#upload-kind").select_option("gold")
    page.locator("#upload-file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a table"})
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-status")).to_contain_text("notes.txt was not uploaded")
    expect(page.locator("#upload-status")).to_contain_text(".csv, .jsonl, .ndjson or .parquet")
    assert db.run("SELECT count(*) FROM imports")[0][0] == 0
