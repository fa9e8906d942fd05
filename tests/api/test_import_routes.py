"""POST /uploads and GET /imports over HTTP against the real local server (`trainset run`):
the presigned PUT goes to the S3 stand-in, whose trigger starts the import job; the imports
list shows its progress, counts and a rejects download that works. And, in-process with moto,
what AWS gets: regional presigned PUTs with the size signed, presigned rejects downloads."""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import auth
from tests.api.live import fetch
from tests.factories import make_coder
from tests.live.conftest import Client, serving, token_for
from trainset import api_schema
from trainset.services import imports


@pytest.fixture(scope="module")
def server(database_url, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(imports.BATCH_ROWS_VARIABLE, "2")  # a small file still spans batches
        with serving(database_url, tmp_path_factory.mktemp("imports-home")) as live:
            yield live


def put_file(upload: dict, data: bytes) -> int:
    assert upload["method"] == "PUT"
    request = urllib.request.Request(upload["url"], data=data, method="PUT",
                                     headers=upload["headers"])
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def wait_for_import(client: Client, import_id: str, timeout: float = 120) -> dict:
    """The import once it ended and, when rows were rejected, their file can be fetched."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = client.get("/api/imports")
        assert status == 200, body
        found = {i["id"]: i for i in body["imports"]}[import_id]
        if found["status"] == "failed" or (found["status"] == "succeeded" and (
                found["counts"]["rejected"] == 0 or found["rejects"])):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def test_an_uploaded_corpus_file_is_imported_with_its_rejects(server, db):
    boss = Client(server, token_for(make_coder(db, "boss", role="manager")))
    data = b"id,text,keyword\nx1,the first post,park\nx2,,park\nx3,the third,park\nx4,4,x,y\n"
    status, upload = boss.post("/api/uploads", {"kind": "corpus", "filename": "my posts.csv",
                                                "size": len(data)})
    assert status == 201, upload
    assert upload["key"] == f"corpus/{upload['import_id']}/my-posts.csv"
    assert upload["headers"] == {"Content-Type": "text/csv"}
    assert upload["max_bytes"] == imports.MAX_BYTES["corpus"]
    status, listed = boss.get("/api/imports")
    assert [(i["id"], i["status"]) for i in listed["imports"]] == [
        (upload["import_id"], "waiting")]
    assert put_file(upload, data) == 200

    done = wait_for_import(boss, upload["import_id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["filename"] == "my posts.csv" and done["kind"] == "corpus"
    assert done["counts"] == {"rows_read": 4, "inserted": 2, "updated": 0, "unchanged": 0,
                              "rejected": 2, "posts_created": 0}
    assert done["progress"] == {"batches": 2, "batches_done": 2, "rows_total": 4,
                                "rows_done": 4}
    assert sorted(r[0] for r in db.run("SELECT id FROM posts")) == ["x1", "x3"]

    rejects = done["rejects"]
    assert rejects["key"] == upload["key"] + ".rejects.csv"
    status, headers, raw = fetch(server.base + rejects["url"])
    assert status == 200 and len(raw) == rejects["size"]
    assert headers["Content-Disposition"] == 'attachment; filename="my-posts.csv.rejects.csv"'
    rows = list(csv.DictReader(io.StringIO(raw.decode())))
    assert [(r["file"], r["line"], r["id"], r["reason"].split(" (")[0]) for r in rows] == [
        ("my posts.csv", "3", "x2", "missing text"),
        ("my posts.csv", "5", "", "wrong number of fields")]
    # the link is good only as given
    forged = rejects["url"].replace("signature=", "signature=0")
    assert fetch(server.base + forged)[0] == 404


def test_an_uploaded_gold_file_is_imported_as_its_purpose(server, db):
    boss = Client(server, token_for(make_coder(db, "boss", role="manager")))
    rows = [{"id": "g1", "text": "a baby", "family": "child",
             "answers": {"is_child": True, "age": ["0 to less than 1 year (baby/infant)"]}},
            {"id": "g2", "text": "no one", "family": "child", "answers": {"is_child": False}}]
    data = "\n".join(json.dumps(r) for r in rows).encode()
    status, upload = boss.post("/api/uploads", {"kind": "gold", "purpose": "qa",
                                                "filename": "qa.jsonl", "size": len(data)})
    assert status == 201, upload
    assert upload["key"].startswith("gold/qa/")
    assert put_file(upload, data) == 200
    done = wait_for_import(boss, upload["import_id"])
    assert done["status"] == "succeeded", done["error"]
    assert (done["purpose"], done["counts"]["inserted"], done["counts"]["posts_created"],
            done["rejects"]) == ("qa", 2, 2, None)
    assert sorted(db.run("SELECT post_id, purpose FROM gold_posts")) == [
        ["g1", "qa"], ["g2", "qa"]]


def test_uploads_are_refused_to_coders_and_when_wrong(server, db):
    boss = Client(server, token_for(make_coder(db, "boss", role="manager")))
    ana = Client(server, token_for(make_coder(db, "ana")))
    ok = {"kind": "corpus", "filename": "posts.csv", "size": 100}
    assert ana.post("/api/uploads", ok)[0] == 403
    assert ana.get("/api/imports")[0] == 403
    refused = [
        {**ok, "size": imports.MAX_BYTES["corpus"] + 1},  # too large for any file
        {"kind": "gold", "purpose": "qa", "filename": "qa.csv",
         "size": imports.MAX_BYTES["gold"] + 1},  # too large for a gold file
        {**ok, "kind": "labels"},  # unknown kind
        {**ok, "filename": "posts.xlsx"},  # unknown format
        {"kind": "gold", "filename": "qa.csv", "size": 100},  # gold needs a purpose
        {**ok, "purpose": "qa"},  # a corpus file has none
        {**ok, "size": 0},
    ]
    for body in refused:
        status, answer = boss.post("/api/uploads", body)
        assert status == 400, (body, answer)
        assert answer["details"], answer
    status, answer = boss.post("/api/uploads", refused[1])
    assert "104857600 bytes (100 MiB)" in answer["message"]
    assert db.run("SELECT count(*) FROM imports")[0][0] == 0


def test_the_documented_limits_are_the_services():
    assert api_schema.MAX_UPLOAD_BYTES == imports.MAX_BYTES


def test_in_aws_uploads_are_regional_presigned_puts_and_rejects_presigned_downloads(
        client, db, manager, monkeypatch):
    import boto3
    from moto import mock_aws

    from trainset.blobs.s3 import forget_clients
    from trainset.store.imports import ImportStore

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("TRAINSET_IMPORTS_BUCKET", "team-imports")
    monkeypatch.setenv("TRAINSET_IMPORT_STATE_MACHINE_ARN",
                       "arn:aws:states:eu-west-1:123456789012:stateMachine:imports")
    with mock_aws():
        forget_clients()
        s3 = boto3.client("s3", region_name="eu-west-1")
        s3.create_bucket(Bucket="team-imports", CreateBucketConfiguration={
            "LocationConstraint": "eu-west-1"})
        r = client.http.post("/uploads", body=json.dumps(
            {"kind": "corpus", "filename": "posts.csv", "size": 1234}), headers=auth(manager))
        assert r.status_code == 201, r.body
        upload = json.loads(r.body)
        url = urlsplit(upload["url"])
        assert url.netloc == "team-imports.s3.eu-west-1.amazonaws.com"
        assert url.path == "/" + upload["key"]
        signed = parse_qs(url.query)["X-Amz-SignedHeaders"][0].split(";")
        assert {"content-length", "content-type", "host"} <= set(signed)

        rejects_key = upload["key"] + ".rejects.csv"
        s3.put_object(Bucket="team-imports", Key=rejects_key, Body=b"file,line\n")
        store = ImportStore(db)
        store.begin_run(upload["import_id"], "run-1", 1234)
        store.finish(upload["import_id"], "run-1", rejects_key)
        r = client.http.get("/imports", headers=auth(manager))
        forget_clients()
    (item,) = json.loads(r.body)["imports"]
    # the API never calls S3 for the list (it runs where S3 is not reachable unless asked)
    assert item["status"] == "succeeded" and item["rejects"]["size"] is None
    link = urlsplit(item["rejects"]["url"])
    assert link.netloc.startswith("team-imports.s3") and link.path.endswith(rejects_key)
    assert parse_qs(link.query)["response-content-disposition"] == [
        'attachment; filename="posts.csv.rejects.csv"']
