"""Typed application errors carrying the contract's ``extensions.code`` and an HTTP status.

graphql-core copies an original exception's ``extensions`` dict onto the
GraphQL error, so raising one of these anywhere below a resolver yields the
right code; anything else is masked as ``INTERNAL``.

``http_status`` and :meth:`AppError.http_headers` are the one error-to-HTTP mapping
(``backend/web/errors.py`` registers it once in the app's ``exception_handlers``): a
REST route or a whole refused GraphQL request answers with them; a GraphQL field error
inside an otherwise answered request stays HTTP 200, as GraphQL over HTTP has it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# What an UNAVAILABLE answer tells the client to wait (Retry-After header and
# ``extensions.retryAfter``): a PostgreSQL restart or failover takes a few seconds.
RETRY_AFTER_SECONDS = 2


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    CONFLICT = "CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    # A dependency (the database) is unreachable or dropped the connection: retry after
    # ``extensions.retryAfter`` seconds (HTTP 503 + Retry-After; docs/operations.md).
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class AppError(Exception):
    """Base of every error a client may see verbatim."""

    code: ErrorCode = ErrorCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extensions: dict[str, Any] = {"code": str(self.code), **extra}
        if field:
            self.extensions["field"] = field

    def http_headers(self) -> dict[str, str]:
        """Headers the HTTP answer carries with :attr:`http_status`."""
        return {}


class Unauthenticated(AppError):
    code = ErrorCode.UNAUTHENTICATED
    http_status = 401

    def http_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN
    http_status = 403


class NotFound(AppError):
    """Absent or not visible: the two must be indistinguishable to the caller."""

    code = ErrorCode.NOT_FOUND
    http_status = 404


class BadUserInput(AppError):
    code = ErrorCode.BAD_USER_INPUT
    http_status = 400


class InvalidTransition(AppError):
    code = ErrorCode.INVALID_TRANSITION
    http_status = 409


class Conflict(AppError):
    code = ErrorCode.CONFLICT
    http_status = 409


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED
    http_status = 429

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extensions.get("retryAfter", 1))}


class Unavailable(AppError):
    """Retryable: the database (or another dependency) could not serve the request now."""

    code = ErrorCode.UNAVAILABLE
    http_status = 503

    def http_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.extensions.get("retryAfter", RETRY_AFTER_SECONDS))}
