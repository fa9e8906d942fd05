"""The local HTTP server for ``make run``: the Chalice API under /api, blobs, and the page.

Requests to ``/api/...`` go through Chalice's own API Gateway emulation (the same app object
that runs in Lambda); ``/blobs/...`` serves the local image store; everything else is a static
file from ``static_site/``. A threaded server with a deep listen backlog keeps bursts of new
connections from stalling.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from trainset.blobs.local import LocalBlobs
from trainset.errors import InvalidInput

logger = logging.getLogger("trainset.server")
API_PREFIX = "/api"


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, gateway: Any, site_dir: Path,
                 blobs: LocalBlobs) -> None:
        super().__init__(address, _Handler)
        self.gateway = gateway
        self.site_dir = site_dir.resolve()
        self.blobs = blobs


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without TCP_NODELAY, Nagle's algorithm and the
    # browser's delayed ACK hold every keep-alive answer back by ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
            self._api()
        elif self.command not in ("GET", "HEAD"):
            self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed",
                            f"{self.command} is only for /api routes")
        elif path.startswith("/blobs/"):
            self._blob(unquote(path[len("/blobs/"):]))
        else:
            self._static(path)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _dispatch

    def _api(self) -> None:
        from chalice.local import LocalGatewayException

        split = urlsplit(self.path)
        api_path = split.path[len(API_PREFIX):] or "/"
        if split.query:
            api_path += "?" + split.query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            response = self.server.gateway.handle_request(
                method=self.command, path=api_path, headers=dict(self.headers.items()),
                body=body,
            )
        except LocalGatewayException:
            self._send_json(HTTPStatus.NOT_FOUND, "not_found",
                            f"no API route {self.command} {split.path}")
            return
        status = response["statusCode"]
        payload = response.get("body") or b""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(status, payload, headers)

    def _blob(self, key: str) -> None:
        try:
            data = self.server.blobs.get(key)
        except (InvalidInput, OSError):
            self._send_json(HTTPStatus.NOT_FOUND, "not_found", f"no image {key}")
            return
        ctype = mimetypes.guess_type(key)[0] or "application/octet-stream"
        self._send(200, data, {"Content-Type": ctype, "Cache-Control": "max-age=3600"})

    def _static(self, path: str) -> None:
        relative = unquote(path).lstrip("/") or "index.html"
        target = (self.server.site_dir / relative).resolve()
        if target.is_dir():
            target = target / "index.html"
        inside = self.server.site_dir == target or self.server.site_dir in target.parents
        if not inside or not target.is_file():
            self._send_json(HTTPStatus.NOT_FOUND, "not_found", f"no file {path}")
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            ctype = "text/javascript"
        self._send(200, target.read_bytes(), {"Content-Type": ctype, "Cache-Control": "no-cache"})

    def _send_json(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"error": code, "message": message, "details": None}).encode()
        self._send(int(status), body, {"Content-Type": "application/json"})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def make_gateway(app: Any) -> Any:
    """Chalice's API Gateway emulation around ``app``."""
    from chalice.config import Config
    from chalice.local import LocalGateway

    config = Config.create(chalice_app=app, lambda_timeout=60, lambda_memory_size=512,
                           function_name="api_handler")
    return LocalGateway(app, config)
