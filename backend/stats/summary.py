"""The daily statistics summary: rebuilt per tenant by a job, read by the province overview.

At a million cases a month of a province is still tens of thousands of cases
and steps to aggregate live; the summary (``stats_daily``, backend/stats/
models.py) has one row per tenant, local day and (holder, location) pair — both
  cut to the county level (:func:`county_path`) — with
the numerators and denominators of docs/indicators.md, so a month of a
province is a few thousand rows.

- **Refresh** (:func:`refresh_tenant`, job ``stats_refresh``): the tenant's
  summary is rebuilt from scratch — the same aggregate statements as the live
  path (:func:`backend.stats.indicators.aggregate`) grouped by day and pair,
  over every complete local day before the refresh — in one transaction
  (delete + insert), so a run is idempotent and a failed one changes nothing.
  Rebuilding everything (not only recent days) is what keeps late changes
  right: a rating given today changes the participation of the month the case
  was replied in, a cancelled step the on-time rate of its due day.
- **Read** (:func:`figures`): days up to the tenant's ``through_day`` come from
  the summary, later days (today, and any day since a missed refresh) live;
  the backlog (a point-in-time figure) is always live. A tenant never
  refreshed, or refreshed under another participation window than its current
  definition, is read entirely live. Staleness: past days are as of
  ``refreshed_at`` (reported as ``refreshedAt``).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.scope import subtree_filter
from backend.cases.models import Case, CaseDeadline
from backend.cases.visibility import unit_cases
from backend.core.clock import local_day_start, now
from backend.core.db import Database, TenantScope
from backend.core.ids import new_id
from backend.stats.definitions import STANDARD, Definition, tenant_definition, tenant_definitions
from backend.stats.indicators import Indicators, Range, aggregate, backlog_at, compute
from backend.stats.models import COUNT_COLUMNS, StatsDaily, StatsRefresh
from backend.tenants.models import Tenant


def local_day(session: AsyncSession, column: Any, tz: str) -> Any:
    """The date of a timestamp column in the zone ``tz`` (the tenant's), in SQL.

    SQLite (the embedded default) has no zone database: it applies the zone's offset of
    today, right for the zones without daylight saving that Chinese cities use.
    """
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(tz, column))
    offset = now().astimezone(ZoneInfo(tz)).utcoffset() or timedelta()
    minutes = int(offset.total_seconds() // 60)
    return func.date(column, f"{minutes:+d} minutes")  # SQLite stores naive UTC text


def county_path(session: AsyncSession, column: Any) -> Any:
    """A path cut to its first two segments: ``/city/county/town`` → ``/city/county``.

    The summary keeps holder and location at this depth, so a filter on the city
    or on one of its direct children (counties, departments) is exact on it.
    """
    find = func.strpos if session.get_bind().dialect.name == "postgresql" else func.instr
    rest = func.substr(column, 2)
    first = find(rest, "/")
    second = find(func.substr(rest, first + 1), "/")
    return sql_case(
        (first == 0, column),
        (second == 0, column),
        else_=func.substr(column, 1, first + second),
    )


def summarised_unit(unit_path: str | None) -> bool:
    """Whether a unit filter can be answered from the summary (the city or a direct child)."""
    return unit_path is None or unit_path.count("/") <= 2


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


# --- refresh ---------------------------------------------------------------------------------


async def refresh_tenant(
    session: AsyncSession, tenant_id: uuid.UUID, *, at: datetime | None = None
) -> dict[str, int]:
    """Rebuild the tenant's summary up to yesterday (local); the session's transaction."""
    at = at or now()
    definition = await tenant_definition(session, tenant_id)
    tz = await session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id))
    local_today = _local_date(at, tz)
    through = local_today - timedelta(days=1)
    first = await session.scalar(
        select(func.min(Case.received_at)).where(Case.tenant_id == tenant_id)
    )
    groups: dict[tuple[Any, ...], Indicators] = {}
    if first is not None:
        start = local_day_start(_local_date(first, tz), tz)
        end = local_day_start(local_today, tz)
        groups = await aggregate(
            session,
            None,
            start,
            end,
            lambda col: [
                local_day(session, col, tz),
                county_path(session, Case.holder_path),
                county_path(session, Case.location_path),
            ],
            at=at,
            definition=definition,
            backlog=False,
            tenant_ids=[tenant_id],
        )
    await session.execute(delete(StatsDaily).where(StatsDaily.tenant_id == tenant_id))
    rows = [
        {
            "tenant_id": tenant_id,
            "id": new_id(),
            "created_at": at,
            "day": _as_date(day),
            "holder_path": holder,
            "location_path": location,
            **{name: getattr(one, name) for name in COUNT_COLUMNS},
            "breakdown": {
                "channel": one.by_channel,
                "type": one.by_type,
                "category": one.by_category,
            },
        }
        for (day, holder, location), one in groups.items()
    ]
    for i in range(0, len(rows), 2000):
        await session.execute(StatsDaily.__table__.insert(), rows[i : i + 2000])
    state = await session.scalar(select(StatsRefresh).where(StatsRefresh.tenant_id == tenant_id))
    if state is None:
        session.add(
            StatsRefresh(
                tenant_id=tenant_id,
                refreshed_at=at,
                through_day=through,
                definition=definition.as_data(),
            )
        )
    else:
        state.refreshed_at, state.through_day = at, through
        state.definition = definition.as_data()
    await session.flush()
    return {"summaryRows": len(rows)}


def _local_date(at: datetime, tz: str) -> date:
    return at.astimezone(ZoneInfo(tz)).date()


async def refresh(db: Database, tenant_id: uuid.UUID) -> dict[str, int]:
    """One tenant in its own transaction (the job's step)."""
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        return await refresh_tenant(session, tenant_id)


# --- read ------------------------------------------------------------------------------------


def _summary_unit(unit_path: str) -> ColumnElement[bool]:
    """The summary rows of the cases held in or located in the unit's subtree."""
    return or_(
        subtree_filter(StatsDaily.holder_path, [unit_path]),
        subtree_filter(StatsDaily.location_path, [unit_path]),
    )


async def _read(
    session: AsyncSession,
    tenant_ids: list[uuid.UUID],
    first: date,
    last: date,
    unit_path: str | None,
) -> dict[uuid.UUID, Indicators]:
    """Summed summary rows per tenant for local days ``first..last``: two statements."""
    where = [
        StatsDaily.tenant_id.in_(tenant_ids),
        StatsDaily.day >= first,
        StatsDaily.day <= last,
    ]
    if unit_path:
        where.append(_summary_unit(unit_path))
    cols = [getattr(StatsDaily, name) for name in COUNT_COLUMNS]
    out: dict[uuid.UUID, Indicators] = defaultdict(Indicators)
    for tid, *sums in await session.execute(
        select(StatsDaily.tenant_id, *[func.sum(c) for c in cols])
        .where(*where)
        .group_by(StatsDaily.tenant_id)
    ):
        one = out[tid]
        for name, value in zip(COUNT_COLUMNS, sums, strict=True):
            setattr(one, name, int(value or 0))
    for tid, breakdown in await session.execute(
        select(StatsDaily.tenant_id, StatsDaily.breakdown).where(*where, StatsDaily.received > 0)
    ):
        one = out[tid]
        for bucket, name in (
            (one.by_channel, "channel"),
            (one.by_type, "type"),
            (one.by_category, "category"),
        ):
            for k, n in (breakdown or {}).get(name, {}).items():
                bucket[k] = bucket.get(k, 0) + n
    for one in out.values():
        for rating, n in (
            ("SATISFIED", one.rated_satisfied),
            ("BASICALLY_SATISFIED", one.rated_basically),
            ("DISSATISFIED", one.rated - one.rated_satisfied - one.rated_basically),
        ):
            if n:
                one.by_rating[rating] = n
    return dict(out)


async def figures(
    session: AsyncSession,
    tenant_ids: list[uuid.UUID],
    rng: Range,
    *,
    unit_path: str | None = None,
    live_only: bool = False,
) -> tuple[dict[uuid.UUID, Indicators], datetime | None]:
    """Per tenant: summary days + live days + live backlog; and the oldest refresh used.

    Every tenant's figures carry its own definition (``Indicators.standard()``
    gives the province standard).
    """
    definitions = await tenant_definitions(session, tenant_ids)
    live_only = live_only or not summarised_unit(unit_path)
    states = (
        {}
        if live_only
        else {
            s.tenant_id: s
            for s in await session.scalars(
                select(StatsRefresh).where(StatsRefresh.tenant_id.in_(tenant_ids))
            )
        }
    )
    # tenants grouped by the last summarised day (None: read live)
    by_through: dict[date | None, list[uuid.UUID]] = defaultdict(list)
    for tid in tenant_ids:
        state = states.get(tid)
        usable = (
            state is not None
            and Definition.of(state.definition).participation_window_days
            == definitions[tid].participation_window_days
            and state.through_day >= rng.first
        )
        by_through[state.through_day if usable else None].append(tid)
    out: dict[uuid.UUID, Indicators] = {tid: Indicators() for tid in tenant_ids}
    used: list[datetime] = []
    for through, ids in by_through.items():
        live_from = rng.first
        if through is not None:
            summed = await _read(session, ids, rng.first, min(rng.last, through), unit_path)
            for tid, one in summed.items():
                out[tid] += one
            used += [states[t].refreshed_at for t in ids]
            live_from = through + timedelta(days=1)
        if live_from <= rng.last:
            tail = Range(live_from, rng.last, rng.tz)
            clause = and_(Case.tenant_id.in_(ids), unit_cases(unit_path)) if unit_path else None
            live = await compute(
                session,
                clause,
                tail.start,
                tail.end,
                Case.tenant_id,
                definitions={t: definitions[t] for t in ids},
                backlog=False,
                tenant_ids=ids,
            )
            for tid, one in live.items():
                out[tid] += one
    # the backlog: always live, one statement for every tenant
    cutoff = min(rng.end, now())
    if unit_path:
        clause = and_(Case.tenant_id.in_(tenant_ids), unit_cases(unit_path))
        backlog = await backlog_at(session, clause, cutoff, [Case.tenant_id])
    else:  # whole cities: the step table alone
        d_tenant = CaseDeadline.tenant_id
        backlog = await backlog_at(session, None, cutoff, [d_tenant], tenant_ids=tenant_ids)
    for (tid,), n in backlog.items():
        out[tid].backlog = n
    for tid, one in out.items():
        one.definition = definitions[tid]
        if one.definition.participation_window_days == STANDARD.participation_window_days:
            one.replied_eligible = one.replied_eligible_std
    return out, (min(used) if used else None)
