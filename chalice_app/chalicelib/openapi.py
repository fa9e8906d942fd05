"""The OpenAPI 3 document of the API, built from the operations' own schema objects.

Every request body, query parameter and path parameter in the document is the very schema
object the server validates with (``trainset.api_schema``), so the two cannot disagree.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from trainset import __version__, api_schema
from trainset.api_schema import Operation

_DESCRIPTIONS = {
    400: "Invalid input: every problem listed in details ({field, path, message}), at most 20",
    401: "No token, or a bad or expired one",
    403: "The caller's role or status does not allow this",
    404: "Not found",
    409: "Conflict with the current state; the message gives the reason",
    413: "The body is over 64 KiB",
    415: "The body is not application/json",
    503: "The database is briefly unavailable; retry after Retry-After seconds",
}


def parameters(op: Operation) -> list[dict[str, Any]]:
    """The operation's path and query parameters, each with its schema object."""
    out = []
    for where, schema in (("path", op.path_params), ("query", op.query)):
        required = set(schema.get("required", ()))
        for name, sub in schema["properties"].items():
            out.append({"name": name, "in": where, "required": where == "path" or
                        name in required, "schema": sub})
    return out


def _operation(op: Operation) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if op.ok_schema is not None:
        ok["content"] = {"application/json": {"schema": op.ok_schema}}
    responses: dict[str, Any] = {str(op.ok_status): ok}
    for code in op.other_ok:
        responses[str(code)] = ok
    for code in op.error_statuses():
        ref = "Unavailable" if code == 503 else "Error"
        responses[str(code)] = {"$ref": f"#/components/responses/{ref}{code}"}
    body: dict[str, Any] = {"operationId": op.name, "summary": op.summary,
                            "parameters": parameters(op), "responses": responses}
    if op.auth:
        body["security"] = [{"bearer": []}]
    if op.body is not None:
        body["requestBody"] = {"required": op.body_required, "content": {
            "application/json": {"schema": op.body}}}
    return body


def _error_responses() -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    out: dict[str, Any] = {}
    for code, text in _DESCRIPTIONS.items():
        name = f"Unavailable{code}" if code == 503 else f"Error{code}"
        out[name] = {"description": text, "content": error}
        if code == 503:
            out[name]["headers"] = {"Retry-After": {"schema": {"type": "integer"},
                                                    "description": "Seconds to wait"}}
    return out


@cache
def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for op in api_schema.OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "trainset labeling API",
            "version": __version__,
            "description": "Hands posts to coders and stores their labels. Errors are JSON "
            "{error, message, details}. Input is strict: unknown fields and query parameters, "
            "non-finite numbers, NUL characters, unpaired surrogates and JSON nested over "
            "32 deep are refused with 400. Unexpected failures are a plain 500.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A local token, or a Cognito ID "
                                           "token in AWS"}},
            "responses": _error_responses(),
            "schemas": {"Error": api_schema.ERROR},
        },
    }
