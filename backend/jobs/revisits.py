"""三不限"回头看" list (seed 004): each month, last month's dissatisfied closed cases.

Checks hourly and at start; a city is due once its local date is in a new month and
that month's run has not finished OK (``job_runs``), so a worker that was down on the
1st lists them when it comes back. The list itself is idempotent (backend/cases/
revisits.py: ``ON CONFLICT DO NOTHING`` on ``(tenant, case, period)``): a redelivered or
forced run adds nothing twice and never touches a recorded re-visit.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from backend.cases.revisits import build_list, month_key, previous_month
from backend.cases.rules import DeadlinePolicy
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.jobs.runs import RunRecord, already_done, fan_out
from backend.tenants.models import Tenant

JOB = "revisit_list"


def _period(tenant: Tenant) -> str:
    today = now().astimezone(DeadlinePolicy(timezone=tenant.timezone).tz).date()
    return month_key(previous_month(today))


async def revisit_due(db: Database, tenant: Tenant, force: bool) -> str | None:
    """Last month's key, unless this month's run for the city is done."""
    key = _period(tenant)
    if not force and await already_done(db, JOB, tenant.id, key):
        return None
    return key


async def _step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    year, month = (int(p) for p in (run.key or "").split("-"))
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        added = await build_list(session, tenant.id, date(year, month, 1), tenant.timezone)
    run.add(listed=added)


async def revisit_list(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job: hourly and at start; each city once a month."""
    return await fan_out(ctx, JOB, _step, revisit_due)
