"""casbin decisions (role × realm × object × action), made once per request, cached.

``enforce()`` walks policy lines synchronously, so it is asked once per
(role, action) and memoised; lists never call it per row — the org-unit
scope of the allowed grants becomes a SQL predicate instead (scope.py).
"""

from __future__ import annotations

from functools import cache, lru_cache
from pathlib import Path

import casbin

from backend.authz.principal import Grant, Principal
from backend.core.errors import Forbidden
from backend.core.logging import quiet_libraries

HERE = Path(__file__).parent
MODEL_PATH = HERE / "model.conf"
POLICY_PATH = HERE / "policy.csv"


@cache
def enforcer() -> casbin.Enforcer:
    quiet_libraries()  # casbin prints its model and policy at INFO while it loads them
    return casbin.Enforcer(str(MODEL_PATH), str(POLICY_PATH))


@cache
def role_may(role: str, realm: str, obj: str, act: str) -> bool:
    return bool(enforcer().enforce(role, realm, obj, act))


def may(principal: Principal, obj: str, act: str) -> bool:
    """Does any of the principal's roles allow ``act`` on ``obj``?"""
    return any(role_may(r, principal.realm, obj, act) for r in principal.role_names)


@lru_cache(maxsize=4096)
def allowed_indices(roles: tuple[str, ...], obj: str, act: str) -> tuple[int, ...]:
    """Positions in ``roles`` of the roles that allow ``act`` on ``obj`` in a tenant.

    Process-wide memo on a value key: the decision reads nothing but the role names,
    so every official holding the same roles in the same order shares one entry, and a
    ten-grant leader pays one lookup instead of ten. Bounded: the keys are role
    sequences (few distinct ones per city) × (object, action), so 4,096 entries hold
    the working set while an odd mix of roles can never grow the process.
    """
    return tuple(i for i, role in enumerate(roles) if role_may(role, "tenant", obj, act))


def allowed_grants(principal: Principal, obj: str, act: str) -> list[Grant]:
    """The grants whose role allows the action: their units are where it may happen."""
    grants = principal.grants
    return [grants[i] for i in allowed_indices(principal.grant_roles, obj, act)]


def require(principal: Principal, obj: str, act: str) -> None:
    if not may(principal, obj, act):
        raise Forbidden(f"not allowed to {act} {obj}")
