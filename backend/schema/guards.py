"""Guards in front of GraphQL: JSON-only POST, a body cap, rate limits, refusal statuses.

CSRF: a browser can send a cross-site POST without a CORS preflight only with
a "simple" content type (form, multipart, text/plain), so ``POST /graphql``
takes ``application/json`` only (415 otherwise), and ``GET`` runs no
operation at all (405; it serves GraphiQL to browsers in dev). The body is
read against ``XF_MAX_BODY_BYTES`` as it arrives — a declared
``Content-Length`` over the cap is refused before reading anything, a
chunked body as soon as it passes the cap — and answered 413.

Every refusal here is GraphQL-shaped (``data: null``, ``errors[0].extensions.code``)
so clients handle it like any other error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from backend.core.errors import AppError, ErrorCode
from backend.core.ratelimit import RateLimiter
from backend.schema.cost import QueryTooComplex


def error_response(
    status: int, message: str, code: ErrorCode, headers: dict[str, str] | None = None, **ext: Any
) -> JSONResponse:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": str(code), **ext}}],
    }
    return JSONResponse(body, status_code=status, headers=headers)


def app_error_response(exc: AppError, status: int) -> JSONResponse:
    extensions = {k: v for k, v in exc.extensions.items() if k != "code"}
    return error_response(status, exc.message, exc.code, **extensions)


def persisted_refusal(exc: AppError) -> JSONResponse:
    """A persisted-query refusal: 403 for a city's allow-list, 400 for a bad or unknown hash."""
    return app_error_response(exc, 403 if exc.code is ErrorCode.FORBIDDEN else 400)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return ""


class BodyTooLarge(Exception):
    pass


async def screen(scope: Scope, receive: Receive, max_body: int) -> JSONResponse | bytes | None:
    """A refusal, the POST body (read within the cap), or ``None`` to pass a GET through."""
    method = scope.get("method")
    if method in ("GET", "HEAD"):
        if "text/html" in _header(scope, b"accept"):
            return None  # GraphiQL in dev; strawberry answers 404 in prod
        return error_response(
            405,
            "GraphQL operations are sent with POST and Content-Type: application/json",
            ErrorCode.BAD_USER_INPUT,
            headers={"Allow": "POST"},
        )
    media_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if media_type != "application/json":
        return error_response(
            415,
            "Content-Type must be application/json",
            ErrorCode.BAD_USER_INPUT,
            reason="UNSUPPORTED_MEDIA_TYPE",
        )
    too_large = error_response(
        413,
        f"request body exceeds {max_body} bytes",
        ErrorCode.BAD_USER_INPUT,
        reason="BODY_TOO_LARGE",
        maxBytes=max_body,
    )
    declared = _header(scope, b"content-length")
    if declared.isdigit() and int(declared) > max_body:
        return too_large
    try:
        return await read_body(receive, max_body)
    except BodyTooLarge:
        return too_large


async def read_body(receive: Receive, max_body: int) -> bytes:
    """The whole body, or :class:`BodyTooLarge` as soon as it passes ``max_body``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one (disconnects)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def refusal_status(errors: list[GraphQLError]) -> tuple[int, dict[str, str]] | None:
    """HTTP status (and headers) for a result refused before execution."""
    for error in errors:
        original = error.original_error
        if isinstance(original, AppError) and original.code is ErrorCode.RATE_LIMITED:
            return 429, {"Retry-After": str(original.extensions.get("retryAfter", 1))}
        if isinstance(original, QueryTooComplex):
            return 400, {}
    return None


class RateLimit(SchemaExtension):
    """Charges the caller's and its city's buckets once the operation type is known.

    It runs when validation starts (the document is parsed, its operation type
    known), so a flood of invalid documents is limited too.
    """

    def __init__(self, *, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def on_validate(self) -> AsyncIterator[None]:
        if self.limiter.enabled:
            ctx = self.execution_context
            request_ctx = ctx.context
            principal = getattr(request_ctx, "principal_or_none", None)
            if principal is not None:
                user = str(principal.account_id)
                tenant = str(principal.tenant_id) if principal.tenant_id else None
            else:
                request = getattr(request_ctx, "request", None)
                client = getattr(request, "client", None)
                user, tenant = f"ip:{client.host if client else '-'}", None
            mutation = ctx.operation_type is OperationType.MUTATION
            await self.limiter.check(user=user, tenant=tenant, mutation=mutation)
        yield
