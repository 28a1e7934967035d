"""Evaluation figures for the statistics and the monthly report (hooks of stats/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.cases.models import (
    Case,
)
from backend.cases.visibility import read_predicate, unit_cases
from backend.core import validation as v
from backend.core.clock import local_day_start
from backend.evaluations.models import (
    EvaluationPanel,
    PanelStatus,
    Verdict,
)


@dataclass(frozen=True)
class EvaluationOutcomes:
    """评价 figures: concluded panels (evaluated), of which settled, open, verdict mix."""

    evaluated: int
    settled: int
    pending: int
    verdict_mix: dict[Verdict, int]


def _window(column: Any, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    clauses = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return and_(true(), *clauses)


async def evaluation_outcomes(
    session: AsyncSession,
    *,
    case_clause: ColumnElement[bool] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EvaluationOutcomes:
    """Counts over the session's tenants for the statistics module (no authorisation here:
    the caller passes the case predicate of its viewer, e.g. ``read_predicate``)."""
    joined = and_(
        Case.tenant_id == EvaluationPanel.tenant_id,
        Case.id == EvaluationPanel.case_id,
        case_clause if case_clause is not None else true(),
    )
    concluded = and_(
        EvaluationPanel.status == PanelStatus.CONCLUDED,
        _window(EvaluationPanel.concluded_at, since, until),
    )
    base = select(EvaluationPanel.verdict, func.count(EvaluationPanel.id)).join(Case, joined)
    mix_rows = (
        await session.execute(base.where(concluded).group_by(EvaluationPanel.verdict))
    ).all()
    settled = await session.scalar(
        select(func.count(EvaluationPanel.id))
        .join(Case, joined)
        .where(concluded, EvaluationPanel.settled_at.is_not(None))
    )
    pending = await session.scalar(
        select(func.count(EvaluationPanel.id))
        .join(Case, joined)
        .where(
            EvaluationPanel.status == PanelStatus.OPEN,
            _window(EvaluationPanel.drawn_at, since, until),
        )
    )
    mix = {verdict: 0 for verdict in Verdict}
    for verdict, n in mix_rows:
        mix[Verdict(verdict)] = int(n)
    return EvaluationOutcomes(sum(mix.values()), int(settled or 0), int(pending or 0), mix)


async def evaluation_stats(
    session: AsyncSession,
    principal: Principal,
    *,
    since: date | None = None,
    until: date | None = None,
    unit_path: str | None = None,
) -> EvaluationOutcomes:
    """The viewer's figures: cases it may read, optionally one subtree, local dates inclusive."""
    require(principal, "stats", "read")
    v.date_range(since, until)  # supported dates, in order
    clause = read_predicate(principal)
    if unit_path:
        v.path(unit_path, "unitPath")
        clause = and_(clause, unit_cases(unit_path))
    return await evaluation_outcomes(
        session,
        case_clause=clause,
        since=local_day_start(since, principal.timezone) if since else None,
        until=local_day_start(until + timedelta(days=1), principal.timezone) if until else None,
    )
