"""Roster rules: which duty a unit keeps, who takes turns, at what hours (领导接访 rules)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

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
    RosterRule,
    RosterRuleLeader,
    ShiftKind,
)
from backend.tenants.models import RoleAssignment, User


@dataclass
class RuleView:
    rule: RosterRule
    leaders: list[User]


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
) -> RuleView:
    """Create or replace the rule of ``kind`` at a unit (one rule per unit and kind)."""
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    kind = ShiftKind(kind)
    if kind is ShiftKind.PUBLIC_RECEPTION:
        raise BadUserInput(
            "public receptions are scheduled one by one (schedulePublicReception)", field="kind"
        )
    if unit.level not in days.LEVELS_OF_KIND[kind]:
        raise BadUserInput(
            f"a {kind.value} roster cannot be kept at a {unit.level} unit", field="kind"
        )
    days.check_times(start_time, end_time)
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
    explicit = await explicit_leaders(session, [r.id for r in found])
    return [RuleView(r, explicit.get(r.id, [])) for r in found]


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
