"""Every scheduled job in one list; the arq worker and the in-process runner both read it."""

from __future__ import annotations

from arq.cron import CronJob, cron

from backend.jobs.deadlines import refresh_warning_colours

# Every 15 minutes and once at start (cron runs missed while down are not replayed by arq).
CRON_JOBS: list[CronJob] = [
    cron(
        refresh_warning_colours,
        name="deadline_colours",
        minute={0, 15, 30, 45},
        run_at_startup=True,
    ),
]
