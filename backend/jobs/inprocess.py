"""Run the cron jobs inside ``xinfang serve`` when no Redis is configured.

Same job list, same schedule semantics as the arq worker (arq's own
``CronJob.calculate_next``), so the two-command demo behaves like production.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from arq.cron import CronJob

from backend.core.db import Database
from backend.core.logging import get_logger
from backend.jobs.registry import CRON_JOBS

log = get_logger(__name__)
STOP_GRACE_SECONDS = 10.0


class InProcessScheduler:
    def __init__(self, db: Database, tz: str, jobs: list[CronJob] | None = None) -> None:
        self.ctx: dict[str, Any] = {"db": db, "runner": "in-process"}
        self.tz = ZoneInfo(tz)
        self.jobs = jobs if jobs is not None else CRON_JOBS
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def _run_job(self, job: CronJob) -> None:
        try:
            await job.coroutine(self.ctx)
        except Exception:  # a failing job must not stop the scheduler
            log.exception("jobs.failed", job=job.name)

    async def _loop(self) -> None:
        now = datetime.now(self.tz)
        for job in self.jobs:
            job.calculate_next(now)
            if job.run_at_startup and not self._stopping.is_set():
                await self._run_job(job)
        while not self._stopping.is_set():
            now = datetime.now(self.tz)
            due = [j for j in self.jobs if j.next_run and j.next_run <= now]
            for job in due:
                if self._stopping.is_set():
                    return
                await self._run_job(job)
                job.calculate_next(datetime.now(self.tz))
            upcoming = min((j.next_run for j in self.jobs if j.next_run), default=None)
            delay = (upcoming - datetime.now(self.tz)).total_seconds() if upcoming else 60
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(max(delay, 0.5), 60))

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
