"""The one source of "now", injectable so tests and jobs can move time, and local days.

Timestamps are UTC; dates that people mean ("received on 11-02", "due 11-17") are
local dates in the tenant's time zone (``Tenant.timezone``, default below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from time import monotonic
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"  # a tenant's zone unless the tenant says otherwise

_now: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return _now()


def set_clock(fn: Callable[[], datetime] | None) -> None:
    """Replace the clock (``None`` restores the real one)."""
    global _now
    _now = fn or (lambda: datetime.now(UTC))


def local_today(tz: str = DEFAULT_TIMEZONE) -> date:
    """Today's date in the zone ``tz`` (a tenant's)."""
    return now().astimezone(ZoneInfo(tz)).date()


def local_day_start(day: date, tz: str = DEFAULT_TIMEZONE) -> datetime:
    """The UTC instant at which ``day`` begins in the zone ``tz``."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_instant(value: datetime, zone: tzinfo) -> str:
    """``value`` as people read it: ISO 8601 in ``zone`` with its offset, to the second.

    The one rendering of an instant that leaves the product — the ``DateTime`` scalar and
    every cell of an export alike (docs/decisions.md "DateTimes leave the API in the
    caller's city's zone, to the second"), so a CSV and the API never disagree on a time.
    A naive value is a stored timestamp, hence UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).replace(microsecond=0).isoformat()


def response_zone(city_zone: str | None, default: str = DEFAULT_TIMEZONE) -> ZoneInfo:
    """The zone a caller reads times in: its city's (``city_zone``), else the deployment's
    ``default`` (supervisors, platform staff) — one rule for GraphQL and the exports."""
    return ZoneInfo(city_zone or default)


@contextmanager
def replaying(moment: datetime) -> Iterator[None]:
    """Run the block as if it were ``moment`` (the clock ticks on from there), then give the
    clock back as it was — real or already moved. Replaying history through the services,
    as the demo does, gives every event the time it would have had."""
    global _now
    previous, began = _now, monotonic()
    _now = lambda: moment + timedelta(seconds=monotonic() - began)  # noqa: E731
    try:
        yield
    finally:
        _now = previous
