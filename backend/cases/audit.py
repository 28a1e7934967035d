"""Access log of unmasked petitioner PII (who read whose id number and phone)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.models import PiiAccess


async def record_pii_reads(
    session: AsyncSession,
    principal: Principal,
    reads: Iterable[tuple[uuid.UUID, uuid.UUID, tuple[str, ...]]],
    request_id: str,
) -> None:
    """``reads``: (tenant_id, case_id, fields) — one row per case read unmasked."""
    for tenant_id, case_id, fields in reads:
        session.add(
            PiiAccess(
                tenant_id=tenant_id,
                case_id=case_id,
                user_id=principal.account_id,
                username=principal.username,
                fields=list(fields),
                request_id=request_id,
            )
        )
    await session.flush()
