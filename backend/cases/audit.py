"""Audit: the access log of unmasked PII, and verification of the case event chains."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.events import BrokenLink, verify_chain
from backend.cases.models import CaseEvent, PiiAccess
from backend.core.progress import Progress

PROGRESS_STEP = 100  # events between two progress updates


async def record_pii_reads(
    session: AsyncSession,
    principal: Principal,
    reads: Iterable[tuple[Any, ...]],
    request_id: str,
) -> None:
    """``reads``: (tenant_id, case_id, fields) — one row per case read unmasked — or
    (tenant_id, None, fields, petitioner key) — one row per search by id number, which
    names the searched person by the keyed hash only (never the number itself)."""
    for tenant_id, case_id, fields, *key in reads:
        session.add(
            PiiAccess(
                tenant_id=tenant_id,
                case_id=case_id,
                user_id=principal.account_id,
                username=principal.username,
                fields=list(fields),
                request_id=request_id,
                petitioner_key=key[0] if key else None,
            )
        )
    await session.flush()


async def verify_tenant_chain(
    session: AsyncSession, progress: Progress | None = None
) -> tuple[int, BrokenLink | None]:
    """Walk every event of the session's tenant in (case, seq) order; count and first break.

    ``progress`` (of :func:`count_tenant_events` events) advances as they are read."""
    counted = 0

    async def events() -> AsyncIterator[CaseEvent]:
        nonlocal counted
        result = await session.stream_scalars(
            select(CaseEvent).order_by(CaseEvent.case_id, CaseEvent.seq)
        )
        async for event in result:
            counted += 1
            if progress is not None and counted % PROGRESS_STEP == 0:
                progress.advance(PROGRESS_STEP)
            yield event

    broken = await verify_chain(events())
    if progress is not None:
        progress.advance(counted - progress.done)
    return counted, broken


async def count_tenant_events(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(CaseEvent.id))) or 0
