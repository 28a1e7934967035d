"""Crash recovery with a real ``xinfang worker`` (arq on Redis): SIGKILL mid-dispatch, lose the
job's Redis state, start again — every notification reaches the receiver, exactly once per
delivery id after receiver-side dedupe, and none is lost.

The shared Redis cannot be restarted from a test (other people use it), so "Redis restarted
empty" is simulated by deleting only this job's arq keys; the point stands either way: what
must not be lost is a PostgreSQL row, Redis only carries the work.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.jobs.registry import CRON_JOBS
from backend.notifications.models import Notification, NotificationStatus
from tests.test_notifications import Receiver, new_town, put
from tests.waiting import WORKER_STARTUP, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("XF_REDIS_URL")
JOB = "notifications_dispatch"
N = 45
LEASE = 2.0
# this test's rows, by dedupe key: other jobs of the worker (the monthly report) may
# notify this town too
MINE = Notification.dedupe_key.startswith("crash-")


def worker_command() -> list[str]:
    """The installed console script itself (no wrapper process that SIGKILL would miss)."""
    script = Path(sys.executable).with_name("xinfang")
    if script.exists():
        return [str(script), "worker"]
    return [sys.executable, "-m", "backend.cli", "worker"]


def start_worker(log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "XF_REDIS_URL": REDIS_URL or "",
        "XF_LOG_LEVEL": "INFO",
        "XF_NOTIFY_LEASE_SECONDS": str(LEASE),
        "XF_NOTIFY_BATCH_SIZE": "3",
        "XF_NOTIFY_HTTP_TIMEOUT_SECONDS": "20",
    }
    return subprocess.Popen(
        worker_command(), cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


async def forget_jobs_in_redis() -> int:
    """What a Redis restart would do to the worker's cron jobs: entries and job keys gone.

    Only keys of cron job ids (``<cron name>:<ms>``) are touched — the worker started
    here enqueued them — never anything else in the shared Redis.
    """
    from redis.asyncio import Redis

    names = [job.name for job in CRON_JOBS]
    redis = Redis.from_url(REDIS_URL)
    try:
        removed = 0
        for name in names:
            for kind in ("job", "in-progress", "result", "retry"):
                async for key in redis.scan_iter(match=f"arq:{kind}:{name}:*", count=500):
                    removed += await redis.delete(key)
        queued = await redis.zrange("arq:queue", 0, -1)
        mine = [m for m in queued if m.decode().split(":", 1)[0] in names]
        if mine:
            removed += await redis.zrem("arq:queue", *mine)
        return removed
    finally:
        await redis.aclose()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis (XF_REDIS_URL)")
async def test_sigkill_mid_dispatch_loses_nothing_and_receivers_dedupe(db, tmp_path):
    receiver = Receiver(delay=0.05)  # a slow receiver: 50 ms per request
    receiver.hold_after = 12  # the 13th+ request hangs until the worker has been killed
    town = await new_town(db, webhook=receiver.url())
    created = []
    for i in range(N):
        created += await put(db, town, None, f"crash-{i}", channels=["webhook"])
    expected = {str(n.delivery_id) for n in created}
    log = tmp_path / "worker.log"
    first = second = None

    async def statuses() -> Counter:
        async with db.session(town.scope) as session:
            rows = await session.execute(
                select(Notification.status, func.count()).where(MINE).group_by(Notification.status)
            )
            return Counter(dict(rows.all()))

    try:
        await forget_jobs_in_redis()
        first = start_worker(log)

        async def in_flight() -> bool:
            assert first.poll() is None, log.read_text()
            return len(receiver.requests) > receiver.hold_after

        await wait_for(in_flight, WORKER_STARTUP, "the first worker to be mid-dispatch")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = await statuses()
        # the killed batch: received (or on its way) but never recorded as sent
        assert at_kill[NotificationStatus.SENDING] >= 1, at_kill
        assert at_kill[NotificationStatus.SENT] < N, at_kill
        receiver.release.set()
        receiver.hold_after = None

        await forget_jobs_in_redis()
        await asyncio.sleep(LEASE + 0.5)  # the dead worker's lease runs out
        second = start_worker(log)

        async def all_sent() -> bool:
            assert second.poll() is None, log.read_text()
            return (await statuses())[NotificationStatus.SENT] == N

        try:
            await wait_for(all_sent, WORKER_STARTUP + 10, "every notification to be SENT")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {await statuses()}\n{log.read_text()[-4000:]}") from exc
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)
        receiver.close()
        await forget_jobs_in_redis()

    delivered = Counter(i for i in receiver.delivery_ids() if i in expected)
    assert set(delivered) == expected  # none lost
    duplicates = {d for d, k in delivered.items() if k > 1}
    # the held request was received but never answered: delivered twice, deduped by its id
    assert 1 <= len(duplicates) <= at_kill[NotificationStatus.SENDING]
    assert await statuses() == Counter({NotificationStatus.SENT: N})
    text = log.read_text()  # JSON lines, arq's own included (backend/core/logging.py)
    events = [json.loads(line)["event"] for line in text.splitlines() if line.startswith("{")]
    started = [event for event in events if event.startswith("Starting worker for")]
    assert len(started) == 2 and all(JOB in line for line in started)  # our cron job is there
