"""Tenants, the org-unit tree, users and role assignments.

Every function takes the session and the principal; the session's tenant
scope is the wall, these functions only decide *which* tenant an
administrator may act in and switch the scope to it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.roles import TENANT_ROLES, AccountKind, Role
from backend.authz.scope import path_covers
from backend.core import validation as v
from backend.core.db import TenantScope, use_scope
from backend.core.errors import BadUserInput, Conflict, Forbidden, NotFound
from backend.tenants.models import (
    Account,
    OrgUnit,
    OrgUnitLevel,
    Province,
    RoleAssignment,
    Tenant,
    User,
)

# Prefix of a tenant's case numbers (``tenants.case_prefix`` is VARCHAR(8)).
CASE_PREFIX_RE = re.compile(r"^[A-Z0-9]{1,8}$")

# Which levels may hang below which: the tree the domain describes.
CHILD_LEVELS: dict[OrgUnitLevel, set[OrgUnitLevel]] = {
    OrgUnitLevel.CITY: {OrgUnitLevel.COUNTY, OrgUnitLevel.DEPARTMENT},
    OrgUnitLevel.COUNTY: {OrgUnitLevel.TOWNSHIP, OrgUnitLevel.DEPARTMENT},
    OrgUnitLevel.TOWNSHIP: {OrgUnitLevel.VILLAGE, OrgUnitLevel.GRID},
    OrgUnitLevel.VILLAGE: {OrgUnitLevel.GRID},
    OrgUnitLevel.GRID: set(),
    OrgUnitLevel.DEPARTMENT: set(),
}


# --- lookups on platform tables (no tenant column) ------------------------------------


async def province_by_slug(session: AsyncSession, slug: str) -> Province | None:
    return await session.scalar(select(Province).where(Province.slug == slug))


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await session.scalar(select(Tenant).where(Tenant.slug == slug))


async def tenants_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Tenant]:
    if not ids:
        return []
    rows = await session.scalars(select(Tenant).where(Tenant.id.in_(ids)).order_by(Tenant.slug))
    return list(rows)


async def account_by_username(session: AsyncSession, username: str) -> Account | None:
    return await session.scalar(select(Account).where(Account.username == username))


async def unit_by_path(session: AsyncSession, path: str) -> OrgUnit | None:
    """An org unit in the session's tenant scope (other tenants' units do not exist here)."""
    return await session.scalar(select(OrgUnit).where(OrgUnit.path == path))


# --- choosing the tenant an administrator acts in -----------------------------------


async def _administered_tenant(
    session: AsyncSession, principal: Principal, tenant_slug: str, obj: str, act: str
) -> Tenant | None:
    """The tenant ``principal`` may ``act`` on ``obj`` in, switching the session to it.

    ``None`` when the tenant is absent or not the principal's: callers answer
    as if it did not exist, so nothing about other tenants can be inferred.
    """
    require(principal, obj, act)
    tenant = await tenant_by_slug(session, tenant_slug)
    if tenant is None:
        return None
    if principal.is_platform_admin:
        await use_scope(session, TenantScope.of([tenant.id]))
        return tenant
    if principal.tenant_id == tenant.id and allowed_grants(principal, obj, act):
        return tenant
    return None


def _require_unit_in_grants(principal: Principal, obj: str, act: str, path: str, field: str):
    """A city administrator acts only inside the subtree where it holds the role."""
    if principal.is_platform_admin:
        return
    if not any(path_covers(g.unit_path, path) for g in allowed_grants(principal, obj, act)):
        raise v.unit_out_of_reach(path, field)


async def tenant_in_scope(
    session: AsyncSession, principal: Principal, slug: str, what: str
) -> uuid.UUID:
    """The id of tenant ``slug`` when the caller's scope holds it (a city official: its
    own city; a supervisor: the province's), else FORBIDDEN with the same message for a
    tenant that does not exist, so the answer tells nothing about other cities. One rule
    for every ``tenant:`` argument: the case list ignored a foreign one silently while
    the statistics refused it (outside probe of issue 21)."""
    tid = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tid is None or tid not in principal.scope().tenant_ids:
        raise Forbidden(f"no {what} of tenant {slug} for this account")
    return tid


# --- tenants -------------------------------------------------------------------------


async def create_tenant(
    session: AsyncSession,
    principal: Principal,
    *,
    slug: str,
    name: str,
    province: str,
    province_name: str | None = None,
    case_prefix: str | None = None,
) -> tuple[Tenant, OrgUnit]:
    """Create a city and its root unit ``/<slug>`` (platform staff only)."""
    require(principal, "tenant", "create")
    v.slug(slug, "slug")
    v.slug(province, "province")
    name = v.text(name, "name", max_len=200)
    if province_name is not None:
        province_name = v.text(province_name, "provinceName", max_len=200)
    if case_prefix is not None and not CASE_PREFIX_RE.match(case_prefix.upper()):
        raise BadUserInput("casePrefix must be 1-8 letters or digits", field="casePrefix")
    if await tenant_by_slug(session, slug):
        raise Conflict(f"tenant {slug} already exists", field="slug")
    prov = await province_by_slug(session, province)
    if prov is None:
        prov = Province(slug=province, name=province_name or province)
        session.add(prov)
        await session.flush()
    prefix = (case_prefix or slug[:2]).upper()
    tenant = Tenant(slug=slug, name=name, province_id=prov.id, case_prefix=prefix)
    session.add(tenant)
    await session.flush()
    await use_scope(session, TenantScope.of([tenant.id]))
    root = OrgUnit(
        tenant_id=tenant.id,
        path=f"/{slug}",
        slug=slug,
        name=name,
        level=OrgUnitLevel.CITY,
        depth=0,
    )
    session.add(root)
    await _flush_or_conflict(session, "slug")
    return tenant, root


async def root_unit(session: AsyncSession, principal: Principal, tenant: Tenant) -> OrgUnit | None:
    """The tenant's ``/<slug>`` unit, if the principal may read that tenant."""
    if principal.is_platform_admin:
        await use_scope(session, TenantScope.of([tenant.id]))
    return await unit_by_path(session, f"/{tenant.slug}")


async def visible_tenants(session: AsyncSession, principal: Principal) -> list[Tenant]:
    """Tenants the principal may read: its own, its province's, or all for platform staff."""
    require(principal, "tenant", "read")
    if principal.is_platform_admin:
        return list(await session.scalars(select(Tenant).order_by(Tenant.slug)))
    return await tenants_by_ids(session, sorted(principal.scope().tenant_ids))


# --- org units -----------------------------------------------------------------------


async def create_org_unit(
    session: AsyncSession,
    principal: Principal,
    *,
    parent_path: str,
    slug: str,
    name: str,
    level: OrgUnitLevel,
) -> OrgUnit:
    v.path(parent_path, "parentPath")
    v.slug(slug, "slug")
    name = v.text(name, "name", max_len=200)
    tenant = await _administered_tenant(
        session, principal, v.tenant_slug_of(parent_path), "org_unit", "create"
    )
    parent = await unit_by_path(session, parent_path) if tenant else None
    if parent is None:
        raise BadUserInput(f"unknown parent unit {parent_path}", field="parentPath")
    _require_unit_in_grants(principal, "org_unit", "create", parent_path, "parentPath")
    level = OrgUnitLevel(level)
    if level not in CHILD_LEVELS[OrgUnitLevel(parent.level)]:
        raise BadUserInput(
            f"a {level.value} unit cannot be placed under a {parent.level} unit", field="level"
        )
    path = f"{parent.path}/{slug}"
    if await unit_by_path(session, path):
        raise Conflict(f"org unit {path} already exists", field="slug")
    unit = OrgUnit(
        tenant_id=parent.tenant_id,
        parent_id=parent.id,
        path=path,
        slug=slug,
        name=name,
        level=level,
        depth=parent.depth + 1,
    )
    session.add(unit)
    await _flush_or_conflict(session, "slug")
    return unit


async def list_org_units(
    session: AsyncSession, principal: Principal, *, parent_path: str | None
) -> list[OrgUnit]:
    """Direct children of ``parent_path``, or the visible tenants' root units."""
    require(principal, "org_unit", "read")
    if principal.is_platform_admin:
        if parent_path is None:
            raise BadUserInput("platform staff must name a parentPath", field="parentPath")
        tenant = await tenant_by_slug(session, v.tenant_slug_of(v.path(parent_path, "parentPath")))
        if tenant is None:
            return []
        await use_scope(session, TenantScope.of([tenant.id]))
    if parent_path is None:
        stmt = select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.path)
        return list(await session.scalars(stmt))
    parent = await unit_by_path(session, v.path(parent_path, "parentPath"))
    if parent is None:
        return []
    stmt = select(OrgUnit).where(OrgUnit.parent_id == parent.id).order_by(OrgUnit.path)
    return list(await session.scalars(stmt))


async def get_org_unit(session: AsyncSession, principal: Principal, *, path: str) -> OrgUnit | None:
    require(principal, "org_unit", "read")
    v.path(path, "path")
    if principal.is_platform_admin:
        tenant = await tenant_by_slug(session, v.tenant_slug_of(path))
        if tenant is None:
            return None
        await use_scope(session, TenantScope.of([tenant.id]))
    return await unit_by_path(session, path)


async def visible_units(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[OrgUnit]:
    """Those of ``ids`` the caller reads with :func:`get_org_unit`: the units of its own
    tenants (the session's scope is the wall), in one statement. Platform staff open a
    unit by its path (``orgUnit(path:)`` chooses the city); by id they get none."""
    if not ids or principal.is_platform_admin or not may(principal, "org_unit", "read"):
        return []
    return list(await session.scalars(select(OrgUnit).where(OrgUnit.id.in_(list(set(ids))))))


# --- users and roles ------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant: str,
    username: str,
    display_name: str,
    phone: str | None = None,
    kind: AccountKind = AccountKind.TENANT_USER,
) -> User:
    """A user of a city: an official (``TENANT_USER``) or an integration (``SERVICE_ACCOUNT``)."""
    username = v.username(username)
    display_name = v.text(display_name, "displayName", max_len=200)
    phone = v.phone(phone)
    target = await _administered_tenant(session, principal, tenant, "user", "create")
    if target is None:
        raise BadUserInput(f"unknown tenant {tenant}", field="tenant")
    await check_new_username(session, principal, target, username)
    account = Account(
        username=username,
        kind=kind,
        display_name=display_name,
        tenant_id=target.id,
        province_id=target.province_id,
    )
    session.add(account)
    await _flush_or_conflict(session, "username")
    user = User(
        tenant_id=target.id,
        id=account.id,
        username=username,
        display_name=display_name,
        phone=phone,
    )
    session.add(user)
    await _flush_or_conflict(session, "username")
    return user


async def username_prefixes(session: AsyncSession, tenant: Tenant) -> list[str]:
    """What a city admin's new usernames start with: ``<slug>_``, and ``<case prefix>_``
    (``sq_`` for SQ-…) when no other city numbers its cases with the same prefix."""
    prefixes = [f"{tenant.slug}_"]
    shared = await session.scalar(
        select(func.count(Tenant.id)).where(Tenant.case_prefix == tenant.case_prefix)
    )
    short = f"{tenant.case_prefix.lower()}_"
    if shared == 1 and short not in prefixes:
        prefixes.append(short)
    return prefixes


async def check_new_username(
    session: AsyncSession,
    principal: Principal,
    tenant: Tenant,
    username: str,
    field: str = "username",
) -> None:
    """Refuse a username that is taken, without telling a city what exists elsewhere.

    Usernames are global (a token's ``sub`` names one account), so "taken" would confirm
    that another city has, say, ``zk_officer``. A city admin's new usernames therefore
    live in its city's namespace (:func:`username_prefixes`), checked *before* anything
    is looked up: a name outside it gets the same answer whether it exists or not, and a
    name inside it can only be taken by the city's own users. Platform admins (who see
    every city) name accounts freely.
    """
    if not principal.is_platform_admin:
        prefixes = await username_prefixes(session, tenant)
        if not username.startswith(tuple(prefixes)):
            raise BadUserInput(
                f"new usernames of this city start with {' or '.join(prefixes)}", field=field
            )
    if await account_by_username(session, username):
        raise Conflict(f"username {username} is taken", field=field)


async def _user_and_unit_for_grant(
    session: AsyncSession, principal: Principal, username: str, unit_path: str, act: str
) -> tuple[User, OrgUnit]:
    v.path(unit_path, "orgUnitPath")
    tenant = await _administered_tenant(
        session, principal, v.tenant_slug_of(unit_path), "role", act
    )
    unit = await unit_by_path(session, unit_path) if tenant else None
    if unit is None:
        raise BadUserInput(f"unknown org unit {unit_path}", field="orgUnitPath")
    _require_unit_in_grants(principal, "role", act, unit_path, "orgUnitPath")
    user = await session.scalar(
        select(User).where(User.username == v.username(username, "username"))
    )
    if user is None:
        raise BadUserInput(f"unknown user {username} in this tenant", field="username")
    return user, unit


async def assign_role(
    session: AsyncSession, principal: Principal, *, username: str, role: Role, org_unit_path: str
) -> User:
    role = Role(role)
    if role not in TENANT_ROLES:
        raise BadUserInput(f"{role.value} cannot be assigned at an org unit", field="role")
    user, unit = await _user_and_unit_for_grant(
        session, principal, username, org_unit_path, "assign"
    )
    if (
        role in (Role.CITY_ADMIN, Role.EVALUATOR)
        and await account_kind(session, user.id) is AccountKind.SERVICE_ACCOUNT
    ):
        # nor a citizen evaluator: it would be drawn onto panels (evaluations/pool.py)
        what = "a city admin" if role is Role.CITY_ADMIN else "an evaluator"
        raise BadUserInput(f"a service account cannot be {what}", field="role")
    existing = await session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.role == role,
            RoleAssignment.org_unit_id == unit.id,
        )
    )
    if existing:
        raise Conflict(f"{username} already holds {role.value} at {org_unit_path}", field="role")
    session.add(
        RoleAssignment(tenant_id=unit.tenant_id, user_id=user.id, role=role, org_unit_id=unit.id)
    )
    await _flush_or_conflict(session, "role")
    return user


async def revoke_role(
    session: AsyncSession, principal: Principal, *, username: str, role: Role, org_unit_path: str
) -> User:
    role = Role(role)
    user, unit = await _user_and_unit_for_grant(
        session, principal, username, org_unit_path, "revoke"
    )
    existing = await session.scalar(
        select(RoleAssignment).where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.role == role,
            RoleAssignment.org_unit_id == unit.id,
        )
    )
    if existing is None:
        raise NotFound(f"{username} holds no {role.value} at {org_unit_path}")
    await session.delete(existing)
    await session.flush()
    return user


async def account_kind(session: AsyncSession, account_id: uuid.UUID) -> AccountKind | None:
    kind = await session.scalar(select(Account.kind).where(Account.id == account_id))
    return AccountKind(kind) if kind else None


async def grants_of(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[str, OrgUnit]]:
    rows = await session.execute(
        select(RoleAssignment.role, OrgUnit)
        .join(
            OrgUnit,
            (OrgUnit.tenant_id == RoleAssignment.tenant_id)
            & (OrgUnit.id == RoleAssignment.org_unit_id),
        )
        .where(RoleAssignment.user_id == user_id)
        .order_by(OrgUnit.path, RoleAssignment.role)
    )
    return [(r, u) for r, u in rows]


async def create_provincial_supervisor(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    display_name: str,
    province: str,
) -> Account:
    require(principal, "supervisor", "create")
    username = v.username(username)
    display_name = v.text(display_name, "displayName", max_len=200)
    prov = await province_by_slug(session, v.slug(province, "province"))
    if prov is None:
        raise BadUserInput(f"unknown province {province}", field="province")
    if await account_by_username(session, username):
        raise Conflict(f"username {username} is taken", field="username")
    account = Account(
        username=username,
        kind=AccountKind.PROVINCIAL_SUPERVISOR,
        display_name=display_name,
        province_id=prov.id,
    )
    session.add(account)
    await _flush_or_conflict(session, "username")
    return account


async def create_platform_admin(
    session: AsyncSession, *, username: str, display_name: str | None = None
) -> Account:
    """Bootstrap only (CLI): there is no API to mint platform staff."""
    username = v.username(username)
    if await account_by_username(session, username):
        raise Conflict(f"username {username} is taken", field="username")
    account = Account(
        username=username,
        kind=AccountKind.PLATFORM_ADMIN,
        display_name=display_name or username,
    )
    session.add(account)
    await _flush_or_conflict(session, "username")
    return account


async def _flush_or_conflict(session: AsyncSession, field: str) -> None:
    """Flush; a unique violation raced in by a concurrent request becomes CONFLICT."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("already exists", field=field) from exc


@dataclass(frozen=True)
class GrantView:
    role: str
    unit: OrgUnit


@dataclass(frozen=True)
class Profile:
    """What ``me`` shows: the account, its tenant and its grants."""

    display_name: str
    phone: str | None
    tenant: Tenant | None
    grants: list[GrantView]
    staff_roles: list[Role]


async def profile(session: AsyncSession, principal: Principal) -> Profile:
    account = await session.get(Account, principal.account_id)
    if account is None:  # the built-in system principal
        return Profile(principal.username, None, None, [], [Role.PLATFORM_ADMIN])
    staff = {
        AccountKind.PLATFORM_ADMIN: [Role.PLATFORM_ADMIN],
        AccountKind.PROVINCIAL_SUPERVISOR: [Role.PROVINCIAL_SUPERVISOR],
    }.get(AccountKind(account.kind), [])
    if account.tenant_id is None:
        return Profile(account.display_name, None, None, [], staff)
    user = await session.get(User, (account.tenant_id, account.id))
    tenant = await session.get(Tenant, account.tenant_id)
    grants = [GrantView(r, u) for r, u in await grants_of(session, account.id)]
    return Profile(account.display_name, user.phone if user else None, tenant, grants, staff)
