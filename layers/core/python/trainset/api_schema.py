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
from trainset.quality import EM_MAX_ITERATIONS

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
CODER_UPDATE: dict[str, Any] = _object(
    {"role": ROLE, "status": STATUS,
     "confirm": {"type": "boolean", "default": False,
                 "description": "Certify a trainee who is not ready by the practice rule "
                 "(without it: 409 with their practice score)"}},
    minProperties=1, description="Managers cannot revoke or demote themselves (409). "
    "Certifying a trainee is audited with their practice score at that moment.")
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

# ---- the manager's console: campaigns, results, review, certification -------------------

STRATEGIES = ("equal", "proportional", "neyman", "random")  # trainset.corpus.sampling.STRATEGIES
CAMPAIGN_NAME: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": 100,
                                 "pattern": r"^\S(.*\S)?$", "x-pattern-message":
                                 "1-100 characters, not starting or ending with a space"}
SAMPLE_FILTERS: dict[str, Any] = _object({
    "exclude_phrases": {"type": "array", "maxItems": 100, "items": {
        "type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S",
        "x-pattern-message": "a phrase, not only spaces"},
        "description": "Posts containing any of these (case-insensitive) are left out; "
        "replaces the default list (the study's spam phrases); [] turns it off"},
    "min_length": {"type": "integer", "minimum": 0, "maximum": 100_000, "default": 20,
                   "description": "Shortest text kept, in characters"},
    "near_duplicate_bits": {"type": "integer", "minimum": -1, "maximum": 64, "default": 3,
                            "description": "SimHash distance for near-duplicates; -1 turns "
                            "the filter off"},
    "language": {"type": "string", "minLength": 2, "maxLength": 16, "pattern": "^[A-Za-z-]+$",
                 "x-pattern-message": "a language code such as en",
                 "description": "Keep only posts in this language (posts without one are "
                 "kept)"},
}, description="The filters run before sampling (the command line's options)")
PILOT_YIELD: dict[str, Any] = _object({
    "keyword": {"type": "string", "minLength": 1, "maxLength": 200},
    "percent_true": {"type": "number", "minimum": 0, "maximum": 100},
}, ("keyword", "percent_true"))
CAMPAIGN_REQUEST: dict[str, Any] = _object({
    "family": FAMILY,
    "budget": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
               "description": "Posts to sample"},
    "strategy": {"type": "string", "enum": list(STRATEGIES), "default": "equal"},
    "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "default": 1,
             "description": "The same seed on the same corpus draws the same sample"},
    "labels_per_post": {"type": "integer", "minimum": 1, "maximum": 20, "default": 1,
                        "description": "Distinct coders per post"},
    "name": {**CAMPAIGN_NAME, "description": "Default: family-strategy-seed-time"},
    "target": {"type": "string", "minLength": 1, "maxLength": 64,
               "description": "Aim neyman at this label (e.g. middle) using its yields in "
               "the labels already in the database"},
    "filters": SAMPLE_FILTERS,
    "pilot_yields": {"type": "array", "minItems": 1, "maxItems": 5000, "items": PILOT_YIELD,
                     "description": "Pilot yields per keyword (the yields file's rows); "
                     "default: from the labels already in the database"},
    "dry_run": {"type": "boolean", "default": False,
                "description": "Only the allocation table: nothing is drawn or stored"},
}, ("family", "budget"), description="Draw a campaign like `python -m trainset sample` (the "
    "same service code). A dry run answers the allocation table (200) without drawing; "
    "otherwise the campaign is created with its tasks (201).")
CAMPAIGNS_QUERY = _object({"family": FAMILY})
CAMPAIGN_PATH = _object({"campaign_id": ROW_ID}, ("campaign_id",))
FAMILY_PATH = _object({"family": FAMILY}, ("family",))
REVIEW_QUERY = _object({
    "family": FAMILY,
    "campaign": {**ROW_ID, "description": "A campaign id"},
    "keyword": {"type": "string", "minLength": 1, "maxLength": 200},
    "max_confidence": {"type": "number", "minimum": 0, "maximum": 1,
                       "description": "Only posts whose least certain consensus answer (in "
                       "the family's latest quality run) is at most this"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
    "offset": {"type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 0},
}, ("family",))
# Seconds the API gives an estimate's bootstrap refits (API Gateway answers 504 after 29 s):
# 20 refits of a 3,000-post campaign take about 5 s here; a larger campaign runs fewer.
ESTIMATE_SECONDS = 15.0
ESTIMATE_QUERY = _object({
    "refits": {"type": "integer", "minimum": 0, "maximum": 100, "default": 20,
               "description": "Bootstrap refits of the consensus model whose spread widens "
               "the intervals (0: leave the model's own uncertainty out). Fewer than the "
               "command line's 40, and those that fit in "
               f"{ESTIMATE_SECONDS:g} s (at least two), so a large campaign answers within "
               "the API's time limit; the answer's refits.run says how many ran"},
})
POST_PATH = _object({"post_id": POST_ID}, ("post_id",))
POST_LABELS_QUERY = _object({"family": {**FAMILY, "description": "Default: the post's"}})
ADJUDICATION: dict[str, Any] = {
    "type": "object",
    "description": "A manager's answer for a post: stored append-only with its author and "
    "time (a later adjudication of the same post supersedes, and both are kept). The next "
    "quality run takes it as the post's truth and scores the coders against it like gold. "
    "The codebook's conditional rules and exclusive options are checked as for labels.",
    "x-discriminator": "family",
    "oneOf": [
        _object({
            "post_id": POST_ID,
            "family": {"type": "string", "enum": [fam.name]},
            "answers": answers_schema(fam),
            "note": {"type": "string", "maxLength": 1000, "description": "Why (optional)"},
        }, ("post_id", "family", "answers"), title=f"{fam.name} adjudication")
        for fam in codebook.FAMILIES.values()
    ],
}
CODER_PATH = _object({"coder_id": ROW_ID}, ("coder_id",))
RELEASE_REQUEST: dict[str, Any] = _object({
    "family": {**FAMILY, "description": "Default: every family"},
}, description="Release the coder's live leases (task slots go back to the pool; unanswered "
    "gold and practice leases are dropped); audited")
RULES: dict[str, Any] = _object({
    "min_confidence": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8,
                       "description": "A post's least certain answer must reach this"},
    "min_gold_accuracy": {"type": "number", "minimum": -1, "maximum": 100, "default": 55,
                          "description": "Per question, drop a coder's answers when the 95% "
                          "Wilson lower bound of their gold accuracy is below this percent; "
                          "-1 keeps all"},
    "min_gold_answers": {"type": "integer", "minimum": 1, "maximum": 100_000, "default": 10},
    "question_min_accuracy": {"type": "array", "maxItems": 20, "items": _object({
        "question": {"type": "string", "minLength": 1, "maxLength": 64},
        "percent": {"type": "number", "minimum": 0, "maximum": 100}},
        ("question", "percent")), "description": "A threshold for one question (e.g. age 65)"},
    "em_max_iterations": {"type": "integer", "minimum": 1, "maximum": 10_000,
                          "default": EM_MAX_ITERATIONS},
    "allow_uncertified": {"type": "boolean", "default": False},
    "relabel": {"type": "boolean", "default": True,
                "description": "Send screened-out posts back for one more coder"},
    "max_labels_per_post": {"type": "integer", "minimum": 1, "maximum": 20, "default": 3},
}, description="The thresholds of `python -m trainset quality run`")
EXPORT_REQUEST: dict[str, Any] = _object({
    "families": {"type": "array", "items": FAMILY, "minItems": 1, "uniqueItems": True,
                 "description": "Default: every family"},
    "rules": RULES,
}, description="The quality run of each family uses these thresholds (default: the command "
    "line's); they are kept with the job and its quality runs")

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
EXPORT_FILE = {"type": "object", "required": ["name", "url"], "properties": {
    "family": _NULLABLE_STRING, "name": {"type": "string"}, "key": {"type": "string"},
    "size": {"type": "integer", "nullable": True},
    "url": {"type": "string", "description": "A short-lived download link (a presigned S3 URL "
            "in AWS; locally a signed link the local server serves)"}}}
JOB = {"type": "object", "required": ["id", "status"], "properties": {
    "id": {"type": "string"}, "status": {"type": "string"}, "families": {"type": "array"},
    "error": _NULLABLE_STRING, "settings": {"type": "object", "nullable": True},
    "files": {"type": "array", "description": "The job's files with download links, once it "
              "succeeded", "items": EXPORT_FILE}}}
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

# The largest file per kind (trainset.services.imports.MAX_BYTES; a test keeps them equal).
MAX_UPLOAD_BYTES = {"corpus": 5 * 1024**3, "gold": 100 * 1024**2}
FILE_UPLOAD_REQUEST: dict[str, Any] = _object({
    "kind": {"type": "string", "enum": ["corpus", "gold"],
             "description": "corpus: posts to sample from (the `corpus import` command's "
             "columns); gold: gold or practice posts (the `gold import` command's columns)"},
    "filename": {"type": "string", "minLength": 1, "maxLength": 255,
                 "description": "The file's name; it must end in .csv, .jsonl, .ndjson or "
                 ".parquet (its format)"},
    "size": {"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_BYTES["corpus"],
             "description": "The file's size in bytes: the URL accepts exactly this many. At "
             f"most {MAX_UPLOAD_BYTES['corpus']} (5 GiB) for a corpus file and "
             f"{MAX_UPLOAD_BYTES['gold']} (100 MiB) for a gold file"},
    "purpose": {**GOLD_PURPOSE, "description": "Gold files only (required for them): "
                + GOLD_PURPOSE["description"]},
}, ("kind", "filename", "size"))
FILE_UPLOAD = {"type": "object", "required": ["import_id", "key", "url", "method", "headers",
                                              "expires_in", "max_bytes"], "properties": {
    "import_id": {"type": "string"}, "key": {"type": "string"},
    "url": {"type": "string", "description": "PUT the file's bytes here, with the headers"},
    "method": {"type": "string", "enum": ["PUT"]}, "headers": {"type": "object"},
    "expires_in": {"type": "integer"}, "max_bytes": {"type": "integer"}}}
_COUNT = {"type": "integer", "minimum": 0}
IMPORTS = {"type": "object", "required": ["imports", "limits"], "properties": {
    "limits": {"type": "object", "description": "The largest file per kind, in bytes"},
    "imports": {"type": "array", "items": {"type": "object", "required": [
        "id", "kind", "filename", "status", "progress", "counts"], "properties": {
        "id": {"type": "string"}, "kind": {"type": "string", "enum": ["corpus", "gold"]},
        "purpose": {"type": "string", "nullable": True}, "filename": {"type": "string"},
        "key": {"type": "string"}, "size": {"type": "integer", "nullable": True},
        "status": {"type": "string", "enum": ["waiting", "planning", "importing",
                                              "finishing", "succeeded", "failed"]},
        "running": {"type": "boolean"}, "error": {"type": "string", "nullable": True},
        "progress": {"type": "object", "properties": {
            "batches": {"type": "integer", "nullable": True}, "batches_done": _COUNT,
            "rows_total": {"type": "integer", "nullable": True}, "rows_done": _COUNT}},
        "counts": {"type": "object", "properties": {
            "rows_read": _COUNT, "inserted": _COUNT, "updated": _COUNT, "unchanged": _COUNT,
            "rejected": _COUNT, "posts_created": _COUNT}},
        "rejects": {"type": "object", "nullable": True, "description": "The rejects file (file, "
                    "line, reason, id, raw) with a short-lived download link, when rows were "
                    "rejected", "properties": {"key": {"type": "string"}, "rows": _COUNT,
                                               "size": {"type": "integer", "nullable": True},
                                               "url": {"type": "string"}}},
        "created_at": {"type": "string", "nullable": True},
        "started_at": {"type": "string", "nullable": True},
        "finished_at": {"type": "string", "nullable": True}}}}}}

_INT = {"type": "integer"}
_NULLABLE_INT = {"type": "integer", "nullable": True}
_NULLABLE_NUMBER = {"type": "number", "nullable": True}
ALLOCATION_ROW = {"type": "object", "required": ["keyword", "population", "sampled"],
                  "properties": {"keyword": {"type": "string"}, "population": _INT,
                                 "sampled": _INT, "inclusion_prob": {"type": "number"},
                                 "pilot_yield": _NULLABLE_NUMBER,
                                 "expected_positives": _NULLABLE_NUMBER}}
CAMPAIGN_PLAN = {"type": "object", "required": ["dry_run", "campaign_id", "name", "allocation",
                                                "filters", "frame_size"], "properties": {
    "dry_run": {"type": "boolean"}, "campaign_id": _NULLABLE_INT, "name": {"type": "string"},
    "frame_size": _INT, "yields_source": {"type": "string"},
    "planned": {**_INT, "description": "Posts the allocation draws"},
    "sampled": {**_INT, "description": "Posts drawn (0 in a dry run)"},
    "filters": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "removed": _INT, "note": {"type": "string"}}}},
    "allocation": {"type": "array", "items": ALLOCATION_ROW}}}
_PROGRESS_COUNTS = {"slots": _INT, "open": _INT, "leased": _INT, "done": _INT,
                    "posts": _INT, "posts_done": _INT}
CAMPAIGNS = {"type": "object", "required": ["campaigns"], "properties": {
    "campaigns": {"type": "array", "items": {"type": "object", "required": [
        "id", "name", "family", "keywords"], "properties": {
        "id": _INT, "name": {"type": "string"}, "family": FAMILY,
        "strategy": {"type": "string"}, "seed": _NULLABLE_INT, "budget": _NULLABLE_INT,
        "labels_per_post": _INT, "status": {"type": "string"},
        "created_at": _NULLABLE_STRING, "target": _NULLABLE_STRING,
        "yields_source": _NULLABLE_STRING, **_PROGRESS_COUNTS,
        "keywords": {"type": "array", "items": {"type": "object", "properties": {
            "keyword": {"type": "string"}, "posts": _INT, "posts_done": _INT,
            "slots": _INT, "slots_done": _INT, "population": _NULLABLE_INT}}}}}}}}
_ESTIMATE = {"type": "object", "required": ["value", "low", "high", "n"], "properties": {
    "value": _NULLABLE_NUMBER, "low": _NULLABLE_NUMBER, "high": _NULLABLE_NUMBER, "n": _INT}}
ESTIMATE = {"type": "object", "required": ["campaign", "labeled_posts", "judged_posts",
                                           "sampled_posts", "labels"], "properties": {
    "campaign": {"type": "object"}, "labeled_posts": _INT, "judged_posts": _INT,
    "sampled_posts": _NULLABLE_INT, "em_converged": {"type": "boolean", "nullable": True},
    "refits": {"type": "object", "description": "Bootstrap refits of the consensus asked for "
               f"and run (those that fit in {ESTIMATE_SECONDS:g} s, at least two)",
               "properties": {"asked": _INT, "run": _INT}},
    "labels": {"type": "array", "items": {"type": "object", "required": [
        "label", "weighted", "unweighted", "raw_weighted", "raw_unweighted", "per_keyword"],
        "properties": {"label": {"type": "string"}, "weighted": _ESTIMATE,
                       "unweighted": _ESTIMATE, "raw_weighted": _ESTIMATE,
                       "raw_unweighted": _ESTIMATE, "per_keyword": {
                           "type": "array", "items": {"type": "object", "properties": {
                               "keyword": {"type": "string"}, **_ESTIMATE["properties"]}}}}}}}}
QUALITY_RUN = {"type": "object", "required": ["run_id", "family", "created_at", "rules",
                                              "gold", "agreement", "screening",
                                              "relabel_queue"], "properties": {
    "run_id": _INT, "family": FAMILY, "created_at": {"type": "string"},
    "rules": {"type": "object"}, "labels": _INT, "labels_used": _INT, "posts": _INT,
    "posts_kept": _NULLABLE_INT, "relabel_requested": _NULLABLE_INT,
    "em": {"type": "object"},
    "gold": {"type": "array", "description": "Per coder and option (and '(all)'): percent "
             "right on positive and negative gold with counts and Wilson 95% intervals"},
    "gold_cohort": {"type": "array"}, "agreement": {"type": "object"},
    "screening": {"type": "array", "description": "Each step: what it removed and why"},
    "relabel_queue": {"type": "array", "description": "Slots added for re-labeling, not done "
                      "yet", "items": {"type": "object", "properties": {
                          "post_id": {"type": "string"}, "slot": _INT,
                          "status": {"type": "string"}, "reason": _NULLABLE_STRING}}}}}
REVIEW = {"type": "object", "required": ["items", "run_id", "next_offset"], "properties": {
    "run_id": {**_NULLABLE_INT, "description": "The quality run the confidences come from"},
    "next_offset": _NULLABLE_INT,
    "items": {"type": "array", "items": {"type": "object", "required": [
        "post_id", "confidence"], "properties": {
        "post_id": {"type": "string"}, "text": {"type": "string"},
        "keyword": _NULLABLE_STRING, "campaign_id": _INT, "campaign": {"type": "string"},
        "labels": _INT, "confidence": _NULLABLE_NUMBER,
        "kept": {"type": "boolean", "nullable": True}, "adjudicated": {"type": "boolean"}}}}}}
POST_LABELS = {"type": "object", "required": ["post", "family", "labels", "skips",
                                              "consensus", "adjudications"], "properties": {
    "post": {"type": "object"}, "family": FAMILY,
    "labels": {"type": "array", "items": {"type": "object", "properties": {
        "coder": {"type": "string"}, "revision": _INT, "kind": {"type": "string"},
        "seconds_spent": _NULLABLE_NUMBER, "answers": {"type": "object"},
        "created_at": {"type": "string"}, "coder_status": {"type": "string"},
        "current": {"type": "boolean"}, "source": _NULLABLE_STRING}}},
    "skips": {"type": "array", "items": {"type": "object", "properties": {
        "coder": {"type": "string"}, "reason": {"type": "string"},
        "created_at": {"type": "string"}}}},
    "consensus": {"type": "object", "nullable": True, "description": "From the family's "
                  "latest quality run: each binary item's value and posterior"},
    "adjudications": {"type": "array", "items": {"type": "object"}}}}
ADJUDICATED = {"type": "object", "required": ["id", "post_id", "family", "answers", "author",
                                              "created_at"], "properties": {
    "id": _INT, "post_id": {"type": "string"}, "family": FAMILY, "answers": {"type": "object"},
    "note": {"type": "string"}, "author": {"type": "string"}, "created_at": {"type": "string"}}}
TOKEN = {"type": "object", "required": ["coder", "token"], "properties": {
    "coder": CODER, "token": {"type": "string"}}}
RELEASED = {"type": "object", "required": ["coder", "released"], "properties": {
    "coder": CODER, "released": {"type": "object", "properties": {"tasks": _INT,
                                                                  "gold": _INT}}}}
JOBS = {"type": "object", "required": ["jobs"], "properties": {
    "jobs": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "string"}, "status": {"type": "string"},
        "families": {"type": "array"}, "started_at": _NULLABLE_STRING,
        "finished_at": _NULLABLE_STRING, "error": _NULLABLE_STRING}}}}}


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
    other_ok: tuple[int, ...] = ()  # further success statuses, with the same answer schema
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
    Operation("reissue_token", "POST", "/coders/{coder_id}/token",
              "A fresh sign-in token for a coder (manager; local runs only: in AWS sign-in is "
              "Cognito's, 409); audited. Earlier tokens stay valid until they expire",
              ok_schema=TOKEN, path_params=CODER_PATH, errors=(404, 409)),
    Operation("release_leases", "POST", "/coders/{coder_id}/leases/release",
              "Release a coder's held leases (manager): their posts go back to the pool at "
              "once; audited", ok_schema=RELEASED, path_params=CODER_PATH,
              body=RELEASE_REQUEST, body_required=False, errors=(404,)),
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
    Operation("list_exports", "GET", "/exports", "The newest export jobs (manager)",
              ok_schema=JOBS),
    Operation("get_export", "GET", "/exports/{job_id}",
              "An export job: status, settings, output (summary with the files' locations) "
              "or error, and once it succeeded each file with a download link (manager)",
              ok_schema=JOB,
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
MANAGER_CONSOLE: tuple[Operation, ...] = (
    Operation("create_campaign", "POST", "/campaigns",
              "Draw a campaign (manager): filters, allocation over keywords, draw with the "
              "seed, tasks; with dry_run, only the allocation table (200)", ok_status=201,
              other_ok=(200,), ok_schema=CAMPAIGN_PLAN, body=CAMPAIGN_REQUEST, errors=(409,)),
    Operation("list_campaigns", "GET", "/campaigns",
              "Campaigns, newest first, with progress overall and per keyword (manager)",
              ok_schema=CAMPAIGNS, query=CAMPAIGNS_QUERY),
    Operation("campaign_estimate", "GET", "/campaigns/{campaign_id}/estimate",
              "Prevalence per label from the consensus: design-weighted and unweighted with "
              "95% intervals, per keyword, beside raw votes (manager)", ok_schema=ESTIMATE,
              path_params=CAMPAIGN_PATH, query=ESTIMATE_QUERY, errors=(404,)),
    Operation("latest_quality", "GET", "/quality/{family}/latest",
              "The family's latest quality run: gold accuracy per coder and option with "
              "Wilson intervals, agreement, screening log, re-label queue (manager)",
              ok_schema=QUALITY_RUN, path_params=FAMILY_PATH, errors=(404,)),
    Operation("review_posts", "GET", "/review",
              "Campaign posts with labels, least certain consensus first (manager)",
              ok_schema=REVIEW, query=REVIEW_QUERY),
    Operation("post_labels", "GET", "/posts/{post_id}/labels",
              "A post's labels (every revision: coder, seconds), skips with reasons, the "
              "consensus with its posteriors and the adjudications (manager)",
              ok_schema=POST_LABELS, path_params=POST_PATH, query=POST_LABELS_QUERY,
              errors=(404,)),
    Operation("adjudicate", "POST", "/adjudications",
              "Adjudicate a post (manager): its answer becomes the post's truth in the next "
              "quality run; stored append-only with author and time", ok_status=201,
              ok_schema=ADJUDICATED, body=ADJUDICATION, errors=(404, 409)),
)
IMPORT_OPERATIONS: tuple[Operation, ...] = (
    Operation("create_file_upload", "POST", "/uploads",
              "A presigned PUT URL for a corpus or gold file (manager): PUT exactly size "
              "bytes to url with the given headers; the upload then starts the import job "
              "(GET /imports shows its progress, counts and rejects)", ok_status=201,
              ok_schema=FILE_UPLOAD, body=FILE_UPLOAD_REQUEST),
    Operation("list_imports", "GET", "/imports",
              "The newest imports of uploaded files with their progress, counts and a "
              "download link to the rejected rows (manager)", ok_schema=IMPORTS),
)
OPERATIONS = OPERATIONS + MANAGER_CONSOLE + IMPORT_OPERATIONS
BY_NAME: dict[str, Operation] = {op.name: op for op in OPERATIONS}
