"""Orchestration across domains when a tenant is created (kept out of the CRUD service)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.categories import seed_default_categories
from backend.tenants import service
from backend.tenants.models import OrgUnit, Tenant


async def onboard_tenant(
    session: AsyncSession, principal: Principal, **fields: Any
) -> tuple[Tenant, OrgUnit]:
    """Create the city, its root unit and its starting category list in one transaction."""
    tenant, root = await service.create_tenant(session, principal, **fields)
    await seed_default_categories(session, tenant.id)
    return tenant, root
