"""The local server of `make run`: API under /api, images under /blobs, the page at /."""

import http.client
import json
import socket
import uuid

import pytest

from tests.api import live
from tests.api.conftest import auth
from tests.api.live import serve_site
from tests.factories import CHILD_YES, make_campaign, make_coder, make_posts
from trainset.web_headers import API_HEADERS, LOCAL_PAGE_HEADERS

READ_TIMEOUT = 1.0  # seconds; short so the slow-client tests end quickly


@pytest.fixture()
def server(db_pool, tmp_path):
    with serve_site(db_pool, tmp_path, read_timeout=READ_TIMEOUT) as site:
        yield site


def fetch(url, method="GET", body=None, headers=None):
    return live.fetch(url, method, body, headers, timeout=10)


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


# --- hostile and malformed input, through raw sockets ---------------------------------------


def port_of(base):
    return int(base.rsplit(":", 1)[1])


def raw(base, data, method="GET"):
    """Send ``data`` as is on a new connection; the parsed answer and whether the server then
    closed the connection."""
    with socket.create_connection(("127.0.0.1", port_of(base)), timeout=15) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        return response.status, response.headers, body, closed


def assert_json_error(status, headers, body, expected_status, expected_error=None):
    assert status == expected_status, body
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert set(payload) == {"error", "message", "details"} and payload["message"]
    if expected_error:
        assert payload["error"] == expected_error
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Security-Policy"] == API_HEADERS["Content-Security-Policy"]


def still_serves(base):
    status, _, body = fetch(base + "/api/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}


@pytest.mark.parametrize(("length", "expected"), [
    ("abc", 400), ("-5", 400), ("1e3", 400), ("10, 10", 400), (str(10**9), 413),
    ("70000", 413), ("300000000", 413),
])
def test_bad_content_length_is_refused_before_the_body_is_read(server, length, expected):
    base, _ = server
    head = (f"POST /api/labels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()
    # No body follows: an answer at all shows nothing waited for it.
    status, headers, body, closed = raw(base, head)
    assert_json_error(status, headers, body, expected)
    assert headers["Connection"] == "close" and closed
    still_serves(base)


def test_a_huge_body_gets_413_without_being_read(server):
    base, _ = server
    with socket.create_connection(("127.0.0.1", port_of(base)), timeout=15) as sock:
        sock.sendall(b"POST /api/labels HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 300000000\r\n\r\n" + b"x" * 200_000)
        response = http.client.HTTPResponse(sock, method="POST")
        response.begin()
        assert_json_error(response.status, response.headers, response.read(), 413,
                          "payload_too_large")
    still_serves(base)


def test_expect_continue_is_refused_before_inviting_a_large_body(server):
    base, _ = server
    status, headers, body, closed = raw(
        base, b"PUT /api/labels HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
              b"Content-Length: 99999999\r\n\r\n")
    assert_json_error(status, headers, body, 413)  # not 100 Continue


def test_chunked_bodies_are_refused(server):
    base, _ = server
    status, headers, body, closed = raw(
        base, b"POST /api/labels HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n")
    assert_json_error(status, headers, body, 411, "length_required")
    assert closed
    still_serves(base)


def test_a_body_that_stops_coming_gets_408_after_the_read_timeout(server):
    base, _ = server
    status, headers, body, closed = raw(
        base, b"POST /api/labels HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
              + b"{" * 10)
    assert_json_error(status, headers, body, 408, "request_timeout")
    assert closed
    still_serves(base)


@pytest.mark.parametrize("request_line", [
    b"GET /%00 HTTP/1.1", b"GET /api/%00 HTTP/1.1", b"GET /blobs/%00 HTTP/1.1",
    b"GET /%zz HTTP/1.1", b"GET /%ff%fe HTTP/1.1", b"GET /a%0d%0ab HTTP/1.1",
    b"GET http://evil.example/ HTTP/1.1", b"GET * HTTP/1.1", b"GET /\xff HTTP/1.1",
    b"HELLO", b"GET / HTTP/9.x", b"GET / FOO/1.1", b"GET /",
])
def test_malformed_request_lines_get_json_400_and_no_traceback(server, request_line, capsys):
    base, _ = server
    status, headers, body, closed = raw(base, request_line + b"\r\nHost: x\r\n\r\n")
    assert_json_error(status, headers, body, 400)
    assert closed
    still_serves(base)
    assert "Traceback" not in capsys.readouterr().err


def test_oversized_request_line_and_headers_are_json_too(server):
    base, _ = server
    status, headers, body, _ = raw(base, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n")
    assert_json_error(status, headers, body, 414)
    status, headers, body, _ = raw(
        base, b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
    assert_json_error(status, headers, body, 431)
    still_serves(base)


@pytest.mark.parametrize(("request_line", "allow"), [
    (b"TRACE / HTTP/1.1", "GET, HEAD"),
    (b"TRACE /api/health HTTP/1.1", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    (b"CONNECT evil.example:443 HTTP/1.1", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    (b"BREW /api/health HTTP/1.1", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    (b"DELETE /index.html HTTP/1.1", "GET, HEAD"),
])
def test_other_methods_get_405_with_allow(server, request_line, allow):
    base, _ = server
    status, headers, body, _ = raw(base, request_line + b"\r\nHost: x\r\n\r\n")
    assert_json_error(status, headers, body, 405, "method_not_allowed")
    assert headers["Allow"] == allow


def test_non_ascii_header_on_an_unknown_route_is_answered_in_json(server, capsys):
    base, _ = server
    status, headers, body, _ = raw(
        base, b"GET /api/nope HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xc3\xa9\r\n\r\n")
    assert_json_error(status, headers, body, 400)
    assert "Traceback" not in capsys.readouterr().err
    still_serves(base)


def test_keep_alive_still_serves_several_requests_on_one_connection(server):
    base, _ = server
    conn = http.client.HTTPConnection("127.0.0.1", port_of(base), timeout=10)
    try:
        for path in ("/api/health", "/", "/api/codebook", "/missing"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status in (200, 404) and not response.will_close
        conn.request("POST", "/api/labels", body=b"{}",
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status in (400, 401) and not response.will_close  # no token
        response.read()
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_slow_clients_do_not_stop_others(server):
    base, _ = server
    slow = []
    try:
        for i in range(50):
            sock = socket.create_connection(("127.0.0.1", port_of(base)), timeout=10)
            if i % 2:  # half stall in their headers, half in their body
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            else:
                sock.sendall(b"POST /api/labels HTTP/1.1\r\nContent-Length: 500\r\n\r\n{")
            slow.append(sock)
        still_serves(base)
        status, _, body = fetch(base + "/")
        assert status == 200 and b"trainset" in body
    finally:
        for sock in slow:
            sock.close()


# --- security headers ------------------------------------------------------------------------


def test_every_response_carries_the_security_headers_once(server):
    base, blobs = server
    blobs.put("demo/a.jpg", b"\xff\xd8jpeg", "image/jpeg")
    page_csp = LOCAL_PAGE_HEADERS["Content-Security-Policy"]
    api_csp = API_HEADERS["Content-Security-Policy"]
    cases = [("GET", "/", page_csp), ("GET", "/js/app.js", page_csp),
             ("GET", "/config.json", page_csp), ("GET", "/blobs/demo/a.jpg", page_csp),
             ("HEAD", "/", page_csp),
             ("GET", "/api/health", api_csp), ("GET", "/api/codebook", api_csp),
             ("GET", "/api/tasks/next?family=child", api_csp),  # 401 from the API
             ("OPTIONS", "/api/labels", api_csp), ("GET", "/api/nope", api_csp),
             ("GET", "/missing.html", api_csp), ("POST", "/index.html", api_csp)]
    for method, path, csp in cases:
        status, headers, _ = fetch(base + path, method, b"{}" if method == "POST" else None)
        assert status < 500, (method, path)
        for name, value in {**LOCAL_PAGE_HEADERS, "Content-Security-Policy": csp}.items():
            assert headers.get_all(name) == [value], (method, path, name)


def test_blobs_are_served_as_images_or_as_bytes(server):
    base, blobs = server
    blobs.put("demo/x.html", b"<script>alert(1)</script>", "text/html")
    blobs.put("demo/x.svg", b"<svg/>", "image/svg+xml")
    for key in ("demo/x.html", "demo/x.svg"):
        status, headers, _ = fetch(base + "/blobs/" + key)
        assert status == 200 and headers["Content-Type"] == "application/octet-stream"
