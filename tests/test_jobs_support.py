"""Helpers of the job and report tests (no tests here): a frozen clock and service shortcuts.

Cases are registered and moved through the real services under a frozen
clock, so due dates, colours and "on time" are exact and hand-computable.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from backend.cases import service
from backend.cases.models import Case, CaseDeadline, CaseEvent, CaseType, Channel, SkipLevel
from backend.core import clock
from backend.core.db import Database, TenantScope
from backend.notifications.models import Notification
from backend.tenants.models import User
from backend.tenants.principals import load_principal
from tests.helpers import City, id_number


async def who(db: Database, city: City, short: str):
    return await load_principal(db, f"{city.slug}_{short}")


async def tenant_id(db: Database, city: City) -> uuid.UUID:
    return (await who(db, city, "admin")).tenant_id


async def register(
    db: Database,
    city: City,
    *,
    by: str = "officer",
    location: str = "c1/t1",
    channel: Channel = Channel.LETTER,
    type: CaseType = CaseType.CLAIM,
    category: str = "land",
    petitioner: int | None = None,
    skip_level: SkipLevel = SkipLevel.NONE,
) -> uuid.UUID:
    """Register a case received "now" (the frozen clock); returns its id."""
    p = await who(db, city, by)
    seq = petitioner if petitioner is not None else uuid.uuid4().int % 997
    async with db.transaction(p.scope()) as session:
        case = await service.register_case(
            session,
            p,
            service.RegisterCaseInput(
                client_key=uuid.uuid4().hex,
                channel=channel,
                type=type,
                category=category,
                subject="土地补偿款未发放",  # one matter: the same petitioner repeats it (repeats.py)
                content="content",
                petitioner=service.PetitionerInput("张三", "13800001234", id_number(seq)),
                location_path=city.path(location),
                received_at=clock.now(),
                skip_level=skip_level,
            ),
        )
        return case.id


async def act(db: Database, city: City, by: str, case_id: uuid.UUID, fn: Any, **kw: Any) -> Case:
    """Run a lifecycle service function as ``by`` on the case's current version."""
    p = await who(db, city, by)
    async with db.transaction(p.scope()) as session:
        case = await service.find_case(session, p, str(case_id))
        return await fn(session, p, service.CaseRef(str(case_id), case.version), **kw)


async def route(db: Database, city: City, case_id: uuid.UUID, to: str, by: str = "officer"):
    return await act(
        db, city, by, case_id, service.route_case, to_unit_path=city.path(to), mode="TRANSFER"
    )


async def accept(db: Database, city: City, case_id: uuid.UUID, by: str):
    return await act(db, city, by, case_id, service.accept_case)


async def load_case(db: Database, tid: uuid.UUID, case_id: uuid.UUID) -> Case:
    async with db.transaction(TenantScope.of([tid])) as session:
        return await session.scalar(select(Case).where(Case.id == case_id))


async def open_steps(db: Database, tid: uuid.UUID, case_id: uuid.UUID) -> list[CaseDeadline]:
    async with db.transaction(TenantScope.of([tid])) as session:
        return list(
            await session.scalars(
                select(CaseDeadline).where(
                    CaseDeadline.case_id == case_id, CaseDeadline.status == "OPEN"
                )
            )
        )


async def case_events(db: Database, tid: uuid.UUID, case_id: uuid.UUID) -> list[CaseEvent]:
    async with db.transaction(TenantScope.of([tid])) as session:
        return list(
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)
            )
        )


async def event_count(db: Database, tid: uuid.UUID) -> int:
    async with db.transaction(TenantScope.of([tid])) as session:
        return int(await session.scalar(select(func.count()).select_from(CaseEvent)))


async def sent(db: Database, tid: uuid.UUID, kind: str) -> dict[str, list[Notification]]:
    """The tenant's notifications of ``kind`` by recipient username."""
    async with db.transaction(TenantScope.of([tid])) as session:
        rows = await session.execute(
            select(User.username, Notification)
            .join(User, User.id == Notification.recipient_id)
            .where(Notification.kind == kind)
            .order_by(Notification.created_at)
        )
        out: dict[str, list[Notification]] = {}
        for username, notification in rows:
            out.setdefault(username, []).append(notification)
        return out
