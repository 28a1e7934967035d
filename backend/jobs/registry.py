"""Every scheduled job in one list; the arq worker and the in-process runner both read it."""

from __future__ import annotations

from arq.cron import CronJob, cron

from backend.jobs.deadlines import deadline_scan
from backend.jobs.digest import red_digest
from backend.jobs.holidays import holiday_recompute
from backend.jobs.outbox import dispatch_notifications
from backend.jobs.reports import monthly_report
from backend.jobs.revisits import revisit_list
from backend.jobs.statistics import stats_refresh

# Cron runs missed while down are not replayed by arq: every job runs once at start and
# derives its work from the database (docs/jobs.md has the schedule and the reasons).
CRON_JOBS: list[CronJob] = [
    # due dates after a holiday notice is loaded or corrected (the CLI also runs it at once);
    # a cheap check when nothing changed, and first at start so the scan sees the new dates
    cron(
        holiday_recompute,
        name="holiday_recompute",
        minute={2, 17, 32, 47},
        run_at_startup=True,
    ),
    # every 15 minutes: the quarter hours include 07:30 in every tenant time zone
    cron(deadline_scan, name="deadline_scan", minute={0, 15, 30, 45}, run_at_startup=True),
    # each tenant once a day from 08:00 local (a quarter hour's check, off the scan's minute)
    cron(red_digest, name="red_digest", minute={1, 16, 31, 46}, run_at_startup=True),
    # each tenant once a month, from the first working day (hourly check)
    cron(monthly_report, name="monthly_report", minute=5, run_at_startup=True),
    # seed 004 回头看: each tenant once a month, last month's dissatisfied closed cases
    cron(revisit_list, name="revisit_list", minute=9, run_at_startup=True),
    # the statistics summary, every tenant rebuilt: after the scan at :00/:30 (so nightly too,
    # completing yesterday), and at start (docs/indicators.md "Speed")
    cron(stats_refresh, name="stats_refresh", minute={7, 37}, run_at_startup=True),
    # The outbox: every minute and at start; a run is bounded (XF_NOTIFY_RUN_BUDGET_SECONDS).
    cron(
        dispatch_notifications,
        name="notifications_dispatch",
        second=0,
        run_at_startup=True,
    ),
]

# What each job does and when, in an operator's words (`xinfang jobs list`, README, jobs.md).
# The cron entries above only say how often a job *checks*; the jobs that work once a day
# or once a month per city decide themselves, from the city's local time and job_runs.
SCHEDULE: dict[str, tuple[str, str]] = {
    "holiday_recompute": (
        "checks every 15 minutes (:02 :17 :32 :47) and at start: each city once per "
        "change of the loaded holiday notices; `xinfang holidays load` runs it at once",
        "recomputes the due dates of open steps in a year whose notice was loaded or corrected",
    ),
    "deadline_scan": (
        "every 15 minutes (:00 :15 :30 :45) and at start",
        "recolours open cases red/yellow/blue, marks overdue steps",
    ),
    "red_digest": (
        "checks every 15 minutes (:01 :16 :31 :46) and at start: each city once a day, "
        "from 08:00 its time",
        "the red-case digest to the officials responsible, escalation of cases that stay red",
    ),
    "monthly_report": (
        "checks hourly (:05) and at start: each city once a month, from its first working day",
        "last month's analysis reports (XLSX, HTML) and their announcement",
    ),
    "revisit_list": (
        "checks hourly (:09) and at start: each city once a month, from the 1st its time",
        "the 三不限 回头看 list: last month's closed cases the petitioner was dissatisfied with",
    ),
    "stats_refresh": (
        "twice an hour (:07 :37) and at start",
        "rebuilds the statistics summary the indicators read",
    ),
    "notifications_dispatch": (
        "every minute and at start",
        "delivers the outbox: inbox, webhook, SMS, e-mail, with retries",
    ),
}
