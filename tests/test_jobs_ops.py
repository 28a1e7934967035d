"""Operations: `xinfang jobs run NAME [--tenant]`, the job_runs log, metrics, the schedule."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from backend.cli import app
from backend.jobs.models import JobRun
from backend.jobs.registry import CRON_JOBS
from tests.helpers import build_city, unique
from tests.test_jobs_support import tenant_id

ROOT = Path(__file__).resolve().parent.parent


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "jobs", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


async def test_jobs_run_by_hand_for_one_tenant_is_recorded(db):
    city = await build_city(db, unique("jo"), unique("p"))
    tid = await tenant_id(db, city)
    for name in ("deadline_scan", "red_digest"):
        done = await _cli("run", name, "--tenant", city.slug)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "'tenants': 1" in done.stdout and "'status': 'OK'" in done.stdout, done.stdout
    nobody = await _cli("run", "deadline_scan", "--tenant", "no-such-city")
    assert nobody.returncode == 2 and "no such tenant" in nobody.stderr
    async with db.transaction() as session:
        runs = list(
            await session.scalars(
                select(JobRun).where(JobRun.target_tenant_id == tid).order_by(JobRun.started_at)
            )
        )
    assert [r.name for r in runs] == ["deadline_scan", "red_digest"]
    assert all(r.runner == "cli" and r.status == "OK" and r.finished_at for r in runs)
    assert "seconds" in runs[0].counts and "cases" in runs[0].counts
    assert runs[1].key  # the local day of the digest


def test_jobs_cli_lists_the_schedule_and_refuses_unknown_names():
    runner = CliRunner()
    unknown = runner.invoke(app, ["jobs", "run", "no_such_job"])
    assert unknown.exit_code == 2 and "known: deadline_scan" in unknown.output
    listed = runner.invoke(app, ["jobs", "list"])
    assert listed.exit_code == 0
    assert "red_digest" in listed.output and "(:01 :16 :31 :46)" in listed.output


async def test_job_metrics_are_exported(db, http):
    from backend.jobs.deadlines import deadline_scan

    city = await build_city(db, unique("jm"), unique("p"))
    await deadline_scan({"db": db, "runner": "test", "tenant": city.slug})
    text = (await http.get("/metrics")).text
    assert 'xinfang_job_runs_total{job="deadline_scan",scope="all",status="OK"}' in text
    assert 'xinfang_job_duration_seconds_bucket{job="deadline_scan"' in text
    assert "xinfang_job_last_success_timestamp_seconds" in text


def test_every_job_is_scheduled_and_runs_at_start():
    jobs = {job.name: job for job in CRON_JOBS}
    assert {"deadline_scan", "red_digest", "monthly_report"} <= set(jobs)
    assert jobs["deadline_scan"].minute == {0, 15, 30, 45}  # includes 07:30 everywhere
    assert all(job.run_at_startup for job in jobs.values())
