"""Who is calling: the account, its realm and the roles it holds (read from the DB per request)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property

from backend.authz.roles import CITY_KINDS, AccountKind, Role
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.db import TenantScope


@dataclass(frozen=True)
class Grant:
    """One role held at one org unit; it reaches that unit's subtree."""

    role: Role
    unit_id: uuid.UUID
    unit_path: str


@dataclass(frozen=True)
class Principal:
    account_id: uuid.UUID
    username: str
    kind: AccountKind
    tenant_id: uuid.UUID | None = None
    tenant_slug: str | None = None
    province_id: uuid.UUID | None = None
    grants: tuple[Grant, ...] = ()
    # For a provincial supervisor: every tenant of its province.
    province_tenant_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    # The city's IANA time zone: the local dates it means ("received from 11-02") and the
    # zone its responses show times in; the default zone outside a city.
    timezone: str = DEFAULT_TIMEZONE

    @property
    def city_timezone(self) -> str | None:
        """The city's zone, ``None`` outside a city: staff read times in the deployment's
        default zone (``XF_DEFAULT_TIMEZONE``), which the principal does not know."""
        return self.timezone if self.tenant_id is not None else None

    @property
    def realm(self) -> str:
        """The casbin domain the principal's roles are held in."""
        return {
            AccountKind.TENANT_USER: "tenant",
            AccountKind.SERVICE_ACCOUNT: "tenant",
            AccountKind.PROVINCIAL_SUPERVISOR: "province",
            AccountKind.PLATFORM_ADMIN: "platform",
        }[self.kind]

    @cached_property  # asked by every may(); a principal lives one request and never changes
    def role_names(self) -> frozenset[str]:
        if self.kind is AccountKind.PLATFORM_ADMIN:
            return frozenset({"platform_admin"})
        if self.kind is AccountKind.PROVINCIAL_SUPERVISOR:
            return frozenset({"provincial_supervisor"})
        return frozenset(self.grant_roles)

    @cached_property
    def grant_roles(self) -> tuple[str, ...]:
        """The casbin role name of each grant, in grant order (key of ``allowed_indices``).

        Plain ``str``, not :class:`Role`: an Enum hashes slowly in Python (its __hash__ is Python code), and
        these tuples are hashed on every request as keys of process-wide memos.
        """
        return tuple(g.role.lower() for g in self.grants)

    @cached_property
    def grant_key(self) -> tuple[tuple[str, str], ...]:
        """``(casbin role name, unit path)`` per grant, in grant order, as plain strings.

        The value key of the process-wide memo of the read predicate (visibility.py):
        every request loads a new Principal, but two loads with the same grants give
        equal keys, so what was derived from the grants is reused — and a revoked or
        added grant changes the key at once. The unit id is left out: nothing derived
        through this key reads it (the path names the unit).
        """
        return tuple(zip(self.grant_roles, (g.unit_path for g in self.grants), strict=True))

    @property
    def is_supervisor(self) -> bool:
        return self.kind is AccountKind.PROVINCIAL_SUPERVISOR

    @property
    def is_platform_admin(self) -> bool:
        return self.kind is AccountKind.PLATFORM_ADMIN

    @property
    def is_service_account(self) -> bool:
        return self.kind is AccountKind.SERVICE_ACCOUNT

    def scope(self) -> TenantScope:
        """The tenants this principal's transactions may see."""
        if self.kind in CITY_KINDS and self.tenant_id:
            return TenantScope.of([self.tenant_id])
        if self.kind is AccountKind.PROVINCIAL_SUPERVISOR:
            return TenantScope.of(self.province_tenant_ids, read_only=True)
        return TenantScope.of([])


SYSTEM = Principal(account_id=uuid.UUID(int=0), username="system", kind=AccountKind.PLATFORM_ADMIN)
"""The principal of CLI bootstrap and jobs: platform rights, no tenant until one is chosen."""
