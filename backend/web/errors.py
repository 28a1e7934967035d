"""One error-to-HTTP mapping for every route, registered once in ``exception_handlers``.

An :class:`~backend.core.errors.AppError` carries its status and headers
(``http_status``, ``http_headers()``); every refusal — a REST route's, the
authentication middleware's, a GraphQL request refused before execution — is
answered by :func:`app_error_response` in the GraphQL shape (``data: null``,
``errors[0].extensions.code``), so clients handle all of them alike. A lost
database is 503 + ``Retry-After`` (``UNAVAILABLE``); anything else stays a 500.

Media types (GraphQL over HTTP): a client that accepts
``application/graphql-response+json`` at least as well as ``application/json``
(Apollo Client 4, urql, graphql-http) gets that type (:func:`media_type_for`), and a
refused request's body then has no ``data`` entry, as the spec has it for request
errors; the status is the same. Everyone else (no ``Accept``, ``*/*``,
``application/json``) gets ``application/json`` and ``data: null``, as before.
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


JSON = "application/json"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"


def media_type_for(accept: str | None) -> str:
    """The response media type for an ``Accept`` header: ``GRAPHQL_RESPONSE_JSON`` when
    it is listed with a quality at least that of ``application/json``, else ``JSON``."""
    quality = {JSON: 0.0, GRAPHQL_RESPONSE_JSON: 0.0}
    for part in (accept or "").split(","):
        kind, *params = part.split(";")
        kind = kind.strip().lower()
        if kind not in quality:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[kind] = max(quality[kind], q)
    preferred = quality[GRAPHQL_RESPONSE_JSON]
    return GRAPHQL_RESPONSE_JSON if preferred > 0 and preferred >= quality[JSON] else JSON


def error_body(exc: AppError, media_type: str = JSON) -> dict[str, Any]:
    """A refused request's body: ``data: null`` in ``application/json``; no ``data`` entry
    in ``application/graphql-response+json`` (a request error never started execution)."""
    body: dict[str, Any] = {"errors": [{"message": exc.message, "extensions": exc.extensions}]}
    return body if media_type == GRAPHQL_RESPONSE_JSON else {"data": None, **body}


def app_error_response(
    exc: AppError, status: int | None = None, *, accept: str | None = None
) -> JSONResponse:
    """``exc`` as an HTTP answer: its status (or ``status``), headers and GraphQL-shaped body,
    in the media type ``accept`` (the request's ``Accept`` header) asks for."""
    media_type = media_type_for(accept)
    return JSONResponse(
        error_body(exc, media_type),
        status_code=status or exc.http_status,
        headers=exc.http_headers(),
        media_type=media_type,
    )


def unavailable(request_id: str, stage: str) -> Unavailable:
    """The refusal of a request the database could not serve (docs/operations.md)."""
    log.warning("http.unavailable", request_id=request_id, stage=stage)
    return Unavailable(
        "Service temporarily unavailable; retry the request",
        retryAfter=RETRY_AFTER_SECONDS,
        requestId=request_id,
    )


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return app_error_response(exc, accept=request.headers.get("accept"))


async def _database_error(request: Request, exc: Exception) -> Response:
    if not is_unavailable(exc):
        raise exc
    request_id = request.scope.get("state", {}).get("request_id", "-")
    return app_error_response(
        unavailable(request_id, "route"), accept=request.headers.get("accept")
    )


# The non-GraphQL routes' database errors: 503 when the database is lost, else a 500.
DATABASE_ERRORS = (DBAPIError, SATimeoutError, OSError)
EXCEPTION_HANDLERS: dict[Any, Any] = {
    AppError: _app_error,
    **dict.fromkeys(DATABASE_ERRORS, _database_error),
}
