"""The local HTTP server for ``make run``: the Chalice API under /api, blobs, and the page.

Requests to ``/api/...`` go through Chalice's own API Gateway emulation (the same app object
that runs in Lambda); ``/blobs/...`` serves the local image store; ``/files/...`` serves export
files behind signed, expiring links (``trainset.local.downloads``); everything else is a static
file from ``static_site/``. A threaded server with a deep listen backlog keeps bursts of new
connections from stalling.

It faces whatever reaches the port, so every request is checked before anything is read: the
request target must be a clean origin-form path, the method one the path serves, the body
framed by a single ``Content-Length`` of at most ``max_body`` bytes (no chunked bodies), and
the body must arrive within ``read_timeout`` seconds. Every refusal, including the ones
``http.server`` makes itself (bad request line, 414, 431), is a JSON ``{error, message,
details}`` with the security headers of ``trainset.web_headers``, and is logged as one line
at debug level, never as a traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import mimetypes
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote

from trainset.blobs.local import LocalBlobs
from trainset.errors import InvalidInput
from trainset.validation import MAX_BODY_BYTES
from trainset.web_headers import API_HEADERS, LOCAL_PAGE_HEADERS

logger = logging.getLogger("trainset.server")
API_PREFIX = "/api"
FILES_PREFIX = "/files/"  # export files, behind signed links (trainset.local.downloads)
# The API refuses bodies above validation.MAX_BODY_BYTES; the transport refuses them before
# reading, so a huge body never reaches memory.
# Seconds a client gets for each read (an idle keep-alive connection, a slow request line)
# and, in total, for sending its body.
READ_TIMEOUT = 10.0
API_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PAGE_METHODS = ("GET", "HEAD")
# Blobs are images; anything else is served as bytes so a stored .html or .svg can never run
# as a document on the page's origin.
BLOB_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif",
                        "image/bmp"})
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DIGITS = re.compile(r"[0-9]{1,18}")
# The most a refused client's unread body is drained before closing: closing with unread
# data sends a TCP reset, which can destroy the error response before the client reads it.
_DRAIN_BYTES = MAX_BODY_BYTES
_DRAIN_SECONDS = 1.0


class LocalServer(ThreadingHTTPServer):
    """The threaded server; ``read_timeout`` and ``max_body`` bound what one client can hold."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], *, gateway: Any, site_dir: Path,
                 blobs: LocalBlobs, read_timeout: float = READ_TIMEOUT,
                 max_body: int = MAX_BODY_BYTES, downloads: Any = None,
                 page_headers: dict[str, str] | None = None) -> None:
        self.gateway = gateway
        self.site_dir = site_dir.resolve()
        self.blobs = blobs
        # Export files behind signed links (trainset.local.downloads); by default the
        # folder of $TRAINSET_HOME, looked up per request as the API does.
        self.downloads = downloads
        # The page's security headers; `trainset run` lets the page PUT uploads to the S3
        # stand-in (another origin) by naming it in the policy's connect-src.
        self.page_headers = page_headers or LOCAL_PAGE_HEADERS
        self.read_timeout = read_timeout
        self.max_body = max_body
        self.closing = False
        self._busy = 0
        self._idle = threading.Condition()
        super().__init__(address, _Handler)

    def server_close(self) -> None:
        """Stop listening; requests already on open connections finish, later ones get 503."""
        self.closing = True
        super().server_close()

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Count a request in progress, so shutdown can wait for it (see ``wait_idle``)."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait for requests in progress to finish, so the pool is not closed under them."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line instead of socketserver's traceback on stderr: a client that hangs up
        or times out is not a server fault."""
        exc = sys.exc_info()[1]
        where = client_address[0] if isinstance(client_address, tuple) else client_address
        if isinstance(exc, OSError):
            logger.debug("connection from %s ended: %s", where, exc)
        else:
            logger.error("connection from %s failed: %s: %s", where, type(exc).__name__, exc)
            logger.debug("details", exc_info=True)


def _is_api(path: str) -> bool:
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def _parse_target(raw: str) -> tuple[str, str] | None:
    """The (still percent-encoded) path and the query of an origin-form request target, or
    None when it is malformed: not starting with '/', characters outside printable ASCII,
    bad percent-encoding, or a path that does not decode to UTF-8 without control characters.
    """
    if not raw.startswith("/") or _BAD_PERCENT.search(raw):
        return None
    if any(not ("!" <= c <= "~") for c in raw):
        return None
    path, _, query = raw.partition("#")[0].partition("?")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 or ord(c) == 127 for c in decoded):
        return None
    return path, query


# The API's own names where it has one (trainset.errors), else the status phrase.
_ERROR_CODES = {400: "bad_request", 413: "payload_too_large", 414: "uri_too_long"}


def _error_code(status: int) -> str:
    if int(status) in _ERROR_CODES:
        return _ERROR_CODES[int(status)]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


class _Handler(BaseHTTPRequestHandler):
    server: LocalServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; without TCP_NODELAY, Nagle's algorithm and the
    # browser's delayed ACK hold every keep-alive answer back by ~40 ms.
    disable_nagle_algorithm = True
    error_content_type = "application/json"

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # StreamRequestHandler applies it to the socket
        self._linger = False
        self._reset()
        super().setup()

    def _reset(self) -> None:
        self._checked = False
        self._responded = False
        self._path = ""
        self._query = ""
        self._length = 0

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    # --- checks before anything of the body is read -------------------------------------

    def handle_one_request(self) -> None:
        self._reset()
        # The previous request's headers must not speak for this one (see _body_coming).
        self.__dict__.pop("headers", None)
        super().handle_one_request()

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        return self._check_request()

    def handle_expect_100(self) -> bool:
        """Check the request before inviting its body with 100 Continue."""
        return self._check_request() and super().handle_expect_100()

    def _check_request(self) -> bool:
        if self._checked:
            return True
        if self.request_version == "HTTP/0.9":
            return self._refuse(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
        target = _parse_target(self.path)
        if target is None and self.command in API_METHODS:
            return self._refuse(HTTPStatus.BAD_REQUEST,
                                "the request path is malformed (bad percent-encoding, "
                                "control characters or not a path)")
        api = target is None or _is_api(target[0])
        allowed = API_METHODS if api else PAGE_METHODS
        if target is None or self.command not in allowed:  # TRACE, CONNECT, anything unknown
            where = "API routes" if api else "the page and images"
            return self._refuse(HTTPStatus.METHOD_NOT_ALLOWED,
                                f"{self.command[:20]} is not allowed for {where}",
                                {"Allow": ", ".join(allowed)})
        self._path, self._query = target
        if "Transfer-Encoding" in self.headers:
            return self._refuse(HTTPStatus.LENGTH_REQUIRED,
                                "chunked bodies are not accepted: send the body with a "
                                "Content-Length")
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if lengths:
            value = lengths.pop()
            if lengths or not _DIGITS.fullmatch(value):
                return self._refuse(HTTPStatus.BAD_REQUEST,
                                    "Content-Length must be one whole number of bytes")
            if int(value) > self.server.max_body:
                return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                    f"the body is {int(value)} bytes; at most "
                                    f"{self.server.max_body} allowed")
            self._length = int(value)
        self._checked = True
        return True

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> bool:
        """Answer a request we will not read, and close its connection (its body, if any, is
        still on the wire)."""
        self.close_connection = True
        self._linger = self._body_coming()
        logger.debug("%s refused %s: %s", self.address_string(), int(status), message)
        self._send_json(status, _error_code(status), message, headers)
        return False

    def _body_coming(self) -> bool:
        """Whether the refused request announced a body that may still be on its way."""
        headers = getattr(self, "headers", None)
        if headers is None:
            return False
        length = headers.get("Content-Length", "").strip()
        return "Transfer-Encoding" in headers or (length not in ("", "0"))

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """Every error ``http.server`` produces itself (bad request line, 414, 431, 505) as
        JSON instead of its HTML page; the connection is closed after it."""
        if code == HTTPStatus.NOT_IMPLEMENTED:  # an unknown method: not ours to implement
            code = HTTPStatus.METHOD_NOT_ALLOWED
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        text = (message or phrase)[:200]
        headers = {"Allow": ", ".join(API_METHODS)} if code == 405 else None
        self.close_connection = True
        self._linger = self._body_coming()
        logger.debug("%s refused %s: %s", self.address_string(), int(code), text)
        self._send_json(code, _error_code(code), text, headers)

    # --- serving ------------------------------------------------------------------------

    def _dispatch(self) -> None:
        with self.server.working():
            if self.server.closing:
                self.close_connection = True
                self._linger = self._body_coming()
                self._send_json(HTTPStatus.SERVICE_UNAVAILABLE, "service_unavailable",
                                "the server is stopping")
                return
            try:
                body = self._read_body()
                if body is None:
                    return
                if _is_api(self._path):
                    self._api(body)
                elif self._path.startswith("/blobs/"):
                    self._blob(unquote(self._path[len("/blobs/"):]))
                elif self._path.startswith(FILES_PREFIX):
                    self._download(unquote(self._path[len(FILES_PREFIX):]))
                else:
                    self._static(self._path)
            except OSError:
                raise  # the client went away: socketserver's handle_error logs one line
            except Exception as exc:
                # A bug of ours: one line in the log (the traceback at debug), JSON to the
                # client, and this connection is not trusted further.
                logger.error("%s %s failed: %s: %s", self.command, self._path,
                             type(exc).__name__, exc)
                logger.debug("details", exc_info=True)
                self.close_connection = True
                if not self._responded:
                    self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error",
                                    "something went wrong on our side; the request was not "
                                    "completed")

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _dispatch

    def _read_body(self) -> bytes | None:
        """The body, read within ``read_timeout`` seconds in total; None (after answering
        408 or closing) when the client is too slow or hangs up."""
        if not self._length:
            return b""
        deadline = time.monotonic() + self.server.read_timeout
        chunks: list[bytes] = []
        remaining = self._length
        try:
            while remaining:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(remaining)
                if not chunk:  # the client closed before sending it all
                    self.close_connection = True
                    return None
                chunks.append(chunk)
                remaining -= len(chunk)
        except TimeoutError:
            self.close_connection = True
            logger.debug("%s sent %d of %d body bytes in time", self.address_string(),
                         self._length - remaining, self._length)
            self._send_json(HTTPStatus.REQUEST_TIMEOUT, "request_timeout",
                            f"the body did not arrive within {self.server.read_timeout:g} s")
            return None
        finally:
            with contextlib.suppress(OSError):
                self.connection.settimeout(self.server.read_timeout)
        return b"".join(chunks)

    def _api(self, body: bytes) -> None:
        from chalice.local import LocalGatewayException

        api_path = self._path[len(API_PREFIX):] or "/"
        if self._query:
            api_path += "?" + self._query
        try:
            response = self.server.gateway.handle_request(
                method=self.command, path=api_path, headers=dict(self.headers.items()),
                body=body,
            )
        except LocalGatewayException:
            self._send_json(HTTPStatus.NOT_FOUND, "not_found",
                            f"no API route {self.command} {self._path}")
            return
        except UnicodeError:  # Chalice encodes some header values as ASCII
            self.close_connection = True
            self._send_json(HTTPStatus.BAD_REQUEST, "bad_request",
                            "header values must be ASCII")
            return
        status = response["statusCode"]
        payload = response.get("body") or b""
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        headers = dict(response.get("headers") or {})
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        self._send(status, payload, headers, API_HEADERS)

    def _blob(self, key: str) -> None:
        try:
            data = self.server.blobs.get(key)
        except (InvalidInput, OSError, ValueError):
            self._send_json(HTTPStatus.NOT_FOUND, "not_found", f"no image {key}")
            return
        ctype = mimetypes.guess_type(key)[0]
        if ctype not in BLOB_TYPES:
            ctype = "application/octet-stream"
        self._send(200, data, {"Content-Type": ctype, "Cache-Control": "max-age=3600"},
                   self.server.page_headers)

    def _download(self, key: str) -> None:
        """An export file behind a signed, expiring link (``/files/<key>?expires&signature``),
        always as an attachment of bytes: a downloaded report never runs on this origin."""
        from urllib.parse import parse_qs

        from trainset.local.downloads import (
            LocalUploadFiles,
            local_export_files,
            local_upload_files,
        )

        query = parse_qs(self._query)
        expires, signature = query.get("expires", [""])[-1], query.get("signature", [""])[-1]
        if key.startswith(LocalUploadFiles.PREFIXES):  # an import's rejects file
            files = local_upload_files()
        else:
            files = self.server.downloads or local_export_files()
        target = files.open(key, expires, signature)
        if target is None:
            self._send_json(HTTPStatus.NOT_FOUND, "not_found",
                            "no such file, or the link has expired: ask the API for a new one")
            return
        name = target.name.replace('"', "")
        self._send(200, target.read_bytes(), {
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store"}, self.server.page_headers)

    def _static(self, path: str) -> None:
        relative = unquote(path).lstrip("/") or "index.html"
        try:
            target = (self.server.site_dir / relative).resolve()
            if target.is_dir():
                target = target / "index.html"
            inside = self.server.site_dir == target or self.server.site_dir in target.parents
            found = inside and target.is_file()
            data = target.read_bytes() if found else b""
        except (OSError, ValueError):  # a name too long for the file system, and the like
            found = False
        if not found:
            self._send_json(HTTPStatus.NOT_FOUND, "not_found", f"no file {path}")
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            ctype = "text/javascript"
        self._send(200, data, {"Content-Type": ctype, "Cache-Control": "no-cache"},
                   self.server.page_headers)

    def _send_json(self, status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> None:
        """An error of the server itself: JSON, so the API's security headers."""
        body = json.dumps({"error": code, "message": message, "details": None}).encode()
        self._send(int(status), body, {"Content-Type": "application/json",
                                       "Cache-Control": "no-store", **(headers or {})},
                   API_HEADERS)

    def _send(self, status: int, body: bytes, headers: dict[str, str],
              security: dict[str, str]) -> None:
        """Send a response; ``security`` headers are added unless already set."""
        if self.request_version == "HTTP/0.9":
            # http.server writes no status line or headers for 0.9; we never speak it.
            self.request_version = "HTTP/1.1"
        self._responded = True
        self.send_response(status)
        present = {name.lower() for name in headers}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        for name, value in security.items():
            if name.lower() not in present:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def finish(self) -> None:
        """After refusing a request whose body is still coming, stop writing and drain a
        little of it (bounded in bytes and time) so closing does not reset the connection
        before the client has read our answer."""
        try:
            super().finish()
        finally:
            if self._linger:
                self._drain()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + _DRAIN_SECONDS
            drained = 0
            while drained < _DRAIN_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.connection.settimeout(left)
                chunk = self.connection.recv(16384)
                if not chunk:
                    break
                drained += len(chunk)


def make_gateway(app: Any) -> Any:
    """Chalice's API Gateway emulation around ``app``."""
    from chalice.config import Config
    from chalice.local import LocalGateway

    config = Config.create(chalice_app=app, lambda_timeout=60, lambda_memory_size=512,
                           function_name="api_handler")
    return LocalGateway(app, config)


class StopSignals:
    """SIGTERM and SIGINT both stop the local stack the way Ctrl-C does: a KeyboardInterrupt
    in the main thread, so one ``finally`` shuts everything down. Without this, SIGTERM kills
    the process outright and leaves the embedded PostgreSQL running.

    Once the shutdown has begun (``begin_stop``), further signals are noted and ignored, so a
    second Ctrl-C cannot cut it in half. Inside ``deferred()`` (starting PostgreSQL, which
    must finish registering itself to be stoppable), a signal waits for the block's end.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.stopping = False
        self._pending = False
        self._deferring = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        while self._previous:
            signum, handler = self._previous.popitem()
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            # os.write, not print: a print here could re-enter one interrupted in the main
            # thread and raise.
            with contextlib.suppress(OSError):
                os.write(2, b"still stopping (the database shuts down last)...\n")
            return
        if self._deferring:
            self._pending = True
            return
        self.stopping = True
        raise KeyboardInterrupt

    def begin_stop(self) -> None:
        """From here on signals no longer interrupt: the shutdown runs to its end."""
        self.stopping = True

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold signals until the block is done; then act on one that came meanwhile."""
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if self._pending and not self._deferring and not self.stopping:
            self._pending = False
            self.stopping = True
            raise KeyboardInterrupt


def run_steps(steps: list[tuple[str, Callable[[], object]]]) -> list[str]:
    """Run every shutdown step even when one fails; the failures, one line each."""
    failures = []
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - report and go on: the rest must still stop
            failures.append(f"{name}: {type(exc).__name__}: {exc}".splitlines()[0])
    return failures
