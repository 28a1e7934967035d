"""Tenant deadline policy and the national working-day calendar, looked up in one place."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import HolidayOverride, TenantPolicy
from backend.cases.rules import DeadlinePolicy, Step
from backend.tenants.models import Tenant

_CALENDAR_TTL = 60.0
_calendar_cache: tuple[float, WorkingDayCalendar] | None = None


async def load_calendar(session: AsyncSession, *, fresh: bool = False) -> WorkingDayCalendar:
    """The calendar with the loaded State Council notices (cached for a minute per process)."""
    global _calendar_cache
    if not fresh and _calendar_cache and time.monotonic() - _calendar_cache[0] < _CALENDAR_TTL:
        return _calendar_cache[1]
    rows = (
        await session.execute(select(HolidayOverride.day, HolidayOverride.is_working_day))
    ).all()
    overrides: dict[date, bool] = {day: working for day, working in rows}
    years: defaultdict[int, int] = defaultdict(int)
    for day in overrides:
        years[day.year] += 1
    calendar = WorkingDayCalendar(overrides=overrides, override_years=set(years))
    _calendar_cache = (time.monotonic(), calendar)
    return calendar


def forget_calendar() -> None:
    global _calendar_cache
    _calendar_cache = None


async def load_policy(session: AsyncSession, tenant_id: uuid.UUID) -> DeadlinePolicy:
    row = await session.scalar(select(TenantPolicy).where(TenantPolicy.tenant_id == tenant_id))
    tenant = await session.get(Tenant, tenant_id)
    data = dict(row.data) if row else {}
    limits = {Step(k): int(v) for k, v in (data.get("limits") or {}).items()}
    return DeadlinePolicy(
        limits=limits,
        counting=data.get("counting", "calendar"),
        red_days=int(data.get("redDays", 3)),
        yellow_days=int(data.get("yellowDays", 10)),
        timezone=tenant.timezone if tenant else "Asia/Shanghai",
    )
