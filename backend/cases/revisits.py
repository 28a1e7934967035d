"""三不限"回头看" (seed 004): a periodic re-visit of the closed cases the petitioner was
dissatisfied with.

Chuanhui district (Zhoukou) went back over its closed cases "不限于原调查结论、不限于原处理
意见、不限于原落实情况" and re-handled the dissatisfied ones. Here: each month a job lists,
per city, the cases closed in the month before whose petitioner rated the answer
``DISSATISFIED`` (the 满意度评价 is the rating; the evaluation panels record verdicts,
not satisfaction); officials in scope list them and record each re-visit — when, by
whom, what it found — with an event on the case. A closed case is reopened only by a new
case (DOMAIN.md): "still dissatisfied" is re-handled by registering one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import practices, service
from backend.cases.models import Case, CaseStatus, Satisfaction
from backend.cases.practices import CaseRevisit, RevisitOutcome
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, InvalidTransition
from backend.core.ids import new_id


def month_key(first: date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


def _month(period: str) -> date:
    try:
        year, month = (int(p) for p in period.split("-"))
        return date(year, month, 1)
    except ValueError as exc:
        raise BadUserInput("period must be YYYY-MM", field="period") from exc


def previous_month(today: date) -> date:
    """The first day of the month before ``today``'s: the period a run lists."""
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


async def build_list(
    session: AsyncSession, tenant_id: uuid.UUID, first: date, timezone: str
) -> int:
    """Put the dissatisfied cases closed in the month starting ``first`` (tenant-local) on
    that period's list; returns how many were added. Safe to run twice (arq delivers at
    least once): a case already listed for the period is left as it is (``ON CONFLICT DO
    NOTHING`` on ``(tenant, case, period)``), its re-visit included. Plain VALUES, not
    ``INSERT … SELECT`` (Citus with row-level security, PITFALLS)."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end_first = (first + timedelta(days=32)).replace(day=1)
    end = datetime.combine(end_first, time.min, tzinfo=tz).astimezone(UTC)
    ids = list(
        await session.scalars(
            select(Case.id).where(
                Case.tenant_id == tenant_id,
                Case.status == CaseStatus.CLOSED.value,
                Case.rating == Satisfaction.DISSATISFIED.value,
                Case.closed_at >= start,
                Case.closed_at < end,
            )
        )
    )
    if not ids:
        return 0
    period, at = month_key(first), now()
    rows = [
        {"tenant_id": tenant_id, "id": new_id(), "case_id": i, "period": period, "created_at": at}
        for i in ids
    ]
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(CaseRevisit)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["tenant_id", "case_id", "period"])
    )
    return max(int(result.rowcount or 0), 0)


async def revisit_list(
    session: AsyncSession,
    principal: Principal,
    *,
    period: str | None = None,
    pending_only: bool = True,
    unit_path: str | None = None,
    first: int = 50,
) -> list[tuple[CaseRevisit, Case]]:
    """The re-visit list the caller may read: filtered in SQL by the case read predicate
    (tenant, scope, Art. 30), oldest period first."""
    where = [CaseRevisit.outcome.is_(None)] if pending_only else []
    if period is not None:
        where.append(CaseRevisit.period == month_key(_month(period)))
    return await practices.with_visible_cases(
        session,
        principal,
        CaseRevisit,
        *where,
        unit_path=unit_path,
        first=first,
        order_by=(CaseRevisit.period, Case.number),
    )


async def record_revisit(
    session: AsyncSession,
    principal: Principal,
    ref: service.CaseRef,
    *,
    visited_on: date,
    outcome: RevisitOutcome,
    note: str,
) -> Case:
    """The re-visit of a listed case (its earliest pending period): when, by whom (the
    caller), what it found; an event on the case. Petition officers and leaders over
    the holder (``case:revisit``)."""
    change = await service._begin(session, principal, ref, "record_revisit")
    case = change.case
    row = await session.scalar(
        select(CaseRevisit)
        .where(CaseRevisit.case_id == case.id, CaseRevisit.outcome.is_(None))
        .order_by(CaseRevisit.period)
        .limit(1)
    )
    if row is None:
        raise InvalidTransition("the case is on no pending 回头看 list", currentStatus=case.status)
    today = change.clocks.local_date(now())
    if visited_on > today or visited_on < _month(row.period):
        raise BadUserInput(
            f"visitedOn must lie between {row.period}-01 and today", field="visitedOn"
        )
    row.note = v.text(note, "note", max_len=5000)
    row.visited_on, row.visited_by = visited_on, principal.username
    row.outcome = RevisitOutcome(outcome).value
    data = {"period": row.period, "visitedOn": visited_on.isoformat(), "outcome": row.outcome}
    return await service._finish(session, principal, change, reason=row.note, data=data)
