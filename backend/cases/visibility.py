"""Who may see and act on which case, as SQL predicates (never filtering in Python).

- Officials (petition officers, leaders) see cases held in, or located in,
  the subtree of a unit where they hold a reading role, and leaders the cases they own
  (包案) wherever they went; department handlers only cases held by their
  department; grid workers the cases they registered;
  evaluators (``read_own``) the cases of the evaluation panels they sit on.
- 检举控告 (Art. 30): an accusation is invisible to anybody holding any role inside
  the accused unit's subtree (whatever their other grants), and to the accused person.
- Provincial supervisors read every case of their province's tenants (the
  tenant scope of the session already restricts them); platform staff none.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, false, literal, not_, or_, select, true

from backend.authz.enforcer import allowed_grants
from backend.authz.principal import Grant, Principal
from backend.authz.scope import path_covers, subtree_filter
from backend.cases.models import Case, CaseType
from backend.evaluations.models import PanelMember
from backend.tenants.models import Role

HANDLING_ROLES = {Role.PETITION_OFFICER, Role.LEADER, Role.DEPARTMENT_HANDLER}


def _not_inside_accused(unit_path: str) -> ColumnElement[bool]:
    """The grant at ``unit_path`` does not lie inside the case's accused unit."""
    p = literal(unit_path)
    inside = or_(p == Case.accused_path, p.like(Case.accused_path + "/%"))
    return not_(and_(Case.type == CaseType.ACCUSATION, Case.accused_path.is_not(None), inside))


def _grant_reach(grant: Grant) -> ColumnElement[bool]:
    held = subtree_filter(Case.holder_path, [grant.unit_path])
    if grant.role is Role.DEPARTMENT_HANDLER:
        return held
    return or_(held, subtree_filter(Case.location_path, [grant.unit_path]))


def read_predicate(principal: Principal) -> ColumnElement[bool]:
    if principal.is_supervisor:
        return true()
    if principal.is_platform_admin:
        return false()
    clauses = [
        and_(_grant_reach(g), _not_inside_accused(g.unit_path))
        for g in allowed_grants(principal, "case", "read")
    ]
    if any(g.role is Role.LEADER for g in principal.grants):
        # 包案: the owning leader keeps reading its case wherever it is routed (its morning
        # digest lists it); Art. 30 below still applies
        clauses.append(Case.leader_id == principal.account_id)
    own_grants = allowed_grants(principal, "case", "read_own")
    if own_grants:
        # "own": cases it registered, or (evaluators) the cases of panels it sits on
        own = or_(Case.registered_by_id == principal.account_id, _on_my_panel(principal))
        clauses.append(and_(own, *[_not_inside_accused(g.unit_path) for g in own_grants]))
    if not clauses:
        return false()
    not_accused_person = or_(
        Case.accused_username.is_(None), Case.accused_username != principal.username
    )
    # Art. 30 "the unit accused" includes whoever holds *any* role inside it: a second
    # grant elsewhere (a city leader also posted at the accused county) must not reach it
    not_member = [_not_inside_accused(p) for p in sorted({g.unit_path for g in principal.grants})]
    return and_(or_(*clauses), not_accused_person, *not_member)


def _on_my_panel(principal: Principal) -> ColumnElement[bool]:
    """Evaluators: the cases of the evaluation panels they sit on (masked, see sees_pii)."""
    return exists(
        select(PanelMember.id).where(
            PanelMember.tenant_id == Case.tenant_id,
            PanelMember.case_id == Case.id,
            PanelMember.user_id == principal.account_id,
        )
    )


def inside_accused(case: Case, unit_path: str) -> bool:
    return (
        case.type == CaseType.ACCUSATION
        and case.accused_path is not None
        and path_covers(case.accused_path, unit_path)
    )


def acting_grants(principal: Principal, case: Case, act: str) -> list[Grant]:
    """Grants that allow ``act`` and reach the unit currently holding the case."""
    return [
        g
        for g in allowed_grants(principal, "case", act)
        if path_covers(g.unit_path, case.holder_path) and not inside_accused(case, g.unit_path)
    ]


def sees_pii(principal: Principal, case: Case) -> bool:
    """Unmasked PII only for officials handling the case in scope (never supervisors/evaluators)."""
    return any(
        g.role in HANDLING_ROLES
        and path_covers(g.unit_path, case.holder_path)
        and not inside_accused(case, g.unit_path)
        for g in principal.grants
    )
