"""Statutory time limits, due dates with their rule, and warning colours."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from backend.cases.calendar import WorkingDayCalendar, parse_override_file
from backend.cases.rules import (
    STATUTORY_LIMITS,
    DeadlinePolicy,
    Step,
    compute_due,
    end_of_day,
    extended_handling_days,
    fixed_due,
    held_days_between,
    warning_color,
)
from backend.core.errors import BadUserInput

D = date.fromisoformat
T = datetime.fromisoformat
POLICY = DeadlinePolicy()
CAL = WorkingDayCalendar()


# -- the regulation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "days", "working", "article"),
    [
        (Step.ROUTING, 15, False, "第二十二条"),
        (Step.ACCEPTANCE, 15, False, "第二十三条"),
        (Step.OBJECTION, 5, True, "第二十三条"),
        (Step.OBJECTION_DECISION, None, True, "第二十三条"),
        (Step.HANDLING, 60, False, "第三十四条"),
        (Step.REVIEW_REQUEST, 30, False, "第三十五条"),
        (Step.REVIEW_DECISION, 30, False, "第三十五条"),
        (Step.RE_REVIEW_REQUEST, 30, False, "第三十六条"),
        (Step.RE_REVIEW_DECISION, 30, False, "第三十六条"),
        (Step.SUPERVISION, None, False, ""),
        (Step.FOLLOW_UP, None, False, ""),
    ],
)
def test_statutory_limits_cite_the_2022_regulation(
    step: Step, days: int | None, working: bool, article: str
) -> None:
    limit = STATUTORY_LIMITS[step]
    assert (limit.step, limit.days, limit.working_days) == (step, days, working)
    assert article in limit.article
    assert limit.description_zh


def test_every_step_has_a_limit_entry() -> None:
    assert set(STATUTORY_LIMITS) == set(Step)


# -- due dates ---------------------------------------------------------------------


def test_routing_due_in_national_day_rolls_to_the_first_working_day_after() -> None:
    due = compute_due(Step.ROUTING, T("2026-09-16T09:00:00+08:00"), CAL, POLICY)
    assert due.due_date == D("2026-10-08")
    assert due.rule == {
        "step": "ROUTING",
        "article": "《信访工作条例》第二十二条",
        "start": "2026-09-16T09:00:00+08:00",
        "startDate": "2026-09-16",
        "days": 15,
        "counting": "calendar",
        "rawDueDate": "2026-10-01",
        "rolledOverDays": [f"2026-10-0{day}" for day in range(1, 8)],
        "heldDays": 0,
        "officialCalendar": True,
    }


def test_due_at_is_end_of_day_in_shanghai_returned_in_utc() -> None:
    due = compute_due(Step.ROUTING, T("2026-09-16T09:00:00+08:00"), CAL, POLICY)
    assert due.due_at == datetime(2026, 10, 8, 15, 59, 59, 999999, tzinfo=UTC)
    assert due.due_at.utcoffset() == timedelta(0)
    assert due.due_at.astimezone(POLICY.tz).isoformat() == "2026-10-08T23:59:59.999999+08:00"


def test_due_date_in_2027_is_computed_without_make_up_days_and_says_so() -> None:
    due = compute_due(Step.ROUTING, T("2026-12-20T09:00:00+08:00"), CAL, POLICY)
    assert due.due_date == D("2027-01-04")
    assert due.rule["officialCalendar"] is False


def test_loaded_2027_notice_turning_a_saturday_into_a_working_day_changes_the_due_date() -> None:
    notice = parse_override_file(
        json.dumps(
            {
                "year": 2027,
                "source": "国务院办公厅关于2027年部分节假日安排的通知（测试用，虚构）",
                "days_off": ["2027-02-05", "2027-02-06", "2027-02-07", "2027-02-08"],
                "working_days": ["2027-02-20"],
            }
        )
    )
    start = T("2027-02-05T10:00:00+08:00")  # + 15 days = Saturday 2027-02-20

    computed = compute_due(Step.ROUTING, start, CAL, POLICY)
    official = compute_due(Step.ROUTING, start, WorkingDayCalendar.from_notices([notice]), POLICY)

    assert (computed.due_date, computed.rule["officialCalendar"]) == (D("2027-02-22"), False)
    assert computed.rule["rolledOverDays"] == ["2027-02-20", "2027-02-21"]
    assert (official.due_date, official.rule["officialCalendar"]) == (D("2027-02-20"), True)
    assert official.rule["rolledOverDays"] == []


@pytest.mark.parametrize(
    ("start", "expected", "skipped", "why"),
    [
        ("2026-11-06T16:00:00+08:00", "2026-11-13", ["2026-11-07", "2026-11-08"], "weekend"),
        ("2026-09-17T09:00:00+08:00", "2026-09-23", ["2026-09-19"], "make-up Sunday counts"),
        (
            "2026-09-28T09:00:00+08:00",
            "2026-10-10",
            [f"2026-10-0{day}" for day in range(1, 8)],
            "National Day week skipped, make-up Saturday counts",
        ),
    ],
)
def test_objection_is_counted_in_working_days(
    start: str, expected: str, skipped: list[str], why: str
) -> None:
    due = compute_due(Step.OBJECTION, T(start), CAL, POLICY)
    assert due.due_date == D(expected), why
    assert due.rule["counting"] == "working"
    assert due.rule["rolledOverDays"] == skipped


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ("2026-09-25T09:00:00+08:00", "2026-10-10"),  # National Day make-up Saturday
        ("2026-02-13T09:00:00+08:00", "2026-02-28"),  # Spring Festival make-up Saturday
    ],
)
def test_due_date_on_a_make_up_saturday_stays_there(start: str, expected: str) -> None:
    due = compute_due(Step.ACCEPTANCE, T(start), CAL, POLICY)
    assert due.due_date == D(expected)
    assert due.rule["rawDueDate"] == expected
    assert due.rule["rolledOverDays"] == []


def test_start_date_is_the_tenant_local_date() -> None:
    # 17:30 UTC on the 15th is 01:30 on the 16th in Shanghai.
    due = compute_due(Step.ROUTING, T("2026-09-15T17:30:00+00:00"), CAL, POLICY)
    assert due.rule["startDate"] == "2026-09-16"
    assert due.rule["start"] == "2026-09-16T01:30:00+08:00"
    assert due.due_date == D("2026-10-08")


@pytest.mark.parametrize(
    ("kwargs", "expected", "why"),
    [
        ({}, "2026-05-06", "60 days -> May 1, rolled past Labour Day"),
        ({"days": extended_handling_days(POLICY, 30)}, "2026-06-01", "90 days -> Sunday May 31"),
        ({"held_days": 10}, "2026-05-11", "a 10-day hearing pushes the raw date 10 days"),
    ],
)
def test_handling_extension_and_hold(kwargs: dict[str, int], expected: str, why: str) -> None:
    due = compute_due(Step.HANDLING, T("2026-03-02T09:00:00+08:00"), CAL, POLICY, **kwargs)
    assert due.due_date == D(expected), why
    assert due.rule["heldDays"] == kwargs.get("held_days", 0)


@pytest.mark.parametrize("days", [0, 31])
def test_extension_is_at_most_30_days(days: int) -> None:
    with pytest.raises(BadUserInput) as err:
        extended_handling_days(POLICY, days)
    assert err.value.field == "days"


@pytest.mark.parametrize(
    ("step", "started", "resumed", "held"),
    [
        (Step.HANDLING, "2026-11-06T10:00:00+08:00", "2026-11-06T16:00:00+08:00", 0),
        (Step.HANDLING, "2026-11-06T10:00:00+08:00", "2026-11-09T10:00:00+08:00", 3),
        (Step.OBJECTION, "2026-11-06T10:00:00+08:00", "2026-11-09T10:00:00+08:00", 1),
        (Step.HANDLING, "2026-11-09T10:00:00+08:00", "2026-11-06T10:00:00+08:00", 0),
    ],
)
def test_held_days_are_measured_in_the_steps_own_unit(
    step: Step, started: str, resumed: str, held: int
) -> None:
    assert held_days_between(step, T(started), T(resumed), CAL, POLICY) == held


def test_supervision_order_due_date_on_a_holiday_rolls_forward() -> None:
    due = fixed_due(Step.SUPERVISION, D("2026-10-03"), T("2026-09-21T09:00:00+08:00"), CAL, POLICY)
    assert due.due_date == D("2026-10-08")
    assert due.rule["rawDueDate"] == "2026-10-03"
    assert due.rule["days"] == 12


def test_supervision_order_due_date_before_the_order_is_rejected() -> None:
    with pytest.raises(BadUserInput) as err:
        fixed_due(Step.SUPERVISION, D("2026-09-01"), T("2026-09-21T09:00:00+08:00"), CAL, POLICY)
    assert err.value.field == "dueDate"


def test_supervision_needs_explicit_days() -> None:
    with pytest.raises(ValueError):
        compute_due(Step.SUPERVISION, T("2026-09-21T09:00:00+08:00"), CAL, POLICY)


def test_naive_start_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        compute_due(Step.ROUTING, datetime(2026, 9, 16, 9), CAL, POLICY)


# -- tenant policy -------------------------------------------------------------


def test_tenant_may_shorten_a_limit() -> None:
    policy = DeadlinePolicy(limits={Step.ROUTING: 7})
    due = compute_due(Step.ROUTING, T("2026-09-16T09:00:00+08:00"), CAL, policy)
    assert (due.due_date, due.rule["days"]) == (D("2026-09-23"), 7)


def test_tenant_may_not_lengthen_a_limit() -> None:
    with pytest.raises(BadUserInput) as err:
        DeadlinePolicy(limits={Step.HANDLING: 61})
    assert err.value.field == "limits"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limits": {"NO_SUCH_STEP": 5}}, "limits"),
        ({"limits": {Step.ROUTING: 0}}, "limits"),
        ({"counting": "lunar"}, "counting"),
        ({"red_days": 11, "yellow_days": 10}, "redDays"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_invalid_policy_is_rejected(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BadUserInput) as err:
        DeadlinePolicy(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


def test_policy_limits_from_stored_json_use_step_names() -> None:
    policy = DeadlinePolicy(limits={"ROUTING": 10, "SUPERVISION": 20})  # type: ignore[dict-item]
    assert policy.days_for(Step.ROUTING) == 10
    assert policy.days_for(Step.SUPERVISION) == 20  # no statutory number: any default


def test_working_day_counting_policy_applies_to_every_step() -> None:
    policy = DeadlinePolicy(counting="working")
    due = compute_due(Step.ROUTING, T("2026-09-16T09:00:00+08:00"), CAL, policy)
    # 15 working days after Sep 16: Sep 17-30 gives 10 (make-up Sunday Sep 20 in,
    # Mid-Autumn Friday Sep 25 out), Oct 1-7 off, then Oct 8, 9, 10 (make-up Saturday), 12, 13.
    assert due.due_date == D("2026-10-13")
    assert due.rule["counting"] == "working"


# -- warning colours ---------------------------------------------------------------

NOW = T("2026-03-02T10:00:00+08:00")


@pytest.mark.parametrize(
    ("days_left", "color"),
    [
        (-1, "RED"),  # overdue
        (0, "RED"),  # due today
        (3, "RED"),  # exactly red_days
        (4, "YELLOW"),
        (10, "YELLOW"),  # exactly yellow_days
        (11, "BLUE"),
    ],
)
def test_warning_colour_boundaries(days_left: int, color: str) -> None:
    due_at = end_of_day(NOW.date() + timedelta(days=days_left), POLICY)
    assert warning_color(due_at, NOW, POLICY) == color


def test_no_due_date_has_no_colour() -> None:
    assert warning_color(None, NOW, POLICY) == "NONE"


def test_warning_colour_counts_tenant_local_days() -> None:
    # 23:30 in Shanghai is still 15:30 UTC the same day: the 5th is 3 days away.
    late_evening = T("2026-03-02T15:30:00+00:00")
    assert warning_color(end_of_day(D("2026-03-05"), POLICY), late_evening, POLICY) == "RED"
    assert warning_color(end_of_day(D("2026-03-06"), POLICY), late_evening, POLICY) == "YELLOW"


def test_warning_colour_uses_tenant_thresholds() -> None:
    policy = DeadlinePolicy(red_days=1, yellow_days=2)
    colors = [
        warning_color(end_of_day(NOW.date() + timedelta(days=k), policy), NOW, policy)
        for k in (1, 2, 3)
    ]
    assert colors == ["RED", "YELLOW", "BLUE"]
