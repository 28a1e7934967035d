"""Leave, conflicts and shift swaps (with approval)."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.scope import subtree_filter
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import parse_id
from backend.rosters.access import leader_over, leader_unit_paths, reaches, tenant_zone
from backend.rosters.models import (
    OPEN_STATUSES,
    SWAPPABLE,
    DutyShift,
    LeaderLeave,
    ShiftKind,
    ShiftStatus,
    ShiftSwap,
    SwapStatus,
)
from backend.rosters.planning import cancel_reminder, remind
from backend.rosters.shifts import MAX_RANGE_DAYS, find_shift, manages_shift, shift_to_act_on
from backend.tenants.models import User


async def record_leave(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    first_day: date,
    last_day: date,
    reason: str | None = None,
) -> LeaderLeave:
    """Leave of a leader (the roster office over one of its units, or the leader itself)."""
    user = await session.scalar(
        select(User).where(User.username == v.username(username, "username"))
    )
    paths = (await leader_unit_paths(session, [user.id])).get(user.id, []) if user else []
    own = user is not None and user.id == principal.account_id and may(principal, "shift", "swap")
    if not paths or not (own or any(reaches(principal, "roster", "manage", p) for p in paths)):
        # unknown, not a leader, or out of the caller's reach: one answer, nothing to enumerate
        raise BadUserInput(f"unknown leader {username}", field="username")
    v.date_range(first_day, last_day, max_days=MAX_RANGE_DAYS)
    leave = LeaderLeave(
        tenant_id=user.tenant_id,
        user_id=user.id,
        first_day=first_day,
        last_day=last_day,
        reason=v.text(reason or "", "reason", max_len=2000, required=False) or None,
        recorded_by_id=principal.account_id,
    )
    session.add(leave)
    await session.flush()
    return leave


async def leader_conflict(
    session: AsyncSession,
    leader: User,
    shift: DutyShift,
    ignore: set[uuid.UUID],
    field: str,
) -> None:
    """CONFLICT when ``leader`` is on leave that day or on another shift at that time."""
    on_leave = await session.scalar(
        select(func.count(LeaderLeave.id)).where(
            LeaderLeave.user_id == leader.id,
            LeaderLeave.first_day <= shift.day,
            LeaderLeave.last_day >= shift.day,
        )
    )
    if on_leave:
        raise Conflict(f"{leader.username} is on leave on {shift.day.isoformat()}", field=field)
    clash = await session.scalar(
        select(DutyShift.id)
        .where(
            DutyShift.leader_id == leader.id,
            DutyShift.starts_at < shift.ends_at,
            DutyShift.ends_at > shift.starts_at,
            DutyShift.status.in_([*OPEN_STATUSES, ShiftStatus.COMPLETED]),
            DutyShift.id.not_in(list(ignore) or [uuid.UUID(int=0)]),
        )
        .limit(1)
    )
    if clash is not None:
        # no shift id: the clashing shift may be one the caller may not see (an appointment
        # for an accusation it is barred from, Art. 30), so the answer names only the time
        raise Conflict(f"{leader.username} is not available at that time", field=field)


def _swappable(shift: DutyShift, field: str) -> None:
    if shift.leader_id is None or shift.kind == ShiftKind.APPOINTMENT:
        # a named person's shift has no leader to hand over; an appointment (预约接访) was
        # booked with a leader allowed to know its case (Art. 30): book another instead
        raise BadUserInput(f"a {shift.kind} shift is not swapped", field=field)
    if shift.status not in SWAPPABLE or shift.starts_at <= now():
        raise InvalidTransition(
            "only a shift that has not started can be swapped",
            currentStatus=shift.status,
            field=field,
        )


async def swap_shift(
    session: AsyncSession,
    principal: Principal,
    *,
    shift_id: str,
    to_username: str | None = None,
    with_shift_id: str | None = None,
    reason: str | None = None,
) -> ShiftSwap:
    """Ask to hand a shift to another leader (``toUsername``) or to exchange it with another
    leader's shift (``withShiftId``); a leader over the unit approves."""
    shift = await shift_to_act_on(session, principal, shift_id)
    own = shift.leader_id == principal.account_id and may(principal, "shift", "swap")
    if not own and not manages_shift(principal, shift):
        raise Forbidden("only the duty leader or the roster office asks for a swap")
    if (to_username is None) == (with_shift_id is None):
        raise BadUserInput("name either toUsername or withShiftId", field="toUsername")
    _swappable(shift, "shiftId")
    pending = await session.scalar(
        select(func.count(ShiftSwap.id)).where(
            or_(ShiftSwap.shift_id == shift.id, ShiftSwap.other_shift_id == shift.id),
            ShiftSwap.status == SwapStatus.REQUESTED,
        )
    )
    if pending:
        raise Conflict("a swap of this shift is already waiting for approval", field="shiftId")
    current = await session.get(User, (shift.tenant_id, shift.leader_id))
    other: DutyShift | None = None
    if to_username is not None:
        target = await leader_over(session, to_username, shift.unit_path, "toUsername")
        if target.id == shift.leader_id:
            raise BadUserInput("the shift is already theirs", field="toUsername")
        await leader_conflict(session, target, shift, {shift.id}, "toUsername")
    else:
        # the role was checked with the first shift
        other = await find_shift(session, principal, str(with_shift_id), field="withShiftId")
        _swappable(other, "withShiftId")
        if other.id == shift.id or other.leader_id == shift.leader_id:
            raise BadUserInput("exchange with another leader's shift", field="withShiftId")
        target = await session.get(User, (other.tenant_id, other.leader_id))
        await leader_over(session, target.username, shift.unit_path, "withShiftId")
        await leader_over(session, current.username, other.unit_path, "withShiftId")
        await _check_exchange(session, shift, other, current, target)
    swap = ShiftSwap(
        tenant_id=shift.tenant_id,
        shift_id=shift.id,
        other_shift_id=other.id if other else None,
        unit_path=shift.unit_path,
        from_user_id=shift.leader_id,
        to_user_id=target.id,
        status=SwapStatus.REQUESTED,
        reason=v.text(reason or "", "reason", max_len=2000, required=False) or None,
        requested_by_id=principal.account_id,
    )
    session.add(swap)
    await session.flush()
    return swap


async def _check_exchange(
    session: AsyncSession, shift: DutyShift, other: DutyShift, a: User, b: User
) -> None:
    ignore = {shift.id, other.id}
    await leader_conflict(session, b, shift, ignore, "withShiftId")
    await leader_conflict(session, a, other, ignore, "withShiftId")


async def approve_swap(
    session: AsyncSession,
    principal: Principal,
    *,
    swap_id: str,
    approve: bool = True,
    comment: str | None = None,
) -> ShiftSwap:
    """A leader over the shift's unit — not the requester, not a party — decides; the
    conflict checks run again, since the rosters may have changed since the request."""
    require(principal, "shift", "approve_swap")
    sid = parse_id(swap_id, "ShiftSwap", "swapId")
    swap = await session.scalar(select(ShiftSwap).where(ShiftSwap.id == sid)) if sid else None
    if swap is None or not (
        reaches(principal, "shift", "read", swap.unit_path)
        or principal.account_id in {swap.from_user_id, swap.to_user_id}
    ):
        raise NotFound(f"swap {swap_id} not found", field="swapId")
    if not reaches(principal, "shift", "approve_swap", swap.unit_path):
        raise Forbidden("only a leader over the unit approves a swap")
    if principal.account_id in {swap.requested_by_id, swap.from_user_id, swap.to_user_id}:
        raise Forbidden("a party to the swap cannot approve it")
    if swap.status != SwapStatus.REQUESTED:
        raise InvalidTransition(f"the swap is {swap.status}", currentStatus=swap.status)
    swap.decided_by_id, swap.decided_at = principal.account_id, now()
    swap.comment = v.text(comment or "", "comment", max_len=2000, required=False) or None
    if not approve:
        swap.status = SwapStatus.REJECTED
        await session.flush()
        return swap
    shift = await session.get(DutyShift, (swap.tenant_id, swap.shift_id))
    assert shift is not None
    _swappable(shift, "swapId")
    giver = await session.get(User, (swap.tenant_id, swap.from_user_id))
    taker = await session.get(User, (swap.tenant_id, swap.to_user_id))
    if shift.leader_id != swap.from_user_id:
        raise Conflict("the shift changed hands since the request", field="swapId")
    tz = await tenant_zone(session, shift.tenant_id)
    if swap.other_shift_id is None:
        await leader_conflict(session, taker, shift, {shift.id}, "swapId")
        changes = [(shift, taker.id)]
    else:
        other = await session.get(DutyShift, (swap.tenant_id, swap.other_shift_id))
        assert other is not None
        _swappable(other, "swapId")
        if other.leader_id != swap.to_user_id:
            raise Conflict("the other shift changed hands since the request", field="swapId")
        try:
            await _check_exchange(session, shift, other, giver, taker)
        except Conflict as exc:
            raise Conflict(exc.message, field="swapId") from exc
        changes = [(shift, taker.id), (other, giver.id)]
    for s, new_leader in changes:
        await cancel_reminder(session, s, s.leader_id)
        s.leader_id, s.status, s.updated_at = new_leader, ShiftStatus.SWAPPED, now()
    swap.status = SwapStatus.APPROVED
    await session.flush()
    for s, _ in changes:
        await remind(session, s, tz)
    return swap


async def shift_swaps(
    session: AsyncSession,
    principal: Principal,
    *,
    status: SwapStatus | None = None,
    unit_path: str | None = None,
) -> list[ShiftSwap]:
    """Swaps in the caller's scope (or its own), newest first."""
    require(principal, "shift", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "shift", "read")]
    stmt = select(ShiftSwap).where(
        or_(
            subtree_filter(ShiftSwap.unit_path, paths),
            ShiftSwap.from_user_id == principal.account_id,
            ShiftSwap.to_user_id == principal.account_id,
        )
    )
    if status is not None:
        stmt = stmt.where(ShiftSwap.status == SwapStatus(status))
    if unit_path:
        stmt = stmt.where(subtree_filter(ShiftSwap.unit_path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(ShiftSwap.created_at.desc()).limit(200)))
