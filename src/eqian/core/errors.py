"""Domain errors that services raise; the web layer renders them as JSON or as a friendly page."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or []


class NotFound(AppError):
    """Also what an out-of-scope object answers, so a caller cannot probe what exists elsewhere."""

    status_code = 404
    code = "not_found"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"


def field_error(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    return ValidationFailed(
        f"{field}: {message}", details=[{"field": field, "code": code, "message": message}]
    )
