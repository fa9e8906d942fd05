"""A whole study, driven as a manager from the page in Chromium under the real local server
(`python -m trainset run`, with its S3 stand-in, import runner and export runner): the
acceptance test of issue #12.

The manager adds the coders, uploads a corpus, a gold set and a practice set and watches their
imports finish, draws a campaign from its allocation preview, adjudicates a post the coders
disagreed on, certifies a trainee who is not ready (the page asks first), runs an export and
downloads every file it lists, then opens each one: the labels CSV (and Parquet) with pandas,
every TFRecord shard with tf.data (the compression dataset.json states, parsed with the spec
features.json describes), the coder report's HTML with html.parser, the data card as JSON.
Between the manager's steps, simulated coders who err at the study's rates (trainset.simulate)
label over HTTP, as coders' browsers do. The page's Content-Security-Policy holds throughout.
"""

from __future__ import annotations

import csv
import io
import json
import random
from html.parser import HTMLParser

from playwright.sync_api import expect

from tests.browser.pages import download, fetch_link, import_row, upload
from tests.live.conftest import run_clients
from trainset import codebook, simulate

KEYWORDS = {"playground": 0.6, "nap time": 0.4, "stroller": 0.5, "rainy day": 0.1}
BUDGET = 40


def csv_bytes(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


class Tables(HTMLParser):
    """Counts a document's tables and the rows of each."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[int] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "table":
            self.rows.append(0)
        elif tag == "tr" and self.rows:
            self.rows[-1] += 1


def add_coder(page, name: str, status: str) -> str:
    """Add a coder from the coders form; the token the page shows for them."""
    page.locator("#coder-name").fill(name)
    page.locator("#coder-status").select_option(status)
    page.locator("#form-coder").get_by_role("button", name="Add").click()
    note = page.locator("#coder-created")
    expect(note).to_contain_text(f"Added {name}.")
    expect(page.locator(f"#coder-progress tr[data-coder='{name}']")).to_contain_text(status)
    return note.locator("code.token").inner_text()


def refresh(page) -> None:
    """The manager view again, with fresh figures."""
    page.get_by_role("button", name="Manager view").click()
    expect(page.locator("#import-list")).to_be_visible()


def adjudicate_to(page, truth: dict) -> None:
    """Tick the adjudication form's answers for ``truth`` (child family)."""
    family = codebook.family("child")
    gate = family.questions[0]
    page.locator(f"#adj-opt-{gate.name}-{0 if truth[gate.name] else 1}").check()
    for q in family.questions[1:]:
        for value in truth.get(q.name) or []:
            page.locator(f"#adj-opt-{q.name}-{list(q.values).index(value)}").check()


def test_a_manager_runs_a_whole_study_from_the_page(manager_page, live, db, tmp_path):
    import pandas as pd
    import tensorflow as tf

    from trainset.export.tfrecords import spec_from_description

    page = manager_page
    rng = random.Random(12)
    corpus = simulate.child_corpus(KEYWORDS, 50, seed=12, prefix="c")
    gold = simulate.child_corpus(KEYWORDS, 5, seed=13, prefix="g")
    practice = simulate.child_corpus({"practice": 0.5}, 5, seed=14, prefix="p")
    truth = {p.row["id"]: p.truth for p in corpus + gold + practice}

    # ---- coders: three certified (one of them careless), one trainee -----------------------
    crowd = simulate.load_coders("child")[:2] + [simulate.careless_coder("child")]
    tokens = {c.name: add_coder(page, c.name, "certified") for c in crowd}
    trainee = add_coder(page, "trainee-tia", "trainee")

    # ---- uploads: corpus, gold (qa) and practice; the imports finish ------------------------
    upload(page, "corpus.csv", csv_bytes([p.row for p in corpus]))
    expect(page.locator("#upload-status")).to_contain_text("corpus.csv is uploaded")
    upload(page, "gold.csv", csv_bytes(simulate.gold_set(gold, "qa")), kind="gold",
           purpose="qa")
    expect(page.locator("#upload-status")).to_contain_text("gold.csv is uploaded")
    upload(page, "practice.csv", csv_bytes(simulate.gold_set(practice, "practice")),
           kind="gold", purpose="practice")
    expect(page.locator("#upload-status")).to_contain_text("practice.csv is uploaded")
    for name, kind, n in (("corpus.csv", "corpus", 200), ("gold.csv", "gold, qa", 20),
                          ("practice.csv", "gold, practice", 5)):
        row = import_row(page, name)
        expect(row.locator("[data-status]")).to_have_text("done", timeout=120_000)
        expect(row).to_contain_text(kind)
        expect(row.locator("[data-count=inserted]")).to_have_text(str(n))
        expect(row.locator("[data-count=rejected]")).to_have_text("0")
    assert db.run("SELECT count(*) FROM posts")[0][0] == 225
    assert db.run("SELECT purpose, count(*) FROM gold_posts GROUP BY purpose ORDER BY purpose"
                  ) == [["practice", 5], ["qa", 20]]

    # ---- a campaign drawn from its allocation preview ---------------------------------------
    page.locator("#cmp-family").select_option("child")
    page.locator("#cmp-strategy").select_option("equal")
    page.locator("#cmp-budget").fill(str(BUDGET))
    page.locator("#cmp-labels").fill("2")
    page.locator("#cmp-seed").fill("12")
    page.locator("#cmp-name").fill("spring-study")
    page.get_by_role("button", name="Preview allocation").click()
    expect(page.locator("#campaign-preview-summary")).to_contain_text(
        f"Campaign spring-study: {BUDGET} posts from a frame of")
    rows = page.locator("#allocation tbody tr")
    expect(rows).to_have_count(len(KEYWORDS))
    allocation = {rows.nth(i).locator("th").inner_text():
                  int(rows.nth(i).locator("td").nth(1).inner_text()) for i in range(len(KEYWORDS))}
    assert allocation == {k: BUDGET // len(KEYWORDS) for k in KEYWORDS}
    assert db.run("SELECT count(*) FROM campaigns")[0][0] == 0  # a preview draws nothing
    page.locator("#btn-draw").click()
    expect(page.locator("#campaign-status")).to_contain_text(
        f"Campaign spring-study drawn: {BUDGET} posts × 2 label(s)")
    drawn = db.run("SELECT cp.post_id, p.keyword FROM campaign_posts cp JOIN campaigns c"
                   " ON c.id = cp.campaign_id JOIN posts p ON p.id = cp.post_id"
                   " WHERE c.name = 'spring-study'")
    assert len(drawn) == BUDGET
    assert {k: sum(1 for _, kw in drawn if kw == k) for k in KEYWORDS} == allocation
    listed = page.locator("details.campaign[data-campaign=spring-study]")
    expect(listed).to_contain_text(f"0 of {2 * BUDGET} labels done")

    # ---- coders label over HTTP; the trainee practises --------------------------------------
    api = live.base + "/api"
    practised = simulate.label_over_http(api, trainee, crowd[2], truth, rng, mode="practice")
    assert practised == 5
    errors = run_clients(list(enumerate(crowd)), lambda pair: simulate.label_over_http(
        api, tokens[pair[1].name], pair[1], truth, random.Random(100 + pair[0])))
    assert errors == []
    refresh(page)
    expect(listed).to_contain_text(f"{2 * BUDGET} of {2 * BUDGET} labels done")

    # ---- a disputed post, adjudicated from the review list ----------------------------------
    answers = db.run("SELECT l.post_id, l.answers FROM labels l JOIN campaign_posts cp ON"
                     " cp.post_id = l.post_id WHERE l.kind = 'task' ORDER BY l.post_id")
    said: dict[str, set] = {}
    for post_id, given in answers:
        said.setdefault(post_id, set()).add(given["is_child"])
    disputed = sorted(p for p, values in said.items() if len(values) == 2)
    assert disputed, "the coders agreed on every post"
    post = disputed[0]
    keyword = next(p.row["keyword"] for p in corpus if p.row["id"] == post)
    page.locator("#review-family").select_option("child")
    page.locator("#review-campaign").select_option(label="spring-study")
    page.locator("#review-keyword").fill(keyword)
    page.get_by_role("button", name="List posts").click()
    expect(page.locator("#review-list tbody tr")).to_have_count(allocation[keyword])
    page.get_by_role("button", name=f"Open post {post}").click()
    expect(page.locator("#post-detail-title")).to_have_text(f"Post {post} (child, {keyword})")
    labels = page.locator("#post-labels tbody tr")
    expect(labels).to_have_count(2)
    expect(labels.filter(has_text="is_child: yes")).to_have_count(1)
    expect(labels.filter(has_text="is_child: no")).to_have_count(1)
    expect(page.locator("#post-adjudications")).to_contain_text("Not adjudicated")
    adjudicate_to(page, truth[post])
    page.locator("#adjudicate-note").fill("settled by the manager")
    page.get_by_role("button", name="Save adjudication").click()
    expect(page.locator("#post-adjudications")).to_contain_text("In force: boss")
    assert db.run("SELECT a.post_id, a.answers, c.name FROM adjudications a"
                  " JOIN coders c ON c.id = a.author_id") == [[post, truth[post], "boss"]]

    # ---- the trainee, not ready, certified after the page asks ------------------------------
    refresh(page)
    row = page.locator("#coder-progress tr[data-coder='trainee-tia']")
    expect(row.locator("td.practice")).to_contain_text("of 5 right")
    expect(row).to_contain_text("not ready")
    dialog = page.locator("#dlg-confirm")
    row.get_by_role("button", name="Certify trainee-tia").click()
    expect(dialog).to_contain_text("trainee-tia is not ready by the practice rule")
    expect(dialog).to_contain_text("of 5 right")
    dialog.get_by_role("button", name="Certify anyway").click()
    expect(row.locator("td.status-certified")).to_have_text("certified")
    audit = db.run("SELECT details FROM audit_log WHERE action = 'coder.update'")
    assert audit[-1][0]["confirmed_not_ready"] is True
    assert audit[-1][0]["practice"]["answered"] == 5

    # ---- an export, every file downloaded and opened ----------------------------------------
    for family in ("place", "health"):
        page.locator(f"input[name=export-family][value={family}]").uncheck()
    page.locator("#exp-min-confidence").fill("0.5")
    page.get_by_role("button", name="Export now").click()
    expect(page.locator("#export-status")).to_contain_text("finished: child:", timeout=300_000)
    job_id = db.run("SELECT id FROM export_jobs")[0][0]
    links = page.locator("#export-files a[data-file]")
    expect(links.first).to_be_visible()
    files = {}
    for i in range(links.count()):
        link = links.nth(i)
        family, _, name = link.get_attribute("data-file").rpartition("/")
        folder = tmp_path / (family or "job")
        folder.mkdir(exist_ok=True)
        # Chromium starts at most 10 downloads a second from a page: the shards (any number)
        # are fetched from the links the page shows, every other file is clicked.
        fetch = fetch_link if name.endswith((".tfrecord", ".tfrecord.gz")) else download
        files[f"{family}/{name}"] = fetch(page, link, folder)
        assert files[f"{family}/{name}"].name == name
    child = tmp_path / "child"

    manifest = json.loads((child / "dataset.json").read_text(encoding="utf-8"))
    kept = db.run("SELECT count(*) FROM screened_posts WHERE kept")[0][0]
    assert manifest["records"] == kept > 0
    assert {f"child/{s['file']}" for s in manifest["shards"]} <= set(files)
    assert {"child/child_labels.csv", "child/child_labels.parquet", "child/coder_report.html",
            "child/datacard.json", "child/features.json", "/summary.json"} <= set(files)

    frame = pd.read_csv(child / "child_labels.csv")
    assert len(frame) == kept and set(frame["post_id"]) <= {p for p, _ in drawn}
    # The quality run took the manager's answer as the disputed post's truth.
    settled = frame[frame["post_id"] == post]
    assert list(settled["is_child"]) == [truth[post]["is_child"]]
    assert len(pd.read_parquet(child / "child_labels.parquet")) == kept
    assert len(pd.read_excel(child / "coder_report.xlsx")) > 0

    spec = spec_from_description(
        json.loads((child / "features.json").read_text(encoding="utf-8"))["features"])
    read = 0
    for shard in manifest["shards"]:
        dataset = tf.data.TFRecordDataset(str(child / shard["file"]),
                                          compression_type=manifest["compression"] or "")
        records = [tf.io.parse_single_example(r, spec) for r in dataset]
        assert len(records) == shard["records"]
        read += len(records)
        for example in records[:1]:
            assert example["post_id"].numpy().decode() in set(frame["post_id"])
    assert read == kept

    report = Tables()
    report.feed((child / "coder_report.html").read_text(encoding="utf-8"))
    assert report.rows and max(report.rows) > 1
    card = json.loads((child / "datacard.json").read_text(encoding="utf-8"))
    assert card["family"] == "child" and card["records"] == kept
    assert "child" in (child / "datacard.md").read_text(encoding="utf-8")
    summary = json.loads(files["/summary.json"].read_text(encoding="utf-8"))
    assert summary["job_id"] == job_id
    assert [(f["family"], f["records"]) for f in summary["families"]] == [("child", kept)]

    assert page.evaluate("window.__violations || []") == []
