"""Typed application errors carrying the contract's ``extensions.code``.

graphql-core copies an original exception's ``extensions`` dict onto the
GraphQL error, so raising one of these anywhere below a resolver yields the
right code; anything else is masked as ``INTERNAL``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


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

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extensions: dict[str, Any] = {"code": str(self.code), **extra}
        if field:
            self.extensions["field"] = field


class Unauthenticated(AppError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    """Absent or not visible: the two must be indistinguishable to the caller."""

    code = ErrorCode.NOT_FOUND


class BadUserInput(AppError):
    code = ErrorCode.BAD_USER_INPUT


class InvalidTransition(AppError):
    code = ErrorCode.INVALID_TRANSITION


class Conflict(AppError):
    code = ErrorCode.CONFLICT


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED


class Unavailable(AppError):
    """Retryable: the database (or another dependency) could not serve the request now."""

    code = ErrorCode.UNAVAILABLE
