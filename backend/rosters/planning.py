"""Planning a month: rules → shifts on the statutory calendar, idempotently, and the
duty leader's reminder the day before.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.authz.scope import path_covers, subtree_filter
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.policy import load_calendar
from backend.core.clock import now
from backend.core.errors import BadUserInput
from backend.notifications import service as notify
from backend.notifications.models import Notification, NotificationStatus
from backend.rosters import days
from backend.rosters.access import leader_unit_paths, tenant_zone, unit_in_scope
from backend.rosters.models import (
    PEOPLE_OF_KIND,
    DutyShift,
    LeaderLeave,
    RosterRule,
    ShiftKind,
    ShiftStatus,
    ShiftSwap,
)
from backend.rosters.pairings import paired_units
from backend.rosters.rules import explicit_leaders, rule_people, unit_leaders
from backend.tenants.models import OrgUnit

REMINDER_KIND = "shift_reminder"


REMINDER_AT = time(9, 0)  # the day before the shift, tenant time


@dataclass
class PlanResult:
    unit_path: str
    month: str
    created: int = 0
    updated: int = 0
    removed: int = 0
    kept: int = 0
    unfilled: list[date] = field(default_factory=list)
    shifts: list[DutyShift] = field(default_factory=list)
    unpaired_leaders: list[str] = field(default_factory=list)  # down-visits: nowhere to go


class _Busy:
    """Who is already on duty when, and who is on leave, while a month is planned."""

    def __init__(self, leaves: list[LeaderLeave]) -> None:
        self.windows: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
        self.leaves: dict[uuid.UUID, list[tuple[date, date]]] = defaultdict(list)
        for leave in leaves:
            self.leaves[leave.user_id].append((leave.first_day, leave.last_day))

    def add(self, leader: uuid.UUID, window: tuple[datetime, datetime]) -> None:
        self.windows[leader].append(window)

    def on_leave(self, leader: uuid.UUID, day: date) -> bool:
        return any(a <= day <= b for a, b in self.leaves[leader])

    def free(self, leader: uuid.UUID, day: date, window: tuple[datetime, datetime]) -> bool:
        return not self.on_leave(leader, day) and not any(
            days.overlaps(window, w) for w in self.windows[leader]
        )


@dataclass
class _Month:
    """One planning run's month: what every rule's assignment reads and updates."""

    year: int
    mon: int
    period: str
    calendar: WorkingDayCalendar
    tz: ZoneInfo
    today: date
    busy: _Busy  # leaders' shifts and leave, growing as slots are filled
    existing: list[DutyShift]  # this month's shifts of the rules being planned
    movable: dict[uuid.UUID, DutyShift]  # the PLANNED future ones no swap refers to
    result: PlanResult


async def plan_reception_days(
    session: AsyncSession, principal: Principal, *, unit_path: str, month: str
) -> PlanResult:
    """Generate the month's shifts for the active rules at ``unit_path`` and below.

    Idempotent: a slot (rule, day, seat) keeps its shift; only PLANNED shifts of days
    after today that no swap refers to are moved, re-assigned or removed. Confirmed,
    swapped, checked-in shifts and everything up to today stay as they are.
    """
    year, mon = days.parse_month(month)
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    tz = await tenant_zone(session, unit.tenant_id)
    today = now().astimezone(tz).date()
    if (year, mon) < (today.year, today.month):
        raise BadUserInput(f"{month} is in the past", field="month")
    period = days.period_of(year, mon)
    result = PlanResult(unit.path, period)
    rule_rows = list(
        await session.scalars(
            select(RosterRule).where(
                RosterRule.active.is_(True), subtree_filter(RosterRule.unit_path, [unit.path])
            )
        )
    )
    rule_rows.sort(key=lambda r: (days.PLAN_ORDER[r.kind], r.unit_path.count("/"), r.unit_path))
    if not rule_rows:
        return result
    units = {
        u.id: u
        for u in await session.scalars(
            select(OrgUnit).where(OrgUnit.id.in_({r.unit_id for r in rule_rows}))
        )
    }
    explicit = await explicit_leaders(session, [r.id for r in rule_rows])
    defaults = await unit_leaders(session, [r.unit_id for r in rule_rows if r.id not in explicit])
    eligible_users = {r.id: explicit.get(r.id) or defaults.get(r.unit_id, []) for r in rule_rows}
    staff = await rule_people(session, [r.id for r in rule_rows if r.kind in PEOPLE_OF_KIND])
    all_ids = list({u.id for users in eligible_users.values() for u in users})
    leader_paths = await leader_unit_paths(session, all_ids)
    people_ids = [p.id for persons in staff.values() for p in persons]
    month = await _month(
        session, rule_rows, [*all_ids, *people_ids], (year, mon), tz, today, result
    )
    names = {u.id: u.username for users in eligible_users.values() for u in users}
    for rule in rule_rows:
        eligible = [
            u.id
            for u in eligible_users[rule.id]
            if any(path_covers(p, rule.unit_path) for p in leader_paths.get(u.id, []))
        ]
        if rule.kind in PEOPLE_OF_KIND:  # seeds 001, 003: the rule's named people
            eligible = [p.id for p in staff.get(rule.id, []) if p.active]
        unit = units[rule.unit_id]
        if rule.kind == ShiftKind.DOWN_VISIT:
            level = days.DOWN_VISIT_TARGET[unit.level]
            targets = await paired_units(session, unit.path, level)
            result.unpaired_leaders += [names[ld] for ld in eligible if not targets.get(ld)]
            on_days = days.duty_days(
                ShiftKind.DOWN_VISIT, unit.level, month.year, month.mon, month.calendar
            )
            desired = _down_visits(month, rule, eligible, targets, on_days)
        else:
            desired = await _assign(session, month, rule, unit, eligible)
        await _apply(session, month, rule, unit, desired)
    for s in month.movable.values():
        if s.rule_id in {r.id for r in rule_rows} and s not in result.shifts:
            if s.leader_id is not None:
                await cancel_reminder(session, s, s.leader_id)
            await session.delete(s)
            result.removed += 1
    await session.flush()
    fixed = [s for s in month.existing if s.id not in month.movable]
    result.shifts = sorted(
        [*result.shifts, *fixed], key=lambda s: (s.day, s.unit_path, s.starts_at, s.slot)
    )
    return result


async def _month(
    session: AsyncSession,
    rule_rows: list[RosterRule],
    leader_ids: list[uuid.UUID],
    year_month: tuple[int, int],
    tz: ZoneInfo,
    today: date,
    result: PlanResult,
) -> _Month:
    """The month's existing shifts, which of them may move, and who is busy when."""
    year, mon = year_month
    first, last = days.month_bounds(year, mon)
    period = days.period_of(year, mon)
    existing = list(
        await session.scalars(
            select(DutyShift).where(
                DutyShift.rule_id.in_([r.id for r in rule_rows]), DutyShift.period == period
            )
        )
    )
    ids = [s.id for s in existing]
    swapped_ids = set(
        await session.scalars(select(ShiftSwap.shift_id).where(ShiftSwap.shift_id.in_(ids)))
    ) | set(
        await session.scalars(
            select(ShiftSwap.other_shift_id).where(ShiftSwap.other_shift_id.in_(ids))
        )
    )
    movable = {
        s.id: s
        for s in existing
        if s.status == ShiftStatus.PLANNED and s.day > today and s.id not in swapped_ids
    }
    lo = datetime.combine(first - timedelta(days=1), time(0), tz)
    hi = datetime.combine(last + timedelta(days=15), time(0), tz)
    others = await session.scalars(
        select(DutyShift).where(
            or_(DutyShift.leader_id.in_(leader_ids), DutyShift.person_id.in_(leader_ids)),
            DutyShift.starts_at < hi,
            DutyShift.ends_at > lo,
        )
    )
    leaves = await session.scalars(
        select(LeaderLeave).where(
            LeaderLeave.user_id.in_(leader_ids),
            LeaderLeave.first_day <= last + timedelta(days=15),
            LeaderLeave.last_day >= first - timedelta(days=1),
        )
    )
    busy = _Busy(list(leaves))
    for s in others:
        if s.id not in movable:
            busy.add(on_duty(s), (s.starts_at, s.ends_at))
    calendar = await load_calendar(session)
    return _Month(year, mon, period, calendar, tz, today, busy, existing, movable, result)


def on_duty(shift: DutyShift) -> uuid.UUID:
    """Who holds the shift: its leader, or the named person of a people's kind."""
    holder = shift.leader_id or shift.person_id
    assert holder is not None
    return holder


def _holder_column(rule: RosterRule) -> ColumnElement:
    return DutyShift.person_id if rule.kind in PEOPLE_OF_KIND else DutyShift.leader_id


# (day, seat) → leader, window, and the unit the shift is kept at when it is not the
# rule's own (a down-visit's paired township)
Slots = dict[tuple[date, int], tuple[uuid.UUID, datetime, datetime, OrgUnit | None]]


async def _assign(
    session: AsyncSession, month: _Month, rule: RosterRule, unit: OrgUnit, eligible: list[uuid.UUID]
) -> Slots:
    """The slots this rule wants filled this month, with the leader for each."""
    kind = ShiftKind(rule.kind)
    on_days = days.duty_days(
        kind, unit.level, month.year, month.mon, month.calendar, rule.day_of_month
    )
    fixed = {
        (s.day, s.slot): s
        for s in month.existing
        if s.rule_id == rule.id and s.id not in month.movable
    }
    if kind in days.ALL_LEADERS_KINDS or kind in days.FIXED_LEADER_KINDS:
        return _seated(month, rule, kind, eligible, on_days, fixed)
    return await _rotated(session, month, rule, eligible, on_days, fixed)


def _seated(
    month: _Month,
    rule: RosterRule,
    kind: ShiftKind,
    eligible: list[uuid.UUID],
    on_days: list[date],
    fixed: dict[tuple[date, int], DutyShift],
) -> Slots:
    """Every leader of the rule (all-leaders kinds) or its one leader, each duty day."""
    desired: Slots = {}
    seats = eligible if kind in days.ALL_LEADERS_KINDS else eligible[:1]
    for day in on_days:
        window = days.local_window(day, rule.start_time, rule.end_time, month.tz)
        for seat, leader in enumerate(seats):
            if (day, seat) in fixed or day <= month.today:
                continue
            if month.busy.free(leader, day, window):
                desired[(day, seat)] = (leader, *window, None)
                month.busy.add(leader, window)
            elif kind in days.FIXED_LEADER_KINDS:
                month.result.unfilled.append(day)
        if not seats and day > month.today:
            month.result.unfilled.append(day)
    return desired


async def _rotated(
    session: AsyncSession,
    month: _Month,
    rule: RosterRule,
    eligible: list[uuid.UUID],
    on_days: list[date],
    fixed: dict[tuple[date, int], DutyShift],
) -> Slots:
    """Rotations: fair round-robin continuing from the rule's earlier months this year."""
    first = date(month.year, month.mon, 1)
    counts: dict[uuid.UUID, int] = defaultdict(int)
    holder = _holder_column(rule)
    rows = await session.execute(
        select(holder, func.count())
        .where(
            DutyShift.rule_id == rule.id,
            DutyShift.day >= date(month.year, 1, 1),
            DutyShift.day < first,
        )
        .group_by(holder)
    )
    for leader, n in rows:
        counts[leader] = int(n)
    last = await session.scalar(
        select(holder)
        .where(DutyShift.rule_id == rule.id, DutyShift.day < first)
        .order_by(DutyShift.day.desc(), DutyShift.slot.desc())
        .limit(1)
    )
    desired: Slots = {}
    for day in on_days:
        if (day, 0) in fixed:
            counts[on_duty(fixed[(day, 0)])] += 1
            last = on_duty(fixed[(day, 0)])
            continue
        if day <= month.today:
            continue
        window = days.local_window(day, rule.start_time, rule.end_time, month.tz)
        pick = days.pick_fair(eligible, counts, last, lambda ld: month.busy.free(ld, day, window))  # noqa: B023
        if pick is None:
            month.result.unfilled.append(day)
            continue
        counts[pick] += 1
        last = pick
        desired[(day, 0)] = (pick, *window, None)
        month.busy.add(pick, window)
    return desired


def _down_visits(
    month: _Month,
    rule: RosterRule,
    eligible: list[uuid.UUID],
    targets: dict[uuid.UUID, list[OrgUnit]],
    on_days: list[date],
) -> Slots:
    """下访约访 (seeds 002, 003): on the 15th every leader of the rule goes to each unit it
    is paired with — one shift per (leader, paired unit), kept at that unit so that its
    leader receives the visits registered there. A leader paired with several units
    splits the window among them (in path order); a leader paired with none has no
    shift (``unpaired_leaders``).

    Seats: a pair keeps the seat of its existing movable shift (idempotent re-planning);
    fixed shifts keep theirs; new pairs take the lowest free seat.
    """
    desired: Slots = {}
    for day in on_days:
        todays = [s for s in month.existing if s.rule_id == rule.id and s.day == day]
        fixed = {(s.leader_id, s.unit_id) for s in todays if s.id not in month.movable}
        used = {s.slot for s in todays if s.id not in month.movable}
        before = {(s.leader_id, s.unit_id): s.slot for s in todays if s.id in month.movable}
        if day <= month.today:
            continue
        full = days.local_window(day, rule.start_time, rule.end_time, month.tz)
        wanted: list[tuple[uuid.UUID, OrgUnit, tuple[datetime, datetime]]] = []
        for leader in eligible:
            paired = targets.get(leader, [])
            for part, unit in enumerate(paired):
                if (leader, unit.id) in fixed:
                    continue
                window = days.split_window(full, part, len(paired))
                if not month.busy.free(leader, day, window):
                    month.result.unfilled.append(day)
                    continue
                month.busy.add(leader, window)
                wanted.append((leader, unit, window))
        seats: dict[int, int] = {}
        for i, (leader, unit, _) in enumerate(wanted):
            seat = before.get((leader, unit.id))
            if seat is not None and seat not in used:
                seats[i] = seat
                used.add(seat)
        free = (n for n in range(len(todays) + len(wanted) + 1) if n not in used)
        for i, (leader, unit, window) in enumerate(wanted):
            seat = seats[i] if i in seats else next(free)
            used.add(seat)
            desired[(day, seat)] = (leader, *window, unit)
    return desired


async def _apply(
    session: AsyncSession, month: _Month, rule: RosterRule, unit: OrgUnit, desired: Slots
) -> None:
    """Create, move or keep the rule's shifts so that they are ``desired``."""
    result = month.result
    by_slot = {(s.day, s.slot): s for s in month.movable.values() if s.rule_id == rule.id}
    people = rule.kind in PEOPLE_OF_KIND
    for (day, seat), (who, starts, ends, at) in sorted(desired.items(), key=lambda d: d[0]):
        shift = by_slot.get((day, seat))
        at = at or unit
        leader, person = (None, who) if people else (who, None)
        if shift is None:
            shift = DutyShift(
                tenant_id=rule.tenant_id,
                rule_id=rule.id,
                period=month.period,
                day=day,
                slot=seat,
                unit_id=at.id,
                unit_path=at.path,
                kind=rule.kind,
                leader_id=leader,
                person_id=person,
                starts_at=starts,
                ends_at=ends,
                status=ShiftStatus.PLANNED,
                title=f"{at.name}{days.TITLES[rule.kind]}",
                location=rule.location,
                updated_at=now(),
            )
            session.add(shift)
            await session.flush()
            result.created += 1
            await remind(session, shift, month.tz)
        elif (on_duty(shift), shift.starts_at, shift.ends_at, shift.unit_id) != (
            who,
            starts,
            ends,
            at.id,
        ):
            if shift.leader_id is not None and shift.leader_id != leader:
                await cancel_reminder(session, shift, shift.leader_id)
            shift.leader_id, shift.person_id = leader, person
            shift.starts_at, shift.ends_at = starts, ends
            shift.unit_id, shift.unit_path = at.id, at.path
            shift.title = f"{at.name}{days.TITLES[rule.kind]}"
            shift.location, shift.updated_at = rule.location, now()
            result.updated += 1
            await session.flush()
            await remind(session, shift, month.tz)
        else:
            result.kept += 1
        result.shifts.append(shift)


def _reminder_key(shift: DutyShift, leader_id: uuid.UUID) -> str:
    return notify.dedupe_key(leader_id, REMINDER_KIND, shift.id, shift.day)


async def remind(session: AsyncSession, shift: DutyShift, tz: ZoneInfo) -> None:
    """The duty leader's reminder at 09:00 the day before (the outbox dedupes re-runs).
    Named people hold no account: nobody in the system to remind."""
    if shift.starts_at <= now() or shift.leader_id is None:
        return
    local_start = shift.starts_at.astimezone(tz)
    await notify.enqueue(
        session,
        tenant_id=shift.tenant_id,
        recipient_id=shift.leader_id,
        kind=REMINDER_KIND,
        subject=f"值班提醒：{shift.day.isoformat()} {shift.title}",
        body=(
            f"您于{shift.day.isoformat()} {local_start:%H:%M}起在{shift.unit_path}"
            f"担任{shift.title}。{shift.location or ''}"
        ),
        dedupe_key=_reminder_key(shift, shift.leader_id),
        not_before=datetime.combine(shift.day - timedelta(days=1), REMINDER_AT, tz),
        data={"shiftId": str(shift.id), "day": shift.day.isoformat(), "unitPath": shift.unit_path},
    )


async def cancel_reminder(session: AsyncSession, shift: DutyShift, leader_id: uuid.UUID) -> None:
    """A leader who no longer has the shift is not reminded of it (if not sent yet)."""
    await session.execute(
        delete(Notification)
        .where(
            Notification.kind == REMINDER_KIND,
            Notification.dedupe_key == _reminder_key(shift, leader_id),
            Notification.status == NotificationStatus.PENDING,
        )
        .execution_options(synchronize_session=False)
    )
