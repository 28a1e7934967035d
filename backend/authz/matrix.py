"""Render the role × action matrix from the casbin policy (docs/authz.md is this output)."""

from __future__ import annotations

from backend.authz.enforcer import enforcer, role_may

ROLES = [
    ("platform_admin", "platform"),
    ("provincial_supervisor", "province"),
    ("city_admin", "tenant"),
    ("petition_officer", "tenant"),
    ("department_handler", "tenant"),
    ("leader", "tenant"),
    ("grid_worker", "tenant"),
    ("evaluator", "tenant"),
]


def permissions() -> list[tuple[str, str]]:
    """Every (object, action) named by the policy, sorted."""
    return sorted({(p[2], p[3]) for p in enforcer().get_policy()})


def render_markdown() -> str:
    head = "| object | action | " + " | ".join(r for r, _ in ROLES) + " |"
    sep = "|---|---|" + "---|" * len(ROLES)
    rows = [
        f"| {obj} | {act} | "
        + " | ".join("✔" if role_may(r, realm, obj, act) else "" for r, realm in ROLES)
        + " |"
        for obj, act in permissions()
    ]
    return "\n".join(
        [
            "# Authorization matrix",
            "",
            "Generated from `backend/authz/policy.csv` by `xinfang authz-doc`; a test keeps it in",
            "sync. A ✔ means the role may perform the action *somewhere*: for tenant roles the",
            "scope is the org unit the role is held at and its subtree (a SQL predicate, see",
            "`backend/authz/scope.py`); provincial supervisors read every tenant of their province;",
            "platform staff administer tenants but never read case content.",
            "",
            head,
            sep,
            *rows,
            "",
        ]
    )
