"""Who may be what: the roles held at org units and the kinds of account (casbin's subjects).

The authorization layer's own vocabulary; tenants store them (``role_assignments.role``,
``accounts.kind``), casbin decides with them (policy.csv names them in lower case).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CITY_ADMIN = "CITY_ADMIN"
    PETITION_OFFICER = "PETITION_OFFICER"
    DEPARTMENT_HANDLER = "DEPARTMENT_HANDLER"
    LEADER = "LEADER"
    GRID_WORKER = "GRID_WORKER"
    EVALUATOR = "EVALUATOR"
    PROVINCIAL_SUPERVISOR = "PROVINCIAL_SUPERVISOR"
    PLATFORM_ADMIN = "PLATFORM_ADMIN"


TENANT_ROLES = (
    Role.CITY_ADMIN,
    Role.PETITION_OFFICER,
    Role.DEPARTMENT_HANDLER,
    Role.LEADER,
    Role.GRID_WORKER,
    Role.EVALUATOR,
)


class AccountKind(StrEnum):
    TENANT_USER = "TENANT_USER"
    # An integration of one city (a 12345 hotline, a grid app): a user of that city with
    # only the roles given to it, that authenticates with API keys and never with a
    # token (no SSO, no ``xinfang token``); API keys are minted for these only.
    SERVICE_ACCOUNT = "SERVICE_ACCOUNT"
    PROVINCIAL_SUPERVISOR = "PROVINCIAL_SUPERVISOR"
    PLATFORM_ADMIN = "PLATFORM_ADMIN"


CITY_KINDS = frozenset({AccountKind.TENANT_USER, AccountKind.SERVICE_ACCOUNT})
"""Accounts that belong to one city and hold roles at its units."""
