"""Roster rules: which duty a unit keeps, who takes turns, at what hours (领导接访 rules)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.authz.roles import Role
from backend.authz.scope import subtree_filter
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput
from backend.rosters import days
from backend.rosters.access import leader_over, unit_in_scope
from backend.rosters.models import (
    PEOPLE_OF_KIND,
    RosterPerson,
    RosterRule,
    RosterRuleLeader,
    RosterRulePerson,
    ShiftKind,
)
from backend.rosters.people import person_in_scope
from backend.tenants.models import RoleAssignment, User


@dataclass
class RuleView:
    rule: RosterRule
    leaders: list[User]
    people: list[RosterPerson] = field(default_factory=list)


async def set_roster_rule(  # noqa: PLR0913 — one keyword per field of setRosterRule's input
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
    people: list[str] | None = None,
) -> RuleView:
    """Create or replace the rule of ``kind`` at a unit (one rule per unit and kind).

    Kinds staffed by named people (:data:`PEOPLE_OF_KIND`: joint receptions, the lawyer
    and the counsellor on duty, seeds 001 and 003) take ``people`` instead of leaders."""
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    kind = ShiftKind(kind)
    if kind in days.SCHEDULED_KINDS:
        raise BadUserInput(
            f"{kind.value} is scheduled one by one, not by a rule "
            "(schedulePublicReception, scheduleAppointmentReception)",
            field="kind",
        )
    if unit.level not in days.LEVELS_OF_KIND[kind]:
        raise BadUserInput(
            f"a {kind.value} roster cannot be kept at a {unit.level} unit", field="kind"
        )
    days.check_times(start_time, end_time)
    if day_of_month is not None and (
        kind not in days.DAY_OF_MONTH_KINDS or not 1 <= day_of_month <= 31
    ):
        kinds = ", ".join(sorted(days.DAY_OF_MONTH_KINDS))
        raise BadUserInput(f"dayOfMonth is 1-31 and only for {kinds}", field="dayOfMonth")
    staff = await _rule_people(session, principal, kind, people, leaders)
    if location is not None:
        location = v.text(location, "location", max_len=200, required=False) or None
    names = [n.strip() for n in (leaders or [])]
    if len(set(names)) != len(names):
        raise BadUserInput("a leader is listed twice", field="leaders")
    if kind is ShiftKind.MAIN_LEADER and len(names) != 1:
        raise BadUserInput("a MAIN_LEADER rule names exactly one leader", field="leaders")
    users = [await leader_over(session, n, unit.path, "leaders") for n in names]
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
    await session.execute(delete(RosterRulePerson).where(RosterRulePerson.rule_id == rule.id))
    for i, user in enumerate(users):
        session.add(
            RosterRuleLeader(tenant_id=unit.tenant_id, rule_id=rule.id, user_id=user.id, position=i)
        )
    for i, person in enumerate(staff):
        session.add(
            RosterRulePerson(
                tenant_id=unit.tenant_id, rule_id=rule.id, person_id=person.id, position=i
            )
        )
    await session.flush()
    return RuleView(rule, users, staff)


async def _rule_people(
    session: AsyncSession,
    principal: Principal,
    kind: ShiftKind,
    people: list[str] | None,
    leaders: list[str] | None,
) -> list[RosterPerson]:
    """The named people of a rule of a people's kind (at least one, each of the right
    kind and active); other kinds take none."""
    wanted = PEOPLE_OF_KIND.get(kind)
    if wanted is None:
        if people:
            raise BadUserInput(f"a {kind.value} rule is staffed by leaders", field="people")
        return []
    if leaders:
        raise BadUserInput(f"a {kind.value} rule is staffed by named people", field="leaders")
    ids = [str(p).strip() for p in (people or [])]
    if not ids or len(set(ids)) != len(ids):
        raise BadUserInput("name each person of the rule once", field="people")
    found = [await person_in_scope(session, principal, pid, "people") for pid in ids]
    for person in found:
        if person.kind not in wanted or not person.active:
            raise BadUserInput(
                f"{person.name} ({person.kind}) cannot take {kind.value} duty", field="people"
            )
    return found


async def roster_rules(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[RuleView]:
    require(principal, "roster", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "roster", "read")]
    stmt = select(RosterRule).where(subtree_filter(RosterRule.unit_path, paths))
    if unit_path:
        stmt = stmt.where(subtree_filter(RosterRule.unit_path, [v.path(unit_path, "unitPath")]))
    found = list(await session.scalars(stmt.order_by(RosterRule.unit_path, RosterRule.kind)))
    explicit = await explicit_leaders(session, [r.id for r in found])
    staff = await rule_people(session, [r.id for r in found])
    return [RuleView(r, explicit.get(r.id, []), staff.get(r.id, [])) for r in found]


async def rule_people(
    session: AsyncSession, rule_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[RosterPerson]]:
    """The named people of each rule, in rotation order."""
    if not rule_ids:
        return {}
    rows = await session.execute(
        select(RosterRulePerson.rule_id, RosterPerson)
        .join(
            RosterPerson,
            (RosterPerson.tenant_id == RosterRulePerson.tenant_id)
            & (RosterPerson.id == RosterRulePerson.person_id),
        )
        .where(RosterRulePerson.rule_id.in_(rule_ids))
        .order_by(RosterRulePerson.rule_id, RosterRulePerson.position)
    )
    out: dict[uuid.UUID, list[RosterPerson]] = defaultdict(list)
    for rule_id, person in rows:
        out[rule_id].append(person)
    return out


async def explicit_leaders(
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


async def unit_leaders(
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
