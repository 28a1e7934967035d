"""The outbox dispatcher as a scheduled job (the dispatcher itself: notifications/)."""

from __future__ import annotations

from typing import Any

from backend.core.db import Database
from backend.jobs.runs import tenants_for
from backend.notifications.dispatcher import dispatch


async def dispatch_notifications(ctx: dict[str, Any]) -> dict[str, int]:
    """Cron job (arq, in-process scheduler, CLI): one dispatch run over every tenant.

    ``ctx["tenant"]`` (a slug, from ``xinfang jobs run notifications_dispatch --tenant``)
    narrows the run to that tenant (an unknown slug raises TenantNotFound for the CLI).
    """
    db: Database = ctx["db"]
    tenant_ids = None
    if ctx.get("tenant"):
        tenant_ids = [t.id for t in await tenants_for(db, ctx["tenant"])]
    return await dispatch(db, ctx.get("settings"), tenant_ids=tenant_ids)
