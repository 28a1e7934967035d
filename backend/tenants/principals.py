"""Turn a verified username into a :class:`Principal`, reading roles from the database.

Roles are read on every request so a revoked role takes effect at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Grant, Principal
from backend.authz.roles import AccountKind, Role
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.db import Database, TenantScope, current_scope, use_scope
from backend.core.errors import Unauthenticated
from backend.tenants.models import Account, Tenant
from backend.tenants.service import grants_of


async def load_principal(db: Database, username: str) -> Principal:
    async with db.transaction() as session:
        return await principal_in(session, username)


async def open_principal(db: Database, username: str) -> tuple[Principal, AsyncSession | None]:
    """The principal, and the still-open session that read it when it can serve the request.

    A city official's transaction already runs as the app role in the principal's own
    scope once the grants are read, so the request's reads continue in it (one pool
    checkout and four round trips fewer per request than a second transaction). A
    supervisor's province scope differs from the one it was loaded in: closed, ``None``.
    """
    session = db.session()
    try:
        await session.begin()
        principal = await principal_in(session, username)
    except BaseException:
        await session.close()
        raise
    if current_scope(session) != principal.scope():
        await session.close()
        return principal, None
    return principal, session


async def principal_in(session: AsyncSession, username: str) -> Principal:
    """Read ``username``'s principal inside ``session``'s transaction (left in its scope)."""
    # the account with its city's slug and zone in one statement (both are platform tables)
    row = (
        await session.execute(
            select(Account, Tenant.slug, Tenant.timezone)
            .outerjoin(Tenant, Tenant.id == Account.tenant_id)
            .where(Account.username == username)
        )
    ).first()
    account, tenant_slug, timezone = row if row is not None else (None, None, None)
    if account is None or account.disabled_at is not None:
        raise Unauthenticated("unknown or disabled account")
    kind = AccountKind(account.kind)
    base = dict(account_id=account.id, username=account.username, kind=kind)
    if kind is AccountKind.PLATFORM_ADMIN:
        return Principal(**base)
    if kind is AccountKind.PROVINCIAL_SUPERVISOR:
        ids = await session.scalars(
            select(Tenant.id).where(Tenant.province_id == account.province_id)
        )
        return Principal(
            **base, province_id=account.province_id, province_tenant_ids=frozenset(ids)
        )
    await use_scope(session, TenantScope.of([account.tenant_id]))
    grants = tuple(
        Grant(role=Role(role), unit_id=unit.id, unit_path=unit.path)
        for role, unit in await grants_of(session, account.id)
    )
    return Principal(
        **base,
        tenant_id=account.tenant_id,
        tenant_slug=tenant_slug,
        timezone=timezone or DEFAULT_TIMEZONE,
        province_id=account.province_id,
        grants=grants,
    )
