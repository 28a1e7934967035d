"""Loading the State Council's yearly holiday notice (``xinfang holidays load FILE``)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.cases.calendar import HolidayNotice
from backend.cases.models import HolidayOverride
from backend.cases.policy import forget_calendar


async def load_notice(session: AsyncSession, principal: Principal, notice: HolidayNotice) -> int:
    """Replace the year's overrides with the notice's days; returns how many were stored."""
    require(principal, "holiday", "load")
    await session.execute(delete(HolidayOverride).where(HolidayOverride.year == notice.year))
    for day, working in sorted(notice.overrides().items()):
        session.add(
            HolidayOverride(day=day, year=notice.year, is_working_day=working, source=notice.source)
        )
    await session.flush()
    forget_calendar()
    return len(notice.overrides())


async def loaded_years(session: AsyncSession) -> list[tuple[int, str, int]]:
    """(year, source, number of days) of every notice loaded."""
    rows = await session.execute(select(HolidayOverride.year, HolidayOverride.source))
    summary: dict[int, tuple[str, int]] = {}
    for year, source in rows:
        summary[year] = (source, summary.get(year, (source, 0))[1] + 1)
    return sorted((y, s, n) for y, (s, n) in summary.items())
