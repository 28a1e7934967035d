"""Time in tests: the project's clock (``backend/core/clock.py``), moved on purpose.

A test that depends on the date or the time of day must fix "now" with one of
these, never read the wall clock: a test that passes today and fails next
month is a broken test (``make test-dates`` runs the suite under shifted dates,
``tests/test_clock_discipline.py`` finds wall-clock reads in test modules).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from backend.core import clock

SH = ZoneInfo("Asia/Shanghai")


def sh(y: int, m: int, d: int, h: int = 9, mi: int = 0) -> datetime:
    """A Shanghai wall-clock time."""
    return datetime(y, m, d, h, mi, tzinfo=SH)


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Stop the project's clock at ``moment`` for the block."""
    clock.set_clock(lambda: moment)
    try:
        yield
    finally:
        clock.set_clock(None)


@contextmanager
def ticking(start: datetime) -> Iterator[None]:
    """Start the project's clock at ``start`` and let it run (events keep their order)."""
    began = time.monotonic()
    clock.set_clock(lambda: start + timedelta(seconds=time.monotonic() - began))
    try:
        yield
    finally:
        clock.set_clock(None)


def set_time(moment: datetime) -> None:
    """Stop the clock at ``moment`` until the next call (tests that step through days)."""
    clock.set_clock(lambda: moment)


@contextmanager
def shifted_clock(delta: timedelta) -> Iterator[None]:
    """Run the in-process app ``delta`` away from the real time (real time keeps flowing).

    Only for tests whose assertions hold on any date (an expiry "in 40 days", a
    retention window): the result still depends on today's calendar otherwise.
    """
    clock.set_clock(lambda: datetime.now(UTC) + delta)
    try:
        yield
    finally:
        clock.set_clock(None)
