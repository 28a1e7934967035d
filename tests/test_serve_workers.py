"""``xinfang serve --workers N`` (issue 21): N processes, the scheduled jobs in exactly one.

A real ``serve --workers 2`` on a fresh PostgreSQL database of its own (the jobs run at
startup, so not on the suite's database), no Redis: both workers start the in-process
scheduler, one wins the jobs lock (a session advisory lock), the other waits on standby.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from backend.cli import serve_workers
from backend.core.settings import get_settings
from backend.jobs.inprocess import JOBS_APP_NAME, JOBS_LOCK_KEY
from tests.live_server import ROOT, STARTUP_TIMEOUT, free_port, run, xinfang

# two interpreters import the whole app after the supervisor: ~40 s on a loaded machine
WORKERS_STARTUP_TIMEOUT = 3 * STARTUP_TIMEOUT

pytestmark = pytest.mark.postgres


def test_sqlite_serves_one_worker_and_postgres_one_per_core_by_default():
    assert serve_workers(4, "sqlite+aiosqlite:///x.db") == 1
    assert serve_workers(None, "sqlite+aiosqlite:///x.db") == 1
    assert serve_workers(3, "postgresql+asyncpg://h/db") == 3
    assert serve_workers(None, "postgresql+asyncpg://h/db") >= 1


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (uv → xinfang → uvicorn's workers), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        kids = {p for p, pp in parents.items() if pp == parent}
        found |= kids
        todo.extend(kids)
    return found


def _execute(dsn: str, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def _jobs_connections(dsn: str) -> tuple[list[str], list[str]]:
    return asyncio.run(_jobs_connections_async(dsn))


async def _jobs_connections_async(dsn: str) -> tuple[list[str], list[str]]:
    """(every jobs-lock connection's application_name, those that hold the lock)."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT a.application_name, l.granted
               FROM pg_stat_activity a
               LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory'
                    AND l.classid = 0 AND l.objid = $2 AND l.granted
               WHERE a.datname = current_database() AND a.application_name LIKE $1""",
            f"{JOBS_APP_NAME} %",
            JOBS_LOCK_KEY,
        )
    finally:
        await conn.close()
    return [r["application_name"] for r in rows], [
        r["application_name"] for r in rows if r["granted"]
    ]


def test_two_workers_run_the_jobs_in_exactly_one_process(tmp_path):
    url = get_settings().database_url
    name = f"xf_workers_{uuid.uuid4().hex[:10]}"
    server = url.rsplit("/", 1)[0]
    plain = server.replace("postgresql+asyncpg://", "postgresql://")
    _execute(f"{plain}/postgres", f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith("XF_")}
    env.update(XF_ENV="dev", XF_DATABASE_URL=f"{server}/{name}", XF_LOG_LEVEL="INFO")
    proc = None
    try:
        run(env, "migrate")
        port = free_port()
        out, err = tmp_path / "stdout", tmp_path / "stderr"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                xinfang("serve", "--port", str(port), "--workers", "2"),
                cwd=ROOT,
                env=env,
                stdout=o,
                stderr=e,
                start_new_session=True,
            )
        deadline = time.monotonic() + WORKERS_STARTUP_TIMEOUT
        names: list[str] = []
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                up = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                up = False
            names, holders = _jobs_connections(f"{plain}/{name}")
            if up and len(names) == 2 and holders:
                break
            assert time.monotonic() < deadline, (names, err.read_text())
            time.sleep(0.2)
        workers = _children(proc.pid)
        pids = {int(n.split()[1]) for n in names}
        assert len(pids) == 2 and pids <= workers, (pids, workers)  # both workers asked
        assert len(holders) == 1, holders  # one of them owns the jobs
        assert "(2 workers starting)" in out.read_text()
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        _execute(f"{plain}/postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
