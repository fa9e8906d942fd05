"""Every API operation's inputs and answers, as schema objects.

The routes validate with these objects (``trainset.validation``) and ``/openapi.json`` is built
from the very same objects, so what the document allows and what the server accepts cannot
drift apart. Rules JSON Schema cannot say (a question asked only after a given answer, an
option that excludes the others, a from-date after the to-date) are checked after the schema
by the server (``trainset.codebook.validate``) and described in the schema's description.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trainset import codebook
from trainset.models import ROLES, STATUSES

MAX_SECONDS_SPENT = 86_400  # a day: more is a clock or client bug, not time spent on a post
MAX_ID = 2**62

FAMILY: dict[str, Any] = {"type": "string", "enum": list(codebook.FAMILY_NAMES)}
POST_ID: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 64}
UUID: dict[str, Any] = {"type": "string", "format": "uuid",
                        "description": "Made by the client once per submission; a retry reuses it"}
ROW_ID: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
DATE: dict[str, Any] = {"type": "string", "format": "date"}
ROLE: dict[str, Any] = {"type": "string", "enum": list(ROLES)}
STATUS: dict[str, Any] = {"type": "string", "enum": list(STATUSES)}
CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp",
                 "image/tiff")


def _object(properties: dict[str, Any], required: tuple[str, ...] = (),
            **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False, **extra}
    if required:
        schema["required"] = list(required)
    return schema


NO_PARAMS = _object({})


def _question_schema(q: codebook.Question) -> dict[str, Any]:
    notes = [q.prompt]
    if q.show_when is not None:
        notes.append(f"Asked (then required) only when {q.show_when.describe()}; "
                     "otherwise leave it out.")
    exclusive = [o.value for o in q.options if o.exclusive]
    if exclusive:
        notes.append("Cannot be combined with other options: " + "; ".join(exclusive) + ".")
    description = " ".join(notes)
    if q.kind == "yes_no":
        return {"type": "boolean", "description": description}
    return {"type": "array", "items": {"type": "string", "enum": list(q.values)},
            "minItems": 1, "maxItems": len(q.options), "uniqueItems": True,
            "description": description}


def answers_schema(fam: codebook.Family) -> dict[str, Any]:
    """One family's answers: its questions and options; questions asked unconditionally are
    required, conditional ones are described (and checked by ``codebook.validate``)."""
    return _object(
        {q.name: _question_schema(q) for q in fam.questions},
        tuple(q.name for q in fam.questions if q.show_when is None),
        title=f"{fam.name} answers",
    )


SECONDS_SPENT: dict[str, Any] = {"type": "number", "minimum": 0,
                                 "maximum": MAX_SECONDS_SPENT}

LABEL_SUBMISSION: dict[str, Any] = {
    "type": "object",
    "description": "One label. The family picks the answers' form; beyond this schema the "
    "server checks the codebook's conditional rules (a question asked only after a given "
    "answer must then be answered, and left out otherwise) and exclusive options, each "
    "reported as a 400 naming the field.",
    "x-discriminator": "family",
    "oneOf": [
        _object({
            "submission_id": UUID,
            "post_id": POST_ID,
            "family": {"type": "string", "enum": [fam.name]},
            "answers": answers_schema(fam),
            "seconds_spent": SECONDS_SPENT,
        }, ("submission_id", "post_id", "family", "answers"), title=f"{fam.name} label")
        for fam in codebook.FAMILIES.values()
    ],
}

SKIP: dict[str, Any] = _object({
    "family": FAMILY,
    "reason": {"type": "string", "minLength": 1, "maxLength": 500, "pattern": r"\S",
               "x-pattern-message": "say briefly why you skip this post",
               "description": "Why the post is skipped; not only spaces"},
}, ("family", "reason"))

CODER_NAME: dict[str, Any] = {
    "type": "string", "minLength": 1, "maxLength": 64,
    "pattern": "^[A-Za-z0-9][A-Za-z0-9_.@-]*$",
    "x-pattern-message": "1-64 letters, digits, '_', '.', '@' or '-', starting with a "
    "letter or digit",
}
CODER_CREATE: dict[str, Any] = _object(
    {"name": CODER_NAME, "role": {**ROLE, "default": "coder"},
     "status": {**STATUS, "default": "trainee"}}, ("name",))
CODER_UPDATE: dict[str, Any] = _object({"role": ROLE, "status": STATUS}, minProperties=1,
                                       description="Managers cannot revoke or demote "
                                       "themselves (409).")
EXPORT_REQUEST: dict[str, Any] = _object({
    "families": {"type": "array", "items": FAMILY, "minItems": 1, "uniqueItems": True,
                 "description": "Default: every family"},
})
UPLOAD_REQUEST: dict[str, Any] = _object({
    "filename": {"type": "string", "minLength": 1, "maxLength": 255,
                 "description": "Kept (made safe) at the end of the key; default 'image'"},
    "content_type": {"type": "string", "enum": list(CONTENT_TYPES), "default": "image/jpeg"},
})

NEXT_TASK_QUERY = _object({"family": FAMILY, "mode": {"type": "string",
                                                      "enum": ["work", "practice"],
                                                      "default": "work"}}, ("family",))
HISTORY_QUERY = _object({"limit": {"type": "integer", "minimum": 1, "maximum": 200,
                                   "default": 50},
                         "before": {**ROW_ID, "description": "next_before of the last page"}})
REPORT_QUERY = _object({"from": {**DATE, "description": "Default: 27 days before to"},
                        "to": {**DATE, "description": "Default: today (UTC); not before from"},
                        "family": FAMILY})

MAX_GOLD_CONTENT = 60_000  # characters; below the 64 KiB body limit, so too long is a 400
GOLD_PURPOSE: dict[str, Any] = {"type": "string", "enum": ["practice", "qa"],
                                "description": "practice: trains new coders, with feedback; "
                                "qa: mixed unseen into real work to score coders"}
GOLD_IMPORT: dict[str, Any] = _object({
    "purpose": GOLD_PURPOSE,
    "format": {"type": "string", "enum": ["csv", "jsonl"]},
    "content": {"type": "string", "minLength": 1, "maxLength": MAX_GOLD_CONTENT,
                "description": "The whole file's text. Columns: id, text, family, answers (a "
                "JSON object exactly as POST /labels takes it; in CSV a JSON string), optional "
                "rationale, keyword, image_key or image_url, author, created_at, purpose (must "
                "equal purpose). At most 60,000 characters, and the whole request body at most "
                "64 KiB as sent (413 beyond): import larger sets with `python -m trainset gold "
                "import`."},
}, ("purpose", "format", "content"), description="Import a gold or practice set. Each row is "
    "checked like a label (the codebook's rules) and rejected with its line and reason when "
    "bad: missing id, text or family, bad JSON in answers, answers that are not a valid label, "
    "an id given twice (every copy rejected), a post already in a campaign. Good rows are "
    "stored in one transaction (a post not in the corpus is created; re-importing updates, "
    "never duplicates); when no row can be stored the answer is a 400 listing the rejects "
    "and nothing changes.")
GOLD_QUERY = _object({
    "family": FAMILY, "purpose": GOLD_PURPOSE,
    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    "before": {"type": "string", "minLength": 3, "maxLength": 80,
               "pattern": "^(place|child|health):.", "x-pattern-message":
               "use next_before of the last page",
               "description": "next_before of the last page"}})

# ---- answers (for the document only) -------------------------------------------------------

_NULLABLE_STRING = {"type": "string", "nullable": True}
CODER = {"type": "object", "required": ["id", "name", "role", "status"], "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "role": ROLE, "status": STATUS}}
ERROR = {"type": "object", "required": ["error", "message"], "properties": {
    "error": {"type": "string"}, "message": {"type": "string"},
    "details": {"nullable": True, "description": "For invalid input, a list of {field, path, "
                "message}: at most 20, with omitted counting the rest"},
    "omitted": {"type": "integer", "description": "Problems not listed in details"}}}
NEXT_TASK = {"type": "object", "required": ["task", "progress"], "properties": {
    "task": {"nullable": True, "type": "object", "properties": {
        "post_id": {"type": "string"}, "family": {"type": "string"},
        "text": {"type": "string"}, "image_url": _NULLABLE_STRING,
        "lease_expires_at": {"type": "string", "format": "date-time"}}},
    "message": {"type": "string"},
    "progress": {"type": "object", "properties": {
        "done_today": {"type": "integer"}, "done_today_in_family": {"type": "integer"},
        "remaining_in_family": {"type": "integer"}}}}}
RECEIPT = {"type": "object", "required": ["label_id", "submission_id", "post_id", "family",
                                          "revision", "answers", "duplicate"], "properties": {
    "label_id": {"type": "integer"}, "submission_id": {"type": "string"},
    "post_id": {"type": "string"}, "family": FAMILY, "revision": {"type": "integer"},
    "answers": {"type": "object"}, "duplicate": {"type": "boolean"},
    "practice": {"type": "object", "description": "Feedback, for practice posts only"}}}
SKIPPED = {"type": "object", "required": ["skipped", "post_id", "family"], "properties": {
    "skipped": {"type": "boolean"}, "post_id": {"type": "string"}, "family": FAMILY}}
ME = {"type": "object", "required": [*CODER["required"], "today", "practice"], "properties": {
    **CODER["properties"], "today": {"type": "object"}, "practice": {"type": "object"}}}
HISTORY = {"type": "object", "required": ["items", "next_before"], "properties": {
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "label_id": {"type": "integer"}, "post_id": {"type": "string"}, "family": FAMILY,
        "revision": {"type": "integer"}, "kind": {"type": "string",
                                                  "enum": ["task", "practice"]},
        "answers": {"type": "object"}, "created_at": _NULLABLE_STRING,
        "text": {"type": "string", "nullable": True}, "image_url": _NULLABLE_STRING}}},
    "next_before": {"type": "integer", "nullable": True}}}
CODERS = {"type": "object", "required": ["coders"], "properties": {
    "coders": {"type": "array", "items": {"type": "object", "properties": {
        **CODER["properties"], "created_at": _NULLABLE_STRING,
        "status_changed_at": _NULLABLE_STRING}}}}}
CREATED_CODER = {"type": "object", "required": ["coder"], "properties": {
    "coder": CODER, "token": {"type": "string", "description": "Local runs only"}}}
ONE_CODER = {"type": "object", "required": ["coder"], "properties": {"coder": CODER}}
_COUNTS = {"type": "object", "properties": {"practice": {"type": "integer"},
                                            "qa": {"type": "integer"}}}
PROGRESS = {"type": "object", "required": ["families", "coders"], "properties": {
    "families": {"type": "object"},
    "coders": {"type": "array", "description": "practice_done: the families whose practice "
               "posts this trainee has all answered (add practice posts, or certify them)"},
    "gold": {"type": "object", "description": "Gold posts per family: practice and qa",
             "additionalProperties": _COUNTS}}}
_PCT = {"type": "number", "nullable": True}
GOLD_BY_OPTION = {"type": "array", "description": "The study's QA layout: per family, option "
                  "and coder, percent right on negative and positive gold with counts and "
                  "Wilson 95% bounds", "items": _object({
                      "family": FAMILY, "label": {"type": "string"},
                      "coder": {"type": "string"}, "neg_gold_correct_pct": _PCT,
                      "neg_gold_n": {"type": "integer"}, "pos_gold_correct_pct": _PCT,
                      "pos_gold_n": {"type": "integer"}, "neg_ci_low": _PCT,
                      "neg_ci_high": _PCT, "pos_ci_low": _PCT, "pos_ci_high": _PCT},
                      ("family", "label", "coder", "neg_gold_correct_pct", "neg_gold_n",
                       "pos_gold_correct_pct", "pos_gold_n"))}
REPORT = {"type": "object", "required": ["from", "to", "gold_by_option"], "properties": {
    "from": DATE, "to": DATE, "coders": {"type": "array"}, "daily": {"type": "array"},
    "gold_by_option": GOLD_BY_OPTION}}
JOB_STARTED = {"type": "object", "required": ["job_id", "families", "status"], "properties": {
    "job_id": {"type": "string"}, "families": {"type": "array", "items": FAMILY},
    "status": {"type": "string"}}}
JOB = {"type": "object", "required": ["id", "status"], "properties": {
    "id": {"type": "string"}, "status": {"type": "string"}, "families": {"type": "array"},
    "error": _NULLABLE_STRING}}
GOLD_IMPORTED = {"type": "object", "required": ["purpose", "new", "updated", "unchanged",
                                                "rejected", "rejects"], "properties": {
    "purpose": GOLD_PURPOSE, "rows": {"type": "integer"}, "new": {"type": "integer"},
    "updated": {"type": "integer"}, "unchanged": {"type": "integer"},
    "posts_created": {"type": "integer", "description": "Posts added to the corpus"},
    "rejected": {"type": "integer", "description": "All rejected rows"},
    "rejects": {"type": "array", "description": "The first 20 rejected rows",
                "items": {"type": "object", "properties": {
                    "line": {"type": "integer"}, "id": _NULLABLE_STRING,
                    "reason": {"type": "string"}}}}}}
GOLD_LIST = {"type": "object", "required": ["items", "next_before"], "properties": {
    "items": {"type": "array", "items": {"type": "object", "properties": {
        "post_id": {"type": "string"}, "family": FAMILY, "purpose": GOLD_PURPOSE,
        "text": {"type": "string"}, "answers": {"type": "object"},
        "rationale": {"type": "string"}, "keyword": _NULLABLE_STRING,
        "image_key": _NULLABLE_STRING, "added_at": _NULLABLE_STRING}}},
    "next_before": _NULLABLE_STRING}}
UPLOAD = {"type": "object", "required": ["key", "url", "method", "headers", "expires_in"],
          "properties": {"key": {"type": "string"}, "url": {"type": "string"},
                         "method": {"type": "string", "enum": ["PUT"]},
                         "headers": {"type": "object"}, "expires_in": {"type": "integer"}}}


@dataclass(frozen=True)
class Operation:
    """One route: where it lives, what it accepts (the schemas the server validates with) and
    what it answers."""

    name: str
    method: str
    path: str
    summary: str
    ok_status: int = 200
    ok_schema: dict[str, Any] | None = None
    auth: bool = True
    query: dict[str, Any] = field(default_factory=lambda: NO_PARAMS)
    path_params: dict[str, Any] = field(default_factory=lambda: NO_PARAMS)
    body: dict[str, Any] | None = None
    body_required: bool = True
    errors: tuple[int, ...] = ()  # statuses beyond those every operation of its kind can give

    def error_statuses(self) -> list[int]:
        """Every error status this operation can answer with."""
        codes = {400, *self.errors}  # 400: every operation refuses unknown query parameters
        if self.auth:
            codes |= {401, 403, 503}
        if self.body is not None:
            codes |= {413, 415}
        return sorted(codes)


OPERATIONS: tuple[Operation, ...] = (
    Operation("get_codebook", "GET", "/codebook",
              "The label families, questions, options and rules",
              ok_schema={"type": "object", "required": ["families"]}, auth=False),
    Operation("openapi", "GET", "/openapi.json", "This document",
              ok_schema={"type": "object", "required": ["openapi", "paths"]}, auth=False),
    Operation("health", "GET", "/health", "Liveness",
              ok_schema={"type": "object", "required": ["status"]}, auth=False),
    Operation("next_task", "GET", "/tasks/next",
              "Lease the caller's next post (or return their current lease); task null with a "
              "message when the queue is empty", ok_schema=NEXT_TASK, query=NEXT_TASK_QUERY),
    Operation("submit_label", "POST", "/labels",
              "Store a label (idempotent by submission_id; a second label for the same post is "
              "a revision); practice feedback for practice posts", ok_schema=RECEIPT,
              body=LABEL_SUBMISSION, errors=(404, 409)),
    Operation("skip_task", "POST", "/tasks/{post_id}/skip",
              "Skip the leased post, with a reason; it goes back to the pool for others",
              ok_schema=SKIPPED, path_params=_object({"post_id": POST_ID}, ("post_id",)),
              body=SKIP, errors=(409,)),
    Operation("me", "GET", "/me", "The caller's status, today's counts, practice score",
              ok_schema=ME),
    Operation("my_history", "GET", "/me/history", "The caller's current labels, newest first",
              ok_schema=HISTORY, query=HISTORY_QUERY),
    Operation("list_coders", "GET", "/coders", "All coders (manager)", ok_schema=CODERS),
    Operation("create_coder", "POST", "/coders",
              "Create a coder (manager); locally the answer carries a token", ok_status=201,
              ok_schema=CREATED_CODER, body=CODER_CREATE, errors=(409,)),
    Operation("update_coder", "PATCH", "/coders/{coder_id}",
              "Certify, revoke or change the role of a coder (manager); audited",
              ok_schema=ONE_CODER, path_params=_object({"coder_id": ROW_ID}, ("coder_id",)),
              body=CODER_UPDATE, errors=(404, 409)),
    Operation("progress", "GET", "/progress",
              "Open/leased/done per family and counts per coder (manager)", ok_schema=PROGRESS),
    Operation("coder_reports", "GET", "/reports/coders",
              "Coder report: per coder and day counts, speed, unsure and no answers, gold "
              "accuracy per week and per option (positive vs negative gold), agreement with "
              "consensus, samples (manager)",
              ok_schema=REPORT, query=REPORT_QUERY),
    Operation("start_export", "POST", "/exports",
              "Start the export job (gold, consensus, screening, TFRecord export, "
              "verification) for some or all families (manager)", ok_status=202,
              ok_schema=JOB_STARTED, body=EXPORT_REQUEST, body_required=False),
    Operation("get_export", "GET", "/exports/{job_id}",
              "An export job: status, output (summary with the files' locations) or error "
              "(manager)", ok_schema=JOB,
              path_params=_object({"job_id": {"type": "string", "minLength": 1,
                                              "maxLength": 100}}, ("job_id",)),
              errors=(404,)),
    Operation("create_upload", "POST", "/images/uploads",
              "A presigned PUT URL for one image under uploads/ (manager); the upload is then "
              "augmented and face-clipped automatically. PUT the bytes to url with the given "
              "headers before expires_in seconds", ok_status=201, ok_schema=UPLOAD,
              body=UPLOAD_REQUEST, body_required=False),
    Operation("import_gold", "POST", "/gold/imports",
              "Import a gold or practice set from CSV or JSONL text of at most 64 KiB "
              "(manager); answers the counts and the first 20 rejected rows. Larger sets: "
              "python -m trainset gold import", ok_schema=GOLD_IMPORTED, body=GOLD_IMPORT),
    Operation("list_gold", "GET", "/gold",
              "Gold and practice posts with their answers, by family and id, newest key "
              "first (manager)", ok_schema=GOLD_LIST, query=GOLD_QUERY),
)
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
