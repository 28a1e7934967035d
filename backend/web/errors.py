"""One error-to-HTTP mapping for every route, registered once in ``exception_handlers``.

An :class:`~backend.core.errors.AppError` carries its status and headers
(``http_status``, ``http_headers()``); every refusal — a REST route's, the
authentication middleware's, a GraphQL request refused before execution — is
answered by :func:`app_error_response` in the GraphQL shape (``data: null``,
``errors[0].extensions.code``), so clients handle all of them alike. A lost
database is 503 + ``Retry-After`` (``UNAVAILABLE``); anything else stays a 500.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from backend.core.db import is_unavailable
from backend.core.errors import RETRY_AFTER_SECONDS, AppError, Unavailable
from backend.core.logging import get_logger

log = get_logger(__name__)


def error_body(exc: AppError) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": exc.message, "extensions": exc.extensions}]}


def app_error_response(exc: AppError, status: int | None = None) -> JSONResponse:
    """``exc`` as an HTTP answer: its status (or ``status``), headers and GraphQL-shaped body."""
    return JSONResponse(
        error_body(exc), status_code=status or exc.http_status, headers=exc.http_headers()
    )


def unavailable(request_id: str, stage: str) -> Unavailable:
    """The refusal of a request the database could not serve (docs/operations.md)."""
    log.warning("http.unavailable", request_id=request_id, stage=stage)
    return Unavailable(
        "Service temporarily unavailable; retry the request",
        retryAfter=RETRY_AFTER_SECONDS,
        requestId=request_id,
    )


async def _app_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


async def _database_error(request: Request, exc: Exception) -> Response:
    if not is_unavailable(exc):
        raise exc
    request_id = request.scope.get("state", {}).get("request_id", "-")
    return app_error_response(unavailable(request_id, "route"))


# The non-GraphQL routes' database errors: 503 when the database is lost, else a 500.
DATABASE_ERRORS = (DBAPIError, SATimeoutError, OSError)
EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: _app_error,
    **dict.fromkeys(DATABASE_ERRORS, _database_error),
}
