"""arq worker settings (``xinfang worker``): a plain class listing the jobs."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from arq.connections import RedisSettings

from backend.core.settings import get_settings
from backend.jobs.context import shutdown, startup
from backend.jobs.registry import CRON_JOBS


def worker_settings() -> type:
    settings = get_settings()
    if not settings.redis_url:
        raise SystemExit("XF_REDIS_URL is not set: `xinfang serve` runs the jobs in-process")

    class WorkerSettings:
        redis_settings = RedisSettings.from_dsn(settings.redis_url)
        cron_jobs = CRON_JOBS
        functions = [job.coroutine for job in CRON_JOBS]
        on_startup = startup
        on_shutdown = shutdown
        timezone = ZoneInfo(settings.default_timezone)
        job_timeout = 600
        max_jobs = 4

    return WorkerSettings
