"""POST /exports with the quality run's thresholds, GET /exports and GET /exports/{id} with
download links: the export job run locally (the state machine in moto's interpreter), the
links fetched over HTTP from the real local server."""

from __future__ import annotations

import io
import json
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import auth
from tests.api.live import fetch, serve_site
from tests.factories import CHILD_NO, CHILD_YES, make_campaign, make_coder, make_posts, service
from tests.factories import submission as label
from trainset.local import pipeline as local
from trainset.services.pipeline import rules_from


def body_of(response):
    return json.loads(response.body)


def test_rules_from_the_request_become_screening_rules():
    rules = rules_from({"rules": {"min_confidence": 0.6, "min_gold_accuracy": -1,
                                  "min_gold_answers": 4, "em_max_iterations": 50,
                                  "question_min_accuracy": [{"question": "age",
                                                             "percent": 65}],
                                  "allow_uncertified": True, "relabel": False,
                                  "max_labels_per_post": 5}})
    assert (rules.min_confidence, rules.min_gold_accuracy, rules.min_gold_answers) == (
        0.6, None, 4)
    assert dict(rules.question_min_accuracy) == {"age": 65.0}
    assert (rules.require_certified, rules.relabel, rules.max_labels_per_post,
            rules.em_max_iterations) == (False, False, 5, 50)
    assert rules_from(None) == rules_from({}) == rules_from({"rules": {}})
    assert rules_from(None).min_confidence == 0.8


def test_export_requests_are_checked_and_kept_with_the_job(client, db, manager, monkeypatch):
    from chalicelib import routes_manager

    started = []
    monkeypatch.setattr(routes_manager, "_launcher",
                        lambda: lambda job_id, families: started.append(job_id))
    rules = {"min_confidence": 0.6, "relabel": False,
             "question_min_accuracy": [{"question": "age", "percent": 65}]}
    r = client.http.post("/exports", body=json.dumps({"families": ["child"], "rules": rules}),
                         headers=auth(manager))
    assert r.status_code == 202, r.body
    job = body_of(client.http.get(f"/exports/{started[0]}", headers=auth(manager)))
    assert job["settings"] == {"rules": rules} and job["files"] == []
    listed = body_of(client.http.get("/exports", headers=auth(manager)))["jobs"]
    assert [j["id"] for j in listed] == started and listed[0]["status"] == "running"

    bad = [{"rules": {"min_confidence": 2}}, {"rules": {"relabel": "no"}},
           {"rules": {"question_min_accuracy": [{"question": "age"}]}},
           {"families": ["place"], "rules": {"question_min_accuracy": [
               {"question": "age", "percent": 50}]}},  # place has no age question
           {"rules": {"speed": "fast"}}]
    for payload in bad:
        r = client.http.post("/exports", body=json.dumps(payload), headers=auth(manager))
        assert r.status_code == 400, (payload, r.body)
    assert len(started) == 1
    ana = make_coder(db, "ana")
    for method, path in (("post", "/exports"), ("get", "/exports"),
                         ("get", f"/exports/{started[0]}")):
        r = getattr(client.http, method)(path, headers=auth(ana))
        assert r.status_code == 403, path


@pytest.fixture()
def stand_in(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("TRAINSET_DATABASE_URL", database_url)
    monkeypatch.setenv("TRAINSET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("TRAINSET_EXPORT_STATE_MACHINE_ARN", raising=False)
    monkeypatch.setenv("TRAINSET_EXPORTS_BUCKET", "trainset-exports")
    monkeypatch.delenv("TRAINSET_IMAGES_BUCKET", raising=False)
    yield local.ensure_stand_in()
    local.stop_stand_in()


def wait_for_files(base, headers, job_id, timeout=300):
    """The job once it ended and, when it succeeded, its files are listed (the local runner
    copies them out of the stand-in right after the job ends)."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, raw = fetch(f"{base}/api/exports/{job_id}", headers=headers)
        assert status == 200, raw
        job = json.loads(raw)
        if job["status"] == "failed" or job["files"]:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.3)


def test_an_export_with_thresholds_gives_download_links_that_work(db, db_pool, stand_in,
                                                                   tmp_path):
    import pandas as pd

    make_campaign(db, make_posts(db, 6), labels_per_post=2)
    for name in ("ana", "ben"):
        coder = make_coder(db, name)
        svc = service(db)
        while (task := svc.next_task(coder, "child")["task"]) is not None:
            answers = CHILD_YES if int(task["post_id"][-1]) % 2 == 0 else CHILD_NO
            svc.submit(coder, label(task["post_id"], answers))
    boss = make_coder(db, "boss", role="manager")
    headers = {**auth(boss)}
    with serve_site(db_pool, tmp_path) as (base, _):
        status, _, raw = fetch(f"{base}/api/exports", "POST", json.dumps(
            {"families": ["child"], "rules": {"min_confidence": 0.55, "relabel": False}}
        ).encode(), headers)
        assert status == 202, raw
        job_id = json.loads(raw)["job_id"]
        job = wait_for_files(base, headers, job_id)
        assert job["status"] == "succeeded", job
        run = db.run("SELECT rules FROM quality_runs ORDER BY id DESC LIMIT 1")[0][0]
        assert run["min_confidence"] == 0.55 and run["relabel"] is False

        names = {(f["family"], f["name"]) for f in job["files"]}
        assert {("child", "child_labels.csv"), ("child", "child_labels.parquet"),
                ("child", "datacard.json"), ("child", "datacard.md"),
                ("child", "coder_report.html"), ("child", "coder_report.xlsx"),
                ("child", "dataset.json"), ("child", "features.json"),
                (None, "summary.json")} <= names
        assert any(n.endswith(".tfrecord") for _, n in names)
        by_name = {f["name"]: f for f in job["files"]}
        csv_link = by_name["child_labels.csv"]
        assert csv_link["url"].startswith("/files/exports/")
        status, got, raw = fetch(base + csv_link["url"])
        assert status == 200 and len(raw) == csv_link["size"]
        assert got["Content-Disposition"] == 'attachment; filename="child_labels.csv"'
        assert got["Content-Type"] == "application/octet-stream"
        frame = pd.read_csv(io.BytesIO(raw))
        assert len(frame) == job["output"]["records"] == 6
        assert set(frame["is_child"]) == {True, False}
        status, _, html = fetch(base + by_name["coder_report.html"]["url"])
        assert status == 200 and b"ana" in html and html.startswith(b"<!doctype html>")
        status, _, parquet = fetch(base + by_name["child_labels.parquet"]["url"])
        assert status == 200 and len(pd.read_parquet(io.BytesIO(parquet))) == 6

        # A link is good only as given: another key, a changed expiry or signature, an
        # expired link, or a key outside the exports are refused alike.
        url = urlsplit(csv_link["url"])
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        other = by_name["datacard.md"]["key"]
        forged = [
            f"/files/{other}?expires={query['expires']}&signature={query['signature']}",
            f"{url.path}?expires={int(query['expires']) + 1}&signature={query['signature']}",
            f"{url.path}?expires={query['expires']}&signature={'0' * 64}",
            f"{url.path}?expires=1&signature={query['signature']}",
            f"{url.path}",
            "/files/token_secret?expires=99999999999&signature=" + "0" * 64,
            "/files/exports/../token_secret?expires=99999999999&signature=" + "0" * 64,
        ]
        for link in forged:
            status, _, raw = fetch(base + link)
            assert status in (400, 404), (link, status)
            assert b"child" not in raw


def test_in_aws_the_links_are_presigned_downloads_from_the_exports_bucket(client, db, manager,
                                                                          monkeypatch):
    import boto3
    from moto import mock_aws

    from trainset.blobs.s3 import forget_clients
    from trainset.store.jobs import JobStore

    monkeypatch.setenv("TRAINSET_EXPORT_STATE_MACHINE_ARN",
                       "arn:aws:states:us-east-1:123456789012:stateMachine:export")
    monkeypatch.setenv("TRAINSET_EXPORTS_BUCKET", "team-exports")
    with mock_aws():
        forget_clients()
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="team-exports")
        for key in ("exports/export-1/child/child_labels.csv", "exports/export-1/summary.json",
                    "exports/export-2/child/child_labels.csv"):
            s3.put_object(Bucket="team-exports", Key=key, Body=b"post_id\n")
        jobs = JobStore(db)
        jobs.create("export-1", ["child"], manager.id)
        jobs.finish("export-1", "succeeded", {"families": []})
        job = body_of(client.http.get("/exports/export-1", headers=auth(manager)))
        forget_clients()
    assert [(f["family"], f["name"], f["size"]) for f in job["files"]] == [
        (None, "summary.json", 8), ("child", "child_labels.csv", 8)]
    url = urlsplit(job["files"][1]["url"])
    assert url.netloc.startswith("team-exports.s3") and url.path.endswith(
        "/exports/export-1/child/child_labels.csv")
    query = parse_qs(url.query)
    assert query["response-content-disposition"] == ['attachment; filename="child_labels.csv"']
    assert "X-Amz-Signature" in query
