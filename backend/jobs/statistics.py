"""The statistics summary's rebuild as a scheduled job (the summary itself: stats/)."""

from __future__ import annotations

from typing import Any

from backend.core.db import Database
from backend.jobs.runs import RunRecord, fan_out
from backend.stats.summary import refresh
from backend.tenants.models import Tenant

JOB = "stats_refresh"


async def _refresh_step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    run.add(**await refresh(db, tenant.id))


async def stats_refresh(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job: rebuild every tenant's summary (one transaction each; idempotent)."""
    return await fan_out(ctx, JOB, _refresh_step)
