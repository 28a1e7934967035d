"""Monthly analysis reports: generated on the first working day of the month, for the last month.

The job runs hourly and at start. A tenant is due when its local date is on
or after the first working day of the current month (the national calendar
with the loaded State Council notices) and the city report of last month is
not stored yet — so a worker that was down that day catches up, and a re-run
changes nothing: reports are inserted with ``ON CONFLICT DO NOTHING`` on
``(tenant, period, unit_path)`` and the announcement's dedupe key is per
recipient and month. One transaction per tenant: every unit's report and the
announcement commit together or not at all.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.roles import Role
from backend.cases.policy import load_calendar, load_policy
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.ids import new_id
from backend.jobs.runs import RunRecord, fan_out
from backend.stats.models import MonthlyReport
from backend.stats.report import (
    Period,
    category_names,
    compute_report,
    report_units,
)
from backend.tenants.models import OrgUnit, RoleAssignment, Tenant

JOB = "monthly_report"


def report_urls(report_id: uuid.UUID) -> dict[str, str]:
    return {"xlsx": f"/reports/{report_id}.xlsx", "html": f"/reports/{report_id}.html"}


async def _stored(session: AsyncSession, period: Period, unit_path: str) -> uuid.UUID | None:
    return await session.scalar(
        select(MonthlyReport.id).where(
            MonthlyReport.period == period.key, MonthlyReport.unit_path == unit_path
        )
    )


async def monthly_due(db: Database, tenant: Tenant, force: bool) -> str | None:
    """Last month's key once today is on or after this month's first working day and it is missing."""
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        policy = await load_policy(session, tenant.id)
        calendar = await load_calendar(session)
        today = now().astimezone(policy.tz).date()
        period = Period.previous(today, policy.timezone)
        first_working = calendar.next_working_day_on_or_after(today.replace(day=1))
        if not force and today < first_working:
            return None
        if not force and await _stored(session, period, f"/{tenant.slug}") is not None:
            return None
    return period.key


async def _insert(session: AsyncSession, tenant_id: uuid.UUID, unit: OrgUnit, period: Period, data):
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(MonthlyReport)
        .values(
            tenant_id=tenant_id,
            id=new_id(),
            period=period.key,
            unit_id=unit.id,
            unit_path=unit.path,
            unit_name=unit.name,
            unit_level=unit.level,
            data=data,
            created_at=now(),
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "period", "unit_path"])
    )
    return (result.rowcount or 0) > 0


async def _announce_to(session: AsyncSession, root: OrgUnit) -> list[uuid.UUID]:
    """The tenant's city administrators and the leaders held at the city (root) unit."""
    rows = await session.scalars(
        select(RoleAssignment.user_id)
        .where(
            or_(
                RoleAssignment.role == Role.CITY_ADMIN.value,
                and_(
                    RoleAssignment.role == Role.LEADER.value, RoleAssignment.org_unit_id == root.id
                ),
            )
        )
        .distinct()
    )
    return sorted(set(rows))


async def generate_reports(session: AsyncSession, tenant: Tenant, period: Period) -> dict[str, int]:
    """Compute, store and announce ``period``'s reports of the city and its counties."""
    from backend.notifications.service import dedupe_key, enqueue

    policy = await load_policy(session, tenant.id)
    categories = await category_names(session)
    units = await report_units(session)
    counts = {"units": len(units), "reports": 0, "notifications": 0}
    for unit in units:
        data = await compute_report(session, tenant.id, unit, period, policy, categories)
        if await _insert(session, tenant.id, unit, period, data):
            counts["reports"] += 1
    root = next((u for u in units if u.parent_id is None), None)
    if root is None:
        return counts
    report_id = await _stored(session, period, root.path)
    city = await session.scalar(select(MonthlyReport).where(MonthlyReport.id == report_id))
    data = city.data
    urls = report_urls(city.id)
    rate = data.get("onTimeAcceptanceRate")
    body = "\n".join(
        [
            f"{tenant.name} {period.key} 信访工作月度分析报告已生成。",
            f"受理登记 {data['intake']['total']} 件，办结 {data['closed']} 件，"
            f"月末积案 {data['backlog']} 件，红色预警 {data['redCases']} 件，"
            f"按期受理率 {'—' if rate is None else f'{rate * 100:.1f}%'}。",
            f"查看：{urls['html']}  下载：{urls['xlsx']}",
        ]
    )
    for user_id in await _announce_to(session, root):
        created = await enqueue(
            session,
            tenant_id=tenant.id,
            recipient_id=user_id,
            kind="monthly_report",
            subject=f"{period.key} 月度分析报告",
            body=body,
            dedupe_key=dedupe_key(user_id, f"monthly_report:{period.key}", None, period.first),
            data={"reportId": str(city.id), "period": period.key, **urls},
        )
        counts["notifications"] += len(created)
    return counts


async def _report_step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    year, month = (int(p) for p in (run.key or "").split("-"))
    period = Period(date(year, month, 1), tenant.timezone)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        run.add(**await generate_reports(session, tenant, period))


async def monthly_report(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job: hourly and at start; each tenant once a month (see the module doc)."""
    return await fan_out(ctx, JOB, _report_step, monthly_due)
