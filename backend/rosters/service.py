"""Duty rosters: rules → shifts, swaps and leave, check-in, first receivers, pairings.

Like every service: (session, principal), contract errors naming the field,
never commits. Scope works like cases: a grant at a unit reaches the shifts,
rules and pairings of that unit's subtree (one prefix predicate on the copied
``unit_path``); a leader always sees his own shifts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.scope import path_covers, subtree_filter
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import Case, Channel
from backend.cases.policy import load_calendar
from backend.cases.visibility import read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import parse_id
from backend.notifications import service as notify
from backend.notifications.models import Notification, NotificationStatus
from backend.rosters import rules
from backend.rosters.models import (
    OPEN_STATUSES,
    RECEPTION_KINDS,
    DutyShift,
    LeaderLeave,
    RosterRule,
    RosterRuleLeader,
    ShiftKind,
    ShiftReception,
    ShiftStatus,
    ShiftSwap,
    SwapStatus,
    VillagePairing,
)
from backend.tenants.models import OrgUnit, OrgUnitLevel, Role, RoleAssignment, Tenant, User
from backend.tenants.service import unit_by_path

REMINDER_KIND = "shift_reminder"
REMINDER_AT = time(9, 0)  # the day before the shift, tenant time
MAX_RANGE_DAYS = 366
CHECK_IN_EARLY = timedelta(hours=1)
SWAPPABLE = (ShiftStatus.PLANNED, ShiftStatus.CONFIRMED, ShiftStatus.SWAPPED)


# --- scope helpers ---------------------------------------------------------------------


async def _tz(session: AsyncSession, tenant_id: uuid.UUID | None) -> ZoneInfo:
    tenant = await session.get(Tenant, tenant_id) if tenant_id else None
    return ZoneInfo(tenant.timezone if tenant else "Asia/Shanghai")


def _reaches(principal: Principal, obj: str, act: str, path: str) -> bool:
    return any(path_covers(g.unit_path, path) for g in allowed_grants(principal, obj, act))


async def _unit_in_scope(
    session: AsyncSession, principal: Principal, path: str, field: str, obj: str, act: str
) -> OrgUnit:
    """A unit of the caller's tenant inside a grant that allows ``act``; else BAD_USER_INPUT
    (absent and out of scope read the same, as for cases)."""
    require(principal, obj, act)
    v.path(path, field)
    unit = await unit_by_path(session, path)
    if unit is None or not _reaches(principal, obj, act, unit.path):
        raise BadUserInput(f"unknown org unit {path}", field=field)
    return unit


def shift_predicate(principal: Principal) -> ColumnElement[bool]:
    """Shifts the principal may read: its grants' subtrees, and its own shifts."""
    if principal.tenant_id is None:
        return false()
    paths = [g.unit_path for g in allowed_grants(principal, "shift", "read")]
    return or_(
        subtree_filter(DutyShift.unit_path, paths), DutyShift.leader_id == principal.account_id
    )


async def _leader_over(session: AsyncSession, username: str, unit_path: str, field: str) -> User:
    """A user of this tenant holding LEADER at ``unit_path`` or above it."""
    user = await session.scalar(select(User).where(User.username == (username or "").strip()))
    leader_paths = await _leader_paths(session, [user.id]) if user else {}
    if user is None or not any(path_covers(p, unit_path) for p in leader_paths.get(user.id, [])):
        # one answer whether the user is unknown or no leader there (nothing to enumerate)
        raise BadUserInput(f"{username} is not a leader over {unit_path}", field=field)
    return user


async def _leader_paths(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(RoleAssignment.user_id, OrgUnit.path)
        .join(
            OrgUnit,
            (OrgUnit.tenant_id == RoleAssignment.tenant_id)
            & (OrgUnit.id == RoleAssignment.org_unit_id),
        )
        .where(RoleAssignment.user_id.in_(user_ids), RoleAssignment.role == Role.LEADER)
    )
    out: dict[uuid.UUID, list[str]] = defaultdict(list)
    for uid, path in rows:
        out[uid].append(path)
    return out


# --- rules -----------------------------------------------------------------------------


@dataclass
class RuleView:
    rule: RosterRule
    leaders: list[User]


async def set_roster_rule(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str,
    kind: ShiftKind,
    leaders: list[str] | None = None,
    day_of_month: int | None = None,
    start_time: str = "09:00",
    end_time: str = "17:00",
    location: str | None = None,
    active: bool = True,
) -> RuleView:
    """Create or replace the rule of ``kind`` at a unit (one rule per unit and kind)."""
    unit = await _unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    kind = ShiftKind(kind)
    if kind is ShiftKind.PUBLIC_RECEPTION:
        raise BadUserInput(
            "public receptions are scheduled one by one (schedulePublicReception)", field="kind"
        )
    if unit.level not in rules.LEVELS_OF_KIND[kind]:
        raise BadUserInput(
            f"a {kind.value} roster cannot be kept at a {unit.level} unit", field="kind"
        )
    rules.check_times(start_time, end_time)
    if day_of_month is not None and (
        kind is not ShiftKind.MAIN_LEADER or not 1 <= day_of_month <= 31
    ):
        raise BadUserInput("dayOfMonth is 1-31 and only for MAIN_LEADER", field="dayOfMonth")
    if location is not None:
        location = v.text(location, "location", max_len=200, required=False) or None
    names = [n.strip() for n in (leaders or [])]
    if len(set(names)) != len(names):
        raise BadUserInput("a leader is listed twice", field="leaders")
    if kind is ShiftKind.MAIN_LEADER and len(names) != 1:
        raise BadUserInput("a MAIN_LEADER rule names exactly one leader", field="leaders")
    users = [await _leader_over(session, n, unit.path, "leaders") for n in names]
    rule = await session.scalar(
        select(RosterRule).where(RosterRule.unit_id == unit.id, RosterRule.kind == kind)
    )
    if rule is None:
        rule = RosterRule(tenant_id=unit.tenant_id, unit_id=unit.id, unit_path=unit.path, kind=kind)
        session.add(rule)
    rule.day_of_month = day_of_month
    rule.start_time, rule.end_time = start_time, end_time
    rule.location, rule.active, rule.updated_at = location, active, now()
    await session.flush()
    await session.execute(delete(RosterRuleLeader).where(RosterRuleLeader.rule_id == rule.id))
    for i, user in enumerate(users):
        session.add(
            RosterRuleLeader(tenant_id=unit.tenant_id, rule_id=rule.id, user_id=user.id, position=i)
        )
    await session.flush()
    return RuleView(rule, users)


async def roster_rules(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[RuleView]:
    require(principal, "roster", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "roster", "read")]
    stmt = select(RosterRule).where(subtree_filter(RosterRule.unit_path, paths))
    if unit_path:
        stmt = stmt.where(subtree_filter(RosterRule.unit_path, [v.path(unit_path, "unitPath")]))
    found = list(await session.scalars(stmt.order_by(RosterRule.unit_path, RosterRule.kind)))
    explicit = await _explicit_leaders(session, [r.id for r in found])
    return [RuleView(r, explicit.get(r.id, [])) for r in found]


async def _explicit_leaders(
    session: AsyncSession, rule_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[User]]:
    if not rule_ids:
        return {}
    rows = await session.execute(
        select(RosterRuleLeader.rule_id, User)
        .join(
            User,
            (User.tenant_id == RosterRuleLeader.tenant_id) & (User.id == RosterRuleLeader.user_id),
        )
        .where(RosterRuleLeader.rule_id.in_(rule_ids))
        .order_by(RosterRuleLeader.rule_id, RosterRuleLeader.position)
    )
    out: dict[uuid.UUID, list[User]] = defaultdict(list)
    for rule_id, user in rows:
        out[rule_id].append(user)
    return out


async def _unit_leaders(
    session: AsyncSession, unit_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[User]]:
    """Default rotation: the leaders held exactly at the unit, by username."""
    if not unit_ids:
        return {}
    rows = await session.execute(
        select(RoleAssignment.org_unit_id, User)
        .join(
            User, (User.tenant_id == RoleAssignment.tenant_id) & (User.id == RoleAssignment.user_id)
        )
        .where(RoleAssignment.org_unit_id.in_(unit_ids), RoleAssignment.role == Role.LEADER)
        .order_by(User.username)
    )
    out: dict[uuid.UUID, list[User]] = defaultdict(list)
    for unit_id, user in rows:
        out[unit_id].append(user)
    return out


# --- planning a month -----------------------------------------------------------------


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
            rules.overlaps(window, w) for w in self.windows[leader]
        )


async def plan_reception_days(
    session: AsyncSession, principal: Principal, *, unit_path: str, month: str
) -> PlanResult:
    """Generate the month's shifts for the active rules at ``unit_path`` and below.

    Idempotent: a slot (rule, day, seat) keeps its shift; only PLANNED shifts of days
    after today that no swap refers to are moved, re-assigned or removed. Confirmed,
    swapped, checked-in shifts and everything up to today stay as they are.
    """
    year, mon = rules.parse_month(month)
    unit = await _unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    tz = await _tz(session, unit.tenant_id)
    today = now().astimezone(tz).date()
    if (year, mon) < (today.year, today.month):
        raise BadUserInput(f"{month} is in the past", field="month")
    cal = await load_calendar(session)
    first, last = rules.month_bounds(year, mon)
    period = rules.period_of(year, mon)
    result = PlanResult(unit.path, period)

    rule_rows = list(
        await session.scalars(
            select(RosterRule).where(
                RosterRule.active.is_(True), subtree_filter(RosterRule.unit_path, [unit.path])
            )
        )
    )
    rule_rows.sort(key=lambda r: (rules.PLAN_ORDER[r.kind], r.unit_path.count("/"), r.unit_path))
    if not rule_rows:
        return result
    units = {
        u.id: u
        for u in await session.scalars(
            select(OrgUnit).where(OrgUnit.id.in_({r.unit_id for r in rule_rows}))
        )
    }
    explicit = await _explicit_leaders(session, [r.id for r in rule_rows])
    defaults = await _unit_leaders(session, [r.unit_id for r in rule_rows if r.id not in explicit])
    eligible_users = {r.id: explicit.get(r.id) or defaults.get(r.unit_id, []) for r in rule_rows}
    all_ids = list({u.id for users in eligible_users.values() for u in users})
    leader_paths = await _leader_paths(session, all_ids)

    existing = list(
        await session.scalars(
            select(DutyShift).where(
                DutyShift.rule_id.in_([r.id for r in rule_rows]), DutyShift.period == period
            )
        )
    )
    swapped_ids = set(
        await session.scalars(
            select(ShiftSwap.shift_id).where(ShiftSwap.shift_id.in_([s.id for s in existing]))
        )
    ) | set(
        await session.scalars(
            select(ShiftSwap.other_shift_id).where(
                ShiftSwap.other_shift_id.in_([s.id for s in existing])
            )
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
            DutyShift.leader_id.in_(all_ids),
            DutyShift.starts_at < hi,
            DutyShift.ends_at > lo,
        )
    )
    leaves = await session.scalars(
        select(LeaderLeave).where(
            LeaderLeave.user_id.in_(all_ids),
            LeaderLeave.first_day <= last + timedelta(days=15),
            LeaderLeave.last_day >= first - timedelta(days=1),
        )
    )
    busy = _Busy(list(leaves))
    for s in others:
        if s.id not in movable:
            busy.add(s.leader_id, (s.starts_at, s.ends_at))

    for rule in rule_rows:
        rule_unit = units[rule.unit_id]
        eligible = [
            u.id
            for u in eligible_users[rule.id]
            if any(path_covers(p, rule.unit_path) for p in leader_paths.get(u.id, []))
        ]
        desired = await _assign(
            session,
            rule,
            rule_unit,
            eligible,
            year,
            mon,
            cal,
            tz,
            today,
            busy,
            existing,
            movable,
            result,
        )
        await _apply(session, rule, rule_unit, period, desired, movable, tz, result)
    for s in movable.values():
        if s.rule_id in {r.id for r in rule_rows} and s not in result.shifts:
            await _cancel_reminder(session, s, s.leader_id)
            await session.delete(s)
            result.removed += 1
    await session.flush()
    fixed = [s for s in existing if s.id not in movable]
    result.shifts = sorted(
        [*result.shifts, *fixed], key=lambda s: (s.day, s.unit_path, s.starts_at, s.slot)
    )
    return result


async def _assign(
    session: AsyncSession,
    rule: RosterRule,
    unit: OrgUnit,
    eligible: list[uuid.UUID],
    year: int,
    mon: int,
    cal: WorkingDayCalendar,
    tz: ZoneInfo,
    today: date,
    busy: _Busy,
    existing: list[DutyShift],
    movable: dict[uuid.UUID, DutyShift],
    result: PlanResult,
) -> dict[tuple[date, int], tuple[uuid.UUID, datetime, datetime]]:
    """The slots this rule wants filled this month, with the leader for each."""
    kind = ShiftKind(rule.kind)
    days = rules.duty_days(kind, unit.level, year, mon, cal, rule.day_of_month)
    fixed = {(s.day, s.slot): s for s in existing if s.rule_id == rule.id and s.id not in movable}
    desired: dict[tuple[date, int], tuple[uuid.UUID, datetime, datetime]] = {}
    if kind in rules.ALL_LEADERS_KINDS or kind in rules.FIXED_LEADER_KINDS:
        seats = eligible if kind in rules.ALL_LEADERS_KINDS else eligible[:1]
        for day in days:
            window = rules.local_window(day, rule.start_time, rule.end_time, tz)
            for seat, leader in enumerate(seats):
                if (day, seat) in fixed or day <= today:
                    continue
                if busy.free(leader, day, window):
                    desired[(day, seat)] = (leader, *window)
                    busy.add(leader, window)
                elif kind in rules.FIXED_LEADER_KINDS:
                    result.unfilled.append(day)
            if not seats and day > today:
                result.unfilled.append(day)
        return desired

    # rotations: fair round-robin continuing from the rule's earlier months this year
    first = date(year, mon, 1)
    counts: dict[uuid.UUID, int] = defaultdict(int)
    rows = await session.execute(
        select(DutyShift.leader_id, func.count())
        .where(
            DutyShift.rule_id == rule.id,
            DutyShift.day >= date(year, 1, 1),
            DutyShift.day < first,
        )
        .group_by(DutyShift.leader_id)
    )
    for leader, n in rows:
        counts[leader] = int(n)
    last = await session.scalar(
        select(DutyShift.leader_id)
        .where(DutyShift.rule_id == rule.id, DutyShift.day < first)
        .order_by(DutyShift.day.desc(), DutyShift.slot.desc())
        .limit(1)
    )
    for day in days:
        if (day, 0) in fixed:
            counts[fixed[(day, 0)].leader_id] += 1
            last = fixed[(day, 0)].leader_id
            continue
        if day <= today:
            continue
        window = rules.local_window(day, rule.start_time, rule.end_time, tz)
        pick = rules.pick_fair(eligible, counts, last, lambda ld: busy.free(ld, day, window))  # noqa: B023
        if pick is None:
            result.unfilled.append(day)
            continue
        counts[pick] += 1
        last = pick
        desired[(day, 0)] = (pick, *window)
        busy.add(pick, window)
    return desired


async def _apply(
    session: AsyncSession,
    rule: RosterRule,
    unit: OrgUnit,
    period: str,
    desired: dict[tuple[date, int], tuple[uuid.UUID, datetime, datetime]],
    movable: dict[uuid.UUID, DutyShift],
    tz: ZoneInfo,
    result: PlanResult,
) -> None:
    by_slot = {(s.day, s.slot): s for s in movable.values() if s.rule_id == rule.id}
    for (day, seat), (leader, starts, ends) in sorted(desired.items()):
        shift = by_slot.get((day, seat))
        if shift is None:
            shift = DutyShift(
                tenant_id=rule.tenant_id,
                rule_id=rule.id,
                period=period,
                day=day,
                slot=seat,
                unit_id=unit.id,
                unit_path=unit.path,
                kind=rule.kind,
                leader_id=leader,
                starts_at=starts,
                ends_at=ends,
                status=ShiftStatus.PLANNED,
                title=f"{unit.name}{rules.TITLES[rule.kind]}",
                location=rule.location,
                updated_at=now(),
            )
            session.add(shift)
            await session.flush()
            result.created += 1
            await remind(session, shift, tz)
        elif (shift.leader_id, shift.starts_at, shift.ends_at) != (leader, starts, ends):
            if shift.leader_id != leader:
                await _cancel_reminder(session, shift, shift.leader_id)
            shift.leader_id, shift.starts_at, shift.ends_at = leader, starts, ends
            shift.location, shift.updated_at = rule.location, now()
            result.updated += 1
            await session.flush()
            await remind(session, shift, tz)
        else:
            result.kept += 1
        result.shifts.append(shift)


# --- reminders -------------------------------------------------------------------------


def _reminder_key(shift: DutyShift, leader_id: uuid.UUID) -> str:
    return notify.dedupe_key(leader_id, REMINDER_KIND, shift.id, shift.day)


async def remind(session: AsyncSession, shift: DutyShift, tz: ZoneInfo) -> None:
    """The duty leader's reminder at 09:00 the day before (the outbox dedupes re-runs)."""
    if shift.starts_at <= now():
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


async def _cancel_reminder(session: AsyncSession, shift: DutyShift, leader_id: uuid.UUID) -> None:
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


# --- reading shifts --------------------------------------------------------------------


def _date_range(from_: date, to: date) -> None:
    if to < from_:
        raise BadUserInput("to must not be before from", field="to")
    if (to - from_).days > MAX_RANGE_DAYS:
        raise BadUserInput(f"at most {MAX_RANGE_DAYS} days at a time", field="to")


async def duty_shifts(
    session: AsyncSession,
    principal: Principal,
    *,
    from_: date,
    to: date,
    unit_path: str | None = None,
) -> list[DutyShift]:
    require(principal, "shift", "read")
    _date_range(from_, to)
    stmt = select(DutyShift).where(
        DutyShift.day >= from_, DutyShift.day <= to, shift_predicate(principal)
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(DutyShift.unit_path, [v.path(unit_path, "unitPath")]))
    stmt = stmt.order_by(DutyShift.day, DutyShift.starts_at, DutyShift.unit_path, DutyShift.slot)
    return list(await session.scalars(stmt))


async def reception_announcements(
    session: AsyncSession,
    principal: Principal,
    *,
    from_: date,
    to: date,
    unit_path: str | None = None,
) -> list[DutyShift]:
    """The public feed: reception days of the whole city (announced public receptions only).

    Reception schedules are published to citizens, so any official of the tenant may read
    the feed whatever the unit of its grant.
    """
    require(principal, "shift", "read")
    _date_range(from_, to)
    stmt = select(DutyShift).where(
        DutyShift.day >= from_,
        DutyShift.day <= to,
        DutyShift.kind.in_(list(RECEPTION_KINDS)),
        DutyShift.status.in_([*OPEN_STATUSES, ShiftStatus.COMPLETED]),
        or_(DutyShift.kind != ShiftKind.PUBLIC_RECEPTION, DutyShift.announced_at <= now()),
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(DutyShift.unit_path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(DutyShift.starts_at, DutyShift.unit_path)))


async def find_shift(
    session: AsyncSession, principal: Principal, shift_id: str, *, field: str = "shiftId"
) -> DutyShift:
    require(principal, "shift", "read")
    sid = parse_id(shift_id)
    shift = None
    if sid is not None:
        shift = await session.scalar(
            select(DutyShift).where(DutyShift.id == sid, shift_predicate(principal))
        )
    if shift is None:
        raise NotFound(f"shift {shift_id} not found", field=field)
    return shift


async def cases_received(
    session: AsyncSession, principal: Principal, shift_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Case]]:
    """Visit cases received during each shift, as far as the caller may see cases."""
    if not shift_ids or not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        return {}
    rows = await session.execute(
        select(ShiftReception.shift_id, Case)
        .join(
            Case, (Case.tenant_id == ShiftReception.tenant_id) & (Case.id == ShiftReception.case_id)
        )
        .where(ShiftReception.shift_id.in_(shift_ids), read_predicate(principal))
        .order_by(Case.received_at, Case.id)
    )
    out: dict[uuid.UUID, list[Case]] = defaultdict(list)
    for shift_id, case in rows:
        out[shift_id].append(case)
    return out


# --- confirm, check in / out ------------------------------------------------------------


def _manages(principal: Principal, shift: DutyShift) -> bool:
    return _reaches(principal, "roster", "manage", shift.unit_path)


async def confirm_shift(session: AsyncSession, principal: Principal, *, shift_id: str) -> DutyShift:
    """Fix a planned shift (by the roster office or the leader): regeneration keeps it."""
    shift = await find_shift(session, principal, shift_id)
    if not (_manages(principal, shift) or shift.leader_id == principal.account_id):
        raise Forbidden("only the roster office or the duty leader confirms a shift")
    if shift.status != ShiftStatus.PLANNED:
        raise InvalidTransition(f"the shift is {shift.status}", currentStatus=shift.status)
    shift.status, shift.updated_at = ShiftStatus.CONFIRMED, now()
    await session.flush()
    await remind(session, shift, await _tz(session, shift.tenant_id))
    return shift


def _location(value: str | None) -> str | None:
    if value is None:
        return None
    return v.text(value, "location", max_len=200, required=False) or None


async def check_in_shift(
    session: AsyncSession, principal: Principal, *, shift_id: str, location: str | None = None
) -> DutyShift:
    """The duty leader checks in, from an hour before the start until the end."""
    require(principal, "shift", "check_in")
    shift = await find_shift(session, principal, shift_id)
    if shift.leader_id != principal.account_id:
        raise Forbidden("only the duty leader checks in to a shift")
    if shift.status not in SWAPPABLE:
        raise InvalidTransition(f"the shift is {shift.status}", currentStatus=shift.status)
    t = now()
    if not shift.starts_at - CHECK_IN_EARLY <= t < shift.ends_at:
        raise InvalidTransition(
            "check-in is open from an hour before the shift until its end",
            currentStatus=shift.status,
        )
    shift.status, shift.checked_in_at = ShiftStatus.CHECKED_IN, t
    shift.check_in_location, shift.updated_at = _location(location), t
    await session.flush()
    return shift


async def check_out_shift(
    session: AsyncSession, principal: Principal, *, shift_id: str, location: str | None = None
) -> DutyShift:
    require(principal, "shift", "check_in")
    shift = await find_shift(session, principal, shift_id)
    if shift.leader_id != principal.account_id:
        raise Forbidden("only the duty leader checks out of a shift")
    if shift.status != ShiftStatus.CHECKED_IN:
        raise InvalidTransition("check in before checking out", currentStatus=shift.status)
    t = now()
    shift.status, shift.checked_out_at = ShiftStatus.COMPLETED, t
    shift.check_out_location, shift.updated_at = _location(location), t
    await session.flush()
    return shift


# --- leave, conflicts, swaps -------------------------------------------------------------


async def record_leave(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    first_day: date,
    last_day: date,
    reason: str | None = None,
) -> LeaderLeave:
    """Leave of a leader (the roster office over one of its units, or the leader itself)."""
    user = await session.scalar(select(User).where(User.username == (username or "").strip()))
    paths = (await _leader_paths(session, [user.id])).get(user.id, []) if user else []
    own = user is not None and user.id == principal.account_id and may(principal, "shift", "swap")
    if not paths or not (own or any(_reaches(principal, "roster", "manage", p) for p in paths)):
        # unknown, not a leader, or out of the caller's reach: one answer, nothing to enumerate
        raise BadUserInput(f"unknown leader {username}", field="username")
    if last_day < first_day:
        raise BadUserInput("to must not be before from", field="to")
    if (last_day - first_day).days > MAX_RANGE_DAYS:
        raise BadUserInput(f"at most {MAX_RANGE_DAYS} days at a time", field="to")
    leave = LeaderLeave(
        tenant_id=user.tenant_id,
        user_id=user.id,
        first_day=first_day,
        last_day=last_day,
        reason=v.text(reason or "", "reason", max_len=2000, required=False) or None,
        recorded_by_id=principal.account_id,
    )
    session.add(leave)
    await session.flush()
    return leave


async def _conflict(
    session: AsyncSession,
    leader: User,
    shift: DutyShift,
    ignore: set[uuid.UUID],
    field: str,
) -> None:
    """CONFLICT when ``leader`` is on leave that day or on another shift at that time."""
    on_leave = await session.scalar(
        select(func.count(LeaderLeave.id)).where(
            LeaderLeave.user_id == leader.id,
            LeaderLeave.first_day <= shift.day,
            LeaderLeave.last_day >= shift.day,
        )
    )
    if on_leave:
        raise Conflict(f"{leader.username} is on leave on {shift.day.isoformat()}", field=field)
    clash = await session.scalar(
        select(DutyShift.id)
        .where(
            DutyShift.leader_id == leader.id,
            DutyShift.starts_at < shift.ends_at,
            DutyShift.ends_at > shift.starts_at,
            DutyShift.status.in_([*OPEN_STATUSES, ShiftStatus.COMPLETED]),
            DutyShift.id.not_in(list(ignore) or [uuid.UUID(int=0)]),
        )
        .limit(1)
    )
    if clash is not None:
        raise Conflict(
            f"{leader.username} is already on duty at that time (shift {clash})", field=field
        )


def _swappable(shift: DutyShift, field: str) -> None:
    if shift.status not in SWAPPABLE or shift.starts_at <= now():
        raise InvalidTransition(
            "only a shift that has not started can be swapped",
            currentStatus=shift.status,
            field=field,
        )


async def swap_shift(
    session: AsyncSession,
    principal: Principal,
    *,
    shift_id: str,
    to_username: str | None = None,
    with_shift_id: str | None = None,
    reason: str | None = None,
) -> ShiftSwap:
    """Ask to hand a shift to another leader (``toUsername``) or to exchange it with another
    leader's shift (``withShiftId``); a leader over the unit approves."""
    shift = await find_shift(session, principal, shift_id)
    own = shift.leader_id == principal.account_id and may(principal, "shift", "swap")
    if not own and not _manages(principal, shift):
        raise Forbidden("only the duty leader or the roster office asks for a swap")
    if (to_username is None) == (with_shift_id is None):
        raise BadUserInput("name either toUsername or withShiftId", field="toUsername")
    _swappable(shift, "shiftId")
    pending = await session.scalar(
        select(func.count(ShiftSwap.id)).where(
            or_(ShiftSwap.shift_id == shift.id, ShiftSwap.other_shift_id == shift.id),
            ShiftSwap.status == SwapStatus.REQUESTED,
        )
    )
    if pending:
        raise Conflict("a swap of this shift is already waiting for approval", field="shiftId")
    current = await session.get(User, (shift.tenant_id, shift.leader_id))
    other: DutyShift | None = None
    if to_username is not None:
        target = await _leader_over(session, to_username, shift.unit_path, "toUsername")
        if target.id == shift.leader_id:
            raise BadUserInput("the shift is already theirs", field="toUsername")
        await _conflict(session, target, shift, {shift.id}, "toUsername")
    else:
        other = await find_shift(session, principal, str(with_shift_id), field="withShiftId")
        _swappable(other, "withShiftId")
        if other.id == shift.id or other.leader_id == shift.leader_id:
            raise BadUserInput("exchange with another leader's shift", field="withShiftId")
        target = await session.get(User, (other.tenant_id, other.leader_id))
        await _leader_over(session, target.username, shift.unit_path, "withShiftId")
        await _leader_over(session, current.username, other.unit_path, "withShiftId")
        await _check_exchange(session, shift, other, current, target)
    swap = ShiftSwap(
        tenant_id=shift.tenant_id,
        shift_id=shift.id,
        other_shift_id=other.id if other else None,
        unit_path=shift.unit_path,
        from_user_id=shift.leader_id,
        to_user_id=target.id,
        status=SwapStatus.REQUESTED,
        reason=v.text(reason or "", "reason", max_len=2000, required=False) or None,
        requested_by_id=principal.account_id,
    )
    session.add(swap)
    await session.flush()
    return swap


async def _check_exchange(
    session: AsyncSession, shift: DutyShift, other: DutyShift, a: User, b: User
) -> None:
    ignore = {shift.id, other.id}
    await _conflict(session, b, shift, ignore, "withShiftId")
    await _conflict(session, a, other, ignore, "withShiftId")


async def approve_swap(
    session: AsyncSession,
    principal: Principal,
    *,
    swap_id: str,
    approve: bool = True,
    comment: str | None = None,
) -> ShiftSwap:
    """A leader over the shift's unit — not the requester, not a party — decides; the
    conflict checks run again, since the rosters may have changed since the request."""
    require(principal, "shift", "approve_swap")
    sid = parse_id(swap_id)
    swap = await session.scalar(select(ShiftSwap).where(ShiftSwap.id == sid)) if sid else None
    if swap is None or not (
        _reaches(principal, "shift", "read", swap.unit_path)
        or principal.account_id in {swap.from_user_id, swap.to_user_id}
    ):
        raise NotFound(f"swap {swap_id} not found", field="swapId")
    if not _reaches(principal, "shift", "approve_swap", swap.unit_path):
        raise Forbidden("only a leader over the unit approves a swap")
    if principal.account_id in {swap.requested_by_id, swap.from_user_id, swap.to_user_id}:
        raise Forbidden("a party to the swap cannot approve it")
    if swap.status != SwapStatus.REQUESTED:
        raise InvalidTransition(f"the swap is {swap.status}", currentStatus=swap.status)
    swap.decided_by_id, swap.decided_at = principal.account_id, now()
    swap.comment = v.text(comment or "", "comment", max_len=2000, required=False) or None
    if not approve:
        swap.status = SwapStatus.REJECTED
        await session.flush()
        return swap
    shift = await session.get(DutyShift, (swap.tenant_id, swap.shift_id))
    assert shift is not None
    _swappable(shift, "swapId")
    giver = await session.get(User, (swap.tenant_id, swap.from_user_id))
    taker = await session.get(User, (swap.tenant_id, swap.to_user_id))
    if shift.leader_id != swap.from_user_id:
        raise Conflict("the shift changed hands since the request", field="swapId")
    tz = await _tz(session, shift.tenant_id)
    if swap.other_shift_id is None:
        await _conflict(session, taker, shift, {shift.id}, "swapId")
        changes = [(shift, taker.id)]
    else:
        other = await session.get(DutyShift, (swap.tenant_id, swap.other_shift_id))
        assert other is not None
        _swappable(other, "swapId")
        if other.leader_id != swap.to_user_id:
            raise Conflict("the other shift changed hands since the request", field="swapId")
        try:
            await _check_exchange(session, shift, other, giver, taker)
        except Conflict as exc:
            raise Conflict(exc.message, field="swapId") from exc
        changes = [(shift, taker.id), (other, giver.id)]
    for s, new_leader in changes:
        await _cancel_reminder(session, s, s.leader_id)
        s.leader_id, s.status, s.updated_at = new_leader, ShiftStatus.SWAPPED, now()
    swap.status = SwapStatus.APPROVED
    await session.flush()
    for s, _ in changes:
        await remind(session, s, tz)
    return swap


async def shift_swaps(
    session: AsyncSession,
    principal: Principal,
    *,
    status: SwapStatus | None = None,
    unit_path: str | None = None,
) -> list[ShiftSwap]:
    """Swaps in the caller's scope (or its own), newest first."""
    require(principal, "shift", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "shift", "read")]
    stmt = select(ShiftSwap).where(
        or_(
            subtree_filter(ShiftSwap.unit_path, paths),
            ShiftSwap.from_user_id == principal.account_id,
            ShiftSwap.to_user_id == principal.account_id,
        )
    )
    if status is not None:
        stmt = stmt.where(ShiftSwap.status == SwapStatus(status))
    if unit_path:
        stmt = stmt.where(subtree_filter(ShiftSwap.unit_path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(ShiftSwap.created_at.desc()).limit(200)))


# --- public receptions -----------------------------------------------------------------


async def schedule_public_reception(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str,
    day: date,
    leader: str,
    title: str | None = None,
    start_time: str = "09:00",
    end_time: str = "12:00",
    location: str | None = None,
    announce_at: datetime | None = None,
) -> DutyShift:
    """季度公开接访: one per unit and quarter, announced at least 3 days before the day."""
    unit = await _unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    if unit.level not in rules.LEVELS_OF_KIND[ShiftKind.PUBLIC_RECEPTION]:
        raise BadUserInput(f"no public reception at a {unit.level} unit", field="unitPath")
    rules.check_times(start_time, end_time)
    tz = await _tz(session, unit.tenant_id)
    t = now()
    announce_field = "announceAt" if announce_at is not None else "day"
    announced = announce_at or t
    if announced.tzinfo is None:
        raise BadUserInput("announceAt needs a time zone offset", field="announceAt")
    if announced < t - timedelta(minutes=5):
        raise BadUserInput("announceAt cannot be in the past", field="announceAt")
    announce_day = announced.astimezone(tz).date()
    if day < announce_day + timedelta(days=rules.ANNOUNCE_DAYS):
        raise BadUserInput(
            f"a public reception must be announced at least {rules.ANNOUNCE_DAYS} days ahead "
            f"(announced {announce_day.isoformat()}, reception {day.isoformat()})",
            field=announce_field,
        )
    user = await _leader_over(session, leader, unit.path, "leader")
    quarter = (day.month - 1) // 3
    q_first = date(day.year, quarter * 3 + 1, 1)
    q_last = rules.month_bounds(day.year, quarter * 3 + 3)[1]
    taken = await session.scalar(
        select(func.count(DutyShift.id)).where(
            DutyShift.unit_id == unit.id,
            DutyShift.kind == ShiftKind.PUBLIC_RECEPTION,
            DutyShift.day >= q_first,
            DutyShift.day <= q_last,
        )
    )
    if taken:
        raise Conflict(f"{unit.path} already has a public reception this quarter", field="day")
    starts, ends = rules.local_window(day, start_time, end_time, tz)
    shift = DutyShift(
        tenant_id=unit.tenant_id,
        rule_id=None,
        period=rules.period_of(day.year, day.month),
        day=day,
        slot=0,
        unit_id=unit.id,
        unit_path=unit.path,
        kind=ShiftKind.PUBLIC_RECEPTION,
        leader_id=user.id,
        starts_at=starts,
        ends_at=ends,
        status=ShiftStatus.CONFIRMED,
        title=v.text(
            title or f"{unit.name}{rules.TITLES[ShiftKind.PUBLIC_RECEPTION]}", "title", max_len=200
        ),
        location=_location(location),
        announced_at=announced,
        updated_at=t,
    )
    await _conflict(session, user, shift, set(), "leader")
    session.add(shift)
    await session.flush()
    await remind(session, shift, tz)
    return shift


# --- first receiver (首问负责) ------------------------------------------------------------


def _ancestors(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


async def duty_shift_at(session: AsyncSession, holder_path: str, at: datetime) -> DutyShift | None:
    """The reception shift on duty at ``at`` at the holder unit or its nearest ancestor:
    checked-in shifts first, then the deepest unit."""
    rows = list(
        await session.scalars(
            select(DutyShift).where(
                DutyShift.unit_path.in_(_ancestors(holder_path)),
                DutyShift.kind.in_(list(RECEPTION_KINDS)),
                DutyShift.status.in_(list(OPEN_STATUSES)),
                DutyShift.starts_at <= at,
                DutyShift.ends_at > at,
            )
        )
    )
    if not rows:
        return None
    rows.sort(
        key=lambda s: (s.status != ShiftStatus.CHECKED_IN, -len(s.unit_path), s.starts_at, s.id)
    )
    return rows[0]


async def link_first_receiver(session: AsyncSession, case: Case) -> None:
    """A visit registered during a reception shift at the registering unit (or the nearest
    ancestor holding one) gets that shift's duty leader as first receiver; the shift lists
    the case. Letters, calls and online cases keep the registrar."""
    if case.channel != Channel.VISIT:
        return
    shift = await duty_shift_at(session, case.holder_path, case.received_at)
    if shift is None:
        return
    case.first_receiver_id = shift.leader_id
    session.add(ShiftReception(tenant_id=case.tenant_id, shift_id=shift.id, case_id=case.id))
    await session.flush()


# --- cadre ↔ village pairings ---------------------------------------------------------------


@dataclass
class Coverage:
    county_path: str
    villages: int
    paired: int

    @property
    def rate(self) -> float | None:
        return self.paired / self.villages if self.villages else None


async def assign_pairing(
    session: AsyncSession, principal: Principal, *, village_path: str, username: str
) -> VillagePairing:
    """The village's contact cadre: a leader at the village's township, county or city."""
    village = await _unit_in_scope(
        session, principal, village_path, "villagePath", "pairing", "manage"
    )
    if village.level != OrgUnitLevel.VILLAGE:
        raise BadUserInput(f"{village_path} is not a village", field="villagePath")
    cadre = await _leader_over(session, username, village.path, "username")
    pairing = await session.scalar(
        select(VillagePairing).where(VillagePairing.village_id == village.id)
    )
    if pairing is None:
        pairing = VillagePairing(
            tenant_id=village.tenant_id,
            village_id=village.id,
            village_path=village.path,
            cadre_id=cadre.id,
        )
        session.add(pairing)
    pairing.cadre_id, pairing.assigned_by_id, pairing.updated_at = (
        cadre.id,
        principal.account_id,
        now(),
    )
    await session.flush()
    return pairing


async def pairings(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[VillagePairing]:
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(VillagePairing).where(subtree_filter(VillagePairing.village_path, paths))
    if unit_path:
        stmt = stmt.where(
            subtree_filter(VillagePairing.village_path, [v.path(unit_path, "unitPath")])
        )
    return list(await session.scalars(stmt.order_by(VillagePairing.village_path)))


async def _villages(
    session: AsyncSession, principal: Principal, unit_path: str | None
) -> list[OrgUnit]:
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(OrgUnit).where(
        OrgUnit.level == OrgUnitLevel.VILLAGE, subtree_filter(OrgUnit.path, paths)
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(OrgUnit.path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(OrgUnit.path)))


async def unpaired_villages(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[OrgUnit]:
    villages = await _villages(session, principal, unit_path)
    paired = {p.village_id for p in await pairings(session, principal, unit_path=unit_path)}
    return [u for u in villages if u.id not in paired]


async def pairing_coverage(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[Coverage]:
    """Per county (the second level of the path): villages and how many are paired."""
    villages = await _villages(session, principal, unit_path)
    paired = {p.village_id for p in await pairings(session, principal, unit_path=unit_path)}
    by_county: dict[str, Coverage] = {}
    for u in villages:
        county = "/".join(u.path.split("/")[:3])
        cov = by_county.setdefault(county, Coverage(county, 0, 0))
        cov.villages += 1
        cov.paired += u.id in paired
    return [by_county[k] for k in sorted(by_county)]


async def users_by_ids(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not ids:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(ids)))}
