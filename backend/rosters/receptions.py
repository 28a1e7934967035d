"""季度公开接访: public receptions announced ahead."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict
from backend.rosters import days
from backend.rosters.access import leader_over, tenant_zone, unit_in_scope
from backend.rosters.models import (
    DutyShift,
    ShiftKind,
    ShiftStatus,
)
from backend.rosters.planning import remind
from backend.rosters.shifts import checked_location
from backend.rosters.swaps import leader_conflict


async def schedule_public_reception(  # noqa: PLR0913 — one keyword per field of the mutation's input
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str,
    day: date,
    leader: str,
    title: str | None = None,
    start_time: str = "09:00",
    end_time: str = "12:00",
    location: str | None = None,
    announce_at: datetime | None = None,
) -> DutyShift:
    """季度公开接访: one per unit and quarter, announced at least 3 days before the day."""
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    if unit.level not in days.LEVELS_OF_KIND[ShiftKind.PUBLIC_RECEPTION]:
        raise BadUserInput(f"no public reception at a {unit.level} unit", field="unitPath")
    days.check_times(start_time, end_time)
    tz = await tenant_zone(session, unit.tenant_id)
    t = now()
    announce_field = "announceAt" if announce_at is not None else "day"
    announced = announce_at or t
    if announced.tzinfo is None:
        raise BadUserInput("announceAt needs a time zone offset", field="announceAt")
    if announced < t - timedelta(minutes=5):
        raise BadUserInput("announceAt cannot be in the past", field="announceAt")
    announce_day = announced.astimezone(tz).date()
    if day < announce_day + timedelta(days=days.ANNOUNCE_DAYS):
        raise BadUserInput(
            f"a public reception must be announced at least {days.ANNOUNCE_DAYS} days ahead "
            f"(announced {announce_day.isoformat()}, reception {day.isoformat()})",
            field=announce_field,
        )
    user = await leader_over(session, leader, unit.path, "leader")
    quarter = (day.month - 1) // 3
    q_first = date(day.year, quarter * 3 + 1, 1)
    q_last = days.month_bounds(day.year, quarter * 3 + 3)[1]
    taken = await session.scalar(
        select(func.count(DutyShift.id)).where(
            DutyShift.unit_id == unit.id,
            DutyShift.kind == ShiftKind.PUBLIC_RECEPTION,
            DutyShift.day >= q_first,
            DutyShift.day <= q_last,
        )
    )
    if taken:
        raise Conflict(f"{unit.path} already has a public reception this quarter", field="day")
    starts, ends = days.local_window(day, start_time, end_time, tz)
    shift = DutyShift(
        tenant_id=unit.tenant_id,
        rule_id=None,
        period=days.period_of(day.year, day.month),
        day=day,
        slot=0,
        unit_id=unit.id,
        unit_path=unit.path,
        kind=ShiftKind.PUBLIC_RECEPTION,
        leader_id=user.id,
        starts_at=starts,
        ends_at=ends,
        status=ShiftStatus.CONFIRMED,
        title=v.text(
            title or f"{unit.name}{days.TITLES[ShiftKind.PUBLIC_RECEPTION]}", "title", max_len=200
        ),
        location=checked_location(location),
        announced_at=announced,
        updated_at=t,
    )
    await leader_conflict(session, user, shift, set(), "leader")
    session.add(shift)
    await session.flush()
    await remind(session, shift, tz)
    return shift
