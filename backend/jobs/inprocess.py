"""Run the cron jobs inside ``xinfang serve`` when no Redis is configured.

Same job list, same schedule semantics as the arq worker (arq's own
``CronJob.calculate_next``), so the two-command demo behaves like production.

``xinfang serve --workers N`` starts N processes, each with this scheduler; on
PostgreSQL only the one holding the jobs lock (:class:`JobsLock`, a session advisory
lock on a connection of its own) runs jobs, the others wait on standby and take over
within :data:`STANDBY_POLL_SECONDS` when that process ends (its connection closes, the
lock goes with it). On SQLite ``serve`` runs one process, so there is nothing to elect.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from arq.cron import CronJob
from sqlalchemy.engine import make_url

from backend.core.db import Database
from backend.core.logging import get_logger
from backend.jobs.registry import CRON_JOBS

log = get_logger(__name__)
STOP_GRACE_SECONDS = 10.0
# How often a standby process tries the jobs lock (and the owner checks it still holds it).
STANDBY_POLL_SECONDS = 30.0
# pg_advisory_lock key of "the in-process jobs of this database" (< 2**31: pg_locks shows
# it as classid 0, objid JOBS_LOCK_KEY); the holder's application_name is JOBS_APP_NAME.
JOBS_LOCK_KEY = 0x58464A42  # "XFJB"
JOBS_APP_NAME = "xinfang-jobs"


class JobsLock:
    """The PostgreSQL session advisory lock whose holder runs the in-process jobs.

    On a connection of its own, outside the pool (a pooled connection would carry the
    lock to whoever checks it out next), named ``xinfang-jobs <pid>`` so
    ``pg_stat_activity`` shows which process owns the jobs. The lock ends with the
    connection: a crashed or stopped owner frees it for a standby.
    """

    def __init__(self, url: str) -> None:
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._conn: Any = None

    async def try_acquire(self) -> bool:
        import asyncpg

        try:
            if self._conn is None or self._conn.is_closed():
                self._conn = await asyncpg.connect(
                    self.dsn, server_settings={"application_name": f"{JOBS_APP_NAME} {os.getpid()}"}
                )
            return bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", JOBS_LOCK_KEY))
        except Exception as exc:  # database away: stay on standby, try again later
            log.warning("jobs.lock_unavailable", error=str(exc))
            await self.release()
            return False

    async def still_held(self) -> bool:
        """Whether the lock's connection is alive (the lock lives exactly as long)."""
        try:
            return self._conn is not None and await self._conn.fetchval("SELECT 1") == 1
        except Exception:
            await self.release()
            return False

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


class InProcessScheduler:
    def __init__(
        self,
        db: Database,
        tz: str,
        jobs: list[CronJob] | None = None,
        *,
        lock: JobsLock | None = None,
    ) -> None:
        self.ctx: dict[str, Any] = {"db": db, "runner": "in-process"}
        self.tz = ZoneInfo(tz)
        self.jobs = jobs if jobs is not None else CRON_JOBS
        self.lock = lock
        self.owner = lock is None  # whether this process runs the jobs (now)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @classmethod
    def for_database(cls, db: Database, tz: str) -> InProcessScheduler:
        """One per process; elected through :class:`JobsLock` on PostgreSQL."""
        url = db.engine.url.render_as_string(hide_password=False)
        lock = JobsLock(url) if db.dialect == "postgresql" else None
        return cls(db, tz, lock=lock)

    async def _run_job(self, job: CronJob) -> None:
        try:
            await job.coroutine(self.ctx)
        except Exception:  # a failing job must not stop the scheduler
            log.exception("jobs.failed", job=job.name)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _loop(self) -> None:
        if self.lock is None:
            await self._run_jobs()
            return
        try:
            standby_logged = False
            while not self._stopping.is_set():
                if not await self.lock.try_acquire():
                    if not standby_logged:
                        log.info("jobs.standby", pid=os.getpid())
                        standby_logged = True
                    await self._pause(STANDBY_POLL_SECONDS)
                    continue
                self.owner, standby_logged = True, False
                log.info("jobs.owner", pid=os.getpid())
                await self._run_jobs()
                self.owner = False
                if not self._stopping.is_set():
                    log.warning("jobs.lock_lost", pid=os.getpid())
        finally:
            self.owner = False
            await self.lock.release()

    async def _run_jobs(self) -> None:
        """Run the jobs on their schedule until stopped (or the jobs lock is lost)."""
        now = datetime.now(self.tz)
        for job in self.jobs:
            job.calculate_next(now)
            if job.run_at_startup and not self._stopping.is_set():
                await self._run_job(job)
        while not self._stopping.is_set():
            if self.lock is not None and not await self.lock.still_held():
                return
            now = datetime.now(self.tz)
            due = [j for j in self.jobs if j.next_run and j.next_run <= now]
            for job in due:
                if self._stopping.is_set():
                    return
                await self._run_job(job)
                job.calculate_next(datetime.now(self.tz))
            upcoming = min((j.next_run for j in self.jobs if j.next_run), default=None)
            delay = (upcoming - datetime.now(self.tz)).total_seconds() if upcoming else 60
            await self._pause(min(max(delay, 0.5), 60, STANDBY_POLL_SECONDS))

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="xinfang-jobs")

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Let the running job end (its transaction commits or rolls back whole, instead of a
        cancelled connection logging a traceback), start no other; cancel after ``grace``."""
        if not self._task:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
