"""Statistics indicators (docs/indicators.md): GROUP BY aggregates, never a loop over cases.

:func:`compute` runs five aggregate statements over the cases matching a SQL
``clause`` (the viewer's ``read_predicate`` and any tenant / unit filter),
grouped by a key expression (``Case.tenant_id`` by default, so a province
overview is the same five statements). The definitions are those of the
monthly report (backend/stats/report.py: ``unit_cases``, on time = a step
*due* in the range finished on or before its due time, backlog = a step past
due at the cut-off and not finished by then, satisfaction over ratings given
in the range) generalised to any ``[start, end)`` and grouping.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.cases.models import Case, CaseDeadline, DeadlineStatus, Satisfaction, SkipLevel
from backend.cases.rules import Step
from backend.cases.visibility import read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Forbidden
from backend.evaluations.service import evaluation_outcomes, local_day_start
from backend.stats.report import STEPS, _rate, unit_cases
from backend.tenants.models import Tenant

TZ = "Asia/Shanghai"  # the date arguments are local dates (as the case list filters)
MAX_DAYS = 3700  # about ten years in one range
MAX_BUCKETS = 93  # a series answers at most this many days / weeks / months


class Granularity(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass
class Indicators:
    """Numerators and denominators; rates are derived (``None`` on a zero denominator)."""

    received: int = 0
    repeat: int = 0
    skip_level: int = 0
    acceptance_due: int = 0
    acceptance_on_time: int = 0
    closure_due: int = 0
    closure_on_time: int = 0
    replied: int = 0
    replied_rated: int = 0
    rated: int = 0
    satisfied: int = 0  # SATISFIED + BASICALLY_SATISFIED
    backlog: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_rating: dict[str, int] = field(default_factory=dict)

    @property
    def on_time_acceptance_rate(self) -> float | None:
        return _rate(self.acceptance_on_time, self.acceptance_due)

    @property
    def on_time_closure_rate(self) -> float | None:
        return _rate(self.closure_on_time, self.closure_due)

    @property
    def participation_rate(self) -> float | None:
        return _rate(self.replied_rated, self.replied)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied, self.rated)

    @property
    def repeat_rate(self) -> float | None:
        return _rate(self.repeat, self.received)

    def __iadd__(self, other: Indicators) -> Indicators:
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if isinstance(mine, dict):
                for k, n in theirs.items():
                    mine[k] = mine.get(k, 0) + n
            else:
                setattr(self, f.name, mine + theirs)
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "onTimeAcceptanceRate": self.on_time_acceptance_rate,
            "onTimeClosureRate": self.on_time_closure_rate,
            "participationRate": self.participation_rate,
            "satisfactionRate": self.satisfaction_rate,
            "repeatRate": self.repeat_rate,
            "skipLevelCount": self.skip_level,
            "backlog": self.backlog,
        }


def merged(groups: dict[Any, Indicators]) -> Indicators:
    total = Indicators()
    for one in groups.values():
        total += one
    return total


# --- the range -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    """Local dates ``first..last`` inclusive, as UTC instants ``[start, end)``."""

    first: date
    last: date

    @classmethod
    def of(cls, first: date, last: date) -> Range:
        if last < first:
            raise BadUserInput("to is before from", field="to")
        if (last - first).days > MAX_DAYS:
            raise BadUserInput(f"at most {MAX_DAYS} days", field="to")
        return cls(first, last)

    @property
    def start(self) -> datetime:
        return local_day_start(self.first, TZ)

    @property
    def end(self) -> datetime:
        return local_day_start(self.last + timedelta(days=1), TZ)

    def buckets(self, granularity: Granularity) -> list[Range]:
        out: list[Range] = []
        d = self.first
        while d <= self.last:
            if granularity is Granularity.DAY:
                nxt = d + timedelta(days=1)
            elif granularity is Granularity.WEEK:
                nxt = d + timedelta(days=7 - d.weekday())
            else:
                nxt = (d.replace(day=1) + timedelta(days=32)).replace(day=1)
            out.append(Range(d, min(nxt - timedelta(days=1), self.last)))
            if len(out) > MAX_BUCKETS:
                raise BadUserInput(
                    f"at most {MAX_BUCKETS} buckets in a series", field="granularity"
                )
            d = nxt
        return out


# --- the aggregates --------------------------------------------------------------------------


async def compute(
    session: AsyncSession,
    clause: ColumnElement[bool],
    start: datetime,
    end: datetime,
    key: Any = Case.tenant_id,
) -> dict[Any, Indicators]:
    """Indicators of the cases matching ``clause`` over ``[start, end)``, by ``key``."""
    out: dict[Any, Indicators] = defaultdict(Indicators)

    # 1. intake: cases received in the range, by channel x type x category
    for k, channel, type_, category, n, rep, skip in await session.execute(
        select(
            key,
            Case.channel,
            Case.type,
            Case.category,
            func.count(),
            func.sum(sql_case((Case.repeat_count > 0, 1), else_=0)),
            func.sum(sql_case((Case.skip_level != SkipLevel.NONE.value, 1), else_=0)),
        )
        .where(clause, Case.received_at >= start, Case.received_at < end)
        .group_by(key, Case.channel, Case.type, Case.category)
    ):
        one = out[k]
        one.received += n
        one.repeat += int(rep or 0)
        one.skip_level += int(skip or 0)
        for bucket, name in ((one.by_channel, channel), (one.by_type, type_)):
            bucket[name] = bucket.get(name, 0) + n
        one.by_category[category] = one.by_category.get(category, 0) + n

    # 2. on time: ACCEPTANCE / HANDLING steps due in the range (cancelled aside)
    d = CaseDeadline
    on_time = and_(d.status == DeadlineStatus.MET.value, d.finished_at <= d.due_at)
    joined = and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id)
    for k, step, due, ok in await session.execute(
        select(key, d.step, func.count(), func.sum(sql_case((on_time, 1), else_=0)))
        .join(Case, joined)
        .where(
            clause,
            d.step.in_([Step.ACCEPTANCE.value, Step.HANDLING.value]),
            d.due_at >= start,
            d.due_at < end,
            d.status != DeadlineStatus.CANCELLED.value,
        )
        .group_by(key, d.step)
    ):
        one = out[k]
        if step == Step.ACCEPTANCE.value:
            one.acceptance_due, one.acceptance_on_time = int(due), int(ok or 0)
        else:
            one.closure_due, one.closure_on_time = int(due), int(ok or 0)

    # 3. backlog (积案) at the cut-off (end of range, or now): an officials' step past due
    #    and not finished by then
    cutoff = min(end, now())
    running = and_(
        d.step.in_([s.value for s in STEPS]),  # the officials' clocks, not the petitioner's
        d.started_at < cutoff,
        d.status != DeadlineStatus.CANCELLED.value,
        or_(d.status == DeadlineStatus.OPEN.value, d.finished_at >= cutoff),
        d.due_at < cutoff,
    )
    for k, n in await session.execute(
        select(key, func.count(d.case_id.distinct()))
        .join(Case, joined)
        .where(clause, running)
        .group_by(key)
    ):
        out[k].backlog = int(n)

    # 4. participation: cases replied in the range, and how many of those were rated
    for k, n, rated in await session.execute(
        select(key, func.count(), func.sum(sql_case((Case.rating.is_not(None), 1), else_=0)))
        .where(clause, Case.replied_at >= start, Case.replied_at < end)
        .group_by(key)
    ):
        out[k].replied, out[k].replied_rated = int(n), int(rated or 0)

    # 5. satisfaction: ratings given in the range
    happy = {Satisfaction.SATISFIED.value, Satisfaction.BASICALLY_SATISFIED.value}
    for k, rating, n in await session.execute(
        select(key, Case.rating, func.count())
        .where(clause, Case.rated_at >= start, Case.rated_at < end, Case.rating.is_not(None))
        .group_by(key, Case.rating)
    ):
        one = out[k]
        one.rated += int(n)
        one.satisfied += int(n) if rating in happy else 0
        one.by_rating[rating] = int(n)
    return dict(out)


# --- who may ask what ------------------------------------------------------------------------


async def tenant_filter(
    session: AsyncSession, principal: Principal, tenant: str | None
) -> tuple[ColumnElement[bool], uuid.UUID | None]:
    """``tenant:`` must be one the caller's scope holds (a city official: its own city)."""
    if not tenant:
        return Case.tenant_id.in_(sorted(principal.scope().tenant_ids)), None
    tid = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
    if tid is None or tid not in principal.scope().tenant_ids:
        raise Forbidden(f"no statistics of tenant {tenant} for this account")
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


async def case_statistics(
    session: AsyncSession,
    principal: Principal,
    first: date,
    last: date,
    *,
    tenant: str | None = None,
    unit_path: str | None = None,
) -> Statistics:
    rng = Range.of(first, last)
    clause, tid = await viewer_clause(session, principal, tenant=tenant, unit_path=unit_path)
    groups = await compute(session, clause, rng.start, rng.end)
    return Statistics(rng, tenant, unit_path, merged(groups), clause, tid)


async def series(
    session: AsyncSession, clause: ColumnElement[bool], rng: Range, granularity: Granularity
) -> list[tuple[Range, Indicators]]:
    """One indicator set per day / week / month (a bounded number of aggregate rounds)."""
    return [
        (b, merged(await compute(session, clause, b.start, b.end)))
        for b in rng.buckets(granularity)
    ]


async def evaluations(session: AsyncSession, clause: ColumnElement[bool], rng: Range):
    return await evaluation_outcomes(session, case_clause=clause, since=rng.start, until=rng.end)
