"""Persisted queries: the documents an administrator allowed, by SHA-256, and per-city mode.

``persisted_queries`` is platform data (no tenant column, no RLS, like
``tenants``): the manifest of the front-end build, valid in every city.
``tenant_persisted_queries`` (a city's extra documents) and
``persisted_query_modes`` (a city's allow-list switch) are tenant tables
behind both walls. They are written only by the CLI (``xinfang
persisted-queries``) and read on the request path through a short in-process
cache (:data:`CACHE_SECONDS`), so a change reaches every api pod within that time.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String, Text, UniqueConstraint, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.clock import now
from backend.core.db import (
    NO_TENANT,
    Base,
    Database,
    TenantScope,
    TenantScoped,
    TimestampedId,
    UtcDateTime,
    current_scope,
    use_scope,
)
from backend.core.errors import BadUserInput

CACHE_SECONDS = 5.0


class PersistedQuery(TimestampedId, Base):
    """A document of the global manifest (every city)."""

    __tablename__ = "persisted_queries"

    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(Text)


class TenantPersistedQuery(TenantScoped, Base):
    """A document allowed in one city only."""

    __tablename__ = "tenant_persisted_queries"
    __table_args__ = (
        UniqueConstraint("tenant_id", "sha256", name="uq_tenant_persisted_queries_hash"),
    )

    sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(Text)


class PersistedQueryMode(TenantScoped, Base):
    """A city that only accepts persisted queries from its users (absent row = off)."""

    __tablename__ = "persisted_query_modes"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_persisted_query_modes_tenant"),)

    allow_list_only: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    sha256: str
    query: str
    name: str | None = None


def parse_manifest(text: str) -> list[ManifestEntry]:
    """Apollo's persisted-query manifest, or a plain ``{sha256: query}`` object.

    Every hash must be the SHA-256 of its document: a manifest can never make a
    hash stand for another text than the one a client hashed.
    """
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadUserInput("the manifest is not JSON") from exc
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        raw = [
            (op.get("id"), op.get("body"), op.get("name"))
            for op in data["operations"]
            if isinstance(op, dict)
        ]
    elif isinstance(data, dict):
        raw = [(key, value, None) for key, value in data.items()]
    else:
        raise BadUserInput("a manifest is {operations: [{id, body, name}]} or {sha256: query}")
    entries = []
    for key, body, name in raw:
        if not isinstance(body, str) or not body.strip():
            raise BadUserInput(f"operation {key!r} has no document body")
        digest = sha256_hex(body)
        if key is not None and str(key).removeprefix("sha256:").lower() != digest:
            raise BadUserInput(f"operation {key!r}: the id is not the SHA-256 of its body")
        entries.append(ManifestEntry(digest, body, name if isinstance(name, str) else None))
    return entries


async def load_manifest(
    session: AsyncSession,
    entries: list[ManifestEntry],
    *,
    tenant_id: uuid.UUID | None = None,
    replace: bool = False,
) -> int:
    """Add the entries for a city (or every city); ``replace`` drops the others. Idempotent."""
    model: Any = PersistedQuery
    if tenant_id is not None:
        model = TenantPersistedQuery
        await use_scope(session, TenantScope.of([tenant_id]))  # the ORM wall filters by it
    wanted = {e.sha256: e for e in entries}
    existing = set(await session.scalars(select(model.sha256)))
    if replace and existing - wanted.keys():
        await session.execute(delete(model).where(model.sha256.in_(existing - wanted.keys())))
    added = 0
    for digest, entry in wanted.items():
        if digest not in existing:
            extra = {"tenant_id": tenant_id} if tenant_id is not None else {}
            session.add(model(sha256=digest, name=entry.name, query=entry.query, **extra))
            added += 1
    await session.flush()
    invalidate_cache()
    return added


async def set_allow_list_only(session: AsyncSession, tenant_id: uuid.UUID, on: bool) -> None:
    await use_scope(session, TenantScope.of([tenant_id]))
    mode = await session.scalar(select(PersistedQueryMode))
    if mode is None:
        session.add(PersistedQueryMode(tenant_id=tenant_id, allow_list_only=on))
    else:
        mode.allow_list_only = on
    await session.flush()
    invalidate_cache()


# --- the request path: cached reads ---------------------------------------------------

_cache: dict[Any, tuple[float, Any]] = {}


def invalidate_cache() -> None:
    """Forget cached lookups (this process; other pods catch up within CACHE_SECONDS)."""
    _cache.clear()


async def _cached(key: Any, load: Any) -> Any:
    hit = _cache.get(key)
    clock = time.monotonic()
    if hit is not None and hit[0] > clock:
        return hit[1]
    value = await load()
    if len(_cache) > 10_000:
        _cache.clear()
    _cache[key] = (clock + CACHE_SECONDS, value)
    return value


def _scope(tenant_id: uuid.UUID | None) -> TenantScope:
    return TenantScope.of([tenant_id]) if tenant_id is not None else NO_TENANT


@asynccontextmanager
async def _session_for(
    db: Database, tenant_id: uuid.UUID | None, held: AsyncSession | None
) -> AsyncIterator[AsyncSession]:
    """``held`` — the request's open session — when its scope fits, else a new transaction.

    A request that holds a connection must not wait for a second one: under a burst
    every request would hold one and wait forever for another (pool exhaustion).
    """
    if held is not None and current_scope(held) == _scope(tenant_id):
        yield held
        return
    async with db.transaction(_scope(tenant_id)) as session:
        yield session


async def allow_list_only(
    db: Database, tenant_id: uuid.UUID | None, held: AsyncSession | None = None
) -> bool:
    if tenant_id is None:
        return False

    async def load() -> bool:
        async with _session_for(db, tenant_id, held) as session:
            mode = await session.scalar(select(PersistedQueryMode.allow_list_only))
            return bool(mode)

    return await _cached(("mode", tenant_id), load)


async def lookup(
    db: Database, sha256: str, tenant_id: uuid.UUID | None, held: AsyncSession | None = None
) -> str | None:
    """The document of ``sha256`` allowed for every city, or for ``tenant_id``."""

    async def load() -> str | None:
        async with _session_for(db, tenant_id, held) as session:
            found = await session.scalar(
                select(PersistedQuery.query).where(PersistedQuery.sha256 == sha256)
            )
            if found is None and tenant_id is not None:
                found = await session.scalar(
                    select(TenantPersistedQuery.query).where(TenantPersistedQuery.sha256 == sha256)
                )
            return found

    return await _cached(("doc", sha256, tenant_id), load)
