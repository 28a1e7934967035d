"""What a caller may ask: the case statistics of the cases it may read.

Officials' figures honour the per-case read rule (accusations included) and are
computed live (:mod:`backend.stats.indicators`); a provincial supervisor's come from
the daily summary plus a live tail (:mod:`backend.stats.summary`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.cases.models import Case
from backend.cases.visibility import read_predicate, unit_cases
from backend.core import validation as v
from backend.evaluations.statistics import evaluation_outcomes
from backend.stats.definitions import (
    STANDARD,
    STANDARD_WINDOW_DAYS,
    Definition,
    tenant_definition,
)
from backend.stats.indicators import Granularity, Indicators, Range, compute, merged
from backend.stats.summary import figures
from backend.tenants.service import tenant_in_scope


async def tenant_filter(
    session: AsyncSession, principal: Principal, tenant: str | None
) -> tuple[ColumnElement[bool], uuid.UUID | None]:
    """``tenant:`` must be one the caller's scope holds (a city official: its own city)."""
    if not tenant:
        return Case.tenant_id.in_(sorted(principal.scope().tenant_ids)), None
    tid = await tenant_in_scope(session, principal, tenant, "statistics")
    return Case.tenant_id == tid, tid


async def viewer_clause(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant: str | None = None,
    unit_path: str | None = None,
) -> tuple[ColumnElement[bool], uuid.UUID | None]:
    """The cases a statistics viewer counts: visible (accusation rules included), filtered."""
    require(principal, "stats", "read")
    where, tid = await tenant_filter(session, principal, tenant)
    clauses = [read_predicate(principal), where]
    if unit_path:
        v.path(unit_path, "unitPath")
        clauses.append(unit_cases(unit_path))
    return and_(*clauses), tid


@dataclass
class Statistics:
    range: Range
    tenant: str | None
    unit_path: str | None
    indicators: Indicators
    clause: Any = None
    tenant_id: uuid.UUID | None = None
    refreshed_at: datetime | None = None  # the summary's refresh when it was read


async def case_statistics(
    session: AsyncSession,
    principal: Principal,
    first: date,
    last: date,
    *,
    tenant: str | None = None,
    unit_path: str | None = None,
) -> Statistics:
    """Indicators under the city's definition (a province-wide view: the standard).

    Supervisors read every case of their cities (no per-case visibility rule
    applies), so their figures come from the daily summary plus a live tail;
    officials' figures honour per-case rules (accusations) and are live.
    """
    rng = Range.of(first, last, principal.timezone)
    clause, tid = await viewer_clause(session, principal, tenant=tenant, unit_path=unit_path)
    owner = tid or principal.tenant_id
    if principal.is_supervisor:
        ids = [tid] if tid else sorted(principal.scope().tenant_ids)
        groups, refreshed = await figures(session, ids, rng, unit_path=unit_path)
        return Statistics(rng, tenant, unit_path, merged(groups), clause, tid, refreshed)
    definition = await tenant_definition(session, owner) if owner else STANDARD
    groups = await compute(session, clause, rng.start, rng.end, definition=definition)
    ind = merged(groups) if groups else Indicators(definition=definition)
    ind.definition = definition
    if definition.participation_window_days == STANDARD_WINDOW_DAYS:
        ind.replied_eligible = ind.replied_eligible_std
    return Statistics(rng, tenant, unit_path, ind, clause, tid)


async def series(
    session: AsyncSession,
    clause: ColumnElement[bool],
    rng: Range,
    granularity: Granularity,
    definition: Definition = STANDARD,
) -> list[tuple[Range, Indicators]]:
    """One indicator set per day / week / month (a bounded number of aggregate rounds)."""
    out = []
    for b in rng.buckets(granularity):
        groups = await compute(session, clause, b.start, b.end, definition=definition)
        one = merged(groups) if groups else Indicators()
        one.definition = definition
        out.append((b, one))
    return out


async def evaluations(session: AsyncSession, clause: ColumnElement[bool], rng: Range):
    return await evaluation_outcomes(session, case_clause=clause, since=rng.start, until=rng.end)
