"""Statutory time limits of the 2022 《信访工作条例》, in one place, and the due-date arithmetic.

Every limit carries the article it comes from, and every computed due date
carries the rule that produced it, so an official can see why a case is red.
Pure functions: the caller passes the calendar (with the loaded State Council
notices) and the tenant's :class:`DeadlinePolicy`.

Counting (DOMAIN.md "Deadlines and warnings"): the regulation does not define
日, so by default days are calendar days starting the day after the triggering
event, on the tenant's local date; the objection limit is explicitly working
days. Whatever the counting, a due date on a weekend or holiday rolls forward
to the next working day.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from backend.cases.calendar import WorkingDayCalendar
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.errors import BadUserInput

REGULATION = "《信访工作条例》"


class Step(StrEnum):
    """A clock on a case; each open step has its own due date."""

    ROUTING = "ROUTING"  # 转送、交办
    ACCEPTANCE = "ACCEPTANCE"  # 受理
    OBJECTION = "OBJECTION"  # 对转送、交办提出异议
    OBJECTION_DECISION = "OBJECTION_DECISION"  # 信访工作机构核实异议（同意退回或不同意）
    HANDLING = "HANDLING"  # 办理（出具处理意见）
    REVIEW_REQUEST = "REVIEW_REQUEST"  # 请求复查
    REVIEW_DECISION = "REVIEW_DECISION"  # 复查决定
    RE_REVIEW_REQUEST = "RE_REVIEW_REQUEST"  # 请求复核
    RE_REVIEW_DECISION = "RE_REVIEW_DECISION"  # 复核决定
    SUPERVISION = "SUPERVISION"  # 督办: the order sets its own due date
    FOLLOW_UP = "FOLLOW_UP"  # closure follow-up duties: set per case
    REPORT_BACK = "REPORT_BACK"  # 京、省交办报结: the assigning bureau's own date


@dataclass(frozen=True)
class TimeLimit:
    """One statutory limit; ``days`` is None when the regulation sets no number."""

    step: Step
    days: int | None
    working_days: bool
    article: str
    description_zh: str


def _limit(
    step: Step, days: int | None, article: str, description_zh: str, *, working: bool = False
) -> TimeLimit:
    return TimeLimit(step, days, working, f"{REGULATION}{article}", description_zh)


STATUTORY_LIMITS: dict[Step, TimeLimit] = {
    Step.ROUTING: _limit(
        Step.ROUTING, 15, "第二十二条", "信访部门自收到信访事项之日起15日内转送、交办"
    ),
    Step.ACCEPTANCE: _limit(
        Step.ACCEPTANCE,
        15,
        "第二十二条、第二十三条",
        "有权处理机关自收到信访事项之日起15日内决定是否受理并书面告知信访人",
    ),
    Step.OBJECTION: _limit(
        Step.OBJECTION,
        5,
        "第二十三条",
        "对不属于本机关职权范围的转送、交办事项，自收到之日起5个工作日内提出异议并说明理由",
        working=True,
    ),
    # Art. 23 sets no number for the routing office's answer to an objection: a working-day
    # default (OBJECTION_DECISION_DAYS) that a tenant may set in its policy's limits
    Step.OBJECTION_DECISION: _limit(
        Step.OBJECTION_DECISION,
        None,
        "第二十三条",
        "信访工作机构对有权处理机关提出的异议进行核实，同意的收回重新转送交办，不同意的退回办理",
        working=True,
    ),
    Step.HANDLING: _limit(
        Step.HANDLING,
        60,
        "第三十四条",
        "自受理之日起60日内办结；情况复杂的经批准可延长，延长不超过30日",
    ),
    Step.REVIEW_REQUEST: _limit(
        Step.REVIEW_REQUEST, 30, "第三十五条", "信访人自收到书面答复之日起30日内请求复查"
    ),
    Step.REVIEW_DECISION: _limit(
        Step.REVIEW_DECISION, 30, "第三十五条", "复查机关自收到复查请求之日起30日内提出复查意见"
    ),
    Step.RE_REVIEW_REQUEST: _limit(
        Step.RE_REVIEW_REQUEST, 30, "第三十六条", "信访人自收到复查意见之日起30日内请求复核"
    ),
    Step.RE_REVIEW_DECISION: _limit(
        Step.RE_REVIEW_DECISION,
        30,
        "第三十六条",
        "复核机关自收到复核请求之日起30日内提出复核意见（听证时间不计入）",
    ),
    Step.SUPERVISION: _limit(Step.SUPERVISION, None, "", "督办：期限由督办单规定"),
    Step.FOLLOW_UP: _limit(Step.FOLLOW_UP, None, "", "办结后续工作：期限按本地要求"),
    Step.REPORT_BACK: _limit(
        Step.REPORT_BACK, None, "", "国家信访局、省信访局交办事项：按交办单期限报结"
    ),
}

MAX_EXTENSION_DAYS = 30  # Art. 34: one extension of at most 30 days
OBJECTION_DECISION_DAYS = 5  # the routing office's answer to an objection (working days)

# Windows that are rights of the petitioner (Arts. 35, 36: asking for 复查/复核) or of the
# receiving body (Art. 23: objecting to a transfer), not limits on the officials who owe an
# answer: a tenant policy may shorten the officials' own limits, never these (DOMAIN.md).
RIGHTS_WINDOWS = frozenset({Step.REVIEW_REQUEST, Step.RE_REVIEW_REQUEST, Step.OBJECTION})

# Case types a tenant may give their own handling limit (DOMAIN.md "handling": suggestions
# and accusations follow the tenant's configured limits, default the 60 days of claims).
# Arts. 32 (建议意见) and 33 (检举控告) set no number; a tenant's limit for them may only be
# shorter than the 60 days Art. 34 gives claims, which keep the HANDLING limit.
TYPE_HANDLING_ARTICLES = {
    "SUGGESTION": f"{REGULATION}第三十二条",
    "ACCUSATION": f"{REGULATION}第三十三条",
}

# Clocks owed to someone outside the case's own statutory path: they outlive the steps a
# transition ends by default (reply, rejection, closure) and only their own act ends them —
# the evaluation verdict's follow-up (FOLLOW_UP) and the report to the bureau that assigned
# the case down (REPORT_BACK, seed 000).
OWED_OUTSIDE = frozenset({Step.FOLLOW_UP, Step.REPORT_BACK})

Counting = Literal["calendar", "working"]
Color = Literal["RED", "YELLOW", "BLUE", "NONE"]


@dataclass(frozen=True)
class DeadlinePolicy:
    """A tenant's deadline settings; limits may only shorten the statutory ones.

    Only the officials' own limits can be set: the windows in :data:`RIGHTS_WINDOWS`
    (the petitioner's review and re-review requests, the receiving body's objection)
    are refused with BAD_USER_INPUT. ``limits`` keys may be given as strings (from stored JSON); they are
    normalised to :class:`Step`. Steps without a statutory number (SUPERVISION,
    FOLLOW_UP) accept any positive default. ``counting`` applies to every step
    except OBJECTION, which is always working days.
    """

    limits: dict[Step, int] = field(default_factory=dict)
    counting: Counting = "calendar"
    red_days: int = 3
    yellow_days: int = 10
    timezone: str = DEFAULT_TIMEZONE
    handling_by_type: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "handling_by_type", _type_limits(self.handling_by_type))
        limits: dict[Step, int] = {}
        for key, days in self.limits.items():
            try:
                step = Step(key)
            except ValueError:
                raise BadUserInput(f"unknown step {key!r}", field="limits") from None
            if step in RIGHTS_WINDOWS:
                whose = "receiving body" if step is Step.OBJECTION else "petitioner"
                raise BadUserInput(
                    f"{step}: the {STATUTORY_LIMITS[step].days}-day window is a right of the "
                    f"{whose} ({STATUTORY_LIMITS[step].article}); a tenant may shorten only "
                    "the officials' own limits",
                    field="limits",
                )
            statutory = STATUTORY_LIMITS[step].days
            if not isinstance(days, int) or isinstance(days, bool) or days < 1:
                raise BadUserInput(f"{step}: days must be a positive integer", field="limits")
            if statutory is not None and days > statutory:
                raise BadUserInput(
                    f"{step}: {days} days is longer than the statutory {statutory} "
                    f"({STATUTORY_LIMITS[step].article}); a tenant may only shorten it",
                    field="limits",
                )
            limits[step] = days
        object.__setattr__(self, "limits", limits)
        if self.counting not in ("calendar", "working"):
            raise BadUserInput("counting must be 'calendar' or 'working'", field="counting")
        if not 0 <= self.red_days <= self.yellow_days:
            raise BadUserInput("need 0 <= redDays <= yellowDays", field="redDays")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise BadUserInput(f"unknown time zone {self.timezone!r}", field="timezone") from None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def days_for(self, step: Step) -> int:
        """The tenant's limit for ``step``, else the statutory one."""
        days = self.limits.get(step, STATUTORY_LIMITS[step].days)
        if days is None:
            raise ValueError(f"{step} has no default limit; pass days= explicitly")
        return days

    def handling_days(self, case_type: str) -> int:
        """The handling limit of a case of ``case_type``: the tenant's limit for its type
        (suggestions, accusations), else the HANDLING limit."""
        return self.handling_by_type.get(str(case_type), self.days_for(Step.HANDLING))

    def counts_working_days(self, step: Step) -> bool:
        return STATUTORY_LIMITS[step].working_days or self.counting == "working"


def _type_limits(raw: dict[str, int]) -> dict[str, int]:
    """Validated per-type handling limits: only suggestions and accusations, 1..60 days
    (a tenant may shorten the statutory 60 days, never lengthen them)."""
    statutory = STATUTORY_LIMITS[Step.HANDLING]
    out: dict[str, int] = {}
    for case_type, days in raw.items():
        name = str(case_type)
        if name not in TYPE_HANDLING_ARTICLES:
            raise BadUserInput(
                f"{name}: only SUGGESTION and ACCUSATION have their own handling limit; "
                "claims use the HANDLING limit",
                field="handlingLimitsByType",
            )
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise BadUserInput(
                f"{name}: days must be a positive integer", field="handlingLimitsByType"
            )
        if days > (statutory.days or 0):
            raise BadUserInput(
                f"{name}: {days} days is longer than the statutory {statutory.days} "
                f"({statutory.article}); a tenant may only shorten it",
                field="handlingLimitsByType",
            )
        out[name] = days
    return out


@dataclass(frozen=True)
class DueDate:
    """A step's due date, the instant it expires (UTC) and why (``rule``, stored as JSON)."""

    due_date: date
    due_at: datetime
    rule: dict[str, Any]


def compute_due(
    step: Step,
    start: datetime,
    calendar: WorkingDayCalendar,
    policy: DeadlinePolicy,
    *,
    days: int | None = None,
    held_days: int = 0,
) -> DueDate:
    """Due date of ``step`` triggered at ``start`` (timezone-aware).

    Day 1 is the tenant-local day after ``start``. Calendar counting: raw =
    start date + days + held_days; working counting (and always OBJECTION): the
    (days + held_days)-th working day after the start date. A raw date on a
    weekend or holiday rolls forward to the next working day.

    ``days`` replaces the limit (handling after an extension, see
    :func:`extended_handling_days`). ``held_days`` is the total time the clock
    was stopped (hearing, approved suspension), in the step's own unit — use
    :func:`held_days_between` per hold and add them up; after a hold, recompute
    with the same ``start`` and the new total.

    ``rule["rolledOverDays"]`` lists the non-working days the due date was
    pushed past: with calendar counting, those between the raw date and the due
    date; with working-day counting, those skipped while counting.
    """
    step = Step(step)
    n = policy.days_for(step) if days is None else days
    if n < 0 or held_days < 0:
        raise ValueError("days and held_days must be >= 0")
    start_local = _local(start, policy)
    start_date = start_local.date()
    working = policy.counts_working_days(step)
    if working:
        raw = calendar.add_working_days(start_date, n + held_days)
        due = raw
        skipped = _non_working(calendar, start_date + timedelta(days=1), due)
    else:
        raw = start_date + timedelta(days=n + held_days)
        due = calendar.next_working_day_on_or_after(raw)
        skipped = _non_working(calendar, raw, due)
    official = all(calendar.has_official_data(y) for y in range(start_date.year, due.year + 1))
    rule = {
        "step": step.value,
        "article": STATUTORY_LIMITS[step].article,
        "start": start_local.replace(microsecond=0).isoformat(),  # as DateTimes read
        "startDate": start_date.isoformat(),
        "days": n,
        "counting": "working" if working else "calendar",
        "rawDueDate": raw.isoformat(),
        "rolledOverDays": [d.isoformat() for d in skipped],
        "heldDays": held_days,
        "officialCalendar": official,
    }
    return DueDate(due, end_of_day(due, policy), rule)


def fixed_due(
    step: Step,
    due_date: date,
    start: datetime,
    calendar: WorkingDayCalendar,
    policy: DeadlinePolicy,
) -> DueDate:
    """A due date set by a person (督办 order's ``dueDate``), rolled off holidays like any other.

    Recorded as calendar days from ``start`` so the rule reads the same way.
    """
    start_date = _local(start, policy).date()
    if due_date < start_date:
        raise BadUserInput("dueDate must not be before the day it is set", field="dueDate")
    days = (due_date - start_date).days
    calendar_policy = DeadlinePolicy(
        counting="calendar",
        red_days=policy.red_days,
        yellow_days=policy.yellow_days,
        timezone=policy.timezone,
    )
    return compute_due(step, start, calendar, calendar_policy, days=days)


def handling_due(
    case_type: str, start: datetime, calendar: WorkingDayCalendar, policy: DeadlinePolicy
) -> DueDate:
    """The HANDLING clock of a case of ``case_type`` accepted at ``start``: the tenant's limit
    for its type when it set one (the rule then names the type and its article too)."""
    due = compute_due(Step.HANDLING, start, calendar, policy, days=policy.handling_days(case_type))
    if str(case_type) not in policy.handling_by_type:
        return due
    rule = {
        **due.rule,
        "caseType": str(case_type),
        "typeArticle": TYPE_HANDLING_ARTICLES[str(case_type)],
    }
    return dataclasses.replace(due, rule=rule)


# rule keys a recomputation (extension, hold, holiday notice) carries over from the old rule
CARRIED_RULE_KEYS = ("extensionDays", "caseType", "typeArticle")


def extended_handling_days(policy: DeadlinePolicy, extension_days: int) -> int:
    """Handling days after the one approved extension of at most 30 days (Art. 34)."""
    if not 1 <= extension_days <= MAX_EXTENSION_DAYS:
        raise BadUserInput(f"an extension is 1-{MAX_EXTENSION_DAYS} days", field="days")
    return policy.days_for(Step.HANDLING) + extension_days


def held_days_between(
    step: Step,
    hold_started: datetime,
    resumed: datetime,
    calendar: WorkingDayCalendar,
    policy: DeadlinePolicy,
) -> int:
    """Days one hold stopped ``step``'s clock, in the step's unit, on tenant-local dates.

    Counts the days from the hold's start date up to, not including, the resume
    date: a hold started and lifted on the same day costs nothing, one from
    Friday to Monday stops a calendar clock 3 days and a working-day clock 1.
    """
    first = _local(hold_started, policy).date()
    last = _local(resumed, policy).date()
    if last <= first:
        return 0
    if not policy.counts_working_days(Step(step)):
        return (last - first).days
    return sum(
        calendar.is_working_day(first + timedelta(days=k)) for k in range((last - first).days)
    )


def warning_color(due_at: datetime | None, now: datetime, policy: DeadlinePolicy) -> Color:
    """Warning colour of an open step, on tenant-local dates.

    days_left = local due date - local today. NONE without a due date; RED when
    overdue or days_left <= red_days (default: due today .. in 3 days); YELLOW
    when days_left <= yellow_days (4 .. 10); BLUE beyond (11 or more).
    """
    if due_at is None:
        return "NONE"
    if due_at < now:
        return "RED"
    days_left = (_local(due_at, policy).date() - _local(now, policy).date()).days
    if days_left <= policy.red_days:
        return "RED"
    if days_left <= policy.yellow_days:
        return "YELLOW"
    return "BLUE"


def end_of_day(d: date, policy: DeadlinePolicy) -> datetime:
    """23:59:59.999999 on ``d`` in the tenant's time zone, as an aware UTC datetime."""
    return datetime.combine(d, time.max, tzinfo=policy.tz).astimezone(UTC)


def _local(moment: datetime, policy: DeadlinePolicy) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(policy.tz)


def _non_working(calendar: WorkingDayCalendar, first: date, end: date) -> list[date]:
    """Non-working days in [first, end)."""
    return [
        first + timedelta(days=k)
        for k in range((end - first).days)
        if not calendar.is_working_day(first + timedelta(days=k))
    ]
