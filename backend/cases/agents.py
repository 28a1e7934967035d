"""代办/帮办 — handling a petition on the petitioner's behalf (seeds 001, 002).

A grid worker (网格员), a party-member agent (党员代办员), a 双联户长 or another official
registers a petition for a petitioner and follows it to the end (诸暨's 信访代办制: the
agent "对办理过程及后续处理工作进行全程跟踪办理"). The case records the agent — a user of
the city holding one of :data:`AGENT_ROLES` — and its kind (:class:`AgentKind`).

What the agent sees (docs/decisions.md): the case as its registrar does — status,
deadlines, reply, events — through the read predicate (``visibility.py``: the agent's
clause sits beside "registered by me"), so Art. 30 always wins: an agent holding any role
inside an accused unit, or the accused person, reads nothing of the accusation, even if
the role was taken after intake. Petitioner PII stays masked for the agent unless it is
also an official handling the case in scope (``sees_pii``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.authz.roles import Role
from backend.cases.models import AgentKind
from backend.cases.need_to_know import STAFF_ROLES, Accused, is_barred, user_roles
from backend.core import validation as v
from backend.core.errors import BadUserInput
from backend.tenants.models import OrgUnit, RoleAssignment, User

# Roles whose holder may act as an agent: those that read cases (their own or in scope).
AGENT_ROLES = frozenset(
    {Role.PETITION_OFFICER, Role.LEADER, Role.DEPARTMENT_HANDLER, Role.GRID_WORKER}
)


@dataclass(frozen=True)
class AgentInput:
    kind: AgentKind
    username: str | None = None  # default: the registrar


async def agent_for(
    session: AsyncSession, principal: Principal, agent: AgentInput, accused: Accused
) -> uuid.UUID:
    """The agent's user id, or BAD_USER_INPUT (``field`` ``agent.username``): unknown in
    this city, holding no agent role, or barred from the accusation (Art. 30)."""
    username = v.username(agent.username, "agent.username") if agent.username else None
    username = username or principal.username
    rows = (
        await session.execute(
            user_roles(User.id, RoleAssignment.role, OrgUnit.path).where(
                User.tenant_id == principal.tenant_id, User.username == username
            )
        )
    ).all()
    if not any(role in AGENT_ROLES for _, role, _ in rows):
        raise BadUserInput(
            f"{username} is no official of this city who may act as agent "
            "(petition officer, leader, department handler or grid worker)",
            field="agent.username",
        )
    if is_barred(accused, [p for _, role, p in rows if role in STAFF_ROLES], username):
        raise BadUserInput(
            f"{username} holds a post inside the accused unit or is the accused: it may not "
            "act for the petitioner on this accusation (Art. 30); name another agent",
            field="agent.username",
        )
    return rows[0][0]
