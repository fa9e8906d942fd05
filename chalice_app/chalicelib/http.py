"""What every route shares: strict, schema-checked input; the caller's identity; errors as JSON.

A route is declared with ``endpoint(bp, operation)``: the operation (``trainset.api_schema``)
gives the path, the method and the schemas its body, query string and path parameters are
validated with, the same objects ``/openapi.json`` publishes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from chalice import Blueprint, CognitoUserPoolAuthorizer, Response
from chalice.app import Request

from chalicelib import runtime
from trainset import codebook, validation
from trainset.api_schema import Operation
from trainset.errors import (
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    TrainsetError,
    Unauthorized,
)
from trainset.models import Coder
from trainset.services.labeling import CoderAdmin, LabelingService
from trainset.store.db import is_unavailable
from trainset.store.labeling import LabelingStore
from trainset.web_headers import API_HEADERS

logger = logging.getLogger("trainset.api")

RETRY_AFTER_SECONDS = 5

# In AWS, API Gateway checks Cognito tokens before a request reaches us; CDK sets the real ARN.
AUTHORIZER = (
    CognitoUserPoolAuthorizer(
        "trainset-users",
        provider_arns=[
            os.environ.get(
                "TRAINSET_USER_POOL_ARN",
                "arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_placeholder",
            )
        ],
    )
    if runtime.AUTH_MODE == "cognito"
    else None
)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None,
                  ) -> Response:
    return Response(
        body=json.dumps(body, default=str, allow_nan=False),
        status_code=status,
        # The security headers come from api_middleware, for Chalice's own answers too.
        headers={"Content-Type": "application/json", "Cache-Control": "no-store",
                 **(headers or {})},
    )


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """``{error, message, details}``, with a list of details bounded (the first
    ``validation.MAX_PROBLEMS``, each message cut short, and ``omitted`` counting the rest)."""
    body: dict[str, Any] = {"error": code, "message": message[:1000], "details": details}
    if isinstance(details, list):
        shown = details[: validation.MAX_PROBLEMS]
        body["details"] = [_short(d) for d in shown]
        if len(details) > len(shown):
            body["omitted"] = len(details) - len(shown)
    return body


def _short(detail: Any) -> Any:
    if isinstance(detail, dict) and isinstance(detail.get("message"), str):
        message = detail["message"]
        if len(message) > validation.MAX_MESSAGE:
            return {**detail, "message": message[: validation.MAX_MESSAGE - 1] + "…"}
    return detail


def error_response(exc: TrainsetError) -> Response:
    return json_response(error_body(exc.code, exc.message, exc.details), exc.status)


def unavailable_response() -> Response:
    """The database is down or restarting: say so, and when to retry, and nothing more."""
    return json_response(
        error_body("unavailable", "the service is briefly unavailable; try again shortly"),
        503, {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def invalid(problems: list[validation.Problem], what: str = "the request") -> InvalidInput:
    """One 400 for all of a request's problems (the details are bounded when sent)."""
    return InvalidInput(f"{what} has {len(problems)} problem(s); nothing was changed",
                        [p.as_dict() for p in problems])


@dataclass(frozen=True)
class Inputs:
    """A request's checked input: the body (None when optional and absent), the query string
    and the path parameters, typed as their schemas say."""

    body: Any
    query: dict[str, Any]
    path: dict[str, Any]


def _query(request: Request) -> tuple[dict[str, str], list[validation.Problem]]:
    params = request.query_params
    if not params:
        return {}, []
    problems: list[validation.Problem] = []
    values: dict[str, str] = {}
    for name in params:
        given = params.getlist(name) if hasattr(params, "getlist") else [params[name]]
        if len(given) > 1:
            problems.append(validation.Problem(f"query.{name}", "is given more than once"))
        values[name] = given[-1]
    return values, problems


def _texts(values: Mapping[str, str], where: str) -> list[validation.Problem]:
    problems = []
    for name, value in values.items():
        for text in (name, value):
            reason = validation.bad_text(text)
            if reason:
                problems.append(validation.Problem(f"{where}.{name[:40]}", reason))
                break
    return problems


def read_body(request: Request, op: Operation) -> Any:
    """The request's JSON body, parsed strictly and validated against ``op.body``."""
    raw = request.raw_body or b""
    if len(raw) > validation.MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"the body is {len(raw)} bytes; at most {validation.MAX_BODY_BYTES} allowed")
    if not raw.strip():
        if op.body_required:
            raise InvalidInput("the request needs a JSON body")
        return None
    try:
        body, problems = validation.parse_json(raw)
    except validation.BadJson as exc:
        raise InvalidInput(str(exc)) from None
    problems += validation.validate(op.body, body, "body")
    if problems:
        raise invalid(problems)
    return body


def check_inputs(request: Request, op: Operation, path_params: Mapping[str, str]) -> Inputs:
    """Everything the request carries, checked against the operation's schemas: unknown,
    repeated or ill-typed parameters and bad bodies are refused with every problem listed."""
    query_text, problems = _query(request)
    problems += _texts(query_text, "query") + _texts(path_params, "path")
    if problems:
        raise invalid(problems)
    query = validation.coerce_query(op.query, query_text)
    path = validation.coerce_query(op.path_params, path_params)
    problems = (validation.validate(op.query, query, "query")
                + validation.validate(op.path_params, path, "path"))
    if problems:
        raise invalid(problems)
    body = read_body(request, op) if op.body is not None else None
    return Inputs(body, query, path)


def answer_problems(body: Mapping[str, Any]) -> list[validation.Problem]:
    """The codebook's rules beyond the schema (conditional questions, exclusive options), with
    paths; ``body`` already conforms to ``api_schema.LABEL_SUBMISSION``."""
    family = codebook.FAMILIES[body["family"]]
    questions = {q.name for q in family.questions}
    return [
        validation.Problem(f"body.answers.{e.field}" if e.field in questions
                           else f"body.{e.field}", e.message)
        for e in codebook.validate(family.name, body["answers"])
    ]


def endpoint(bp: Blueprint, op: Operation) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``handler(request, inputs)`` as ``op``'s route. Input is checked before the
    handler runs; its return value becomes JSON; every failure becomes ``{error, message,
    details}`` with the right status; a database outage is a 503 with Retry-After; unexpected
    errors are logged, never shown."""

    def decorate(handler: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(handler)
        def view(**path_params: str) -> Response:
            try:
                request = bp.current_request
                result = handler(request, check_inputs(request, op, path_params))
            except Exception as exc:
                return _failure(exc, handler.__name__)
            if isinstance(result, Response):
                return result
            return json_response(result, op.ok_status)

        view.operation = op  # type: ignore[attr-defined]
        bp.route(op.path, methods=[op.method],
                 authorizer=AUTHORIZER if op.auth else None)(view)
        return view

    return decorate


def _failure(exc: Exception, where: str) -> Response:
    if is_unavailable(exc):
        logger.warning("database unavailable in %s: %s", where, type(exc).__name__)
        return unavailable_response()
    if isinstance(exc, TrainsetError):
        return error_response(exc)
    logger.exception("unhandled error in %s", where)
    return json_response(error_body("internal_error", "something went wrong on our side; "
                                    "the request was not completed"), 500)


def api_middleware(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Chalice answers some requests itself (405 for a method a path lacks, 415 for a body
    that is not JSON): give those our error shape, and every answer the API's headers."""
    response = get_response(event)
    body = response.body
    if response.status_code >= 400 and isinstance(body, dict) and "Code" in body:
        response.body = json.dumps(error_body(
            "method_not_allowed" if response.status_code == 405 else "unsupported_media_type"
            if response.status_code == 415 else "bad_request", str(body.get("Message", ""))))
        response.headers["Content-Type"] = "application/json"
    for name, value in API_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


@contextlib.contextmanager
def services() -> Iterator[tuple[LabelingStore, LabelingService, CoderAdmin]]:
    with runtime.pool().connection() as conn:
        store = LabelingStore(conn)
        yield store, LabelingService(store, runtime.settings()), CoderAdmin(store)


def current_coder(request: Request, store: LabelingStore) -> Coder:
    """The caller, as a coder row; a caller can only ever act as this coder."""
    if runtime.AUTH_MODE == "cognito":
        claims = (request.context.get("authorizer") or {}).get("claims") or {}
        name = claims.get("cognito:username")
        if not name:
            raise Unauthorized("no signed-in user on this request")
        row = store.coder_by_name(name)
        if row is None or row["imported"]:
            raise Forbidden(f"user {name} is not registered as a coder; ask a manager")
        coder = Coder.from_row(row)
        groups = claims.get("cognito:groups") or ""
        if coder.is_manager and "managers" not in groups:
            coder = Coder(coder.id, coder.name, "coder", coder.status)
        return coder
    from trainset import tokens
    from trainset.local.secrets import local_token_secret

    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send your token as 'Authorization: Bearer <token>'")
    claims = tokens.verify(token.strip(), local_token_secret())
    row = store.coder_by_id(claims.coder_id)
    if row is None:
        raise Unauthorized("this token's coder no longer exists")
    if row["imported"]:
        raise Unauthorized("this coder only holds imported labels and cannot sign in")
    return Coder.from_row(row)


def require_manager(coder: Coder) -> None:
    if not coder.is_manager or coder.status == "revoked":
        raise Forbidden("this needs the manager role")
