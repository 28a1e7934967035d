"""One authentication for every route: Starlette's ``AuthenticationMiddleware`` with one backend.

Credentials, in the order they are looked for:

- ``Authorization: Bearer <JWT>`` — a person (SSO, or ``xinfang token``);
- ``Authorization: ApiKey <key>`` (or ``Bearer <key>`` for clients that only know
  Bearer) — a service account (``backend/tenants/api_keys.py``);
- ``?link=<signed link>`` on a GET without an ``Authorization`` header — a person,
  for the one path the link was signed for (``backend/authz/tokens.py``).

A present credential that is malformed, expired, forged, revoked, names an unknown or
disabled account, or comes through the wrong door (a token for a service account, a
key for a person) is refused with 401 before any route runs, whatever the route. No
credential at all passes through anonymously (``request.user`` is not authenticated):
GraphQL then answers introspection and refuses every field with ``UNAUTHENTICATED``,
and a REST route refuses at once (``backend/web/routes.py``). Roles are read from the
database on every request, so a revoked role takes effect at once.

The principal is read in a transaction that stays open (``open_principal``): GraphQL
adopts it for its reads; whatever nobody adopted is closed when the response is done.
:func:`authenticate` is the whole decision, usable without a request: the
graphql-transport-ws endpoint (``backend/schema/live.py``) passes its
``connection_init`` payload's ``Authorization`` here, at the start and before every event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from backend.authz.principal import Principal
from backend.authz.tokens import bearer_token, verified_token, verify_link
from backend.core.db import Database, is_unavailable
from backend.core.errors import AppError, Unauthenticated
from backend.tenants.api_keys import authenticate_key, looks_like_key
from backend.tenants.principals import open_principal
from backend.web.errors import app_error_response, unavailable

TOKEN, API_KEY, LINK = "token", "api_key", "link"


class Caller(BaseUser):
    """An authenticated caller: its principal, how it proved itself, its open session."""

    def __init__(self, principal: Principal, via: str, session: AsyncSession | None = None):
        self.principal = principal
        self.via = via
        self._session = session
        self.expires_at: datetime | None = None  # a token's ``exp`` (keys do not expire)

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.username

    @property
    def identity(self) -> str:
        return str(self.principal.account_id)

    def take_session(self) -> AsyncSession | None:
        """The transaction that read the principal, handed over once (GraphQL reads on)."""
        session, self._session = self._session, None
        return session

    async def release(self) -> None:
        session = self.take_session()
        if session is not None:
            try:
                await session.close()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise


async def authenticate(
    db: Database,
    authorization: str | None,
    *,
    link: str | None = None,
    path: str = "",
) -> Caller | None:
    """The caller the credentials speak for, ``None`` without any; ``Unauthenticated``
    when one is present but not good (see the module docstring)."""
    if authorization:
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() == "apikey" or (
            scheme.lower() == "bearer" and looks_like_key(credential)
        ):
            if not credential:
                raise Unauthenticated("malformed Authorization header")
            return await _caller(db, await authenticate_key(db, credential), API_KEY)
        username, expires_at = verified_token(bearer_token(authorization) or "")
        caller = await _caller(db, username, TOKEN)
        caller.expires_at = expires_at
        return caller
    if link is not None:
        return await _caller(db, verify_link(link, path), LINK)
    return None


async def _caller(db: Database, username: str, via: str) -> Caller:
    principal, session = await open_principal(db, username)
    caller = Caller(principal, via, session)
    if (via == API_KEY) != principal.is_service_account:
        await caller.release()
        if via == API_KEY:
            raise Unauthenticated("API keys act for service accounts only: this one is revoked")
        raise Unauthenticated("service accounts authenticate with their API key")
    return caller


class AuthenticationFailed(AuthenticationError):
    """Carries the refusal (401, or 503 when the database could not be asked)."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.message)
        self.error = error


class CredentialBackend(AuthenticationBackend):
    def __init__(self, db: Database, public_paths: Iterable[str] = ()) -> None:
        self.db = db
        self.public_paths = frozenset(public_paths)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        path = conn.url.path
        if path in self.public_paths:
            return None  # probes and metrics: no account involved (metrics check their own)
        if conn.scope["type"] == "websocket":
            # subscriptions authenticate in their connection_init message, with this same
            # authenticate() (backend/schema/live.py); no transaction held for a connection
            return None
        link = (
            conn.query_params.get("link") if conn.scope.get("method") in ("GET", "HEAD") else None
        )
        try:
            caller = await authenticate(
                self.db, conn.headers.get("authorization"), link=link, path=path
            )
        except AppError as exc:
            raise AuthenticationFailed(exc) from exc
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            request_id = conn.scope.get("state", {}).get("request_id", "-")
            raise AuthenticationFailed(unavailable(request_id, "authentication")) from exc
        if caller is None:
            return None
        principal = caller.principal
        structlog.contextvars.bind_contextvars(
            user=principal.username, tenant=principal.tenant_slug, via=caller.via
        )
        return AuthCredentials(["authenticated", caller.via]), caller


def _refuse(conn: HTTPConnection, exc: AuthenticationError) -> Response:
    error = exc.error if isinstance(exc, AuthenticationFailed) else Unauthenticated(str(exc))
    return app_error_response(error, accept=conn.headers.get("accept"))


class Authentication(AuthenticationMiddleware):
    """Starlette's middleware with our backend; closes what no route adopted."""

    def __init__(self, app: ASGIApp, db: Database, public_paths: Iterable[str] = ()) -> None:
        super().__init__(app, backend=CredentialBackend(db, public_paths), on_error=_refuse)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            user = scope.get("user")
            if isinstance(user, Caller):
                await user.release()


def caller_of(scope: Scope) -> Caller | None:
    user = scope.get("user")
    return user if isinstance(user, Caller) else None
