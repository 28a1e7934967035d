"""Who may touch which roster data: scope helpers shared by the roster services.

Like every service: (session, principal), contract errors naming the field, never
commits. Scope works like cases: a grant at a unit reaches the shifts, rules and
pairings of that unit's subtree (one prefix predicate on the copied ``unit_path``);
a leader always sees his own shifts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.authz.roles import Role
from backend.authz.scope import path_covers, subtree_filter
from backend.cases.models import Case
from backend.cases.need_to_know import barred_clause
from backend.core import validation as v
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.errors import BadUserInput
from backend.rosters.models import (
    DutyShift,
)
from backend.tenants.models import OrgUnit, RoleAssignment, Tenant, User
from backend.tenants.service import unit_by_path


async def tenant_zone(session: AsyncSession, tenant_id: uuid.UUID | None) -> ZoneInfo:
    tenant = await session.get(Tenant, tenant_id) if tenant_id else None
    return ZoneInfo(tenant.timezone if tenant else DEFAULT_TIMEZONE)


def reaches(principal: Principal, obj: str, act: str, path: str) -> bool:
    return any(path_covers(g.unit_path, path) for g in allowed_grants(principal, obj, act))


async def unit_in_scope(
    session: AsyncSession, principal: Principal, path: str, field: str, obj: str, act: str
) -> OrgUnit:
    """A unit of the caller's tenant inside a grant that allows ``act``; else BAD_USER_INPUT
    (absent and out of scope read the same, as for cases)."""
    require(principal, obj, act)
    v.path(path, field)
    unit = await unit_by_path(session, path)
    if unit is None or not reaches(principal, obj, act, unit.path):
        raise v.unit_out_of_reach(path, field)
    return unit


def shift_predicate(principal: Principal) -> ColumnElement[bool]:
    """Shifts the principal may read: its grants' subtrees, and its own shifts — less the
    appointments (预约接访) about an accusation it may not know (Art. 30)."""
    return readable(principal, DutyShift, DutyShift.leader_id)


def readable(principal: Principal, rows: Any, own: ColumnElement) -> ColumnElement[bool]:
    """Roster rows (shifts, sweep findings) ``principal`` may read: those kept in the
    subtree of its ``shift read`` grants or ``own`` (its shift, its finding), less those
    naming a case it may not know (Art. 30, :func:`case_known`). ``rows`` has
    ``tenant_id``, ``unit_path`` and ``case_id`` columns."""
    if principal.tenant_id is None:
        return false()
    paths = [g.unit_path for g in allowed_grants(principal, "shift", "read")]
    return and_(
        or_(subtree_filter(rows.unit_path, paths), own == principal.account_id),
        case_known(principal, rows.tenant_id, rows.case_id),
    )


def case_known(principal: Principal, tenant_id: ColumnElement, case_id: ColumnElement):
    """Art. 30 gate for roster rows that name a case (an appointment, a sweep finding that
    became a case): no case, or a case the principal is not barred from
    (``backend/cases/need_to_know.py``: the accused person, anyone with a role inside an
    accused unit)."""
    c = aliased(Case)
    barred = barred_clause([g.unit_path for g in principal.grants], [principal.username], c)
    return or_(
        case_id.is_(None),
        not_(exists(select(c.id).where(c.tenant_id == tenant_id, c.id == case_id, barred))),
    )


async def leader_over(session: AsyncSession, username: str, unit_path: str, field: str) -> User:
    """A user of this tenant holding LEADER at ``unit_path`` or above it."""
    user = await session.scalar(select(User).where(User.username == v.username(username, field)))
    leader_paths = await leader_unit_paths(session, [user.id]) if user else {}
    if user is None or not any(path_covers(p, unit_path) for p in leader_paths.get(user.id, [])):
        # one answer whether the user is unknown or no leader there (nothing to enumerate)
        raise BadUserInput(f"{username} is not a leader over {unit_path}", field=field)
    return user


async def leader_unit_paths(
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


async def users_by_ids(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not ids:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(ids)))}
