"""arq worker settings (``xinfang worker``): a plain class listing the jobs, and :func:`run`.

:func:`run` keeps the worker alive across Redis outages: arq's main loop stops
at the first failed Redis call, so without it the process would exit and
crash-loop (with the orchestrator's growing back-off) until Redis is back.
Instead it waits for Redis, then starts arq again with every job's
"run at start" armed, so the backlog built up meanwhile (colours, digests,
the outbox) is worked off at once — everything a job needs is in PostgreSQL.
"""

from __future__ import annotations

import contextlib
import signal
import time
from typing import Any
from zoneinfo import ZoneInfo

from arq.connections import RedisSettings
from arq.worker import create_worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

import backend.domains  # noqa: F401 — every table and hook in place (backend/domains.py)
from backend.core.db import Database
from backend.core.logging import get_logger
from backend.core.settings import get_settings
from backend.jobs.context import shutdown, startup
from backend.jobs.registry import CRON_JOBS

log = get_logger(__name__)

REDIS_LOST = (RedisConnectionError, RedisTimeoutError, ConnectionError, OSError, TimeoutError)
RECONNECT_MAX_SECONDS = 5.0


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
        redis_url = settings.redis_url  # for run()'s reconnect probe (arq ignores it)

    return WorkerSettings


def run(settings_cls: type) -> None:
    """Run arq until a signal stops it; when Redis goes away, wait for it and start again."""
    delay = 0.25
    while True:
        worker = create_worker(settings_cls)
        try:
            worker.run()
            return  # SIGTERM/SIGINT: arq finished its jobs and closed
        except REDIS_LOST as exc:
            log.warning("worker.redis_lost", error=f"{type(exc).__name__}: {exc}"[:300])
        _cleanup(worker)
        _wait_for_redis(settings_cls.redis_url, delay)
        for job in settings_cls.cron_jobs:
            job.next_run = None  # re-arm "run at start": catch up what the outage held back


def _cleanup(worker: Any) -> None:
    """After a lost Redis: restore default signals (so SIGTERM works while we wait), and
    dispose of the database pool arq's shutdown hook did not reach."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(Exception):
            worker.loop.remove_signal_handler(sig)
    db = worker.ctx.get("db")
    if isinstance(db, Database):
        with contextlib.suppress(Exception):
            worker.loop.run_until_complete(db.dispose())


def _wait_for_redis(url: str, delay: float) -> None:
    """Ping Redis with a capped exponential back-off until it answers."""
    from redis import Redis

    while True:
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
            log.info("worker.redis_back")
            return
        except REDIS_LOST:
            time.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        finally:
            client.close()
