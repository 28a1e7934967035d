"""casbin decisions (role × realm × object × action), made once per request, cached.

``enforce()`` walks policy lines synchronously, so it is asked once per
(role, action) and memoised; lists never call it per row — the org-unit
scope of the allowed grants becomes a SQL predicate instead (scope.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import casbin

from backend.authz.principal import Grant, Principal
from backend.core.errors import Forbidden

HERE = Path(__file__).parent
MODEL_PATH = HERE / "model.conf"
POLICY_PATH = HERE / "policy.csv"


@cache
def enforcer() -> casbin.Enforcer:
    return casbin.Enforcer(str(MODEL_PATH), str(POLICY_PATH))


@cache
def role_may(role: str, realm: str, obj: str, act: str) -> bool:
    return bool(enforcer().enforce(role, realm, obj, act))


def may(principal: Principal, obj: str, act: str) -> bool:
    """Does any of the principal's roles allow ``act`` on ``obj``?"""
    return any(role_may(r, principal.realm, obj, act) for r in principal.role_names)


def allowed_grants(principal: Principal, obj: str, act: str) -> list[Grant]:
    """The grants whose role allows the action: their units are where it may happen."""
    return [g for g in principal.grants if role_may(g.role.lower(), "tenant", obj, act)]


def require(principal: Principal, obj: str, act: str) -> None:
    if not may(principal, obj, act):
        raise Forbidden(f"not allowed to {act} {obj}")
