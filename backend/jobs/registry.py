"""Every scheduled job in one list; the arq worker and the in-process runner both read it."""

from __future__ import annotations

from typing import Any

from arq.cron import CronJob, cron

from backend.core.logging import get_logger

log = get_logger(__name__)


async def heartbeat(ctx: dict[str, Any]) -> str:
    """Proves the scheduler runs (visible in logs and the job metrics)."""
    log.info("jobs.heartbeat", runner=ctx.get("runner", "arq"))
    return "ok"


CRON_JOBS: list[CronJob] = [
    cron(heartbeat, name="heartbeat", minute={0, 15, 30, 45}, run_at_startup=True),
]
