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

from backend.authz.tokens import bearer_token, verify_token
from backend.core.db import Database
from backend.core.errors import AppError, ErrorCode
from backend.core.logging import get_logger
from backend.schema.context import RequestContext
from backend.schema.errors import error_code, format_error
from backend.tenants.principals import load_principal

log = get_logger(__name__)


def unauthenticated_response(message: str) -> JSONResponse:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})


class GraphQLApp(GraphQL):
    def __init__(self, schema: Any, db: Database, *, graphiql: bool) -> None:
        super().__init__(
            schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False
        )
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await Response(status_code=404)(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            token = bearer_token(request.headers.get("authorization"))
            principal = await load_principal(self.db, verify_token(token)) if token else None
        except AppError as exc:
            await unauthenticated_response(exc.message)(scope, receive, send)
            return
        if principal is not None:
            structlog.contextvars.bind_contextvars(
                user=principal.username, tenant=principal.tenant_slug
            )
        state = scope.setdefault("state", {})
        ctx = RequestContext(
            db=self.db, request_id=state.get("request_id", "-"), principal_or_none=principal
        )
        state["graphql_context"] = ctx
        try:
            await super().__call__(scope, receive, send)
        finally:
            await ctx.close()

    async def get_context(self, request: Request, response: Response) -> RequestContext:  # type: ignore[override]
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        ctx.request, ctx.response = request, response
        return ctx

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [format_error(e, ctx.request_id) for e in result.errors]
            if any(error_code(e) is ErrorCode.UNAUTHENTICATED for e in result.errors):
                ctx.response.status_code = 401
                ctx.response.headers["WWW-Authenticate"] = "Bearer"
        if result.extensions:
            data["extensions"] = result.extensions
        return data
