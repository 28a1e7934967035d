"""Turn a verified username into a :class:`Principal`, reading roles from the database.

Roles are read on every request so a revoked role takes effect at once.
"""

from __future__ import annotations

from sqlalchemy import select

from backend.authz.principal import Grant, Principal
from backend.core.db import Database, TenantScope, use_scope
from backend.core.errors import Unauthenticated
from backend.tenants.models import Account, AccountKind, Role, Tenant
from backend.tenants.service import grants_of


async def load_principal(db: Database, username: str) -> Principal:
    async with db.transaction() as session:
        # the account with its city's slug in one statement (both are platform tables)
        row = (
            await session.execute(
                select(Account, Tenant.slug)
                .outerjoin(Tenant, Tenant.id == Account.tenant_id)
                .where(Account.username == username)
            )
        ).first()
        account, tenant_slug = row if row is not None else (None, None)
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
            province_id=account.province_id,
            grants=grants,
        )
