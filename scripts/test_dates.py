"""`make test-dates`: the suite under a shifted process clock (libfaketime), on both databases.

A test that reads the real date passes on the day it was written and fails weeks later
(issue 16). Running the suite with the whole process moved to awkward moments shows such
tests today instead: the turn of a year late in the evening in Shanghai, the Spring
Festival week, National Day, a leap day of a year without an official calendar and the
first morning of a month before the digest hour.

    python scripts/test_dates.py                      # every date, PostgreSQL and SQLite
    python scripts/test_dates.py --subset --dates 2027-02-10T10:00   # what CI runs
    python scripts/test_dates.py --db sqlite -- -x tests/test_rosters.py

Dates are Shanghai wall-clock times; each becomes a ``faketime -f +<seconds>`` offset with
``TZ=UTC``, so the clock starts there and keeps ticking (timeouts and sleeps still work).
The PostgreSQL server keeps its real clock: the app takes every "now" from Python
(``backend/core/clock.py``), never from the database. PostgreSQL and SQLite run side by
side (two processes), one date after the other.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_tests import fresh_postgres

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")

# Shanghai wall-clock times: the evening the year turns, Spring Festival week, National
# Day, 29 February of 2028 (no official calendar for that year), and the first morning of
# a month before the 08:00 digest.
DATES = (
    "2026-12-31T23:30",
    "2027-02-10T10:00",
    "2027-10-01T09:00",
    "2028-02-29T09:00",
    "2027-03-01T07:55",
)

# The date-sensitive part of the suite: the clock, calendar, deadline, digest, reminder,
# roster, report and statistics tests. CI runs these under one shifted date.
DATE_SENSITIVE = (
    "tests/test_calendar.py",
    "tests/test_clock_discipline.py",
    "tests/test_deadline_rules.py",
    "tests/test_audit_and_jobs.py",
    "tests/test_jobs_scan.py",
    "tests/test_jobs_digest.py",
    "tests/test_jobs_ops.py",
    "tests/test_notifications.py",
    "tests/test_rosters.py",
    "tests/test_report_monthly.py",
    "tests/test_evaluations.py",
    "tests/test_stats_indicators.py",
    "tests/test_stats_summary.py",
    "tests/test_stats_supervision.py",
    "tests/test_stats_exports.py",
    "tests/test_cases_lifecycle.py",
    "tests/test_serve_smoke.py",  # the demo is generated relative to "today"
)


def faketime_prefix(shanghai: str) -> list[str]:
    """``faketime -f +<seconds>``: the process clock runs ``shanghai`` (Asia/Shanghai) from now.

    A relative offset, not ``@<time>``: every child process (the CLI tests start
    ``xinfang`` as a subprocess) then shares one timeline, where ``@`` would start each
    child again at the same instant and reorder what they record.
    """
    exe = shutil.which("faketime")
    if exe is None:
        raise SystemExit("faketime is missing: apt-get install faketime (Debian package)")
    moment = datetime.fromisoformat(shanghai).replace(tzinfo=SHANGHAI)
    offset = int((moment - datetime.now(UTC)).total_seconds())
    return [exe, "-f", f"{offset:+d}"]


def run(label: str, env: dict[str, str], argv: list[str]) -> tuple[str, int]:
    print(f"== {label}: pytest {' '.join(argv)}", flush=True)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-25:]
    print(f"== {label}: exit {proc.returncode}\n" + "\n".join(tail), flush=True)
    return label, proc.returncode


def pytest_argv(shanghai: str, args: argparse.Namespace, *marker: str) -> list[str]:
    tests = list(DATE_SENSITIVE) if args.subset else []
    return [
        *faketime_prefix(shanghai),
        *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
        *marker,
        *args.pytest_args,
        *tests,
    ]


def run_date(shanghai: str, args: argparse.Namespace, base: dict[str, str]) -> list[str]:
    """One shifted date: PostgreSQL (a fresh database) and SQLite side by side."""
    jobs = []
    with fresh_postgres(base) as pg_url:
        if args.db in ("both", "postgres"):
            if pg_url:
                env = dict(base, XF_DATABASE_URL=pg_url)
                jobs.append((f"{shanghai} PostgreSQL", env, pytest_argv(shanghai, args)))
            else:
                print("== PostgreSQL not reachable: SQLite only", flush=True)
        if args.db in ("both", "sqlite"):
            argv = pytest_argv(shanghai, args, "-m", "not postgres")
            jobs.append((f"{shanghai} SQLite", dict(base, XF_DATABASE_URL=""), argv))
        with ThreadPoolExecutor(max_workers=2) as pool:
            return [label for label, rc in pool.map(lambda job: run(*job), jobs) if rc]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dates", nargs="+", default=list(DATES), help="Shanghai times")
    parser.add_argument("--db", choices=("both", "postgres", "sqlite"), default="both")
    parser.add_argument("--subset", action="store_true", help="the date-sensitive tests only")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    base = dict(os.environ, TZ="UTC")
    failures = [label for shanghai in args.dates for label in run_date(shanghai, args, base)]
    verdict = "all passed" if not failures else "FAILED " + ", ".join(failures)
    print(f"== shifted-clock runs: {verdict}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
