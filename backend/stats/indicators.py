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
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, union_all
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.models import (
    NOT_DUE_STATUSES,
    Case,
    CaseDeadline,
    DeadlineStatus,
    Satisfaction,
    SkipLevel,
)
from backend.cases.rules import Step
from backend.core.clock import DEFAULT_TIMEZONE, local_day_start, now
from backend.core.db import UtcDateTime
from backend.core.errors import BadUserInput
from backend.core.validation import date_range
from backend.stats.definitions import (
    STANDARD,
    STANDARD_WINDOW_DAYS,
    ClosureFormula,
    Definition,
    SatisfactionFormula,
)
from backend.stats.report import STEPS, rate

MAX_DAYS = 3700  # about ten years in one range


MAX_BUCKETS = 93  # a series answers at most this many days / weeks / months


class Granularity(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"


@dataclass
class Indicators:
    """Numerators and denominators; rates are derived (``None`` on a zero denominator).

    ``definition`` is how the rates are formed (the tenant's options, or the
    province standard); every variant's numerator is counted, so
    :meth:`standard` gives the same figures under the province standard.
    """

    received: int = 0
    repeat: int = 0
    skip_level: int = 0
    acceptance_due: int = 0
    acceptance_on_time: int = 0
    closure_due: int = 0
    closure_on_time: int = 0
    closure_on_time_no_ext: int = 0  # on time and without an approved extension
    replied: int = 0
    replied_rated: int = 0
    replied_eligible: int = 0  # rated, or the rating window (definition's) has closed
    replied_eligible_std: int = 0  # the same with the province-standard window
    rated: int = 0
    rated_satisfied: int = 0
    rated_basically: int = 0
    backlog: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_type: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_rating: dict[str, int] = field(default_factory=dict)
    definition: Definition = STANDARD

    @property
    def satisfied(self) -> int:
        """SATISFIED + BASICALLY_SATISFIED (the standard numerator)."""
        return self.rated_satisfied + self.rated_basically

    @property
    def on_time_acceptance_rate(self) -> float | None:
        return rate(self.acceptance_on_time, self.acceptance_due)

    @property
    def on_time_closure_rate(self) -> float | None:
        if self.definition.on_time_closure is ClosureFormula.EXTENSION_LATE:
            return rate(self.closure_on_time_no_ext, self.closure_due)
        return rate(self.closure_on_time, self.closure_due)

    @property
    def participation_base(self) -> int:
        """Replied cases that are rated or whose rating window has closed."""
        if self.definition.participation_window_days == STANDARD_WINDOW_DAYS:
            return self.replied_eligible_std
        return self.replied_eligible

    @property
    def participation_rate(self) -> float | None:
        return rate(self.replied_rated, self.participation_base)

    @property
    def satisfaction_rate(self) -> float | None:
        formula = self.definition.satisfaction
        if formula is SatisfactionFormula.SATISFIED_ONLY:
            return rate(self.rated_satisfied, self.rated)
        if formula is SatisfactionFormula.BASICALLY_HALF:
            return (
                round((self.rated_satisfied + self.rated_basically / 2) / self.rated, 4)
                if self.rated
                else None
            )
        return rate(self.satisfied, self.rated)

    @property
    def repeat_rate(self) -> float | None:
        return rate(self.repeat, self.received)

    def standard(self) -> Indicators:
        """The same counts under the province-standard definition."""
        return replace(self, definition=STANDARD, replied_eligible=self.replied_eligible_std)

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type == "int"}

    def __iadd__(self, other: Indicators) -> Indicators:
        for f in fields(self):
            if f.name == "definition":
                continue
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
    """The sum of ``groups``: their common definition, else the province standard."""
    kinds = {g.definition for g in groups.values()}
    total = Indicators(definition=kinds.pop() if len(kinds) == 1 else STANDARD)
    for one in groups.values():
        total += one
    if total.definition.is_standard:
        total.replied_eligible = total.replied_eligible_std
    return total


@dataclass(frozen=True)
class Range:
    """Local dates ``first..last`` inclusive, as UTC instants ``[start, end)``."""

    first: date
    last: date
    tz: str = DEFAULT_TIMEZONE  # the zone the dates are local to (the caller's city's)

    @classmethod
    def of(cls, first: date, last: date, tz: str = DEFAULT_TIMEZONE) -> Range:
        date_range(first, last, max_days=MAX_DAYS)  # supported dates, in order, not too long
        return cls(first, last, tz)

    @property
    def start(self) -> datetime:
        return local_day_start(self.first, self.tz)

    @property
    def end(self) -> datetime:
        return local_day_start(self.last + timedelta(days=1), self.tz)

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
            out.append(Range(d, min(nxt - timedelta(days=1), self.last), self.tz))
            if len(out) > MAX_BUCKETS:
                raise BadUserInput(
                    f"at most {MAX_BUCKETS} buckets in a series", field="granularity"
                )
            d = nxt
        return out


KeyOf = Callable[[Any], list[Any]]


def _by(key: Any) -> KeyOf:
    return lambda _time: [key]


def _threshold(
    at: datetime, definition: Definition, definitions: dict[uuid.UUID, Definition] | None
) -> Any:
    """The reply instant before which a case's rating window has closed (per tenant)."""
    if not definitions:
        return literal(at - timedelta(days=definition.participation_window_days), UtcDateTime())
    whens = [
        (
            Case.tenant_id == tid,
            literal(at - timedelta(days=d.participation_window_days), UtcDateTime()),
        )
        for tid, d in sorted(definitions.items())
    ]
    default = at - timedelta(days=definition.participation_window_days)
    return sql_case(*whens, else_=literal(default, UtcDateTime()))


async def aggregate(  # noqa: PLR0913 — the five aggregates' shared knobs, all keyword-only but the range
    session: AsyncSession,
    clause: ColumnElement[bool] | None,
    start: datetime,
    end: datetime,
    key_of: KeyOf,
    *,
    at: datetime | None = None,
    definition: Definition = STANDARD,
    definitions: dict[uuid.UUID, Definition] | None = None,
    backlog: bool = True,
    tenant_ids: list[uuid.UUID] | None = None,
) -> dict[tuple[Any, ...], Indicators]:
    """The indicator aggregates over ``[start, end)``, grouped by ``key_of(time column)``.

    ``key_of`` gets the column a figure is attributed by (received, due, replied,
    rated) so the daily summary can group by its local day; the live path groups
    by a plain column. ``at`` is "now" for the rating windows and the backlog
    cut-off. One statement per figure, whatever the number of groups.

    ``clause=None`` means whole tenants (``tenant_ids``): the step statement then
    filters the step table itself and reaches the cases by primary key, instead
    of letting the planner hash-join every case of the province.
    """
    at = at or now()
    d = CaseDeadline
    whole = clause is None
    if whole:
        clause = Case.tenant_id.in_(tenant_ids or [])
    out: dict[tuple[Any, ...], Indicators] = defaultdict(Indicators)

    # 1. intake: cases received in the range, by channel x type x category
    keys = key_of(Case.received_at)
    for row in await session.execute(
        select(
            *keys,
            Case.channel,
            Case.type,
            Case.category,
            func.count(),
            func.sum(sql_case((Case.repeat_count > 0, 1), else_=0)),
            func.sum(sql_case((Case.skip_level != SkipLevel.NONE.value, 1), else_=0)),
        )
        .where(clause, Case.received_at >= start, Case.received_at < end)
        .group_by(*keys, Case.channel, Case.type, Case.category)
    ):
        k, (channel, type_, category, n, rep, skip) = tuple(row[: len(keys)]), row[len(keys) :]
        one = out[k]
        one.received += n
        one.repeat += int(rep or 0)
        one.skip_level += int(skip or 0)
        for bucket, name in ((one.by_channel, channel), (one.by_type, type_)):
            bucket[name] = bucket.get(name, 0) + n
        one.by_category[category] = one.by_category.get(category, 0) + n

    # 2. on time: ACCEPTANCE / HANDLING steps due in the range (cancelled aside, and an
    # acceptance ended by an agreed Art. 23 objection: neither on time nor late)
    on_time = and_(d.status == DeadlineStatus.MET.value, d.finished_at <= d.due_at)
    joined = and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id)
    keys = key_of(d.due_at)
    for row in await session.execute(
        select(
            *keys,
            d.step,
            func.count(),
            func.sum(sql_case((on_time, 1), else_=0)),
            func.sum(sql_case((and_(on_time, Case.extension_approved.is_(False)), 1), else_=0)),
        )
        .join(Case, joined)
        .where(
            d.tenant_id.in_(tenant_ids or []) if whole else clause,
            d.step.in_([Step.ACCEPTANCE.value, Step.HANDLING.value]),
            d.due_at >= start,
            d.due_at < end,
            d.status.not_in(NOT_DUE_STATUSES),  # cancelled, ended by objection
        )
        .group_by(*keys, d.step)
    ):
        k, (step, due, ok, ok_no_ext) = tuple(row[: len(keys)]), row[len(keys) :]
        one = out[k]
        if step == Step.ACCEPTANCE.value:
            one.acceptance_due, one.acceptance_on_time = int(due), int(ok or 0)
        else:
            one.closure_due, one.closure_on_time = int(due), int(ok or 0)
            one.closure_on_time_no_ext = int(ok_no_ext or 0)

    # 3. backlog (积案) at the cut-off (end of range, or now): a point-in-time figure
    if backlog:
        cutoff = min(end, at)
        found = (
            await backlog_at(session, None, cutoff, [d.tenant_id], tenant_ids=tenant_ids)
            if whole and [k is Case.tenant_id for k in key_of(d.due_at)] == [True]
            else await backlog_at(session, clause, cutoff, key_of(d.due_at))
        )
        for k, n in found.items():
            out[k].backlog = n

    # 4. participation: cases replied in the range; rated, or their rating window closed
    rated_case = Case.rating.is_not(None)
    closed = Case.replied_at < _threshold(at, definition, definitions)
    closed_std = Case.replied_at < literal(at - timedelta(days=STANDARD_WINDOW_DAYS), UtcDateTime())
    keys = key_of(Case.replied_at)
    for row in await session.execute(
        select(
            *keys,
            func.count(),
            func.sum(sql_case((rated_case, 1), else_=0)),
            func.sum(sql_case((or_(rated_case, closed), 1), else_=0)),
            func.sum(sql_case((or_(rated_case, closed_std), 1), else_=0)),
        )
        .where(clause, Case.replied_at >= start, Case.replied_at < end)
        .group_by(*keys)
    ):
        k, (n, rated, eligible, eligible_std) = tuple(row[: len(keys)]), row[len(keys) :]
        one = out[k]
        one.replied, one.replied_rated = int(n), int(rated or 0)
        one.replied_eligible, one.replied_eligible_std = int(eligible or 0), int(eligible_std or 0)

    # 5. satisfaction: ratings given in the range
    keys = key_of(Case.rated_at)
    for row in await session.execute(
        select(*keys, Case.rating, func.count())
        .where(clause, Case.rated_at >= start, Case.rated_at < end, Case.rating.is_not(None))
        .group_by(*keys, Case.rating)
    ):
        k, (rating, n) = tuple(row[: len(keys)]), row[len(keys) :]
        one = out[k]
        one.rated += int(n)
        if rating == Satisfaction.SATISFIED.value:
            one.rated_satisfied += int(n)
        elif rating == Satisfaction.BASICALLY_SATISFIED.value:
            one.rated_basically += int(n)
        one.by_rating[rating] = one.by_rating.get(rating, 0) + int(n)
    for one in out.values():
        one.definition = definition
    return dict(out)


async def backlog_at(
    session: AsyncSession,
    clause: ColumnElement[bool] | None,
    cutoff: datetime,
    keys: list[Any],
    *,
    tenant_ids: list[uuid.UUID] | None = None,
) -> dict[tuple[Any, ...], int]:
    """积案 at ``cutoff``: distinct cases with an officials' step past due and not finished.

    Two index-friendly halves (still open: the open-step index; finished after the
    cut-off: the finished-at index, empty when the cut-off is now) instead of one OR
    that no index serves. ``clause=None`` counts whole tenants (``tenant_ids``,
    ``keys`` on the step table) without joining the cases at all.
    """
    d = CaseDeadline
    base = and_(
        d.step.in_([s.value for s in STEPS]),  # the officials' clocks, not the petitioner's
        d.started_at < cutoff,
        d.due_at < cutoff,
    )
    halves = [
        and_(base, d.status == DeadlineStatus.OPEN.value),
        and_(base, d.finished_at >= cutoff, d.status != DeadlineStatus.CANCELLED.value),
    ]
    labelled = [k.label(f"k{i}") for i, k in enumerate(keys)]
    parts = []
    for half in halves:
        part = select(*labelled, d.case_id.label("case_id"))
        if clause is None:
            part = part.where(d.tenant_id.in_(tenant_ids or []), half)
        else:
            joined = and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id)
            part = part.join(Case, joined).where(clause, half)
        parts.append(part)
    rows = union_all(*parts).subquery()
    cols = [rows.c[f"k{i}"] for i in range(len(keys))]
    out: dict[tuple[Any, ...], int] = {}
    for row in await session.execute(
        select(*cols, func.count(rows.c.case_id.distinct())).group_by(*cols)
    ):
        out[tuple(row[:-1])] = int(row[-1])
    return out


async def compute(  # noqa: PLR0913 — aggregate's knobs (see there)
    session: AsyncSession,
    clause: ColumnElement[bool] | None,
    start: datetime,
    end: datetime,
    key: Any = Case.tenant_id,
    *,
    definition: Definition = STANDARD,
    definitions: dict[uuid.UUID, Definition] | None = None,
    backlog: bool = True,
    tenant_ids: list[uuid.UUID] | None = None,
) -> dict[Any, Indicators]:
    """Indicators of the cases matching ``clause`` (None: ``tenant_ids`` whole) by ``key``, live."""
    groups = await aggregate(
        session,
        clause,
        start,
        end,
        _by(key),
        definition=definition,
        definitions=definitions,
        backlog=backlog,
        tenant_ids=tenant_ids,
    )
    out = {k[0]: one for k, one in groups.items()}
    if definitions:
        for tid, one in out.items():
            one.definition = definitions.get(tid, definition)
            if one.definition.participation_window_days == STANDARD_WINDOW_DAYS:
                one.replied_eligible = one.replied_eligible_std
    return out
