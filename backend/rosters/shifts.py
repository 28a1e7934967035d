"""Reading shifts, confirming them, checking in and out."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import may, require
from backend.authz.principal import Principal
from backend.authz.scope import subtree_filter
from backend.cases.models import Case
from backend.cases.visibility import read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import Forbidden, InvalidTransition, NotFound
from backend.core.ids import parse_id
from backend.rosters.access import reaches, shift_predicate, tenant_zone
from backend.rosters.models import (
    OPEN_STATUSES,
    PUBLISHED_KINDS,
    SWAPPABLE,
    DutyShift,
    ShiftKind,
    ShiftReception,
    ShiftStatus,
)
from backend.rosters.planning import remind

MAX_RANGE_DAYS = 366


CHECK_IN_EARLY = timedelta(hours=1)


def _date_range(from_: date, to: date) -> None:
    v.date_range(from_, to, max_days=MAX_RANGE_DAYS)  # supported dates, in order, a year at most


async def duty_shifts(
    session: AsyncSession,
    principal: Principal,
    *,
    from_: date,
    to: date,
    unit_path: str | None = None,
) -> list[DutyShift]:
    require(principal, "shift", "read")
    _date_range(from_, to)
    stmt = select(DutyShift).where(
        DutyShift.day >= from_, DutyShift.day <= to, shift_predicate(principal)
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(DutyShift.unit_path, [v.path(unit_path, "unitPath")]))
    stmt = stmt.order_by(DutyShift.day, DutyShift.starts_at, DutyShift.unit_path, DutyShift.slot)
    return list(await session.scalars(stmt))


async def reception_announcements(
    session: AsyncSession,
    principal: Principal,
    *,
    from_: date,
    to: date,
    unit_path: str | None = None,
) -> list[DutyShift]:
    """The public feed: reception days of the whole city (announced public receptions only),
    with the joint receptions, the lawyer and the counsellor on duty (seeds 001, 003);
    never an appointment (预约接访: a private meeting with one petitioner).

    Reception schedules are published to citizens, so any official of the tenant may read
    the feed whatever the unit of its grant.
    """
    require(principal, "shift", "read")
    _date_range(from_, to)
    stmt = select(DutyShift).where(
        DutyShift.day >= from_,
        DutyShift.day <= to,
        DutyShift.kind.in_(list(PUBLISHED_KINDS)),
        DutyShift.status.in_([*OPEN_STATUSES, ShiftStatus.COMPLETED]),
        or_(DutyShift.kind != ShiftKind.PUBLIC_RECEPTION, DutyShift.announced_at <= now()),
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(DutyShift.unit_path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(DutyShift.starts_at, DutyShift.unit_path)))


async def find_shift(
    session: AsyncSession, principal: Principal, shift_id: str, *, field: str = "shiftId"
) -> DutyShift:
    sid = parse_id(shift_id, "DutyShift", field)
    shift = None
    # a role that reads no shift gets the NOT_FOUND of an unknown id, as dutyShift(id)
    # promises and node(id) answers (outside probe of issue 21)
    if sid is not None and may(principal, "shift", "read"):
        shift = await session.scalar(
            select(DutyShift).where(DutyShift.id == sid, shift_predicate(principal))
        )
    if shift is None:
        raise NotFound(f"shift {shift_id} not found", field=field)
    return shift


async def visible_shifts(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[DutyShift]:
    """Those of ``ids`` :func:`find_shift` would answer, in one statement."""
    if not ids or not may(principal, "shift", "read"):
        return []
    query = select(DutyShift).where(DutyShift.id.in_(list(set(ids))), shift_predicate(principal))
    return list(await session.scalars(query))


async def cases_received(
    session: AsyncSession, principal: Principal, shift_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Case]]:
    """Visit cases received during each shift, as far as the caller may see cases."""
    if not shift_ids or not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        return {}
    rows = await session.execute(
        select(ShiftReception.shift_id, Case)
        .join(
            Case, (Case.tenant_id == ShiftReception.tenant_id) & (Case.id == ShiftReception.case_id)
        )
        .where(ShiftReception.shift_id.in_(shift_ids), read_predicate(principal))
        .order_by(Case.received_at, Case.id)
    )
    out: dict[uuid.UUID, list[Case]] = defaultdict(list)
    for shift_id, case in rows:
        out[shift_id].append(case)
    return out


async def cases_by_ids(
    session: AsyncSession, principal: Principal, case_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Case]:
    """Cases named by roster rows (appointments, sweep findings), as far as the caller may
    read them (read predicate: scope and Art. 30)."""
    if not case_ids or not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        return {}
    rows = await session.scalars(
        select(Case).where(Case.id.in_(set(case_ids)), read_predicate(principal))
    )
    return {c.id: c for c in rows}


async def shift_to_act_on(
    session: AsyncSession, principal: Principal, shift_id: str, *, field: str = "shiftId"
) -> DutyShift:
    """:func:`find_shift` for a mutation whose right depends on the shift (its leader, the
    roster office): a role that reads no shift is FORBIDDEN first, as every mutation
    checks the role before the object (docs/lifecycle.md); :func:`find_shift` alone
    answers NOT_FOUND, as the ``dutyShift(id)`` lookup must."""
    require(principal, "shift", "read")
    return await find_shift(session, principal, shift_id, field=field)


def manages_shift(principal: Principal, shift: DutyShift) -> bool:
    return reaches(principal, "roster", "manage", shift.unit_path)


async def confirm_shift(session: AsyncSession, principal: Principal, *, shift_id: str) -> DutyShift:
    """Fix a planned shift (by the roster office or the leader): regeneration keeps it."""
    shift = await shift_to_act_on(session, principal, shift_id)
    if not (manages_shift(principal, shift) or shift.leader_id == principal.account_id):
        raise Forbidden("only the roster office or the duty leader confirms a shift")
    if shift.status != ShiftStatus.PLANNED:
        raise InvalidTransition(f"the shift is {shift.status}", currentStatus=shift.status)
    shift.status, shift.updated_at = ShiftStatus.CONFIRMED, now()
    await session.flush()
    await remind(session, shift, await tenant_zone(session, shift.tenant_id))
    return shift


def checked_location(value: str | None) -> str | None:
    if value is None:
        return None
    return v.text(value, "location", max_len=200, required=False) or None


async def check_in_shift(
    session: AsyncSession, principal: Principal, *, shift_id: str, location: str | None = None
) -> DutyShift:
    """The duty leader checks in, from an hour before the start until the end."""
    require(principal, "shift", "check_in")
    shift = await find_shift(session, principal, shift_id)
    if shift.leader_id != principal.account_id:
        raise Forbidden("only the duty leader checks in to a shift")
    if shift.status not in SWAPPABLE:
        raise InvalidTransition(f"the shift is {shift.status}", currentStatus=shift.status)
    t = now()
    if not shift.starts_at - CHECK_IN_EARLY <= t < shift.ends_at:
        raise InvalidTransition(
            "check-in is open from an hour before the shift until its end",
            currentStatus=shift.status,
        )
    shift.status, shift.checked_in_at = ShiftStatus.CHECKED_IN, t
    shift.check_in_location, shift.updated_at = checked_location(location), t
    await session.flush()
    return shift


async def check_out_shift(
    session: AsyncSession, principal: Principal, *, shift_id: str, location: str | None = None
) -> DutyShift:
    require(principal, "shift", "check_in")
    shift = await find_shift(session, principal, shift_id)
    if shift.leader_id != principal.account_id:
        raise Forbidden("only the duty leader checks out of a shift")
    if shift.status != ShiftStatus.CHECKED_IN:
        raise InvalidTransition("check in before checking out", currentStatus=shift.status)
    t = now()
    shift.status, shift.checked_out_at = ShiftStatus.COMPLETED, t
    shift.check_out_location, shift.updated_at = checked_location(location), t
    await session.flush()
    return shift
