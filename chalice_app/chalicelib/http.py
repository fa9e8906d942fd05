"""What every route shares: JSON bodies, the caller's identity, and errors as JSON."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from chalice import CognitoUserPoolAuthorizer, Response
from chalice.app import Request

from chalicelib import runtime
from trainset.errors import Forbidden, InvalidInput, PayloadTooLarge, TrainsetError, Unauthorized
from trainset.models import Coder
from trainset.services.labeling import CoderAdmin, LabelingService
from trainset.store.labeling import LabelingStore

logger = logging.getLogger("trainset.api")

MAX_BODY_BYTES = 64 * 1024

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


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        body=json.dumps(body, default=str),
        status_code=status,
        headers={"Content-Type": "application/json", "Cache-Control": "no-store"},
    )


def error_response(exc: TrainsetError) -> Response:
    return json_response(exc.as_dict(), exc.status)


def api(handler: Callable[..., Any]) -> Callable[..., Response]:
    """Turn a handler's return value into JSON and every failure into ``{error, message,
    details}`` with the right status; unexpected errors are logged, never shown."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            result = handler(*args, **kwargs)
        except TrainsetError as exc:
            return error_response(exc)
        except Exception:
            logger.exception("unhandled error in %s", handler.__name__)
            return json_response(
                {"error": "internal_error", "message": "something went wrong on our side; "
                 "the request was not completed", "details": None},
                500,
            )
        if isinstance(result, Response):
            return result
        return json_response(result)

    return wrapper


def json_body(request: Request) -> Any:
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body is {len(raw)} bytes; at most {MAX_BODY_BYTES} allowed")
    if not raw.strip():
        raise InvalidInput("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail = getattr(exc, "lineno", None)
        where = f" at line {exc.lineno}, column {exc.colno}" if detail else ""
        raise InvalidInput(f"the body is not valid JSON{where}: {exc}") from None


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
        if row is None:
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
    return Coder.from_row(row)


def require_manager(coder: Coder) -> None:
    if not coder.is_manager or coder.status == "revoked":
        raise Forbidden("this needs the manager role")
