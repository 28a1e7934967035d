"""Which days each kind of duty falls on, and who takes the next turn — pure functions.

The calendar is the one the deadlines use (:class:`WorkingDayCalendar`, with the
State Council notices loaded), so a 三五 day that is not a working day moves to
the next working day exactly as a due date would.
"""

from __future__ import annotations

import calendar as _stdlib_calendar
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.cases.calendar import WorkingDayCalendar
from backend.core.errors import BadUserInput
from backend.core.validation import FIRST_DATE, LAST_DATE, SUPPORTED_DATES
from backend.rosters.models import ShiftKind
from backend.tenants.models import OrgUnitLevel as L

# 三五 grassroots days: which day of the month each level goes down.
GRASSROOTS_DAY_OF_LEVEL: dict[str, int] = {L.CITY: 25, L.COUNTY: 15, L.TOWNSHIP: 5}
DOWN_VISIT_DAY = 15
# 下访约访 (seeds 002, 003): a down-visit rule's leaders go to the units they are paired
# with one level down — county (city) leaders to townships, township leaders to villages.
DOWN_VISIT_TARGET: dict[str, str] = {
    L.CITY: L.TOWNSHIP,
    L.COUNTY: L.TOWNSHIP,
    L.TOWNSHIP: L.VILLAGE,
}

# Where each kind of duty can be organised.
LEVELS_OF_KIND: dict[ShiftKind, frozenset[str]] = {
    ShiftKind.GRASSROOTS_DAY: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP}),
    ShiftKind.RECEPTION_HALL: frozenset({L.CITY, L.COUNTY}),
    # seed 003 (Yiwu): 全市各镇街、各部门 … 每个工作日都安排一名班子成员在窗口接待 —
    # township AND department windows
    ShiftKind.WINDOW_DUTY: frozenset({L.TOWNSHIP, L.DEPARTMENT}),
    ShiftKind.VILLAGE_OFFICE: frozenset({L.VILLAGE}),
    ShiftKind.MAIN_LEADER: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP}),
    ShiftKind.DOWN_VISIT: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP}),
    ShiftKind.PUBLIC_RECEPTION: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP}),
    # seed 003: 预约接访 by the leader the petition office sends the matter to, wherever
    # that leader holds a reception; scheduled one by one (scheduleAppointmentReception)
    ShiftKind.APPOINTMENT: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP, L.DEPARTMENT}),
    # seed 003: "两代表一委员"联合接访机制，定期接待群众来访
    ShiftKind.JOINT_RECEPTION: frozenset({L.CITY, L.COUNTY, L.TOWNSHIP}),
    # seed 001: 相关部门人员进驻接访大厅，每日1名律师坐班，心理咨询师提供心理干预服务 — the
    # reception halls are the city's and the counties'
    ShiftKind.LAWYER_DUTY: frozenset({L.CITY, L.COUNTY}),
    ShiftKind.COUNSELLING: frozenset({L.CITY, L.COUNTY}),
    # seeds 001, 003: 村级每周、工作片每旬、镇街每月一次集中排查调处矛盾纠纷 — the work areas
    # (工作片) are the township's own teams, so their sweep is a township rule
    ShiftKind.VILLAGE_SWEEP: frozenset({L.VILLAGE}),
    ShiftKind.WORK_AREA_SWEEP: frozenset({L.TOWNSHIP}),
    ShiftKind.TOWNSHIP_SWEEP: frozenset({L.TOWNSHIP}),
}
# Kinds scheduled one by one, never from a rule.
SCHEDULED_KINDS = frozenset({ShiftKind.PUBLIC_RECEPTION, ShiftKind.APPOINTMENT})
# Kinds whose rule may name a day of the month (default the 1st, moved to a working day).
DAY_OF_MONTH_KINDS = frozenset(
    {ShiftKind.MAIN_LEADER, ShiftKind.JOINT_RECEPTION, ShiftKind.TOWNSHIP_SWEEP}
)
# 每旬: the work-area sweep on the first working day of each ten days (1st, 11th, 21st)
DECADE_STARTS = (1, 11, 21)

# Fixed-date duties are planned before the daily rotations, so a rotation skips the
# leaders who are already out on a 三五 day.
PLAN_ORDER: dict[str, int] = {
    ShiftKind.GRASSROOTS_DAY: 0,
    ShiftKind.MAIN_LEADER: 1,
    ShiftKind.DOWN_VISIT: 2,
    # sweeps fall on fixed days too: before the daily rotations
    ShiftKind.TOWNSHIP_SWEEP: 2,
    ShiftKind.WORK_AREA_SWEEP: 2,
    ShiftKind.VILLAGE_SWEEP: 2,
    ShiftKind.VILLAGE_OFFICE: 3,
    ShiftKind.WINDOW_DUTY: 4,
    ShiftKind.RECEPTION_HALL: 5,
    # people's rotations never compete with leaders for a slot
    ShiftKind.JOINT_RECEPTION: 6,
    ShiftKind.LAWYER_DUTY: 7,
    ShiftKind.COUNSELLING: 8,
}

# Every listed leader goes (one shift each) — the rest rotate one leader per day.
# (A joint reception seats all of its deputies and committee members together.)
# (A work-area sweep: every leader of the rule sweeps the work area (工作片) it heads.)
ALL_LEADERS_KINDS = frozenset(
    {ShiftKind.GRASSROOTS_DAY, ShiftKind.JOINT_RECEPTION, ShiftKind.WORK_AREA_SWEEP}
)
FIXED_LEADER_KINDS = frozenset({ShiftKind.MAIN_LEADER})

TITLES: dict[str, str] = {
    ShiftKind.GRASSROOTS_DAY: "三五工作日下基层",
    ShiftKind.RECEPTION_HALL: "领导接访日",
    ShiftKind.WINDOW_DUTY: "窗口值班",
    ShiftKind.VILLAGE_OFFICE: "村周五坐班",
    ShiftKind.MAIN_LEADER: "主要领导接访日",
    ShiftKind.DOWN_VISIT: "15日下访",
    ShiftKind.PUBLIC_RECEPTION: "季度公开接访",
    ShiftKind.APPOINTMENT: "预约接访",
    ShiftKind.JOINT_RECEPTION: "两代表一委员联合接访",
    ShiftKind.LAWYER_DUTY: "律师坐班",
    ShiftKind.COUNSELLING: "心理咨询",
    ShiftKind.VILLAGE_SWEEP: "村级矛盾纠纷排查",
    ShiftKind.WORK_AREA_SWEEP: "工作片矛盾纠纷排查",
    ShiftKind.TOWNSHIP_SWEEP: "镇街矛盾纠纷排查",
}

MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")
HHMM_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
ANNOUNCE_DAYS = 3


def parse_month(value: str, field: str = "month") -> tuple[int, int]:
    m = MONTH_RE.match(value or "")
    years = FIRST_DATE.year <= int(m.group(1)) <= LAST_DATE.year if m else False
    if not m or not 1 <= int(m.group(2)) <= 12 or not years:
        raise BadUserInput(f"{field} must look like 2026-10, within {SUPPORTED_DATES}", field=field)
    return int(m.group(1)), int(m.group(2))


def parse_hhmm(value: str, field: str) -> time:
    m = HHMM_RE.match(value or "")
    if not m:
        raise BadUserInput(f"{field} must be HH:MM (24-hour)", field=field)
    return time(int(m.group(1)), int(m.group(2)))


def check_times(start: str, end: str) -> None:
    if parse_hhmm(end, "endTime") <= parse_hhmm(start, "startTime"):
        raise BadUserInput("endTime must be after startTime", field="endTime")


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, _stdlib_calendar.monthrange(year, month)[1])


def period_of(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def duty_days(
    kind: ShiftKind,
    level: str,
    year: int,
    month: int,
    cal: WorkingDayCalendar,
    day_of_month: int | None = None,
) -> list[date]:
    """The days of ``year-month`` on which ``kind`` of duty at a ``level`` unit falls."""
    first, last = month_bounds(year, month)

    def nth(n: int) -> date:
        return cal.next_working_day_on_or_after(date(year, month, min(n, last.day)))

    if kind is ShiftKind.GRASSROOTS_DAY:
        return [nth(GRASSROOTS_DAY_OF_LEVEL[level])]
    if kind is ShiftKind.DOWN_VISIT:
        return [nth(DOWN_VISIT_DAY)]
    if kind in DAY_OF_MONTH_KINDS:
        return [nth(day_of_month or 1)]
    if kind is ShiftKind.WORK_AREA_SWEEP:
        return sorted({nth(n) for n in DECADE_STARTS})
    days = [first + timedelta(days=i) for i in range(last.day)]
    if kind is ShiftKind.VILLAGE_SWEEP:
        # weekly: the first working day of each week (Monday to Sunday) falling this month
        return [d for d in days if cal.is_working_day(d) and _first_working_of_week(d, cal)]
    if kind is ShiftKind.VILLAGE_OFFICE:
        return [d for d in days if d.weekday() == 4 and cal.is_working_day(d)]
    if kind in (
        ShiftKind.RECEPTION_HALL,
        ShiftKind.WINDOW_DUTY,
        ShiftKind.LAWYER_DUTY,
        ShiftKind.COUNSELLING,
    ):
        return [d for d in days if cal.is_working_day(d)]
    return []


def _first_working_of_week(day: date, cal: WorkingDayCalendar) -> bool:
    monday = day - timedelta(days=day.weekday())
    return not any(cal.is_working_day(monday + timedelta(days=i)) for i in range(day.weekday()))


def local_window(day: date, start: str, end: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The shift's start and end on ``day`` in the tenant's time zone, as UTC."""
    s = datetime.combine(day, parse_hhmm(start, "startTime"), tz).astimezone(UTC)
    e = datetime.combine(day, parse_hhmm(end, "endTime"), tz).astimezone(UTC)
    return s, e


def split_window(
    window: tuple[datetime, datetime], part: int, parts: int
) -> tuple[datetime, datetime]:
    """Part ``part`` of ``parts`` equal, consecutive pieces of ``window`` (whole minutes):
    a leader paired with two townships spends the morning in one, the afternoon in the
    other."""
    start, end = window
    minutes = int((end - start).total_seconds() // 60)
    return (
        start + timedelta(minutes=minutes * part // parts),
        start + timedelta(minutes=minutes * (part + 1) // parts),
    )


def pick_fair(
    eligible: Sequence[uuid.UUID],
    counts: Mapping[uuid.UUID, int],
    last: uuid.UUID | None,
    available: Callable[[uuid.UUID], bool],
) -> uuid.UUID | None:
    """Fair round-robin: the available leader with the fewest turns this year; ties go to
    the next in rotation after ``last``. Without leave this is plain round-robin; a leader
    back from leave catches up, so yearly counts stay within one of each other."""
    if not eligible:
        return None
    start = eligible.index(last) + 1 if last in eligible else 0
    rotation = [*eligible[start:], *eligible[:start]]
    candidates = [leader for leader in rotation if available(leader)]
    if not candidates:
        return None
    return min(candidates, key=lambda leader: counts.get(leader, 0))


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]
