"""Labeling use cases: hand out tasks, take labels, skips, a coder's own view, and managing coders.

The rules live here (who may work on what, when a gold post is mixed in, what a valid label is,
how a retry or a revision is recognised); the SQL lives in ``trainset.store.labeling``.

Leases: per coder and family, at most one live work lease (a task slot or a QA gold post) and
at most one live practice lease. ``next_task`` takes the coder's lease lock, releases the
coder's own expired leases, then returns the live lease or makes one, in one transaction; the
database refuses a second lease whatever the code path (sql/0006_one_lease_per_coder.sql), so
concurrent calls of one coder (two tabs, a retry, two servers) get the same post.

Status: the coder's status is re-read, locked, inside every lease and label transaction.
Revoking a coder releases all their leases; demoting (certified to trainee) releases their task
and QA gold leases; both in the transaction that changes the status.

Revisions (see ``LabelingService.submit``): a coder may revise only their own label, only while
their current status lets them do that kind of work (certified for task and QA labels, trainee
or certified for practice), and only within ``LabelingSettings.revision_window`` of their first
label for the post. A revision needs no lease and neither reopens nor consumes a slot. A
revoked coder can do nothing: no tasks, labels, revisions, skips or history.
"""

from __future__ import annotations

import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from trainset import codebook
from trainset.errors import Conflict, DuplicateSubmission, Forbidden, InvalidInput, NotFound
from trainset.models import ROLES, STATUSES, Coder
from trainset.quality import practice
from trainset.store.labeling import LeaseRace

MODES = ("work", "practice")
MAX_SKIP_REASON = 500
MAX_HISTORY = 200
LEASE_ATTEMPTS = 3  # a lost lease race is retried; the retry finds the winner's lease
# Which current status may submit or revise a label of each kind.
MAY_LABEL = {"task": ("certified",), "qa": ("certified",), "practice": ("trainee", "certified")}
_CODER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")  # the whole name (fullmatch)


class Store(Protocol):
    """What the labeling service needs from persistence (see ``trainset.store.labeling``)."""

    def transaction(self) -> Any: ...
    def __getattr__(self, name: str) -> Any: ...


@dataclass
class LabelingSettings:
    gold_rate: float = 0.1  # chance that a work task is a QA gold post due for the coder
    lease_seconds: int = 15 * 60
    rng: random.Random = field(default_factory=random.Random)
    image_url: Callable[[str], str | None] = lambda key: None
    remaining_ttl_seconds: float = 5.0
    remaining_cache: dict[str, tuple[float, int]] = field(default_factory=dict)
    # How long after their first label for a post a coder may still revise it.
    revision_window: timedelta = timedelta(days=7)


def require_family(value: Any) -> str:
    if value not in codebook.FAMILIES:
        raise InvalidInput(
            "unknown or missing family",
            [{"field": "family", "message": f"must be one of: {', '.join(codebook.FAMILY_NAMES)}"}],
        )
    return value


def require_active(coder: Coder) -> None:
    _require_active_status(coder.status)


def _require_active_status(status: str | None) -> None:
    """``status`` as read in the current transaction; a coder who no longer exists is revoked."""
    if status is None or status == "revoked":
        raise Forbidden("your access has been revoked; contact a manager")


class LabelingService:
    def __init__(self, store: Store, settings: LabelingSettings | None = None) -> None:
        self.store = store
        self.settings = settings or LabelingSettings()

    # ---- tasks ----------------------------------------------------------------------------

    def next_task(self, coder: Coder, family: str, mode: str = "work") -> dict[str, Any]:
        """The coder's next post in ``family``: their current lease if any, else a new one.

        Concurrent calls of one coder (two tabs, a retry, two servers) return the same lease:
        see ``_lease``. The status is checked again, locked, inside the leasing transaction."""
        require_family(family)
        if mode not in MODES:
            raise InvalidInput(
                "unknown mode",
                [{"field": "mode", "message": f"must be one of: {', '.join(MODES)}"}],
            )
        require_active(coder)
        _require_may_lease(coder.status, mode)
        task = self._lease(coder, family, mode)
        if task is None or "done_today" not in task:
            counts = self.store.coder_counts(coder.id, _day_start())
            done_today, in_family = sum(counts.values()), counts.get(family, 0)
        else:
            done_today, in_family = task["done_today"], task["done_today_in_family"]
        progress = {
            "done_today": done_today,
            "done_today_in_family": in_family,
            "remaining_in_family": self._remaining(family),
        }
        if task is None:
            message = (
                "No practice post is left for you in this family: ask a manager to add "
                "practice posts (or to certify you)."
                if mode == "practice"
                else "No posts are waiting in this family right now. Thank you!"
            )
            return {"task": None, "message": message, "progress": progress}
        return {"task": self._payload(task), "progress": progress}

    def _lease(self, coder: Coder, family: str, mode: str) -> dict[str, Any] | None:
        """The coder's live lease of ``mode`` in ``family``, else a new one; None when nothing
        is left. One transaction under the coder's lease lock: concurrent calls of one coder
        queue up and the later one returns the lease the earlier one made. Should the database
        still refuse a second lease (a path that skipped the lock), roll back and look again."""
        for attempt in range(LEASE_ATTEMPTS):
            try:
                with self.store.transaction():
                    status, expired = self.store.lock_leases(coder.id, family)
                    _require_active_status(status)
                    _require_may_lease(status, mode)
                    if expired or attempt:
                        self.store.free_expired_leases(coder.id, family)
                    return self._lease_locked(coder, family, mode)
            except LeaseRace:
                continue
        raise Conflict("another request of yours is taking a task right now; try again")

    def _lease_locked(self, coder: Coder, family: str, mode: str) -> dict[str, Any] | None:
        secs = self.settings.lease_seconds
        if mode == "practice":
            task = self.store.current_gold_lease(coder.id, family, ("practice",))
            return task or self.store.lease_gold(coder.id, family, "practice", secs)
        if self.settings.rng.random() < self.settings.gold_rate:
            # A gold post only when the coder holds no lease: a reload must not swap posts.
            held = self.store.current_work_lease(coder.id, family)
            if held is not None:
                return held
            task = self.store.lease_gold(coder.id, family, "qa", secs)
            if task is not None:
                return task
        return self.store.lease_work(coder.id, family, secs, _day_start())

    def _remaining(self, family: str) -> int:
        """Open slots in ``family``, cached for a few seconds: counting on every request would
        cost more than the lease itself on a large campaign."""
        cache = self.settings.remaining_cache
        now = time.monotonic()
        hit = cache.get(family)
        if hit is not None and now - hit[0] < self.settings.remaining_ttl_seconds:
            return hit[1]
        value = self.store.remaining(family)
        cache[family] = (now, value)
        return value

    def _payload(self, task: Mapping[str, Any]) -> dict[str, Any]:
        # Gold, practice and real tasks share one shape, so a coder cannot tell them apart.
        key = task["image_key"]
        return {
            "post_id": task["post_id"],
            "family": task["family"],
            "text": task["text"],
            "image_url": self.settings.image_url(key) if key else None,
            "lease_expires_at": _iso(task["lease_expires_at"]),
        }

    def skip(self, coder: Coder, post_id: str, body: Any) -> dict[str, Any]:
        require_active(coder)
        if not isinstance(body, Mapping):
            raise InvalidInput("the body must be a JSON object with family and reason")
        family = require_family(body.get("family"))
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput(
                "a skip needs a reason",
                [{"field": "reason", "message": "say briefly why you skip this post"}],
            )
        if len(reason) > MAX_SKIP_REASON:
            raise InvalidInput(
                "reason too long",
                [{"field": "reason", "message": f"at most {MAX_SKIP_REASON} characters"}],
            )
        with self.store.transaction():
            lease = self.store.find_lease(coder.id, post_id, family)
            if lease is None:
                raise Conflict(f"post {post_id} is not leased to you in family {family}")
            self.store.insert_skip(coder.id, post_id, family, reason.strip())
            if lease["kind"] == "task":
                self.store.release_task(lease["task_id"], coder.id)
            else:
                self.store.finish_gold(coder.id, post_id, family)
        return {"skipped": True, "post_id": post_id, "family": family}

    # ---- labels ---------------------------------------------------------------------------

    def submit(self, coder: Coder, body: Any) -> dict[str, Any]:
        """Store a label. A retry with the same submission id returns the stored one unchanged;
        a label for a post the coder already labeled is a revision (the old one is kept).

        Revision rule: only the coder's own label (a revision is always of the sender's own
        row), only while their current status may do that kind of work (``MAY_LABEL``), and
        only within ``revision_window`` of their first label for the post. A revision needs no
        lease and does not touch any slot. Everything is decided on the coder's status as
        committed now, read and locked in the transaction that stores the label.
        """
        require_active(coder)
        submission_id, post_id, family, answers, seconds = _parse_submission(body)
        errors = codebook.validate(family, answers)
        if errors:
            raise InvalidInput(
                f"the label has {len(errors)} problem(s); nothing was stored",
                [e.as_dict() for e in errors],
            )
        label = {
            "submission_id": submission_id,
            "post_id": post_id,
            "family": family,
            "coder_id": coder.id,
            "answers": codebook.normalize(family, answers),
            "seconds_spent": seconds,
        }
        try:
            with self.store.transaction():
                return self._submit_locked(coder, label)
        except DuplicateSubmission:  # a concurrent retry of this submission won the race
            return self._replay(coder, self.store.label_by_submission(submission_id))

    def _submit_locked(self, coder: Coder, label: dict[str, Any]) -> dict[str, Any]:
        post_id, family = label["post_id"], label["family"]
        state = self.store.submission_state(label["submission_id"], coder.id, post_id, family)
        status = state["coder_status"]
        _require_active_status(status)
        if state["stored"] is not None:
            return self._replay(coder, state["stored"])
        label["coder_status"] = status
        if state["last_revision"] is not None:
            self._require_may_revise(status, state)
            label.update(revision=state["last_revision"] + 1, kind=state["last_kind"],
                         task_id=state["last_task_id"])
            finish = None
        elif state["leased_task_id"] is not None:
            _require_may_label(status, "task")
            label.update(revision=1, kind="task", task_id=state["leased_task_id"])
            finish = "task"
        elif state["gold_purpose"] is not None:
            _require_may_label(status, state["gold_purpose"])
            label.update(revision=1, kind=state["gold_purpose"], task_id=None)
            finish = "gold"
        else:
            raise self._not_leased(post_id, family)
        row = self.store.store_label(label, finish)
        if row is None:  # the lease was lost between reading and writing
            stored = self.store.label_by_submission(label["submission_id"])
            if stored is not None:
                return self._replay(coder, stored)
            raise self._not_leased(post_id, family)
        return self._receipt(row, duplicate=False)

    def _require_may_revise(self, status: str, state: Mapping[str, Any]) -> None:
        kind = state["last_kind"]
        if status not in MAY_LABEL[kind]:
            raise Forbidden(
                f"only {' or '.join(MAY_LABEL[kind])} coders can revise this label",
                {"reason": "revision_not_allowed", "kind": kind, "status": status},
            )
        window = self.settings.revision_window
        age = state["first_label_age_seconds"]
        if age is None or age > window.total_seconds():
            days = window.total_seconds() / 86400
            raise Forbidden(
                f"labels can be revised for {days:g} day(s) after the first answer; this one "
                "can no longer be changed",
                {"reason": "revision_window_closed"},
            )

    def _replay(self, coder: Coder, stored: Mapping[str, Any]) -> dict[str, Any]:
        if stored["coder_id"] != coder.id:
            raise Conflict("this submission id was already used by another coder")
        return self._receipt(stored, duplicate=True)

    def _receipt(self, row: Mapping[str, Any], duplicate: bool) -> dict[str, Any]:
        receipt = {
            "label_id": row["id"],
            "submission_id": str(row["submission_id"]),
            "post_id": row["post_id"],
            "family": row["family"],
            "revision": row["revision"],
            "answers": row["answers"],
            "duplicate": duplicate,
        }
        if row["kind"] == "practice":
            gold = self.store.gold_answers(row["post_id"], row["family"])
            feedback = practice.compare(row["family"], row["answers"], gold["answers"])
            receipt["practice"] = {
                "correct": all(f.correct for f in feedback),
                "correct_answers": gold["answers"],
                "rationale": gold["rationale"],
                "fields": [f.as_dict() for f in feedback],
            }
        return receipt

    def _not_leased(self, post_id: str, family: str) -> Exception:
        if not self.store.post_exists(post_id):
            return NotFound(f"no post with id {post_id}")
        return Conflict(
            f"post {post_id} is not leased to you in family {family}: the lease may have "
            "expired and gone to another coder. Fetch a new task with GET /tasks/next.",
            {"post_id": post_id, "family": family, "reason": "not_leased"},
        )

    # ---- the coder's own view -------------------------------------------------------------

    def me(self, coder: Coder) -> dict[str, Any]:
        today = self.store.coder_counts(coder.id, _day_start())
        triples = [
            (r["family"], r["answers"], r["gold"]) for r in self.store.practice_answers(coder.id)
        ]
        return {
            **coder.as_dict(),
            "today": {"total": sum(today.values()), "by_family": today},
            "practice": practice.summary(triples),
        }

    def history(self, coder: Coder, limit: Any = 50, before: Any = None) -> dict[str, Any]:
        """The coder's current labels, newest first; closed to a revoked coder."""
        require_active(coder)
        limit_n = _int_param("limit", limit, 1, MAX_HISTORY)
        before_id = None if before in (None, "") else _int_param("before", before, 1, 2**62)
        rows = self.store.history(coder.id, limit_n, before_id)
        items = [
            {
                "label_id": r["label_id"],
                "post_id": r["post_id"],
                "family": r["family"],
                "revision": r["revision"],
                "kind": "practice" if r["kind"] == "practice" else "task",
                "answers": r["answers"],
                "created_at": _iso(r["created_at"]),
                "text": r["text"],
                "image_url": self.settings.image_url(r["image_key"]) if r["image_key"] else None,
            }
            for r in rows
        ]
        next_before = items[-1]["label_id"] if len(items) == limit_n else None
        return {"items": items, "next_before": next_before}


class CoderAdmin:
    """Managers create coders, certify and revoke them; every action is audited."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, actor: Coder | None, body: Any) -> Coder:
        if not isinstance(body, Mapping):
            raise InvalidInput("the body must be a JSON object with at least a name")
        name = body.get("name")
        role = body.get("role", "coder")
        status = body.get("status", "trainee")
        errors = []
        if not isinstance(name, str) or not _CODER_NAME.fullmatch(name):
            errors.append({"field": "name", "message": "1-64 letters, digits, '_', '.', '@' or "
                           "'-', starting with a letter or digit"})
        if role not in ROLES:
            errors.append({"field": "role", "message": f"must be one of: {', '.join(ROLES)}"})
        if status not in STATUSES:
            errors.append({"field": "status", "message": f"must be one of: {', '.join(STATUSES)}"})
        if errors:
            raise InvalidInput("cannot create the coder", errors)
        with self.store.transaction():
            row = self.store.insert_coder(name, role, status)
            if row is None:
                raise Conflict(f"a coder named {name} already exists")
            self.store.audit(actor.id if actor else None, "coder.create", name,
                             {"role": role, "status": status})
        return Coder.from_row(row)

    def update(self, actor: Coder, coder_id: Any, body: Any) -> Coder:
        target = _int_param("id", coder_id, 1, 2**62)
        if not isinstance(body, Mapping) or not ({"status", "role"} & set(body)):
            raise InvalidInput("send a JSON object with status and/or role")
        status, role = body.get("status"), body.get("role")
        errors = []
        if status is not None and status not in STATUSES:
            errors.append({"field": "status", "message": f"must be one of: {', '.join(STATUSES)}"})
        if role is not None and role not in ROLES:
            errors.append({"field": "role", "message": f"must be one of: {', '.join(ROLES)}"})
        confirm = body.get("confirm", False)
        if not isinstance(confirm, bool):
            errors.append({"field": "confirm", "message": "must be true or false"})
        extra = sorted(set(body) - {"status", "role", "confirm"})
        errors += [{"field": k, "message": "cannot be changed here"} for k in extra]
        if errors:
            raise InvalidInput("cannot update the coder", errors)
        if target == actor.id and (status == "revoked" or role == "coder"):
            raise Conflict("managers cannot revoke or demote themselves")
        with self.store.transaction():
            evidence = self._certification_evidence(target, status, confirm)
            # update_coder releases the leases the new status may not hold, in this transaction.
            row = self.store.update_coder(target, status, role)
            if row is None:
                raise NotFound(f"no coder with id {target}")
            details: dict[str, Any] = {"status": status, "role": role}
            if evidence is not None:
                details["practice"] = evidence
                details["confirmed_not_ready"] = (
                    not evidence["certification"]["ready"] and confirm)
            if row.get("released_tasks") or row.get("released_gold"):
                details["released_leases"] = {"tasks": row["released_tasks"],
                                              "gold": row["released_gold"]}
            self.store.audit(actor.id, "coder.update", row["name"], details)
        return Coder.from_row(row)

    def _certification_evidence(self, target: int, status: str | None,
                                confirm: bool) -> dict[str, Any] | None:
        """When ``target`` is being certified: their practice score now (kept in the audit
        trail). A coder not ready by the practice rule is certified only with ``confirm``;
        otherwise a 409 carries their score."""
        if status != "certified":
            return None
        current = self.store.coder_by_id(target)
        if current is None or current["status"] == "certified":
            return None
        evidence = practice.summary((r["family"], r["answers"], r["gold"])
                                    for r in self.store.practice_answers(target))
        if not evidence["certification"]["ready"] and not confirm:
            score = ("no practice answers" if evidence["score"] is None else
                     f"{100 * evidence['score']:.0f}% right of {evidence['answered']} "
                     "practice answers")
            raise Conflict(
                f"{current['name']} is not ready by the practice rule ({score}; needs "
                f"{practice.CERTIFY_MIN_ANSWERS} answers and "
                f"{100 * practice.CERTIFY_MIN_SCORE:.0f}%): certify anyway with confirm: true",
                {"reason": "not_ready", "coder": current["name"], "practice": evidence})
        return evidence

    def release_leases(self, actor: Coder, coder_id: int, family: str | None) -> dict:
        """Put the coder's held posts back in the pool at once; audited."""
        with self.store.transaction():
            row = self.store.coder_by_id(coder_id)
            if row is None:
                raise NotFound(f"no coder with id {coder_id}")
            released = self.store.release_leases(coder_id, family)
            self.store.audit(actor.id, "coder.release_leases", row["name"],
                             {"family": family, "released": released})
        return {"coder": Coder.from_row(row).as_dict(), "released": released}

    def reissue_token(self, actor: Coder, coder_id: int, mint: Any) -> dict[str, Any]:
        """A fresh local token for a coder (``mint(coder)``); audited. Coders made by a label
        import and revoked coders cannot sign in (409)."""
        with self.store.transaction():
            row = self.store.coder_by_id(coder_id)
            if row is None:
                raise NotFound(f"no coder with id {coder_id}")
            if row["imported"]:
                raise Conflict(f"{row['name']} only holds imported labels and cannot sign in")
            if row["status"] == "revoked":
                raise Conflict(f"{row['name']} is revoked: certify them or make them a "
                               "trainee first")
            coder = Coder.from_row(row)
            self.store.audit(actor.id, "coder.token", coder.name, {})
        return {"coder": coder.as_dict(), "token": mint(coder)}

    def list(self) -> list[dict[str, Any]]:
        return [
            {**r, "created_at": _iso(r["created_at"]),
             "status_changed_at": _iso(r["status_changed_at"])}
            for r in self.store.list_coders()
        ]

    def progress(self) -> dict[str, Any]:
        families = {
            f: {"open": 0, "leased": 0, "done": 0} for f in codebook.FAMILY_NAMES
        }
        for family, open_, leased, done in self.store.family_progress():
            families[family] = {"open": open_, "leased": leased, "done": done}
        day = _day_start()
        week = day - timedelta(days=day.weekday())
        coders = self.store.coder_progress(day, week)
        answers: dict[int, list[tuple[str, Any, Any]]] = {}
        for r in self.store.practice_answers_all():
            answers.setdefault(r["coder_id"], []).append((r["family"], r["answers"], r["gold"]))
        for c in coders:
            c["practice"] = practice.summary(answers.get(c["id"], []))
        return {"families": families, "coders": coders}


def _require_may_lease(status: str | None, mode: str) -> None:
    if mode == "work" and status != "certified":
        raise Forbidden(
            "trainees can only practice (mode=practice) until a manager certifies them"
        )


def _require_may_label(status: str, kind: str) -> None:
    if status not in MAY_LABEL[kind]:
        raise Forbidden(
            "only certified coders can submit real labels"
            if kind != "practice"
            else f"a {status} coder cannot submit practice labels"
        )


def _parse_submission(body: Any) -> tuple[str, str, str, Any, float | None]:
    if not isinstance(body, Mapping):
        raise InvalidInput("the body must be a JSON object")
    errors = []
    sid = body.get("submission_id")
    try:
        sid = str(uuid.UUID(str(sid))) if sid is not None else None
    except ValueError:
        sid = None
    if sid is None:
        errors.append({"field": "submission_id", "message": "must be a UUID made by the client "
                       "once per submission (a retry reuses it)"})
    post_id = body.get("post_id")
    if not isinstance(post_id, str) or not post_id:
        errors.append({"field": "post_id", "message": "is required"})
    family = body.get("family")
    if family not in codebook.FAMILIES:
        errors.append({"field": "family",
                       "message": f"must be one of: {', '.join(codebook.FAMILY_NAMES)}"})
    seconds = body.get("seconds_spent")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0
    ):
        errors.append({"field": "seconds_spent", "message": "must be a non-negative number"})
    if "answers" not in body:
        errors.append({"field": "answers", "message": "is required"})
    extra = sorted(set(body) - {"submission_id", "post_id", "family", "answers",
                                "seconds_spent"})
    errors += [{"field": k, "message": "is not a field of a label submission"} for k in extra]
    if errors:
        raise InvalidInput(f"the label has {len(errors)} problem(s); nothing was stored", errors)
    return sid, post_id, family, body["answers"], seconds


def _int_param(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high or isinstance(value, bool):
        raise InvalidInput(
            f"bad {name}", [{"field": name, "message": f"must be a whole number {low}-{high}"}]
        )
    return number


def _day_start() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
