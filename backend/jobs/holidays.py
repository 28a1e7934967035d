"""Recompute due dates when the State Council's yearly notice is loaded or corrected.

A due date is computed once, when its step opens, from the calendar of that moment:
for a year without a loaded notice that is the ``holidays`` package's estimate (no
make-up days, ``rule.officialCalendar: false``). Loading the notice
(``xinfang holidays load FILE``) changes the calendar, so every open step whose span
touches a year with a notice is computed again here — from its own start, limit,
counting and held days (the step's ``rule``, not today's tenant policy) — on the new
calendar:

- the step gets the new due date and rule (``officialCalendar`` true), its colour and
  overdue mark follow, and the case mirrors its earliest open step again;
- each case whose due date moved gets one hash-chained ``DUE_DATE_RECOMPUTED`` event
  by the system: per moved step the old and the new date and the notice that moved it.

Idempotent (a second run computes the same dates and writes nothing new). The CLI runs
it right after loading a notice; the cron entry is the safety net: a tenant is due
whenever the set of loaded notices differs from the one its last ``OK`` run saw (the
run's key is a fingerprint of every loaded day), so a worker that was down when a
notice was loaded catches up — once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.calendar import HolidayNotice, WorkingDayCalendar
from backend.cases.deadlines import set_case_colour
from backend.cases.holidays import load_notice
from backend.cases.models import (
    Case,
    CaseDeadline,
    DeadlineStatus,
    HolidayOverride,
)
from backend.cases.policy import forget_calendar, load_calendar, load_policy
from backend.cases.rules import DeadlinePolicy, DueDate, Step, compute_due, warning_color
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.jobs.deadlines import append_system_events
from backend.jobs.runs import RunRecord, already_done, fan_out
from backend.tenants.models import Tenant

JOB = "holiday_recompute"
EVENT = "DUE_DATE_RECOMPUTED"
BATCH = 500  # cases locked and recomputed at once


@dataclasses.dataclass(frozen=True)
class Notices:
    """The loaded notices: source per year, and a fingerprint of every loaded day."""

    sources: dict[int, str]
    fingerprint: str

    @property
    def key(self) -> str:
        return f"notices:{self.fingerprint}"


async def loaded_notices(session: AsyncSession) -> Notices:
    rows = (
        await session.execute(
            select(
                HolidayOverride.day, HolidayOverride.is_working_day, HolidayOverride.source
            ).order_by(HolidayOverride.day)
        )
    ).all()
    digest = hashlib.sha256()
    sources: dict[int, str] = {}
    for day, working, source in rows:
        digest.update(f"{day.isoformat()}:{int(bool(working))}:{source}\n".encode())
        sources[day.year] = source
    return Notices(sources, digest.hexdigest()[:20])


def _touching(years: list[int]) -> Any:
    """Open steps whose span may touch one of ``years``: started before the year ended and
    due no earlier than the December before it (a due date on the old year's last days can
    roll into the new one). Wider than needed is harmless: an untouched step recomputes to
    the date it has."""
    d = CaseDeadline
    return or_(
        *(
            and_(
                d.due_at >= datetime(y - 1, 11, 30, tzinfo=UTC),  # open steps' (tenant, due_at)
                d.started_at < datetime(y + 1, 1, 2, tzinfo=UTC),
            )
            for y in years
        )
    )


def recompute_step(
    deadline: CaseDeadline, calendar: WorkingDayCalendar, policy: DeadlinePolicy
) -> DueDate | None:
    """The step's due date on ``calendar``, by the rule it was opened with (its start,
    limit incl. an approved extension, counting and held days); None if the rule cannot
    say (no ``days``)."""
    rule = deadline.rule or {}
    if "days" not in rule:
        return None
    counting = rule.get("counting", policy.counting)
    if counting != policy.counting and counting in ("calendar", "working"):
        policy = dataclasses.replace(policy, counting=counting)
    return compute_due(
        Step(deadline.step),
        deadline.started_at,
        calendar,
        policy,
        days=int(rule["days"]),
        held_days=int(deadline.held_days or 0),
    )


def _notices_of(rule: dict[str, Any], old: date, new: date, notices: Notices) -> list[dict]:
    """The loaded notices of the years a step's span covers (the ones that moved it)."""
    start = date.fromisoformat(rule.get("startDate", old.isoformat()))
    years = range(min(start.year, old.year, new.year), max(old.year, new.year) + 1)
    return [{"year": y, "source": notices.sources[y]} for y in years if y in notices.sources]


async def recompute_tenant(
    db: Database, tenant_id: uuid.UUID, years: list[int], notices: Notices
) -> dict[str, int]:
    """Recompute one tenant's open steps touching ``years``, in one transaction."""
    counts = {"steps": 0, "moved": 0, "cases": 0, "events": 0}
    if not years:
        return counts
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        policy = await load_policy(session, tenant_id)
        calendar = await load_calendar(session, fresh=True)
        d = CaseDeadline
        open_ = and_(d.tenant_id == tenant_id, d.status == DeadlineStatus.OPEN.value)
        case_ids = sorted(
            set(await session.scalars(select(d.case_id).where(open_, _touching(years))))
        )
        for i in range(0, len(case_ids), BATCH):
            batch = case_ids[i : i + BATCH]
            got = await _recompute_cases(session, tenant_id, batch, calendar, policy, notices)
            for k, n in got.items():
                counts[k] += n
    return counts


async def _recompute_cases(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    case_ids: list[uuid.UUID],
    calendar: WorkingDayCalendar,
    policy: DeadlinePolicy,
    notices: Notices,
) -> dict[str, int]:
    """One batch: lock the cases (id order, as one mutation locks its case first), then
    recompute every open step of theirs."""
    cases = {
        c.id: c
        for c in await session.scalars(
            select(Case)
            .where(Case.tenant_id == tenant_id, Case.id.in_(case_ids))
            .order_by(Case.id)
            .with_for_update()
        )
    }
    steps = list(
        await session.scalars(
            select(CaseDeadline)
            .where(
                CaseDeadline.tenant_id == tenant_id,
                CaseDeadline.case_id.in_(list(cases)),
                CaseDeadline.status == DeadlineStatus.OPEN.value,
            )
            .order_by(CaseDeadline.case_id, CaseDeadline.due_at)
            .with_for_update()
        )
    )
    current = now()
    counts = {"steps": 0, "moved": 0, "cases": 0, "events": 0}
    by_case: dict[uuid.UUID, list[CaseDeadline]] = {}
    moved: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for step in steps:
        by_case.setdefault(step.case_id, []).append(step)
        due = recompute_step(step, calendar, policy)
        if due is None:
            continue
        rule = dict(step.rule)
        new_rule = {
            **rule,
            **{k: due.rule[k] for k in ("rawDueDate", "rolledOverDays", "officialCalendar")},
        }
        if due.due_date != step.due_date:
            which = _notices_of(rule, step.due_date, due.due_date, notices)
            new_rule["recomputedBy"] = [n["source"] for n in which]
            moved.setdefault(step.case_id, []).append(
                {
                    "step": step.step,
                    "from": step.due_date.isoformat(),
                    "to": due.due_date.isoformat(),
                    "notices": which,
                }
            )
            step.due_date, step.due_at = due.due_date, due.due_at
            step.warning_color = warning_color(due.due_at, current, policy)
            if step.overdue_since is not None and due.due_at >= current:
                step.overdue_since = None
            counts["moved"] += 1
        if new_rule != rule:
            step.rule = new_rule
            counts["steps"] += 1
    events = []
    for case_id, changes in moved.items():
        case = cases[case_id]
        earliest = min(by_case[case_id], key=lambda s: s.due_at)
        old_colour = case.warning_color
        case.due_at = earliest.due_at
        set_case_colour(case, warning_color(case.due_at, current, policy), current)
        reason = "; ".join(
            f"{c['step']} {c['from']} → {c['to']}"
            + (f" ({', '.join(n['source'] for n in c['notices'])})" if c["notices"] else "")
            for c in changes
        )
        data: dict[str, Any] = {"steps": changes, "dueAt": case.due_at.isoformat()}
        if case.warning_color != old_colour:
            data["colour"] = {"from": old_colour, "to": case.warning_color}
        events.append((case_id, EVENT, reason, data))
    await session.flush()
    counts["cases"] = len(moved)
    counts["events"] = await append_system_events(session, tenant_id, events)
    return counts


async def holiday_recompute(ctx: dict[str, Any]) -> dict[str, Any]:
    """Job: recompute the open steps of every tenant (``ctx["tenant"]``: one) whose span
    touches a year with a loaded notice (``ctx["years"]``: only those years).

    A tenant is due when no ``OK`` run has seen the loaded notices as they are now;
    ``ctx["force"]`` (``xinfang jobs run``, ``xinfang holidays load``) runs it anyway.
    """
    db: Database = ctx["db"]
    forget_calendar()  # this process's cached calendar may predate the notice
    async with db.transaction() as session:
        notices = await loaded_notices(session)
    years = sorted(set(ctx.get("years") or notices.sources))

    async def due(db: Database, tenant: Tenant, force: bool) -> str | None:
        if not years:
            return None
        if force:
            return notices.key
        return None if await already_done(db, JOB, tenant.id, notices.key) else notices.key

    async def step(db: Database, tenant: Tenant, run: RunRecord) -> None:
        run.add(**await recompute_tenant(db, tenant.id, years, notices))

    return await fan_out(ctx, JOB, step, due)


async def load_and_recompute(
    db: Database, principal: Principal, notice: HolidayNotice, *, tenant: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Store ``notice`` (its own transaction), then recompute its year's open steps at once
    (forced; every city, or the one slug ``tenant``): ``xinfang holidays load``."""
    async with db.transaction() as session:
        days = await load_notice(session, principal, notice)
    ctx = {"db": db, "runner": "cli", "force": True, "years": [notice.year], "tenant": tenant}
    return days, await holiday_recompute(ctx)
