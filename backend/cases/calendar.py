"""China's statutory working-day calendar, with the State Council's yearly notice on top.

Two sources, in order of precedence:

1. the yearly notice (国务院办公厅关于 YYYY 年部分节假日安排的通知) that platform
   admins load with ``xinfang holidays load FILE`` (:func:`parse_override_file`);
2. the ``holidays`` package's China calendar: public holidays plus the 调休
   make-up Saturdays/Sundays in ``weekend_workdays``.

The package ships the notice for each past year and computes future years
without make-up days (2027 in v0.109), so :meth:`WorkingDayCalendar.has_official_data`
lets callers say "computed, not official". Nothing here touches the database and
nothing raises for a date in 1990-2100: if the package fails for a year, that
year falls back to Monday-Friday.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays

from backend.core.errors import BadUserInput
from backend.core.validation import FIRST_DATE, LAST_DATE

MIN_YEAR = FIRST_DATE.year  # the supported dates (backend/core/validation.py) are these years
MAX_YEAR = LAST_DATE.year
SOURCE_MAX_LEN = 300  # holiday_overrides.source


@dataclass(frozen=True)
class _PackageYear:
    days_off: frozenset[date]  # public holidays, incl. days off moved by 调休
    weekend_workdays: frozenset[date]  # make-up working Saturdays/Sundays


@lru_cache(maxsize=256)
def _package_year(year: int) -> _PackageYear | None:
    """The package's data for one year, or ``None`` if it cannot give any."""
    try:
        cn = holidays.China(years=year)
        return _PackageYear(
            days_off=frozenset(d for d in cn if d.year == year),
            weekend_workdays=frozenset(d for d in cn.weekend_workdays if d.year == year),
        )
    except Exception:  # the package is a data source, never a reason to fail a request
        return None


def warm(today: date) -> None:
    """Compute the package's data for the years around ``today`` now (a long-running worker
    calls this at start): the China calendar of one year costs ~0.4 s (lunar dates), which
    a job would otherwise pay in the middle of its run — the digest's escalation cut-off."""
    for year in (today.year - 1, today.year, today.year + 1):
        if MIN_YEAR <= year <= MAX_YEAR:
            _package_year(year)


def _is_weekend(d: date) -> bool:
    return d.weekday() >= 5


class WorkingDayCalendar:
    """Working days in mainland China: weekends and public holidays off, 调休 days on.

    ``overrides`` maps a date to True (working day) or False (day off) and always
    wins. For a year in ``override_years`` (a full notice was loaded) the notice is
    the whole truth: the package is ignored for that year, so its estimated
    holidays cannot leak in; any day the notice does not mention is a working day
    Monday-Friday and a day off at the weekend. For other years a stray override
    only corrects that one day on top of the package.
    """

    def __init__(
        self,
        overrides: Mapping[date, bool] | None = None,
        override_years: Iterable[int] = (),
    ) -> None:
        self._overrides = dict(overrides or {})
        self._override_years = frozenset(override_years)

    @classmethod
    def from_notices(cls, notices: Iterable[HolidayNotice]) -> WorkingDayCalendar:
        """A calendar from loaded notices (later notices win on a shared date)."""
        overrides: dict[date, bool] = {}
        years: set[int] = set()
        for notice in notices:
            overrides.update(notice.overrides())
            years.add(notice.year)
        return cls(overrides, years)

    def is_working_day(self, d: date) -> bool:
        if d in self._overrides:
            return self._overrides[d]
        if d.year in self._override_years:
            return not _is_weekend(d)
        data = _package_year(d.year)
        if data is None:
            return not _is_weekend(d)
        if _is_weekend(d):
            return d in data.weekend_workdays
        return d not in data.days_off

    def next_working_day_on_or_after(self, d: date) -> date:
        while not self.is_working_day(d):
            d += timedelta(days=1)
        return d

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day after ``d`` (``d`` itself never counts; n=0 gives
        the next working day on or after ``d``)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if n == 0:
            return self.next_working_day_on_or_after(d)
        while n:
            d += timedelta(days=1)
            if self.is_working_day(d):
                n -= 1
        return d

    def has_official_data(self, year: int) -> bool:
        """Whether ``year`` follows a published notice rather than a computation.

        True when a notice for the year was loaded, or when the package lists at
        least one make-up working day for it between January and November — every
        notice since 2001 has some (Spring Festival, Labour Day, National Day), while
        a computed year has none. December is ignored because the package files
        the make-up days for the next New Year there (2001-12-29 belongs to the
        2002 notice), which would otherwise mark a year official too early.
        """
        if year in self._override_years:
            return True
        data = _package_year(year)
        return data is not None and any(d.month < 12 for d in data.weekend_workdays)


@dataclass(frozen=True)
class HolidayNotice:
    """One year's State Council notice: the days off and the make-up working days."""

    year: int
    source: str
    days_off: tuple[date, ...]
    working_days: tuple[date, ...]

    def overrides(self) -> dict[date, bool]:
        return {d: False for d in self.days_off} | {d: True for d in self.working_days}


_NOTICE_KEYS = {"year", "source", "days_off", "working_days"}


def parse_override_file(text: str) -> HolidayNotice:
    """Parse the file of ``xinfang holidays load FILE``: one year's notice as JSON.

    Format (UTF-8 JSON object, exactly these keys)::

        {
          "year": 2027,
          "source": "国务院办公厅关于2027年部分节假日安排的通知",
          "days_off": ["2027-01-01", "2027-02-05", ...],
          "working_days": ["2027-02-20", ...]
        }

    ``days_off`` lists the holiday days (weekends inside a holiday block may be
    listed or not: weekends are off anyway); ``working_days`` lists the make-up
    working Saturdays/Sundays. Every date must be ISO ``YYYY-MM-DD`` inside
    ``year``, and no date may be in both lists. Raises :class:`BadUserInput`
    naming the offending key.
    """
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise BadUserInput(f"holiday file is not valid JSON: {exc}", field="file") from exc
    if not isinstance(raw, dict):
        raise BadUserInput("holiday file must be a JSON object", field="file")
    unknown = sorted(set(raw) - _NOTICE_KEYS)
    if unknown:
        raise BadUserInput(f"unknown keys in holiday file: {', '.join(unknown)}", field="file")

    year = raw.get("year")
    if not isinstance(year, int) or isinstance(year, bool) or not MIN_YEAR <= year <= MAX_YEAR:
        raise BadUserInput(f"year must be an integer {MIN_YEAR}-{MAX_YEAR}", field="year")
    source = raw.get("source")
    if not isinstance(source, str) or not source.strip():
        raise BadUserInput("source must name the notice the dates come from", field="source")
    if len(source.strip()) > SOURCE_MAX_LEN:
        raise BadUserInput(f"source must be at most {SOURCE_MAX_LEN} characters", field="source")

    days_off = _dates(raw.get("days_off", []), year, "days_off")
    working_days = _dates(raw.get("working_days", []), year, "working_days")
    both = sorted(set(days_off) & set(working_days))
    if both:
        listed = ", ".join(d.isoformat() for d in both)
        raise BadUserInput(
            f"dates both off and working: {listed}", field="working_days", dates=listed
        )
    if not days_off and not working_days:
        raise BadUserInput("holiday file lists no dates", field="days_off")
    return HolidayNotice(year, source.strip(), days_off, working_days)


def _dates(value: Any, year: int, field: str) -> tuple[date, ...]:
    if not isinstance(value, list):
        raise BadUserInput(f"{field} must be a list of YYYY-MM-DD dates", field=field)
    out: set[date] = set()
    for item in value:
        try:
            if not (isinstance(item, str) and len(item) == 10):
                raise ValueError(item)
            d = date.fromisoformat(item)
        except ValueError as exc:
            raise BadUserInput(f"{field}: {item!r} is not a YYYY-MM-DD date", field=field) from exc
        if d.year != year:
            raise BadUserInput(f"{field}: {d.isoformat()} is not in {year}", field=field)
        out.add(d)
    return tuple(sorted(out))
