"""Strawberry on Starlette, behind the app's one authentication (``backend/web/auth.py``).

The authentication middleware has already refused a present but bad credential
(401) and set ``request.user``; here the caller's principal (and the open
transaction that read it) become the request's context. A request without a
credential reaches GraphQL anonymously (GraphiQL's introspection works); any field
that needs a principal raises ``UNAUTHENTICATED`` and the response becomes 401.

The response's media type follows the client's ``Accept`` (``backend/web/errors.py``):
``application/json`` keeps the statuses of :func:`~backend.schema.guards.request_refusal`;
``application/graphql-response+json`` follows GraphQL over HTTP
(:func:`~backend.schema.guards.graphql_response_refusal`): a response with ``data`` is
200, a request error has no ``data`` and a 4xx/5xx status.

A WebSocket upgrade on ``/graphql`` (subprotocol ``graphql-transport-ws``) runs
subscriptions: authentication in ``connection_init``, limits and error format in
``backend/schema/live.py``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from graphql import ExecutionResult, GraphQLError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.execution import ExecutionResult as StrawberryResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from backend.core.clock import response_zone
from backend.core.db import Database, is_unavailable
from backend.core.errors import AppError, BadUserInput
from backend.core.logging import get_logger
from backend.core.ratelimit import RateLimiter
from backend.schema.context import RequestContext
from backend.schema.errors import format_error
from backend.schema.guards import graphql_response_refusal, replay, request_refusal, screen
from backend.schema.live import (
    MAX_SUBSCRIPTIONS_PER_CONNECTION,
    SUBSCRIPTIONS_OVER_SOCKET,
    CappedWebSocket,
    Connections,
    LiveContext,
    LiveHandler,
    SocketLimits,
)
from backend.schema.persisted import resolve as resolve_persisted
from backend.schema.scalars import RESPONSE_ZONE
from backend.web import graphiql
from backend.web.auth import caller_of
from backend.web.errors import (
    GRAPHQL_RESPONSE_JSON,
    JSON,
    app_error_response,
    error_body,
    media_type_for,
    unavailable,
)

log = get_logger(__name__)


class GraphQLApp(GraphQL):
    def __init__(
        self,
        schema: Any,
        db: Database,
        *,
        graphiql: bool,
        max_body_bytes: int = 1_000_000,
        limiter: RateLimiter | None = None,
        suggestions: bool = True,
        default_timezone: str = "Asia/Shanghai",
        socket: SocketLimits = SocketLimits(),
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if graphiql else None,
            allow_queries_via_get=False,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),  # subscriptions (live.py)
            connection_init_wait_timeout=timedelta(seconds=socket.connection_init_timeout_seconds),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            allowed_origins=socket.allowed_origins,  # browsers on other origins: XF_CORS_ORIGINS
        )
        self.socket_limits = socket
        self.connections = Connections(socket.max_connections_per_user)
        self.db = db
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.suggestions = suggestions  # "Did you mean …?" in errors: off in production
        self.default_timezone = default_timezone  # responses' zone outside a city

    graphql_transport_ws_handler_class = LiveHandler
    websocket_adapter_class = CappedWebSocket  # type: ignore[assignment]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # subscriptions: backend/schema/live.py
            await super().__call__(scope, receive, send)
            return
        if scope["type"] != "http":
            await Response(status_code=404)(scope, receive, send)
            return
        screened = await screen(scope, receive, self.max_body_bytes)  # guards.py: JSON POST, cap
        if isinstance(screened, Response):
            await screened(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        ctx = RequestContext(
            db=self.db, request_id=state.get("request_id", "-"), limiter=self.limiter
        )
        caller = caller_of(scope)
        if caller is not None:
            ctx.principal_or_none = caller.principal
            session = caller.take_session()
            if session is not None:
                ctx.adopt(session)
        city_zone = caller.principal.city_timezone if caller is not None else None
        zone_token = RESPONSE_ZONE.set(response_zone(city_zone, self.default_timezone))
        try:
            if screened is not None:  # the body, persisted document filled in
                body = await self._persisted(ctx, screened, Headers(scope=scope).get("accept", ""))
                if isinstance(body, Response):
                    await body(scope, receive, send)
                    return
                receive = replay(body, receive)
            state["graphql_context"] = ctx
            await super().__call__(scope, receive, send)
        finally:
            RESPONSE_ZONE.reset(zone_token)
            await ctx.close()

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        """Strawberry's own request errors (a 400 it raises as plain text) as GraphQL JSON.

        The guards and :class:`~backend.schema.guards.OperationSelection` refuse what they
        know first; whatever strawberry still refuses with a 400 (an operation it cannot
        pick, one a method may not run) is answered like every other request error:
        ``BAD_USER_INPUT`` in the media type the client accepts."""
        try:
            return await super().run(request, context, root_value)
        except HTTPException as exc:
            if exc.status_code != 400:
                raise
            refusal = BadUserInput(exc.reason, reason="MALFORMED_REQUEST")
            return app_error_response(refusal, accept=request.headers.get("accept", ""))

    async def _persisted(
        self, ctx: RequestContext, screened: bytes, accept: str
    ) -> bytes | Response:
        """The POST body with a persisted document filled in, or the refusal."""
        try:
            return await resolve_persisted(
                self.db, ctx.principal_or_none, screened, ctx.held_session()
            )
        except AppError as exc:
            return app_error_response(exc, accept=accept)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            refusal = unavailable(ctx.request_id, "persisted_query")
            return app_error_response(refusal, accept=accept)

    async def execute_single(  # type: ignore[override]
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: RequestContext,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> StrawberryResult:
        """Strawberry's, without subscriptions: they run over WebSocket (``live.py``); a
        subscription POSTed gets BAD_USER_INPUT (400), not an internal error."""
        allowed = OperationType.from_http(request_adapter.method) - {OperationType.SUBSCRIPTION}
        if not self.allow_queries_via_get and request_adapter.method == "GET":
            allowed = allowed - {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            if exc.operation_type is not OperationType.SUBSCRIPTION:
                raise HTTPException(400, exc.as_http_error_reason(request_adapter.method)) from exc
            refusal = BadUserInput(SUBSCRIPTIONS_OVER_SOCKET)
            error = GraphQLError(refusal.message, original_error=refusal)
            return StrawberryResult(data=None, errors=[error])
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc

    async def get_context(self, request: Request, response: Response) -> RequestContext:  # type: ignore[override]
        if request.scope["type"] == "websocket":  # authenticated in connection_init
            request_id = request.scope.get("state", {}).get("request_id", "-")
            return LiveContext(
                db=self.db, request_id=request_id, limiter=self.limiter, request=request
            )
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        ctx.request, ctx.response = request, response
        return ctx

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        ctx: RequestContext = request.scope["state"]["graphql_context"]
        media_type = media_type_for(request.headers.get("accept"))
        ctx.response.headers["content-type"] = media_type  # taken by create_response
        try:
            await ctx.flush_pii_reads()  # no unmasked PII leaves without its access record
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            ctx.pii_reads.clear()  # withheld: nothing was shown, nothing to log
            refusal = unavailable(ctx.request_id, "pii_access_log")
            ctx.response.status_code = refusal.http_status
            ctx.response.headers.update(refusal.http_headers())
            return error_body(refusal, media_type)  # type: ignore[return-value]
        data: GraphQLHTTPResponse = {"data": result.data}
        if result.errors:
            data["errors"] = [
                format_error(e, ctx.request_id, suggestions=self.suggestions) for e in result.errors
            ]
            if media_type == GRAPHQL_RESPONSE_JSON:
                refusal = graphql_response_refusal(result.data, result.errors)
                if refusal is not None:
                    del data["data"]  # a request error: execution never answered
            else:
                refusal = request_refusal(result.errors)  # 401, 503, 429, 400 (see guards)
            if refusal is not None:
                ctx.response.status_code = refusal.http_status
                ctx.response.headers.update(refusal.http_headers())
        if result.extensions:
            data["extensions"] = result.extensions
        return data

    async def render_graphql_ide(self, request: Request) -> Response:
        """Our GraphiQL page, its assets served by the app (``backend/web/graphiql``)."""
        return graphiql.page()

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """Strawberry's response, in the media type ``process_result`` negotiated."""
        media_type = sub_response.headers.get("content-type", JSON)
        if "content-type" in sub_response.headers:
            del sub_response.headers["content-type"]
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = media_type
        return response
