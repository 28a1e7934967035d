"""Receptions scheduled one by one: 季度公开接访 (announced ahead) and 预约接访 (an
appointment with one case's petitioner, seed 003)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import need_to_know
from backend.cases.models import Case
from backend.cases.visibility import read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, NotFound
from backend.core.ids import parse_id
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
from backend.tenants.models import OrgUnit, User


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
    return await _book(
        session,
        unit,
        user,
        ShiftKind.PUBLIC_RECEPTION,
        days.local_window(day, start_time, end_time, tz),
        tz,
        day=day,
        title=v.text(
            title or f"{unit.name}{days.TITLES[ShiftKind.PUBLIC_RECEPTION]}", "title", max_len=200
        ),
        location=checked_location(location),
        announced_at=announced,
    )


async def _book(
    session: AsyncSession,
    unit: OrgUnit,
    user: User,
    kind: ShiftKind,
    window: tuple[datetime, datetime],
    tz: ZoneInfo,
    *,
    day: date,
    slot: int = 0,
    **fields: Any,
) -> DutyShift:
    """A confirmed shift scheduled by hand (no rule): checked against the leader's leave
    and other shifts (CONFLICT on ``leader``), reminded the day before."""
    shift = DutyShift(
        tenant_id=unit.tenant_id,
        rule_id=None,
        period=days.period_of(day.year, day.month),
        day=day,
        slot=slot,
        unit_id=unit.id,
        unit_path=unit.path,
        kind=kind,
        leader_id=user.id,
        starts_at=window[0],
        ends_at=window[1],
        status=ShiftStatus.CONFIRMED,
        updated_at=now(),
        **fields,
    )
    await leader_conflict(session, user, shift, set(), "leader")
    session.add(shift)
    await session.flush()
    await remind(session, shift, tz)
    return shift


async def schedule_appointment_reception(  # noqa: PLR0913 — one keyword per input field
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: str,
    unit_path: str,
    leader: str,
    day: date,
    start_time: str = "09:00",
    end_time: str = "10:00",
    location: str | None = None,
) -> DutyShift:
    """预约接访/约访 (seed 003: 针对具体信访问题实行预约接访 … 由信访部门对疑难信访问题进行筛选，
    根据信访类别分送市主管领导): the roster office books a leader over ``unit_path`` to
    receive the petitioner of one case it may read, on a day not yet past.

    Art. 30: a leader barred from the case (the accused, or holding a role inside an
    accused unit) is refused; the shift names the case but its title and reminder carry
    nothing of it, and readers barred from the case do not see the shift at all
    (``access.shift_predicate``)."""
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    if unit.level not in days.LEVELS_OF_KIND[ShiftKind.APPOINTMENT]:
        raise BadUserInput(f"no appointment reception at a {unit.level} unit", field="unitPath")
    cid = parse_id(case_id, "Case", "caseId")
    case = (
        await session.scalar(select(Case).where(Case.id == cid, read_predicate(principal)))
        if cid
        else None
    )
    if case is None:
        raise NotFound(f"case {case_id} not found", field="caseId")
    days.check_times(start_time, end_time)
    tz = await tenant_zone(session, unit.tenant_id)
    if day < now().astimezone(tz).date():
        raise BadUserInput("the appointment day is past", field="day")
    user = await leader_over(session, leader, unit.path, "leader")
    if not await need_to_know.may_know(session, unit.tenant_id, case, [user.id]):
        raise BadUserInput(f"{leader} may not receive this case (Art. 30)", field="leader")
    taken = await session.scalar(
        select(func.count(DutyShift.id)).where(
            DutyShift.kind == ShiftKind.APPOINTMENT,
            DutyShift.day == day,
            DutyShift.unit_id == unit.id,
        )
    )
    return await _book(
        session,
        unit,
        user,
        ShiftKind.APPOINTMENT,
        days.local_window(day, start_time, end_time, tz),
        tz,
        day=day,
        slot=int(taken or 0),
        case_id=case.id,
        title=f"{unit.name}{days.TITLES[ShiftKind.APPOINTMENT]}",
        location=checked_location(location),
    )
