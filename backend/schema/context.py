"""Per-request GraphQL context: principal, tenant-scoped sessions and DataLoaders.

Strawberry resolves sibling fields concurrently, and one ``AsyncSession``
must never be awaited by two coroutines at once, so every use of the read
session goes through a lock (DataLoaders batch under it, one batch at a
time). Each mutation gets its own transaction: committed when the resolver
returns, rolled back on any error, so a failed mutation changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from strawberry.types import Info

from backend.authz.principal import Principal
from backend.cases.audit import record_pii_reads
from backend.core.db import Database, TenantScope, is_unavailable
from backend.core.errors import Conflict, Unauthenticated

T = TypeVar("T")


@dataclass
class RequestContext:
    db: Database
    request_id: str
    principal_or_none: Principal | None = None
    request: Any = None
    response: Any = None
    limiter: Any = None  # the app's RateLimiter (backend/core/ratelimit.py), if any
    loaders: dict[str, Any] = field(default_factory=dict)
    # (tenant_id, case_id, fields[, petitioner key]) of unmasked PII shown in this response,
    # and of searches by id number (case_id None): logged before the response leaves.
    pii_reads: dict[Any, tuple[Any, ...]] = field(default_factory=dict)
    # searches by id number already charged for this request (guards.py, RateLimit)
    id_searches_paid: int = 0
    # the executor returns ``execution.Precompleted`` answers as they are (compiled reads)
    precompleted: bool = False
    _session: AsyncSession | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def principal(self) -> Principal:
        if self.principal_or_none is None:
            raise Unauthenticated("a bearer token is required")
        return self.principal_or_none

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """The request's read session, one user at a time."""
        principal = self.principal
        async with self._lock:
            if self._session is None:
                self._session = self.db.session(principal.scope())
            try:
                yield self._session
            except Exception as exc:
                if is_unavailable(exc):  # the connection died: later fields get a new one
                    await self._drop_session()
                raise

    def adopt(self, session: AsyncSession) -> None:
        """Serve reads from ``session``: the open transaction that loaded the principal.

        Its scope must be the principal's (``open_principal`` only hands such a session).
        """
        self._session = session

    def held_session(self) -> AsyncSession | None:
        """The read session this request holds open, if any (for work outside fields)."""
        return self._session

    async def _drop_session(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):
                await session.invalidate()

    @asynccontextmanager
    async def _write(self, scope: TenantScope | None = None) -> AsyncIterator[AsyncSession]:
        """One transaction for one mutation; commit on success, roll back on error.

        An open read transaction (the one that loaded the principal, say) becomes the
        mutation's: a request must never hold one connection while it waits for a
        second, or a burst of requests each holding one exhausts the pool (50 parallel
        intakes did). Its reads are harmless in a write (READ COMMITTED), its scope is
        the principal's and never read-only (supervisors' sessions are not kept). After
        the commit the session is gone; a later read opens a new one.
        """
        principal = self.principal
        async with self._lock:
            session, self._session = self._session, None
            if scope is not None and session is not None:  # another scope: its own transaction
                await session.close()
                session = None
            if session is None:
                async with self.db.transaction(scope or principal.scope()) as fresh:
                    yield fresh
                return
            try:
                yield session
                await session.commit()
            finally:
                await session.close()  # rolls back whatever was not committed

    async def mutate(
        self,
        action: Callable[..., Awaitable[T]],
        *args: Any,
        scope: TenantScope | None = None,
        **kwargs: Any,
    ) -> T:
        """Run one mutation's service call in its own transaction — every mutation does.

        ``action(session, principal, *args, **kwargs)``: a service function, or a small
        local function when the answer needs more reads in the same transaction. A
        concurrent writer that won an optimistic version (``WHERE version = <ours>``
        matched nothing) is a CONFLICT; the request's loader caches are dropped so a
        later field or mutation of the same document reads what this one wrote.
        ``scope``: the transaction's tenant scope when it is not the principal's own (a
        provincial supervisor writes into one city of its read-only province).
        """
        try:
            async with self._write(scope) as session:
                result = await action(session, self.principal, *args, **kwargs)
        except StaleDataError as exc:
            raise Conflict("changed concurrently; reload and retry", field="version") from exc
        self.loaders.clear()
        return result

    async def search_by_id_number(self, petitioner_key: str) -> None:
        """Count a search by id number against the caller's tight limit, and log it."""
        principal = self.principal
        if self.id_searches_paid:  # charged with the request's others before it ran
            self.id_searches_paid -= 1
        elif self.limiter is not None:
            await self.limiter.check_id_search(principal)
        entry = (principal.tenant_id, None, ("idNumberSearch",), petitioner_key)
        self.pii_reads[("search", len(self.pii_reads))] = entry

    def loader(self, name: str, factory: Any) -> Any:
        """A DataLoader living only as long as this request (never module-global)."""
        if name not in self.loaders:
            self.loaders[name] = factory(self)
        return self.loaders[name]

    async def close(self) -> None:
        await self._close_session()
        await self.flush_pii_reads()

    async def _close_session(self) -> None:
        if self._session is not None:
            try:
                await self._session.close()
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
            self._session = None

    async def flush_pii_reads(self) -> None:
        """Commit the access log of the unmasked PII this response shows.

        The view calls it before the response leaves (a response whose access cannot be
        logged — database gone — is withheld); ``close`` calls it again as a safety net.
        The shared read session is released first: execution is over, and a request that
        held its read connection while waiting for a second one would exhaust the pool
        under load (50 parallel intakes did).
        """
        if self.pii_reads and self.principal_or_none is not None:
            await self._close_session()
            async with self.db.transaction(self.principal.scope()) as session:
                await record_pii_reads(
                    session, self.principal, self.pii_reads.values(), self.request_id
                )
            self.pii_reads.clear()


Ctx = Info[RequestContext, None]
"""What every resolver of the schema receives (``info.context`` is the request's context)."""
