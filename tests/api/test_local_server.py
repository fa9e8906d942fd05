"""The local server of `make run`: API under /api, images under /blobs, the page at /."""

import json
import threading
import urllib.error
import urllib.request
import uuid

import pytest

from chalicelib import runtime
from tests.api.conftest import auth
from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from trainset.blobs.local import LocalBlobs
from trainset.cli import repo_root
from trainset.local.server import LocalServer, make_gateway


@pytest.fixture()
def server(db_pool, tmp_path):
    from app import app

    blobs = LocalBlobs(tmp_path / "blobs")
    runtime.configure(database_pool=db_pool, gold_rate=0.0, lease_seconds=600,
                      image_url=blobs.url)
    srv = LocalServer(("127.0.0.1", 0), gateway=make_gateway(app),
                      site_dir=repo_root() / "static_site", blobs=blobs)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", blobs
    srv.shutdown()
    srv.server_close()


def fetch(url, method="GET", body=None, headers=None):
    request = urllib.request.Request(url, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_page_config_and_api(server):
    base, _ = server
    status, headers, body = fetch(base + "/")
    assert status == 200 and b"trainset" in body and headers["Content-Type"] == "text/html"
    status, _, body = fetch(base + "/config.json")
    assert json.loads(body)["apiBaseUrl"] == "/api"
    status, _, body = fetch(base + "/api/codebook")
    assert status == 200 and len(json.loads(body)["families"]) == 3


def test_label_through_the_server_and_image(server, db):
    base, blobs = server
    blobs.put("demo/a.jpg", b"\xff\xd8jpeg", "image/jpeg")
    from trainset.store.corpus import CorpusStore
    from trainset.text import text_hash

    ana = make_coder(db, "ana")
    ids = make_posts(db, 1)
    CorpusStore(db).upsert_posts([{"id": ids[0], "text": "t", "image_key": "demo/a.jpg",
                                   "text_hash": text_hash("t")}])
    make_campaign(db, ids)
    status, _, body = fetch(base + "/api/tasks/next?family=child", headers=auth(ana))
    task = json.loads(body)["task"]
    assert task["image_url"] == "/blobs/demo/a.jpg"
    status, headers, image = fetch(base + task["image_url"])
    assert status == 200 and image == b"\xff\xd8jpeg" and headers["Content-Type"] == "image/jpeg"
    payload = json.dumps({"submission_id": str(uuid.uuid4()), "post_id": ids[0],
                          "family": "child", "answers": CHILD_YES}).encode()
    status, _, body = fetch(base + "/api/labels", "POST", payload, auth(ana))
    assert status == 200 and json.loads(body)["revision"] == 1


def test_errors_are_json_and_nothing_escapes_the_folders(server):
    base, _ = server
    for path in ("/api/nope", "/missing.html", "/blobs/../../etc/passwd", "/%2e%2e/etc/passwd"):
        status, headers, body = fetch(base + path)
        assert status == 404, path
        assert json.loads(body)["error"] == "not_found"
    status, _, body = fetch(base + "/index.html", "POST", b"{}")
    assert status == 405
