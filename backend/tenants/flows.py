"""Orchestration across domains when a tenant is created (kept out of the CRUD service)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.core.hooks import Hook
from backend.tenants import service
from backend.tenants.models import OrgUnit, Tenant

# What other domains set up for a new city, in its creating transaction (the cases
# domain seeds the case categories).
tenant_created: Hook[Callable[[AsyncSession, uuid.UUID], Awaitable[None]]] = Hook("tenant_created")


async def onboard_tenant(
    session: AsyncSession, principal: Principal, **fields: Any
) -> tuple[Tenant, OrgUnit]:
    """Create the city, its root unit and what every domain starts it with (the
    ``tenant_created`` hook: categories), in one transaction."""
    tenant, root = await service.create_tenant(session, principal, **fields)
    for set_up in tenant_created:
        await set_up(session, tenant.id)
    return tenant, root
