"""Who may see and act on which case, as SQL predicates (never filtering in Python).

- Officials (petition officers, leaders) see cases held in, or located in,
  the subtree of a unit where they hold a reading role, and leaders the cases they own
  (包案) wherever they went; department handlers only cases held by their
  department; grid workers the cases they registered; a 代办 agent the cases it acts for;
  evaluators (``read_own``) the cases of the evaluation panels they sit on.
- 检举控告 (Art. 30): an accusation is invisible to anybody holding any role inside
  the subtree of an accused unit — the named one, or one where the accused person
  holds a post — (whatever their other grants), and to the accused person.
- Provincial supervisors read every case of their province's tenants (the
  tenant scope of the session already restricts them); platform staff none.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from backend.authz.enforcer import allowed_grants, role_may
from backend.authz.principal import Grant, Principal
from backend.authz.roles import Role
from backend.authz.scope import path_covers, subtree_filter
from backend.cases.agents import AGENT_ROLES
from backend.cases.models import Case
from backend.cases.need_to_know import barred_clause, is_barred
from backend.core.hooks import Hook

# Cases a role with ``read_own`` reads besides those it registered, one clause per
# domain: (account id) → SQL over ``cases``. Evaluations registers the panels' cases.
own_readers: Hook[Callable[[uuid.UUID], ColumnElement[bool]]] = Hook("own_readers")

HANDLING_ROLES = {Role.PETITION_OFFICER, Role.LEADER, Role.DEPARTMENT_HANDLER}
# casbin role names, as in Principal.grant_key
_LEADER = Role.LEADER.lower()
_DEPARTMENT_HANDLER = Role.DEPARTMENT_HANDLER.lower()
_AGENT_ROLES = frozenset(r.lower() for r in AGENT_ROLES)


def _grant_reach(role: str, unit_path: str) -> ColumnElement[bool]:
    if role == _DEPARTMENT_HANDLER:
        return subtree_filter(Case.holder_path, [unit_path])
    return unit_cases(unit_path)


def unit_cases(unit_path: str) -> ColumnElement[bool]:
    """Cases held in or located in the unit's subtree: what "a unit's cases" means for its
    case lists, statistics and reports (a department handler reads fewer: ``_grant_reach``)."""
    return or_(
        subtree_filter(Case.holder_path, [unit_path]),
        subtree_filter(Case.location_path, [unit_path]),
    )


def read_predicate(principal: Principal) -> ColumnElement[bool]:
    """The cases ``principal`` may read, as one SQL expression (see the module docstring)."""
    if principal.is_supervisor:
        return true()
    if principal.is_platform_admin:
        return false()
    return _tenant_read_predicate(
        principal.tenant_id, principal.account_id, principal.username, principal.grant_key
    )


@lru_cache(maxsize=512)
def _tenant_read_predicate(
    tenant_id: uuid.UUID | None,
    account_id: uuid.UUID,
    username: str,
    grants: tuple[tuple[str, str], ...],
) -> ColumnElement[bool]:
    """A city official's read predicate, memoised process-wide on every value it reads.

    Building it is not free (one subtree per grant, one Art. 30 exclusion per unit;
    docs/performance.md) and every request loads a new Principal, so it is keyed on values, not on the object:
    the account id and username (the 包案, "own" and accused-person clauses bind them),
    the ``(role, unit path)`` grants (a revoked grant changes the key, so revocation
    still takes effect on the next request) and the tenant id (not read — the session's
    tenant scope restricts rows — but it keeps two cities apart by construction). The
    expression holds only columns and bound literals of these values, nothing of the
    request (no ``now()``), and SQLAlchemy never mutates an expression it embeds, so one
    object serves every statement of every later request of that official. Bounded at
    512 officials so memory stays flat: ~14 KiB a one-grant predicate, ~100 KiB a
    ten-grant one (≈ 8 MB typical, 50 MB if every entry were a ten-grant leader).
    """
    del tenant_id  # part of the key only (see above)
    # Art. 30 for each grant's own unit is part of the barred clause below (it covers
    # every grant's unit), so the reach clauses need not repeat it.
    clauses = [
        _grant_reach(role, path)
        for role, path in grants
        if role_may(role, "tenant", "case", "read")
    ]
    if any(role == _LEADER for role, _ in grants):
        # 包案: the owning leader keeps reading its case wherever it is routed (its morning
        # digest lists it); Art. 30 below still applies
        clauses.append(Case.leader_id == account_id)
    if any(role in _AGENT_ROLES for role, _ in grants):
        # 代办/帮办 (seeds 001, 002): the agent follows the case it acts for, like its
        # registrar; Art. 30 below still applies (agents.py)
        clauses.append(Case.agent_id == account_id)
    if any(role_may(role, "tenant", "case", "read_own") for role, _ in grants):
        # "own": cases it registered, or (evaluators) the cases of panels it sits on
        # and whatever other domains let a holder of such a role read (evaluations: the
        # cases of the panels it sits on)
        own = [reader(account_id) for reader in own_readers]
        clauses.append(or_(Case.registered_by_id == account_id, *own))
    if not clauses:
        return false()
    # Art. 30 (need_to_know.py): the accused person, and whoever holds *any* role inside
    # the accused unit — a second grant elsewhere (a city leader also posted at the accused
    # county) must not reach it
    return and_(or_(*clauses), not_(barred_clause([p for _, p in grants], [username])))


def inside_accused(case: Case, unit_path: str) -> bool:
    """A grant at ``unit_path`` lies inside the case's named accused unit (need_to_know.py).

    For cases already read through :func:`read_predicate`, whose SQL bars the accused
    person's units as well: a reader holds no grant inside any of them. Checks that
    place a case somewhere (routing, 包案, intake) use ``need_to_know.accused_of``."""
    return is_barred(case, [unit_path], None)


def acting_grants(principal: Principal, case: Case, act: str) -> list[Grant]:
    """Grants that allow ``act`` and reach the unit currently holding the case."""
    return [
        g
        for g in allowed_grants(principal, "case", act)
        if path_covers(g.unit_path, case.holder_path) and not inside_accused(case, g.unit_path)
    ]


def pii_predicate(principal: Principal) -> ColumnElement[bool]:
    """:func:`sees_pii` as SQL: the cases whose PII ``principal`` is shown unmasked."""
    clauses = [
        and_(
            subtree_filter(Case.holder_path, [g.unit_path]),
            not_(barred_clause([g.unit_path], [])),  # the Python twin: inside_accused
        )
        for g in principal.grants
        if g.role in HANDLING_ROLES
    ]
    return or_(*clauses) if clauses else false()


def sees_pii(principal: Principal, case: Case) -> bool:
    """Unmasked PII only for officials handling the case in scope (never supervisors/evaluators)."""
    return any(
        g.role in HANDLING_ROLES
        and path_covers(g.unit_path, case.holder_path)
        and not inside_accused(case, g.unit_path)
        for g in principal.grants
    )
