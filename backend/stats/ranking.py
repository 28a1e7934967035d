"""Drill-down by unit and the weekly ranking of units (weights configurable, change vs last week).

A unit's figures count the cases held in or located in its subtree (as the
monthly report and the officials' case lists do). Units are the children of
``unit_path`` (the city's counties and departments by default); each is one
round of :func:`backend.stats.indicators.compute` — a loop over a handful of
units, never over cases.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import date, timedelta

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.models import Case, TenantPolicy
from backend.core.clock import local_today
from backend.core.errors import BadUserInput, NotFound
from backend.stats.definitions import STANDARD_WINDOW_DAYS, Definition, tenant_definition
from backend.stats.indicators import Indicators, Range, compute, merged
from backend.stats.report import unit_cases
from backend.stats.statistics import viewer_clause
from backend.tenants.models import OrgUnit

MAX_UNITS = 200


@dataclass(frozen=True)
class Weights:
    """Score = Σ weight × rate / Σ weight over the rates that are defined (repeat: 1 − rate)."""

    on_time_acceptance: float = 0.25
    on_time_closure: float = 0.30
    participation: float = 0.10
    satisfaction: float = 0.25
    repeat: float = 0.10

    @classmethod
    def of(cls, data: dict[str, float] | None, base: Weights | None = None) -> Weights:
        base = base or cls()
        values = {f.name: getattr(base, f.name) for f in fields(cls)}
        for name, value in (data or {}).items():
            if name not in values:
                raise BadUserInput(f"unknown weight {name}", field="weights")
            if value is None:
                continue
            if not 0 <= float(value) <= 100:
                raise BadUserInput("weights must be between 0 and 100", field="weights")
            values[name] = float(value)
        if not any(values.values()):
            raise BadUserInput("at least one weight must be positive", field="weights")
        return cls(**values)

    def score(self, ind: Indicators) -> float | None:
        repeat = None if ind.repeat_rate is None else 1 - ind.repeat_rate
        parts = [
            (self.on_time_acceptance, ind.on_time_acceptance_rate),
            (self.on_time_closure, ind.on_time_closure_rate),
            (self.participation, ind.participation_rate),
            (self.satisfaction, ind.satisfaction_rate),
            (self.repeat, repeat),
        ]
        parts = [(w, r) for w, r in parts if r is not None and w > 0]
        total = sum(w for w, _ in parts)
        return round(sum(w * r for w, r in parts) / total, 4) if total else None


@dataclass
class UnitFigures:
    unit: OrgUnit
    indicators: Indicators


async def _units(session: AsyncSession, tenant_id: uuid.UUID, unit_path: str | None) -> list:
    parent = (
        select(OrgUnit).where(OrgUnit.tenant_id == tenant_id, OrgUnit.path == unit_path)
        if unit_path
        else select(OrgUnit).where(OrgUnit.tenant_id == tenant_id, OrgUnit.parent_id.is_(None))
    )
    top = await session.scalar(parent)
    if top is None:
        raise NotFound(f"unit {unit_path} not found")
    children = list(
        await session.scalars(
            select(OrgUnit)
            .where(OrgUnit.tenant_id == tenant_id, OrgUnit.parent_id == top.id)
            .order_by(OrgUnit.path)
            .limit(MAX_UNITS)
        )
    )
    return children


async def _tenant_of(
    session: AsyncSession, principal: Principal, tenant: str | None, tid: uuid.UUID | None
) -> uuid.UUID:
    if tid is not None:
        return tid
    if principal.tenant_id is not None:
        return principal.tenant_id
    raise BadUserInput("tenant is required for a provincial view of units", field="tenant")


async def unit_breakdown(
    session: AsyncSession,
    principal: Principal,
    rng: Range,
    *,
    tenant: str | None = None,
    unit_path: str | None = None,
) -> list[UnitFigures]:
    """Drill-down: the child units of ``unit_path`` (default: the city), side by side."""
    clause, tid = await viewer_clause(session, principal, tenant=tenant, unit_path=unit_path)
    tid = await _tenant_of(session, principal, tenant, tid)
    definition = await tenant_definition(session, tid)  # the city's own formulas
    out = []
    for unit in await _units(session, tid, unit_path):
        groups = await compute(
            session,
            and_(clause, Case.tenant_id == tid, unit_cases(unit.path)),
            rng.start,
            rng.end,
            definition=definition,
        )
        out.append(UnitFigures(unit, _one(groups, definition)))
    return out


def _one(groups: dict, definition: Definition) -> Indicators:
    """The single tenant's figures (zeros when it has none), under its definition."""
    one = merged(groups) if groups else Indicators()
    one.definition = definition
    if definition.participation_window_days == STANDARD_WINDOW_DAYS:
        one.replied_eligible = one.replied_eligible_std
    return one


def week_of(day: date, tz: str) -> Range:
    monday = day - timedelta(days=day.weekday())
    return Range(monday, monday + timedelta(days=6), tz)


def last_full_week(today: date) -> date:
    return today - timedelta(days=7)


@dataclass
class RankRow:
    unit: OrgUnit
    rank: int | None
    score: float | None
    previous_rank: int | None
    previous_score: float | None
    indicators: Indicators

    @property
    def rank_change(self) -> int | None:
        """Places gained since last week (positive = moved up)."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    @property
    def score_change(self) -> float | None:
        if self.score is None or self.previous_score is None:
            return None
        return round(self.score - self.previous_score, 4)


def _ranks(scores: dict[str, float | None]) -> dict[str, int | None]:
    """Competition ranking (1, 2, 2, 4) of the units with a score; ``None`` without one."""
    ordered = sorted((s for s in scores.values() if s is not None), reverse=True)
    return {p: (None if s is None else ordered.index(s) + 1) for p, s in scores.items()}


async def tenant_weights(session: AsyncSession, tenant_id: uuid.UUID) -> Weights:
    """The tenant's override (``tenant_policies.data.rankingWeights``) over the defaults."""
    data = await session.scalar(
        select(TenantPolicy.data).where(TenantPolicy.tenant_id == tenant_id)
    )
    return Weights.of((data or {}).get("rankingWeights"))


async def weekly_ranking(
    session: AsyncSession,
    principal: Principal,
    *,
    week: date | None = None,
    tenant: str | None = None,
    unit_path: str | None = None,
    weights: dict[str, float] | None = None,
) -> tuple[Range, list[RankRow]]:
    """Units ranked by weighted score for the week (Mon–Sun) containing ``week``."""
    tz = principal.timezone
    this = week_of(week or last_full_week(local_today(tz)), tz)
    prev = week_of(this.first - timedelta(days=7), tz)
    clause, tid = await viewer_clause(session, principal, tenant=tenant, unit_path=unit_path)
    tid = await _tenant_of(session, principal, tenant, tid)
    w = Weights.of(weights, await tenant_weights(session, tid))
    units = await _units(session, tid, unit_path)
    definition = await tenant_definition(session, tid)
    figures: dict[str, tuple[Indicators, Indicators]] = {}
    for unit in units:
        mine = and_(clause, Case.tenant_id == tid, unit_cases(unit.path))
        cur = _one(
            await compute(session, mine, this.start, this.end, definition=definition), definition
        )
        old = _one(
            await compute(session, mine, prev.start, prev.end, definition=definition), definition
        )
        figures[unit.path] = (cur, old)
    scores = {p: w.score(c) for p, (c, _) in figures.items()}
    old_scores = {p: w.score(o) for p, (_, o) in figures.items()}
    ranks, old_ranks = _ranks(scores), _ranks(old_scores)
    rows = [
        RankRow(
            u,
            ranks[u.path],
            scores[u.path],
            old_ranks[u.path],
            old_scores[u.path],
            figures[u.path][0],
        )
        for u in units
    ]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.unit.path))
    return this, rows
