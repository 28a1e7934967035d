"""Strawberry on Starlette, with bearer authentication in front of it.

A present but malformed, expired or forged token, or one for an unknown
account, is answered 401 before any GraphQL runs. A request without a token
reaches GraphQL anonymously (GraphiQL's introspection works); any field that
needs a principal raises ``UNAUTHENTICATED`` and the response becomes 401.
"""

from __future__ import annotations

from typing import Any

import structlog
from graphql import ExecutionResult
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse

from backend.core.db import Database, is_unavailable
from backend.core.errors import AppError, ErrorCode
from backend.core.logging import get_logger
from backend.schema.context import RequestContext
from backend.schema.errors import RETRY_AFTER_SECONDS, error_code, format_error
from backend.schema.guards import persisted_refusal, refusal_status, replay, screen
from backend.schema.persisted import resolve as resolve_persisted
from backend.tenants.api_keys import credential_username
from backend.tenants.principals import open_principal

log = get_logger(__name__)


def unauthenticated_response(message: str) -> JSONResponse:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})


def unavailable_body(request_id: str, stage: str) -> dict[str, Any]:
    """A whole request refused as UNAVAILABLE (docs/operations.md): nothing was shown."""
    log.warning("graphql.unavailable", request_id=request_id, stage=stage)
    return {
        "data": None,
        "errors": [
            {
                "message": "Service temporarily unavailable; retry the request",
                "extensions": {
                    "code": "UNAVAILABLE",
                    "retryAfter": RETRY_AFTER_SECONDS,
                    "requestId": request_id,
                },
            }
        ],
    }


def unavailable_response(request_id: str) -> JSONResponse:
    """The database could not even authenticate the caller: 503, retry shortly."""
    body = unavailable_body(request_id, "authentication")
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


class GraphQLApp(GraphQL):
    def __init__(
        self, schema: Any, db: Database, *, graphiql: bool, max_body_bytes: int = 1_000_000
    ) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False
        )
        self.db = db
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await Response(status_code=404)(scope, receive, send)
            return
        screened = await screen(scope, receive, self.max_body_bytes)  # guards.py: JSON POST, cap
        if isinstance(screened, Response):
            await screened(scope, receive, send)
            return
        request = Request(scope, receive)
        state = scope.setdefault("state", {})
        ctx = RequestContext(db=self.db, request_id=state.get("request_id", "-"))
        try:
            refusal = await self._authenticate(ctx, request.headers.get("authorization"))
            if refusal is None and screened is not None:  # the body, persisted document filled in
                body = await self._persisted(ctx, screened)
                if isinstance(body, Response):
                    refusal = body
                else:
                    receive = replay(body, receive)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            if ctx.principal_or_none is not None:
                principal = ctx.principal_or_none
                structlog.contextvars.bind_contextvars(
                    user=principal.username, tenant=principal.tenant_slug
                )
            state["graphql_context"] = ctx
            await super().__call__(scope, receive, send)
        finally:
            await ctx.close()

    async def _authenticate(
        self, ctx: RequestContext, authorization: str | None
    ) -> Response | None:
        """Set the caller's principal (and its open session) on ``ctx``, or the refusal."""
        try:
            username = await credential_username(self.db, authorization)
            if username:
                ctx.principal_or_none, session = await open_principal(self.db, username)
                if session is not None:
                    ctx.adopt(session)
        except AppError as exc:
            return unauthenticated_response(exc.message)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            return unavailable_response(ctx.request_id)
        return None

    async def _persisted(self, ctx: RequestContext, screened: bytes) -> bytes | Response:
        """The POST body with a persisted document filled in, or the refusal."""
        try:
            return await resolve_persisted(
                self.db, ctx.principal_or_none, screened, ctx.held_session()
            )
        except AppError as exc:
            return persisted_refusal(exc)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            return unavailable_response(ctx.request_id)

    async def get_context(self, request: Request, response: Response) -> RequestContext:  # type: ignore[override]
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        ctx.request, ctx.response = request, response
        return ctx

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        try:
            await ctx.flush_pii_reads()  # no unmasked PII leaves without its access record
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            ctx.pii_reads.clear()  # withheld: nothing was shown, nothing to log
            ctx.response.status_code = 503
            ctx.response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return unavailable_body(ctx.request_id, "pii_access_log")  # type: ignore[return-value]
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(e, ctx.request_id) for e in result.errors]
            if any(error_code(e) is ErrorCode.UNAUTHENTICATED for e in result.errors):
                ctx.response.status_code = 401
                ctx.response.headers["WWW-Authenticate"] = "Bearer"
            elif any(error_code(e) is ErrorCode.UNAVAILABLE for e in result.errors):
                ctx.response.status_code = 503  # retryable (docs/operations.md)
                ctx.response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            elif refusal := refusal_status(result.errors):  # 429 rate limit, 400 cost
                ctx.response.status_code, headers = refusal
                ctx.response.headers.update(headers)
        if result.extensions:
            data["extensions"] = result.extensions
        return data
