"""Subscriptions (live updates) over WebSocket, protocol ``graphql-transport-ws``.

``caseUpdated(unitPath)`` and ``notificationReceived`` (docs/subscriptions.md). What
changed comes from :mod:`backend.core.live` (``pg_notify`` sent by the committing
transaction, so from any process; in-process on SQLite); what a subscriber is told is
decided per event by the same service functions as a query
(:func:`backend.cases.queries.live_cases`, :func:`backend.notifications.service.inbox_items`),
for the caller as it is *now*:

- the connection is authenticated once in ``connection_init`` (payload
  ``{"Authorization": "Bearer <JWT>"}`` or ``"ApiKey <key>"``), by the one
  :func:`~backend.web.auth.authenticate` of HTTP: none → close 4401, bad, expired,
  revoked or disabled → close 4403; the connection is closed (4403) when the token
  expires;
- before every event the same credential is authenticated again and the principal
  re-read: a disabled account or an expired token closes the connection (4403), a
  revoked role ends the stream with FORBIDDEN, an accusation never reaches its accused
  (Art. 30) even if the role inside the accused unit was taken after subscribing;
- only subscriptions run over the socket (queries and mutations go over HTTP); limits
  are settings: ``XF_WS_MAX_CONNECTIONS_PER_USER`` (close 4429),
  ``XF_WS_MAX_MESSAGE_BYTES`` (close 1009), ``XF_WS_CONNECTION_INIT_TIMEOUT_SECONDS``
  (close 4408).

A case update carries no content and no PII (status, colour, holder, version): a
client reads the case with ``case(id:)`` when it needs more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from json import JSONDecodeError
from typing import Any
from zoneinfo import ZoneInfo

import strawberry
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError

from backend.authz.principal import Principal
from backend.cases import models as case_models
from backend.cases import queries
from backend.core import live
from backend.core.clock import now
from backend.core.db import is_unavailable
from backend.core.errors import AppError, BadUserInput, Conflict, RateLimited, Unauthenticated
from backend.core.logging import get_logger
from backend.core.settings import Settings, get_settings
from backend.notifications import service as notifications
from backend.schema import persisted as persisted_documents
from backend.schema.cases import CaseStatus, WarningColor
from backend.schema.context import Ctx, RequestContext
from backend.schema.errors import format_error
from backend.schema.guards import check_body, check_operation_selection
from backend.schema.notifications import NotificationNode
from backend.schema.scalars import RESPONSE_ZONE
from backend.web.auth import authenticate

log = get_logger(__name__)

# Close codes (graphql-transport-ws uses 44xx; 1009 is WebSocket's "message too big")
UNAUTHORIZED, FORBIDDEN, TOO_MANY, TOO_BIG, TRY_AGAIN = 4401, 4403, 4429, 1009, 1013
MAX_SUBSCRIPTIONS_PER_CONNECTION = 20
SUBSCRIPTIONS_OVER_SOCKET = "subscriptions run over WebSocket (graphql-transport-ws) only"


@dataclass
class LiveContext(RequestContext):
    """The context of one WebSocket connection: its credential, as sent in
    ``connection_init``, authenticated again before every event."""

    authorization: str | None = None
    connection_params: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    close: Callable[[int, str], Awaitable[None]] | None = None

    @contextlib.asynccontextmanager
    async def recheck(self) -> AsyncIterator[tuple[Principal, AsyncSession]]:
        """The caller as it is now, and a read session in its scope (closed on exit).

        A credential no longer good (expired, revoked key, disabled account) closes the
        connection (4403) and raises UNAUTHENTICATED."""
        try:
            caller = await authenticate(self.db, self.authorization)
        except Unauthenticated as exc:
            if self.close is not None:
                await self.close(FORBIDDEN, f"Forbidden: {exc.message}")
            raise
        if caller is None:  # pragma: no cover — connection_init refused an empty one
            raise Unauthenticated("a credential is required")
        self.principal_or_none = caller.principal
        session = caller.take_session() or self.db.session(caller.principal.scope())
        try:
            yield caller.principal, session
        finally:
            await session.close()


def _live(info: Ctx) -> LiveContext:
    ctx = info.context
    if not isinstance(ctx, LiveContext):  # over HTTP: nothing would ever be sent
        raise BadUserInput(SUBSCRIPTIONS_OVER_SOCKET)
    return ctx


async def _messages(ctx: LiveContext, kind: str) -> AsyncIterator[live.Message]:
    """Messages of ``kind`` about the caller's cities (a notification: for the caller)."""
    principal = ctx.principal
    tenants = {str(t) for t in principal.scope().tenant_ids}
    me = str(principal.account_id)
    async with live.HUB.subscribe() as subscriber:
        while True:
            try:
                message = await subscriber.next()
            except live.Lagged as exc:
                raise Conflict(str(exc)) from exc
            if message.kind != kind or message.tenant_id not in tenants:
                continue
            if kind == live.NOTIFICATION and message.recipient != me:
                continue
            yield message


def _ids(message: live.Message) -> list[uuid.UUID]:
    return [uuid.UUID(i) for i in message.ids]


@strawberry.type
class CaseUpdate:
    """A case changed (status, warning colour, holder, leader, deadline …): what it is now.
    No content: read the case with ``case(id:)`` for more."""

    case_id: strawberry.ID
    number: str
    status: CaseStatus
    warning_color: WarningColor
    holder_path: str
    version: int
    updated_at: datetime

    @classmethod
    def of(cls, case: case_models.Case) -> CaseUpdate:
        return cls(
            case_id=strawberry.ID(str(case.id)),
            number=case.number,
            status=case_models.CaseStatus(case.status),
            warning_color=case_models.WarningColor(case.warning_color),
            holder_path=case.holder_path,
            version=case.version,
            updated_at=case.updated_at,
        )


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="Changes of the cases the caller may read (the read rule of `cases`, "
        "asked again at every change), within `unitPath` when given."
    )
    async def case_updated(
        self, info: Ctx, unit_path: str | None = None
    ) -> AsyncGenerator[CaseUpdate, None]:
        ctx = _live(info)
        async with ctx.recheck() as (principal, session):  # FORBIDDEN, BAD_USER_INPUT now
            await queries.live_cases(session, principal, [], unit_path)
        async for message in _messages(ctx, live.CASE):
            async with ctx.recheck() as (principal, session):
                cases = await queries.live_cases(session, principal, _ids(message), unit_path)
                updates = [CaseUpdate.of(c) for c in cases]
            for update in updates:
                yield update

    @strawberry.subscription(
        description="The caller's in-app notifications as they arrive in its inbox."
    )
    async def notification_received(self, info: Ctx) -> AsyncGenerator[NotificationNode, None]:
        ctx = _live(info)
        async with ctx.recheck() as (principal, session):
            await notifications.inbox_items(session, principal, [])
        async for message in _messages(ctx, live.NOTIFICATION):
            async with ctx.recheck() as (principal, session):
                rows = await notifications.inbox_items(session, principal, _ids(message))
                nodes = [
                    NotificationNode.of(
                        r, _viewer=principal.account_id, _recipient=principal.username
                    )
                    for r in rows
                ]
            for node in nodes:
                yield node


# --- the socket -----------------------------------------------------------------------


@dataclass(frozen=True)
class SocketLimits:
    """The WebSocket's limits (settings ``XF_WS_*``; browsers' origins: ``XF_CORS_ORIGINS``)."""

    max_connections_per_user: int = 5
    max_message_bytes: int = 65_536
    connection_init_timeout_seconds: int = 10
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> SocketLimits:
        return cls(
            settings.ws_max_connections_per_user,
            settings.ws_max_message_bytes,
            settings.ws_connection_init_timeout_seconds,
            tuple(settings.cors_origin_list),
        )


class Connections:
    """Open connections per account in this process (``XF_WS_MAX_CONNECTIONS_PER_USER``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def take(self, username: str) -> bool:
        if self.open.get(username, 0) >= self.limit:
            return False
        self.open[username] = self.open.get(username, 0) + 1
        return True

    def give_back(self, username: str) -> None:
        left = self.open.get(username, 0) - 1
        if left > 0:
            self.open[username] = left
        else:
            self.open.pop(username, None)


class CappedWebSocket(ASGIWebSocketAdapter):
    """Strawberry's adapter, refusing a message over ``XF_WS_MAX_MESSAGE_BYTES`` (1009)."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object]:
        limit: int = self.view.socket_limits.max_message_bytes  # type: ignore[attr-defined]
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    raise NonTextMessageReceived
                if len(text) > limit or len(text.encode()) > limit:
                    await self.ws.close(TOO_BIG, f"message over {limit} bytes")
                    return
                try:
                    message = self.view.decode_json(text)
                except JSONDecodeError as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                    continue
                except RecursionError:  # as an HTTP body nested too deeply (guards.py)
                    await self.close(4400, "Invalid message: nested too deeply")
                    return
                yield message
        except WebSocketDisconnect:
            pass

    async def close(self, code: int, reason: str) -> None:
        """Strawberry's close reasons quote the client's text (an unknown type, a duplicate
        id): kept to what a close frame can carry — valid UTF-8 of at most 123 bytes —
        or the close itself raised and the connection dropped without one (1006)."""
        data = reason.encode("utf-8", "replace")[:123]
        await super().close(code, data.decode("utf-8", "ignore"))

    async def send_json(self, message: Any) -> None:
        """Nothing once the socket is closed (the server closed it: expiry, revocation)."""
        if WebSocketState.DISCONNECTED in (self.ws.application_state, self.ws.client_state):
            return
        try:
            await super().send_json(message)
        except RuntimeError:  # closed meanwhile: Starlette refuses a send after the close
            if self.ws.application_state != WebSocketState.DISCONNECTED:
                raise


class LiveHandler(BaseGraphQLTransportWSHandler):
    """graphql-transport-ws with the app's authentication, limits and error format."""

    context: LiveContext

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.username: str | None = None
        self.expiry: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: Any) -> None:
        if self.connection_timed_out:
            return  # pragma: no cover
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload") or {}
        if not isinstance(payload, dict):
            await self.websocket.close(4400, "Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(4429, "Too many initialisation requests")
            return
        self.connection_init_received = True
        refusal = await self._admit(payload)
        if refusal is not None:
            await self.websocket.close(*refusal)
            return
        await self.send_message({"type": "connection_ack"})
        self.connection_acknowledged = True
        if self.context.expires_at is not None:
            self.expiry = asyncio.create_task(self._expire(self.context.expires_at))

    async def _admit(self, payload: dict[str, Any]) -> tuple[int, str] | None:
        """Authenticate the payload's credential; the close code and reason if refused."""
        ctx = self.context
        authorization = payload.get("Authorization", payload.get("authorization"))
        if not isinstance(authorization, str) or not authorization.strip():
            return UNAUTHORIZED, "Unauthorized: connection_init needs an Authorization"
        try:
            caller = await authenticate(ctx.db, authorization)
        except AppError as exc:
            return FORBIDDEN, f"Forbidden: {exc.message}"[:120]
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            return TRY_AGAIN, "Service temporarily unavailable"
        if caller is None:  # pragma: no cover — a non-empty Authorization names someone
            return UNAUTHORIZED, "Unauthorized"
        await caller.release()
        principal = caller.principal
        connections: Connections = self.view.connections  # type: ignore[attr-defined]
        if not connections.take(principal.username):
            return TOO_MANY, f"Too many connections (at most {connections.limit} per account)"
        self.username = principal.username
        ctx.authorization = authorization
        ctx.connection_params = payload
        ctx.principal_or_none = principal
        ctx.expires_at = caller.expires_at
        ctx.close = self.websocket.close
        city = principal.tenant_id is not None
        default_zone: str = self.view.default_timezone  # type: ignore[attr-defined]
        # DateTime in the caller's zone (scalars.py): operation tasks inherit this context
        RESPONSE_ZONE.set(ZoneInfo(principal.timezone if city else default_zone))
        return None

    async def _expire(self, at: datetime) -> None:
        await asyncio.sleep(max(0.0, (at - now()).total_seconds()))
        await self.websocket.close(FORBIDDEN, "Forbidden: token expired")

    async def handle_message(self, message: Any) -> None:
        """A message that is no JSON object (an array, a number), or whose ``id`` is not a
        string, closes with 4400, as the protocol closes every invalid message; they raised
        inside strawberry (1006) or ran with a number for an id."""
        if not isinstance(message, dict):
            await self.websocket.close(4400, "Invalid message: not a JSON object")
            return
        if "id" in message and not isinstance(message["id"], str):  # the protocol's id
            await self.websocket.close(4400, "Invalid message: id must be a string")
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: Any) -> None:
        if self.connection_acknowledged and message.get("id") not in self.operations:
            if not isinstance(message.get("payload"), dict):  # missing too (docs/subscriptions.md)
                await self.websocket.close(4400, "Invalid subscribe payload: not a JSON object")
                return
            try:
                await self._admit_subscription(message)
            except AppError as exc:
                refusal = GraphQLError(exc.message, original_error=exc)
                formatted = format_error(refusal, self.context.request_id)
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [formatted]}  # type: ignore[typeddict-item]
                )
                return
        await super().handle_subscribe(message)

    async def _admit_subscription(self, message: dict[str, Any]) -> None:
        """The checks of an HTTP request, in its order, for a subscribe message; the
        :class:`AppError` to answer with an ``error`` message (they reached strawberry as
        INTERNAL, a bare ``complete`` or a crash before the outside probes of issue 21):

        - the body's shape (``guards.check_body``: JSON types of query, operationName,
          variables and extensions, no NUL, a query or a persisted id; MALFORMED_BODY);
        - the persisted-query rules (``schema/persisted.py``): a hash runs its stored
          document, and a city in allow-list mode runs only its list's documents, so a
          socket is no way around the list; the payload becomes the resolved one;
        - the document: it parses within the token limit, names one operation to run
          (``guards.check_operation_selection``), and that one is a subscription;
        - at most MAX_SUBSCRIPTIONS_PER_CONNECTION on the socket (strawberry's own
          refusal carries no extensions.code).
        """
        body = json.dumps(message["payload"]).encode()
        check_body(body)
        resolved = await persisted_documents.resolve(
            self.context.db, self.context.principal_or_none, body
        )
        if resolved is not body:
            message["payload"] = json.loads(resolved)
        self._one_subscription(message["payload"])
        if len(self.operations) >= MAX_SUBSCRIPTIONS_PER_CONNECTION:
            limit = MAX_SUBSCRIPTIONS_PER_CONNECTION
            raise RateLimited(f"at most {limit} subscriptions per connection", limit=limit)

    @staticmethod
    def _one_subscription(payload: dict[str, Any]) -> None:
        query = payload.get("query")
        if not isinstance(query, str):
            return  # check_body and the persisted document leave a string: the protocol's
        try:
            document = parse(query, max_tokens=get_settings().graphql_max_tokens)
        except GraphQLError as exc:  # a syntax error or too many tokens, as over HTTP
            raise BadUserInput(exc.message) from None
        name = payload.get("operationName")
        check_operation_selection(document, name)
        operation = get_operation_ast(document, name)
        if operation is None:  # fragments only
            raise BadUserInput("the document holds no operation", reason="MALFORMED_REQUEST")
        if operation.operation is not OperationType.SUBSCRIPTION:
            raise BadUserInput(
                "only subscriptions run over WebSocket: send queries and mutations over HTTP"
            )

    async def _send_result_stream(self, operation: Any, result_source: Any) -> None:
        """Strawberry's, with errors in the contract's format (extensions.code)."""
        first = True
        async for result in result_source:
            if first and isinstance(result, PreExecutionError):
                assert result.errors
                if self._get_pre_execution_close_reason(result.errors[0]):
                    await self._handle_pre_execution_error(operation, result)
                    return
                payload = [self._format(e) for e in result.errors]
                await operation.send_operation_message(
                    {"id": operation.id, "type": "error", "payload": payload}
                )
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            first = False
            body: dict[str, Any] = {"data": result.data}
            if result.errors:
                body["errors"] = [self._format(e) for e in result.errors]
            await operation.send_operation_message(
                {"id": operation.id, "type": "next", "payload": body}
            )

    def _format(self, error: GraphQLError) -> dict[str, Any]:
        suggestions: bool = self.view.suggestions  # type: ignore[attr-defined]
        return format_error(error, self.context.request_id, suggestions=suggestions)

    async def shutdown(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        try:
            await super().shutdown()
        finally:
            if self.username is not None:
                self.view.connections.give_back(self.username)  # type: ignore[attr-defined]
                self.username = None
