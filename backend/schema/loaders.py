"""Per-request DataLoaders: one SQL statement per batch, whatever the page size."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from strawberry.dataloader import DataLoader

from backend.cases.models import CaseDeadline, CaseEvent
from backend.schema.context import RequestContext
from backend.tenants.models import OrgUnit, User

K = TypeVar("K")


def _one(ctx: RequestContext, model: Any, column: Any) -> DataLoader[Any, Any]:
    """Load ``model`` rows by a unique ``column`` (absent keys give ``None``)."""

    async def load(keys: Sequence[Any]) -> list[Any]:
        async with ctx.read() as session:
            rows = await session.scalars(select(model).where(column.in_(list(set(keys)))))
            by_key = {getattr(r, column.key): r for r in rows}
        return [by_key.get(k) for k in keys]

    return DataLoader(load_fn=load)


def _many(ctx: RequestContext, model: Any, column: Any, order: Any) -> DataLoader[Any, Any]:
    """Load lists of ``model`` rows grouped by a foreign-key ``column``."""

    async def load(keys: Sequence[Any]) -> list[list[Any]]:
        async with ctx.read() as session:
            rows = await session.scalars(
                select(model).where(column.in_(list(set(keys)))).order_by(order)
            )
            grouped: defaultdict[Any, list[Any]] = defaultdict(list)
            for r in rows:
                grouped[getattr(r, column.key)].append(r)
        return [grouped.get(k, []) for k in keys]

    return DataLoader(load_fn=load)


LOADERS: dict[str, Callable[[RequestContext], DataLoader[Any, Any]]] = {
    "unit_by_path": lambda ctx: _one(ctx, OrgUnit, OrgUnit.path),
    "user_by_id": lambda ctx: _one(ctx, User, User.id),
    "deadlines_by_case": lambda ctx: _many(
        ctx, CaseDeadline, CaseDeadline.case_id, CaseDeadline.due_at
    ),
    "events_by_case": lambda ctx: _many(ctx, CaseEvent, CaseEvent.case_id, CaseEvent.seq),
}


def loader(ctx: RequestContext, name: str) -> DataLoader[Any, Any]:
    return ctx.loader(name, LOADERS[name])


async def load(ctx: RequestContext, name: str, key: uuid.UUID | str) -> Any:
    return await loader(ctx, name).load(key)
