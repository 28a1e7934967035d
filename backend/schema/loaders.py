"""Per-request DataLoaders: one SQL statement per batch, whatever the page size.

A list resolver that knows which nested objects its page will ask for
*prefetches* them (:func:`prefetch`: one statement per loader, primed into the
loader's cache); the nested resolvers then answer from the cache without a
coroutine (:func:`now_or_later`). A 50-case page with holder unit, leader and
deadlines otherwise spawns 150 coroutines and as many DataLoader futures, which
cost more than the three statements themselves (docs/performance.md).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from backend.cases.models import CaseDeadline, CaseEvent
from backend.cases.service import visible_cases
from backend.schema.context import RequestContext
from backend.tenants.models import OrgUnit, User

K = TypeVar("K")
T = TypeVar("T")


def _one(ctx: RequestContext, model: Any, column: Any) -> DataLoader[Any, Any]:
    """Load ``model`` rows by a unique ``column`` (absent keys give ``None``)."""

    async def load(keys: Sequence[Any]) -> list[Any]:
        async with ctx.read() as session:
            rows = await session.scalars(select(model).where(column.in_(list(set(keys)))))
            by_key = {getattr(r, column.key): r for r in rows}
        return [by_key.get(k) for k in keys]

    return DataLoader(load_fn=load)


def _many(ctx: RequestContext, model: Any, column: Any, *order: Any) -> DataLoader[Any, Any]:
    """Load lists of ``model`` rows grouped by a foreign-key ``column``."""

    async def load(keys: Sequence[Any]) -> list[list[Any]]:
        async with ctx.read() as session:
            rows = await session.scalars(
                select(model).where(column.in_(list(set(keys)))).order_by(*order)
            )
            grouped: defaultdict[Any, list[Any]] = defaultdict(list)
            for r in rows:
                grouped[getattr(r, column.key)].append(r)
        return [grouped.get(k, []) for k in keys]

    return DataLoader(load_fn=load)


def _visible_cases(ctx: RequestContext) -> DataLoader[Any, Any]:
    """Cases by id that the caller may read (the read predicate, Art. 30 included); the
    others answer ``None`` like absent ones."""

    async def load(keys: Sequence[Any]) -> list[Any]:
        async with ctx.read() as session:
            rows = await visible_cases(session, ctx.principal, list(keys))
        by_id = {r.id: r for r in rows}
        return [by_id.get(k) for k in keys]

    return DataLoader(load_fn=load)


LOADERS: dict[str, Callable[[RequestContext], DataLoader[Any, Any]]] = {
    "visible_case_by_id": _visible_cases,
    "unit_by_path": lambda ctx: _one(ctx, OrgUnit, OrgUnit.path),
    "user_by_id": lambda ctx: _one(ctx, User, User.id),
    "deadlines_by_case": lambda ctx: _many(
        ctx, CaseDeadline, CaseDeadline.case_id, CaseDeadline.due_at, CaseDeadline.id
    ),
    "events_by_case": lambda ctx: _many(ctx, CaseEvent, CaseEvent.case_id, CaseEvent.seq),
}


def loader(ctx: RequestContext, name: str) -> DataLoader[Any, Any]:
    return ctx.loader(name, LOADERS[name])


async def load(ctx: RequestContext, name: str, key: uuid.UUID | str) -> Any:
    return await loader(ctx, name).load(key)


async def prefetch(ctx: RequestContext, name: str, keys: Iterable[Any]) -> None:
    """Load ``keys`` not yet cached in one batch and prime the loader's cache with them."""
    dl = loader(ctx, name)
    missing = list({k for k in keys if k is not None and dl.cache_map.get(k) is None})
    if missing:
        dl.prime_many(dict(zip(missing, await dl.load_fn(missing), strict=True)))


def now_or_later(
    ctx: RequestContext, name: str, key: Any, build: Callable[[Any], T]
) -> T | Awaitable[T]:
    """``build(value)`` at once when ``key`` is already loaded, else an awaitable of it.

    GraphQL awaits whatever a resolver returns when it is awaitable, so a sync
    resolver can answer from the cache and fall back to the batched load.
    """
    future = loader(ctx, name).cache_map.get(key)
    if (
        future is not None
        and future.done()
        and not future.cancelled()
        and future.exception() is None
    ):
        return build(future.result())

    async def later() -> T:
        return build(await load(ctx, name, key))

    return later()
