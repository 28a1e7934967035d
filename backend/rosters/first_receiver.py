"""首问负责: a visit registered during a shift names its duty leader first receiver."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases import need_to_know
from backend.cases.models import Case, Channel
from backend.cases.service import case_registered
from backend.rosters.models import (
    OPEN_STATUSES,
    RECEPTION_KINDS,
    DutyShift,
    ShiftKind,
    ShiftReception,
    ShiftStatus,
)


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


async def duty_shift_at(session: AsyncSession, holder_path: str, at: datetime) -> DutyShift | None:
    """The reception shift on duty at ``at`` at the holder unit or its nearest ancestor:
    checked-in shifts first, then the deepest unit, then a down-visit before the unit's
    own duty (the county leader came to the township to receive that day)."""
    shifts = await duty_shifts_at(session, holder_path, at)
    return shifts[0] if shifts else None


async def duty_shifts_at(session: AsyncSession, holder_path: str, at: datetime) -> list[DutyShift]:
    """Every reception shift on duty at ``at`` at the holder unit or an ancestor, in the
    order :func:`duty_shift_at` prefers them."""
    rows = list(
        await session.scalars(
            select(DutyShift).where(
                DutyShift.unit_path.in_(_ancestors(holder_path)),
                DutyShift.kind.in_(list(RECEPTION_KINDS)),
                DutyShift.status.in_(list(OPEN_STATUSES)),
                DutyShift.starts_at <= at,
                DutyShift.ends_at > at,
            )
        )
    )
    rows.sort(
        key=lambda s: (
            s.status != ShiftStatus.CHECKED_IN,
            -len(s.unit_path),
            s.kind != ShiftKind.DOWN_VISIT,
            s.starts_at,
            s.id,
        )
    )
    return rows


@case_registered.register
async def link_first_receiver(session: AsyncSession, case: Case) -> None:
    """A visit registered during a reception shift at the registering unit (or the nearest
    ancestor holding one) gets that shift's duty leader as first receiver; the shift lists
    the case. Letters, calls and online cases keep the registrar.

    Art. 30 (need_to_know.py): a duty leader who may not know an accusation (the accused
    person, or holding a role inside an accused unit) is skipped for the next shift on
    duty; with none left the case keeps its registrar and no shift lists it."""
    if case.channel != Channel.VISIT:
        return
    shifts = await duty_shifts_at(session, case.holder_path, case.received_at)
    if shifts:
        allowed = set(
            await need_to_know.may_know(
                session, case.tenant_id, case, [s.leader_id for s in shifts]
            )
        )
        shifts = [s for s in shifts if s.leader_id in allowed]
    if not shifts:
        return
    shift = shifts[0]
    case.first_receiver_id = shift.leader_id
    session.add(ShiftReception(tenant_id=case.tenant_id, shift_id=shift.id, case_id=case.id))
    await session.flush()
