"""The OpenAPI 3 document of the API; a test keeps it in step with the registered routes."""

from __future__ import annotations

from typing import Any

from trainset import __version__, codebook

_ERROR = {"$ref": "#/components/responses/Error"}
_FAMILY_PARAM = {
    "name": "family",
    "in": "query",
    "required": True,
    "schema": {"type": "string", "enum": list(codebook.FAMILY_NAMES)},
}


def _ok(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}
    return body


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): _ERROR for code in codes}


def _answers_schema() -> dict[str, Any]:
    """One answers schema per family, from the codebook (conditional rules are checked by the
    server and reported per field)."""
    variants = []
    for fam in codebook.FAMILIES.values():
        props: dict[str, Any] = {}
        for q in fam.questions:
            if q.kind == "yes_no":
                props[q.name] = {"type": "boolean", "description": q.prompt}
            else:
                props[q.name] = {
                    "type": "array",
                    "items": {"type": "string", "enum": list(q.values)},
                    "uniqueItems": True,
                    "description": q.prompt,
                }
        variants.append(
            {"title": fam.name, "type": "object", "properties": props,
             "additionalProperties": False}
        )
    return {"oneOf": variants}


def document() -> dict[str, Any]:
    auth = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "trainset labeling API",
            "version": __version__,
            "description": "Hands posts to coders and stores their labels. Errors are JSON "
            "{error, message, details}.",
        },
        "paths": {
            "/codebook": {"get": {"summary": "The label families, questions, options and rules",
                                  "responses": {"200": _ok("The codebook")}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": _ok("OpenAPI 3 document")}}},
            "/health": {"get": {"summary": "Liveness", "responses": {"200": _ok("ok")}}},
            "/tasks/next": {
                "get": {
                    "summary": "Lease the caller's next post (or return their current lease)",
                    "security": auth,
                    "parameters": [
                        _FAMILY_PARAM,
                        {"name": "mode", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": ["work", "practice"],
                                    "default": "work"}},
                    ],
                    "responses": {
                        "200": _ok("A task, or task null with a message when the queue is "
                                   "empty", {"$ref": "#/components/schemas/NextTask"}),
                        **_errors(400, 401, 403),
                    },
                }
            },
            "/labels": {
                "post": {
                    "summary": "Store a label (idempotent by submission_id; a second label for "
                    "the same post is a revision)",
                    "security": auth,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/LabelSubmission"}}}},
                    "responses": {"200": _ok("The stored label (with practice feedback for "
                                             "practice posts)"),
                                  **_errors(400, 401, 403, 404, 409, 413)},
                }
            },
            "/tasks/{post_id}/skip": {
                "post": {
                    "summary": "Skip the leased post, with a reason",
                    "security": auth,
                    "parameters": [{"name": "post_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["family", "reason"],
                                   "properties": {
                                       "family": {"type": "string",
                                                  "enum": list(codebook.FAMILY_NAMES)},
                                       "reason": {"type": "string", "maxLength": 500}}}}}},
                    "responses": {"200": _ok("Skipped"), **_errors(400, 401, 403, 409)},
                }
            },
            "/me": {"get": {"summary": "The caller's status, today's counts, practice score",
                            "security": auth,
                            "responses": {"200": _ok("The caller"), **_errors(401)}}},
            "/me/history": {
                "get": {
                    "summary": "The caller's current labels, newest first",
                    "security": auth,
                    "parameters": [
                        {"name": "limit", "in": "query", "schema": {"type": "integer",
                                                                   "minimum": 1,
                                                                   "maximum": 200}},
                        {"name": "before", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {"200": _ok("A page of labels"), **_errors(400, 401)},
                }
            },
            "/coders": {
                "get": {"summary": "All coders (manager)", "security": auth,
                        "responses": {"200": _ok("Coders"), **_errors(401, 403)}},
                "post": {
                    "summary": "Create a coder (manager); locally the answer carries a token",
                    "security": auth,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "required": ["name"], "properties": {
                            "name": {"type": "string"},
                            "role": {"type": "string", "enum": ["coder", "manager"]},
                            "status": {"type": "string",
                                       "enum": ["trainee", "certified", "revoked"]}}}}}},
                    "responses": {"201": _ok("Created"), **_errors(400, 401, 403, 409)},
                },
            },
            "/coders/{coder_id}": {
                "patch": {
                    "summary": "Certify, revoke or change the role of a coder (manager)",
                    "security": auth,
                    "parameters": [{"name": "coder_id", "in": "path", "required": True,
                                    "schema": {"type": "integer"}}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"type": "object", "properties": {
                            "role": {"type": "string", "enum": ["coder", "manager"]},
                            "status": {"type": "string",
                                       "enum": ["trainee", "certified", "revoked"]}}}}}},
                    "responses": {"200": _ok("Updated"), **_errors(400, 401, 403, 404, 409)},
                }
            },
            "/reports/coders": {
                "get": {
                    "summary": "Coder report: per coder and day counts, speed, unsure and no "
                    "answers, gold accuracy per week, agreement with consensus, samples "
                    "(manager)",
                    "security": auth,
                    "parameters": [
                        {"name": "from", "in": "query", "schema": {"type": "string",
                                                                  "format": "date"}},
                        {"name": "to", "in": "query", "schema": {"type": "string",
                                                                "format": "date"}},
                        {"name": "family", "in": "query", "schema": {
                            "type": "string", "enum": list(codebook.FAMILY_NAMES)}},
                    ],
                    "responses": {"200": _ok("The report's views"), **_errors(400, 401, 403)},
                }
            },
            "/exports": {
                "post": {
                    "summary": "Start the export job (gold, consensus, screening, TFRecord "
                    "export, verification) for some or all families (manager)",
                    "security": auth,
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"type": "object", "properties": {"families": {
                            "type": "array", "items": {
                                "type": "string", "enum": list(codebook.FAMILY_NAMES)}}}}}}},
                    "responses": {"202": _ok("The job id; poll GET /exports/{job_id}"),
                                  **_errors(400, 401, 403)},
                }
            },
            "/exports/{job_id}": {
                "get": {
                    "summary": "An export job: status, output (summary with the files' "
                    "locations) or error (manager)",
                    "security": auth,
                    "parameters": [{"name": "job_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}],
                    "responses": {"200": _ok("The job"), **_errors(401, 403, 404)},
                }
            },
            "/progress": {"get": {"summary": "Open/leased/done per family and counts per coder "
                                  "(manager)", "security": auth,
                                  "responses": {"200": _ok("Progress"), **_errors(401, 403)}}},
            "/images/uploads": {
                "post": {
                    "summary": "A presigned PUT URL for one image under uploads/ (manager); the "
                    "upload is then augmented and face-clipped automatically",
                    "security": auth,
                    "requestBody": {"required": False, "content": {"application/json": {
                        "schema": {"type": "object", "additionalProperties": False,
                                   "properties": {
                                       "filename": {"type": "string"},
                                       "content_type": {"type": "string", "default": "image/jpeg",
                                                        "enum": ["image/jpeg", "image/png",
                                                                 "image/webp", "image/gif",
                                                                 "image/bmp", "image/tiff"]}}}}}},
                    "responses": {
                        "201": _ok("PUT the bytes to url with the given headers before "
                                   "expires_in seconds", {"type": "object", "properties": {
                                       "key": {"type": "string"}, "url": {"type": "string"},
                                       "method": {"type": "string", "enum": ["PUT"]},
                                       "headers": {"type": "object"},
                                       "expires_in": {"type": "integer"}}}),
                        **_errors(400, 401, 403, 413),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "A local token, or a Cognito ID "
                                           "token in AWS"}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"},
                    "details": {}}},
                "NextTask": {"type": "object", "properties": {
                    "task": {"nullable": True, "type": "object", "properties": {
                        "post_id": {"type": "string"}, "family": {"type": "string"},
                        "text": {"type": "string"},
                        "image_url": {"type": "string", "nullable": True},
                        "lease_expires_at": {"type": "string", "format": "date-time"}}},
                    "message": {"type": "string"},
                    "progress": {"type": "object"}}},
                "LabelSubmission": {
                    "type": "object",
                    "required": ["submission_id", "post_id", "family", "answers"],
                    "properties": {
                        "submission_id": {"type": "string", "format": "uuid"},
                        "post_id": {"type": "string"},
                        "family": {"type": "string", "enum": list(codebook.FAMILY_NAMES)},
                        "answers": _answers_schema(),
                        "seconds_spent": {"type": "number", "minimum": 0},
                    },
                    "additionalProperties": False,
                },
            },
        },
    }
