"""Errors that reach a user: each carries an HTTP status, a short code and a clear message."""

from __future__ import annotations

from typing import Any


class TrainsetError(Exception):
    """A problem explained to the user; never a stack trace."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "details": self.details}


class InvalidInput(TrainsetError):
    status = 400
    code = "invalid_input"


class Unauthorized(TrainsetError):
    status = 401
    code = "unauthorized"


class Forbidden(TrainsetError):
    status = 403
    code = "forbidden"


class NotFound(TrainsetError):
    status = 404
    code = "not_found"


class Conflict(TrainsetError):
    status = 409
    code = "conflict"


class PayloadTooLarge(TrainsetError):
    status = 413
    code = "payload_too_large"


class ConfigurationError(TrainsetError):
    """The deployment or local setup is wrong; raised before any data is touched."""

    status = 500
    code = "configuration_error"


class DatabaseUnavailable(ConfigurationError):
    """PostgreSQL did not answer (down, restarting, refusing connections). Worth a retry: the
    API answers 503 with Retry-After and none of this message (it names the host)."""

    status = 503
    code = "unavailable"


class DuplicateSubmission(Exception):
    """A label with this submission id is already stored: the request is a retry."""
