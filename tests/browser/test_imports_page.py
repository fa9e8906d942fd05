"""Uploads from the manager view in Chromium, under the real local server (`trainset run`): the
page PUTs a file straight to the S3 stand-in with a presigned URL, the upload starts the import
job, and the list shows its counts and a rejects download that holds the bad row. The page's
Content-Security-Policy is enforced throughout (the stand-in's origin is in its connect-src),
and axe-core finds nothing on the new section."""

from __future__ import annotations

import csv
import io
import json

from playwright.sync_api import expect

from tests.browser.pages import download, import_row, run_axe, upload

CORPUS = (b"id,text,keyword\n"
          b"u1,a toddler at the park,park\n"
          b"u2,,park\n"
          b"u3,a baby asleep in the shade,park\n")


def test_a_manager_uploads_a_corpus_with_a_bad_row_and_downloads_its_rejects(
        manager_page, db, axe_source, tmp_path):
    page = manager_page
    expect(page.locator("#upload-purpose")).to_be_disabled()
    upload(page, "spring posts.csv", CORPUS)
    expect(page.locator("#upload-status")).to_contain_text("spring posts.csv is uploaded")

    row = import_row(page, "spring posts.csv")
    expect(row.locator("[data-status]")).to_have_text("done")
    expect(row.locator("[data-count=inserted]")).to_have_text("2")
    expect(row.locator("[data-count=rejected]")).to_have_text("1")
    link = row.locator("a[data-rejects]")
    expect(link).to_have_text("1 rejected row")
    assert sorted(r[0] for r in db.run("SELECT id FROM posts")) == ["u1", "u3"]

    path = download(page, link, tmp_path)
    assert path.name == "spring-posts.csv.rejects.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
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
    upload(page, "practice.jsonl", "\n".join(json.dumps(r) for r in rows).encode(),
           "application/x-ndjson", kind="gold", purpose="practice")
    row = import_row(page, "practice.jsonl")
    expect(row.locator("[data-status]")).to_have_text("done")
    expect(row).to_contain_text("gold, practice")
    expect(row.locator("[data-count=inserted]")).to_have_text("1")
    expect(row.locator("a[data-rejects]")).to_have_count(0)
    assert db.run("SELECT post_id, purpose FROM gold_posts") == [["pg1", "practice"]]
    assert page.evaluate("window.__violations || []") == []


def test_a_file_of_an_unknown_format_is_refused_before_anything_is_sent(manager_page, db):
    page = manager_page
    upload(page, "notes.txt", b"not a table", "text/plain", kind="gold")
    expect(page.locator("#upload-status")).to_contain_text("notes.txt was not uploaded")
    expect(page.locator("#upload-status")).to_contain_text(".csv, .jsonl, .ndjson or .parquet")
    assert db.run("SELECT count(*) FROM imports")[0][0] == 0
