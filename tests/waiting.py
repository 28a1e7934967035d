"""Waiting for another process (a worker, a server) to reach a state: liveness, not speed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

# How long a freshly started worker may take to reach its first job: it runs every cron job
# at startup (the deadline scan, digest and statistics over every tenant the shared test
# database holds by then) on a 2-core machine that CI shares with other jobs. A bound for
# "it never got there", not a speed claim (speed lives in tests/bench/).
WORKER_STARTUP = 120


async def wait_for(predicate: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.05)
