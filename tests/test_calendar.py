"""China's working-day calendar: the 2026 State Council notice, loaded notices, never crashing."""

from __future__ import annotations

import json
from datetime import date

import pytest

from backend.cases import calendar as calendar_module
from backend.cases.calendar import (
    HolidayNotice,
    WorkingDayCalendar,
    parse_override_file,
)
from backend.core.errors import BadUserInput

D = date.fromisoformat

# A made-up 2027 notice: the real one is not published yet. Spring Festival
# Feb 5-13 off, make-up working days Sun Jan 31 and Sat Feb 20.
NOTICE_2027 = {
    "year": 2027,
    "source": "国务院办公厅关于2027年部分节假日安排的通知（测试用，虚构）",
    "days_off": [f"2027-02-{day:02d}" for day in range(5, 14)],
    "working_days": ["2027-01-31", "2027-02-20"],
}


def first_computed_year() -> int:
    """The first year from 2027 on without a published notice in the installed package.

    2027 with holidays 0.109, which computes its holidays but knows no make-up days;
    a newer package (or the lock file moving to one) learns 2027 from the State
    Council's notice, so the tests below ask the package instead of naming the year.
    """
    year = 2027
    while WorkingDayCalendar().has_official_data(year):
        year += 1
    return year


COMPUTED = first_computed_year()


@pytest.fixture
def cal() -> WorkingDayCalendar:
    return WorkingDayCalendar()


# -- 2026, as published by the State Council (and shipped by `holidays`) ------

NATIONAL_DAY_2026 = [
    ("2026-09-18", True, "ordinary Friday"),
    ("2026-09-19", False, "ordinary Saturday"),
    ("2026-09-20", True, "make-up Sunday for National Day"),
    ("2026-09-25", False, "Mid-Autumn Festival (Friday)"),
    *[(f"2026-10-0{day}", False, "National Day holiday Oct 1-7") for day in range(1, 8)],
    ("2026-10-08", True, "first working day after National Day"),
    ("2026-10-10", True, "make-up Saturday for National Day"),
    ("2026-10-11", False, "ordinary Sunday"),
]

SPRING_FESTIVAL_2026 = [
    ("2026-02-13", True, "Friday before"),
    ("2026-02-14", True, "make-up Saturday for Spring Festival"),
    *[(f"2026-02-{day}", False, "Spring Festival holiday Feb 15-23") for day in range(15, 24)],
    ("2026-02-24", True, "back to work"),
    ("2026-02-28", True, "make-up Saturday for Spring Festival"),
    ("2026-03-01", False, "ordinary Sunday"),
]

OTHER_2026 = [
    ("2026-01-01", False, "New Year's Day"),
    ("2026-01-02", False, "New Year's Day (moved)"),
    ("2026-01-04", True, "make-up Sunday for New Year"),
    ("2026-05-01", False, "Labour Day holiday May 1-5"),
    ("2026-05-05", False, "Labour Day holiday May 1-5"),
    ("2026-05-09", True, "make-up Saturday for Labour Day"),
]


@pytest.mark.parametrize(
    ("day", "working", "why"), NATIONAL_DAY_2026 + SPRING_FESTIVAL_2026 + OTHER_2026
)
def test_2026_follows_the_state_council_notice(
    cal: WorkingDayCalendar, day: str, working: bool, why: str
) -> None:
    assert cal.is_working_day(D(day)) is working, why


@pytest.mark.parametrize(
    ("day", "expected", "why"),
    [
        ("2026-10-01", "2026-10-08", "National Day rolls to Oct 8"),
        ("2026-10-08", "2026-10-08", "a working day is its own answer"),
        ("2026-09-19", "2026-09-20", "Saturday rolls to the make-up Sunday"),
        ("2026-02-15", "2026-02-24", "Spring Festival rolls to Feb 24"),
        ("2026-12-31", "2026-12-31", "last day of the year"),
    ],
)
def test_next_working_day_on_or_after(
    cal: WorkingDayCalendar, day: str, expected: str, why: str
) -> None:
    assert cal.next_working_day_on_or_after(D(day)) == D(expected), why


@pytest.mark.parametrize(
    ("day", "n", "expected", "why"),
    [
        ("2026-11-06", 5, "2026-11-13", "Friday + 5 skips one weekend"),
        ("2026-09-17", 5, "2026-09-23", "the make-up Sunday Sep 20 counts"),
        ("2026-09-30", 1, "2026-10-08", "the whole National Day week is skipped"),
        ("2026-10-09", 1, "2026-10-10", "the make-up Saturday counts"),
        ("2026-10-01", 0, "2026-10-08", "n=0 is the next working day on or after"),
    ],
)
def test_add_working_days_starts_counting_the_day_after(
    cal: WorkingDayCalendar, day: str, n: int, expected: str, why: str
) -> None:
    assert cal.add_working_days(D(day), n) == D(expected), why


def test_add_working_days_rejects_negative(cal: WorkingDayCalendar) -> None:
    with pytest.raises(ValueError):
        cal.add_working_days(D("2026-01-05"), -1)


# -- official vs computed years ------------------------------------------------


@pytest.mark.parametrize(
    ("year", "official"),
    [
        (2001, True),  # first notice the package ships
        (2011, True),  # has a December make-up day for 2012 too; still its own data
        (2025, True),
        (2026, True),
        (COMPUTED, False),  # computed: holidays estimated, no make-up days
        (1990, False),
        (2100, False),
    ],
)
def test_has_official_data_from_the_package(
    cal: WorkingDayCalendar, year: int, official: bool
) -> None:
    assert cal.has_official_data(year) is official


def test_loading_a_notice_makes_its_year_official() -> None:
    cal = WorkingDayCalendar.from_notices([parse_override_file(json.dumps(NOTICE_2027))])
    assert cal.has_official_data(2027)
    assert not cal.has_official_data(2028)


def test_a_year_without_a_notice_has_holidays_but_no_make_up_days(
    cal: WorkingDayCalendar,
) -> None:
    assert not cal.is_working_day(date(COMPUTED, 10, 1))  # National Day is computed
    saturdays = [date(COMPUTED, m, d) for m in range(1, 13) for d in (1, 8, 15, 22)]
    assert not any(cal.is_working_day(d) for d in saturdays if d.weekday() == 5)


def test_loaded_notice_overrides_the_package_for_its_year(cal: WorkingDayCalendar) -> None:
    loaded = WorkingDayCalendar.from_notices([parse_override_file(json.dumps(NOTICE_2027))])
    cases = [
        ("2027-02-20", False, True, "Saturday made a working day by the notice"),
        ("2027-01-31", False, True, "Sunday made a working day by the notice"),
        ("2027-02-12", True, False, "Friday made a day off by the notice"),
        ("2027-10-01", False, True, "not in this notice: a full notice replaces the package"),
        ("2027-02-14", False, False, "Sunday the notice does not mention stays off"),
    ]
    for day, before, after, why in cases:
        if COMPUTED == 2027:  # "before" is the package's computation, not a notice
            assert cal.is_working_day(D(day)) is before, why
        assert loaded.is_working_day(D(day)) is after, why


def test_single_override_corrects_one_day_of_a_package_year() -> None:
    cal = WorkingDayCalendar({D("2026-10-08"): False})
    assert not cal.is_working_day(D("2026-10-08"))
    assert cal.next_working_day_on_or_after(D("2026-10-01")) == D("2026-10-09")
    assert cal.is_working_day(D("2026-10-10"))  # the rest of 2026 is still the package's
    assert cal.has_official_data(2026)


# -- never crashes ----------------------------------------------------------------


def test_every_year_1990_to_2100_works(cal: WorkingDayCalendar) -> None:
    for year in range(1990, 2101):
        for day in (date(year, 1, 1), date(year, 10, 1), date(year, 12, 31)):
            cal.is_working_day(day)
            assert cal.next_working_day_on_or_after(day) >= day
            assert cal.add_working_days(day, 30) > day
        cal.has_official_data(year)


def test_a_failing_holidays_package_falls_back_to_monday_to_friday(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(**_: object) -> None:
        raise RuntimeError("no data")

    calendar_module._package_year.cache_clear()
    monkeypatch.setattr(calendar_module.holidays, "China", broken)
    try:
        cal = WorkingDayCalendar()
        assert cal.is_working_day(D("2026-10-01"))  # a Thursday
        assert not cal.is_working_day(D("2026-10-10"))  # a Saturday
        assert not cal.has_official_data(2026)
    finally:
        calendar_module._package_year.cache_clear()


# -- the override file ----------------------------------------------------------


def test_parse_override_file_reads_a_notice() -> None:
    notice = parse_override_file(json.dumps(NOTICE_2027, ensure_ascii=False))
    assert notice == HolidayNotice(
        year=2027,
        source=NOTICE_2027["source"],
        days_off=tuple(D(d) for d in NOTICE_2027["days_off"]),
        working_days=(D("2027-01-31"), D("2027-02-20")),
    )
    assert notice.overrides()[D("2027-02-20")] is True
    assert notice.overrides()[D("2027-02-05")] is False


def _notice(**changes: object) -> str:
    return json.dumps({**NOTICE_2027, **changes})


@pytest.mark.parametrize(
    ("text", "field", "why"),
    [
        ("not json", "file", "not JSON"),
        ("[]", "file", "not an object"),
        (_notice(workdays=[]), "file", "misspelt key"),
        (json.dumps({"source": "x", "days_off": ["2027-01-01"]}), "year", "no year"),
        (_notice(year="2027"), "year", "year as a string"),
        (_notice(year=1900), "year", "year out of range"),
        (_notice(source=""), "source", "no source"),
        (_notice(source="通" * 301), "source", "source too long"),
        (_notice(days_off="2027-01-01"), "days_off", "not a list"),
        (_notice(days_off=["2028-01-01"]), "days_off", "date outside the year"),
        (_notice(working_days=["2027-02-30"]), "working_days", "no such date"),
        (_notice(working_days=["20270220"]), "working_days", "not YYYY-MM-DD"),
        (_notice(working_days=[20270220]), "working_days", "not a string"),
        (_notice(working_days=["2027-02-06"]), "working_days", "both off and working"),
        (_notice(days_off=[], working_days=[]), "days_off", "no dates at all"),
    ],
)
def test_parse_override_file_rejects_bad_input(text: str, field: str, why: str) -> None:
    with pytest.raises(BadUserInput) as err:
        parse_override_file(text)
    assert err.value.field == field, why
    assert err.value.extensions["code"] == "BAD_USER_INPUT"
