"""The rough edges a newcomer meets in the first hour (issue 22): logs, help texts, error
messages, export defaults, progress of long work, and the README saying what the
commands print. The running server's side (ready line, busy port, Ctrl-C) is in
tests/test_serve_smoke.py."""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from arq.cron import cron
from typer.testing import CliRunner

from backend.cli import app
from backend.core.serving import ready_line
from backend.core.settings import get_settings
from backend.jobs.inprocess import InProcessScheduler
from backend.jobs.registry import CRON_JOBS, SCHEDULE
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique
from tests.test_jobs_support import register

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("run_tests", ROOT / "scripts" / "run_tests.py")
run_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_tests)


XINFANG = [sys.executable, "-m", "backend.cli"]


def python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``xinfang`` in a process of its own (no terminal: logs, not bars)."""
    return subprocess.run(
        [*XINFANG, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )


def json_lines(text: str) -> list[dict]:
    """The log lines of ``text`` (a command's own messages are not JSON)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- 3. casbin into structlog --------------------------------------------------------------


def test_casbin_prints_no_model_or_policy_and_library_logs_are_json():
    done = python(
        "import logging\n"
        "from backend.core.logging import configure_logging\n"
        "configure_logging('INFO')\n"
        "from backend.authz.enforcer import enforcer, role_may\n"
        "assert role_may('leader', 'tenant', 'case', 'read')\n"
        "assert logging.getLogger('casbin').getEffectiveLevel() == logging.WARNING\n"
        "logging.getLogger('uvicorn.error').warning('a library warning')\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert all(line.startswith("{") for line in done.stderr.splitlines())
    lines = json_lines(done.stderr)  # no model, no policy dump
    assert [(r["logger"], r["event"], r["level"]) for r in lines] == [
        ("uvicorn.error", "a library warning", "warning")
    ]


# --- 8. cosmetics -------------------------------------------------------------------------


def test_help_has_no_completion_options():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "completion" not in result.output


def test_report_export_help_is_not_cut_mid_sentence():
    result = CliRunner().invoke(app, ["report", "export", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    description = result.output.split("╭")[0].split("{kind}")[1]
    lines = [line.strip() for line in description.splitlines() if line.strip()]
    assert lines[0].startswith("Write an indicator table")
    # paragraphs are re-wrapped to the width: no line is a stray word of the one before
    assert all(len(line) > 30 or line.endswith(".") for line in lines), lines
    assert "each is written to the PII access log." in " ".join(lines)


async def test_stopping_the_in_process_jobs_lets_the_running_one_end(db):
    """Ctrl-C while a startup job runs: the job ends (its transaction whole), no traceback;
    only a job that outlasts the grace period is cancelled."""
    ended = []

    async def slow(ctx):
        await asyncio.sleep(0.3)
        ended.append(ctx["runner"])

    for grace, expected in ((10.0, ["in-process"]), (0.05, [])):
        ended.clear()
        scheduler = InProcessScheduler(db, "Asia/Shanghai", jobs=[cron(slow, run_at_startup=True)])
        scheduler.start()
        await asyncio.sleep(0.05)
        await scheduler.stop(grace=grace)
        assert ended == expected


@pytest.mark.postgres
def test_bench_data_with_a_missing_database_says_how_to_create_it():
    name = f"xf_missing_{uuid.uuid4().hex[:8]}"
    done = cli("bench-data", "--db", name, "--cases", "10")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert f"database {name} does not exist: create it with `createdb" in done.stderr


# --- 4. statistics export ---------------------------------------------------------------


async def _city_with_cases_in(db, moment) -> object:
    city = await build_city(db, unique("fh"), unique("fp"))
    with frozen(moment):
        for _ in range(2):
            await register(db, city)
    return city


async def test_statistics_export_defaults_to_the_current_month(db, http):
    city = await _city_with_cases_in(db, sh(2026, 3, 10))
    headers = {"Authorization": f"Bearer {city.token('officer')}"}
    with frozen(sh(2026, 3, 31, 23, 30)):  # late evening in Shanghai, still March
        resp = await http.get("/exports/statistics.csv", headers=headers)
    assert resp.status_code == 200, resp.text
    assert 'filename="statistics-2026-03-01-2026-03-31.csv"' in resp.headers["content-disposition"]
    total = next(r for r in csv.reader(io.StringIO(resp.text.lstrip("\ufeff"))) if r[0] == "*")
    assert total[2] == "2"
    with frozen(sh(2026, 4, 1, 0, 30)):  # April in Shanghai (still March 31 in UTC)
        resp = await http.get("/exports/statistics.csv", headers=headers)
    assert "statistics-2026-04-01-2026-04-30" in resp.headers["content-disposition"]


async def test_cli_statistics_export_defaults_to_the_current_month(db, tmp_path):
    city = await _city_with_cases_in(db, sh(2026, 5, 6))
    out = tmp_path / "stats.csv"
    args = ["report", "export", "statistics", "--as", f"{city.slug}_officer", "--out", str(out)]
    for moment, received in ((sh(2026, 5, 20), "2"), (sh(2026, 6, 2), "0")):
        with frozen(moment):
            result = await asyncio.to_thread(CliRunner().invoke, app, args)
        assert result.exit_code == 0, result.output
        rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
        assert next(r for r in rows if r[0] == "*")[2] == received, moment


def test_xlsx_export_to_a_terminal_is_refused():
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [*XINFANG, "report", "export", "statistics", "--as", "nobody", "--format", "xlsx"],
            stdout=follower,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert b"XLSX is binary: write it to a file with --out FILE" in done.stderr


# --- 9. progress ----------------------------------------------------------------------------


PROGRESS = (
    "from backend.core.logging import configure_logging\n"
    "from backend.core import progress\n"
    "configure_logging('INFO')\n"
    "progress.show_bars({bars})\n"
    "with progress.track('demo work', total=3, unit='things', every={every}) as p:\n"
    "    for _ in range(3):\n"
    "        p.advance()\n"
)


def test_progress_off_a_terminal_is_a_json_log_line_every_n_seconds():
    lines = json_lines(python(PROGRESS.format(bars=False, every=0)).stderr)
    assert [(r["event"], r["done"]) for r in lines] == [
        ("progress", 1),
        ("progress", 2),
        ("progress", 3),
        ("progress.done", 3),
    ]
    assert lines[0]["total"] == 3 and lines[0]["unit"] == "things" and "eta_s" in lines[0]


def test_short_work_stays_quiet_and_a_terminal_gets_a_bar():
    assert python(PROGRESS.format(bars=False, every=60)).stderr == ""
    bar = python(PROGRESS.format(bars=True, every=0))
    assert "demo work" in bar.stderr and "3/3" in bar.stderr
    assert "progress" not in bar.stderr.replace("demo work", "")  # no log line besides


async def _city_with_history(db):
    city = await build_city(db, unique("pg"), unique("pp"))
    with frozen(sh(2026, 2, 2)):
        for _ in range(3):
            await register(db, city)
    return city


@pytest.mark.parametrize(
    ("args", "task"),
    [
        (["audit", "verify", "--tenant", "{slug}"], "audit verify {slug}"),
        (["pii", "rotate-key", "--tenant", "{slug}"], "pii rotate-key"),
        (["report", "export", "cases", "--as", "{slug}_officer", "--out", "{out}"], "export cases"),
    ],
    ids=["audit-verify", "pii-rotate-key", "export"],
)
async def test_long_commands_report_progress_in_the_log(db, tmp_path, args, task):
    city = await _city_with_history(db)
    fill = {"slug": city.slug, "out": str(tmp_path / "out.csv")}
    done = await asyncio.to_thread(
        cli, *[a.format(**fill) for a in args], XF_PROGRESS_LOG_SECONDS="0", XF_LOG_LEVEL="INFO"
    )
    assert done.returncode == 0, done.stderr
    progress = [r for r in json_lines(done.stderr) if r["event"].startswith("progress")]
    assert progress and {r["task"] for r in progress} == {task.format(**fill)}
    assert progress[-1]["event"] == "progress.done"


# --- 5. README drift --------------------------------------------------------------------------


def test_readme_lists_the_jobs_that_jobs_list_prints():
    listed = CliRunner().invoke(app, ["jobs", "list"]).output
    names = [job.name for job in CRON_JOBS]
    assert set(SCHEDULE) == set(names)
    for name in names:
        when, what = SCHEDULE[name]
        assert re.search(rf"^{name} +{re.escape(when)}$", listed, re.M), name
        assert f"→ {what}" in listed
    jobs_section = README.split("- **Jobs**")[1].split("- **Notifications**")[0]
    assert re.findall(r"^  - `([a-z_]+)`", jobs_section, re.M) == names
    assert "08:00 red-list digest" not in README


def test_readme_shows_the_line_make_run_prints_when_ready():
    assert ready_line("127.0.0.1", 8000, graphiql=True) in README
    assert "make run PORT=8001" in README


def _make_run_commands(*args: str, **env: str) -> list[str]:
    """The ``xinfang`` commands ``make run`` would run (a dry run), under ``env``."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "run", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in done.stdout.splitlines() if " xinfang " in line]


@pytest.mark.skipif(not shutil.which("make"), reason="no make")
def test_make_run_serves_the_embedded_sqlite_db_unless_asked_otherwise():
    """After the README's PostgreSQL block the shell exports XF_DATABASE_URL/XF_REDIS_URL:
    `make run` still serves "the embedded SQLite DB"; another one only by RUN_DATABASE_URL."""
    pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/xinfang"
    exported = {"XF_DATABASE_URL": pg, "XF_REDIS_URL": "redis://127.0.0.1:6379/0"}
    commands = _make_run_commands(**exported)
    assert [c.split(" xinfang ")[1].split()[0] for c in commands] == [
        "serve", "migrate", "seed-demo", "serve"
    ]  # fmt: skip
    for command in commands:
        assert "-u XF_DATABASE_URL -u XF_REDIS_URL" in command and pg not in command
    opted = _make_run_commands(f"RUN_DATABASE_URL={pg}", **exported)
    assert all(f"XF_DATABASE_URL='{pg}'" in c for c in opted)
    assert "make run RUN_DATABASE_URL=" in README
    assert "`xinfang token` reads the database named by `XF_DATABASE_URL`" in README


def test_readme_says_how_sqlite_counts_the_postgres_only_tests():
    assert '"deselected"' in README and "skipped there" not in README


def test_make_test_uses_the_local_redis_when_it_answers():
    assert run_tests.local_redis({"XF_REDIS_URL": "redis://elsewhere:6379/3"}) == (
        "redis://elsewhere:6379/3"
    )
    assert run_tests.local_redis({}, "redis://127.0.0.1:1/0") is None  # nothing listens
    local = get_settings().redis_url or run_tests.LOCAL_REDIS
    if run_tests.local_redis({}, local) is None:
        pytest.skip("no local Redis")
    assert run_tests.local_redis({}, local) == local
