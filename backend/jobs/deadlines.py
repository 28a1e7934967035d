"""Deadline colour refresh: derive every open step's colour from "now" and its due date.

Stateless and idempotent (arq may run it twice; missed runs are simply
caught up by the next one): it never asks "what changed since last run",
it recomputes from the database. One transaction per tenant, so one slow
tenant does not hold the others; three UPDATE statements each, no case is
loaded into Python.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import select, update

from backend.cases.models import Case, CaseDeadline, CaseStatus, DeadlineStatus, WarningColor
from backend.cases.policy import load_policy
from backend.cases.rules import end_of_day
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.logging import get_logger
from backend.tenants.models import Tenant

log = get_logger(__name__)


def _colour(due_at: Any, red_until: Any, yellow_until: Any) -> Any:
    return sql_case(
        (due_at <= red_until, WarningColor.RED.value),
        (due_at <= yellow_until, WarningColor.YELLOW.value),
        else_=WarningColor.BLUE.value,
    )


async def refresh_tenant_colours(db: Database, tenant_id: Any) -> dict[str, int]:
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        policy = await load_policy(session, tenant_id)
        today = now().astimezone(policy.tz).date()
        red_until = end_of_day(today + timedelta(days=policy.red_days), policy)
        yellow_until = end_of_day(today + timedelta(days=policy.yellow_days), policy)
        step_colour = _colour(CaseDeadline.due_at, red_until, yellow_until)
        steps = await session.execute(
            update(CaseDeadline)
            .where(
                CaseDeadline.status == DeadlineStatus.OPEN,
                CaseDeadline.warning_color != step_colour,
            )
            .values(warning_color=step_colour)
            .execution_options(synchronize_session=False)
        )
        case_colour = _colour(Case.due_at, red_until, yellow_until)
        cases = await session.execute(
            update(Case)
            .where(
                Case.due_at.is_not(None),
                Case.status != CaseStatus.CLOSED,
                Case.warning_color != case_colour,
            )
            .values(warning_color=case_colour)
            .execution_options(synchronize_session=False)
        )
        return {"steps": steps.rowcount or 0, "cases": cases.rowcount or 0}


async def refresh_warning_colours(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron job: every tenant, one transaction each."""
    db: Database = ctx["db"]
    async with db.transaction() as session:
        tenant_ids = list(await session.scalars(select(Tenant.id)))
    totals = {"tenants": 0, "steps": 0, "cases": 0}
    for tenant_id in tenant_ids:
        try:
            changed = await refresh_tenant_colours(db, tenant_id)
        except Exception:  # one tenant's failure must not stop the others
            log.exception("jobs.deadline_colours.tenant_failed", tenant_id=str(tenant_id))
            continue
        totals["tenants"] += 1
        totals["steps"] += changed["steps"]
        totals["cases"] += changed["cases"]
    log.info("jobs.deadline_colours", **totals)
    return totals
