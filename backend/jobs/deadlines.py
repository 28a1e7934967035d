"""Deadline scan: colours, overdue marks and red-since clocks, derived from "now" and due dates.

Stateless and idempotent (arq may run it twice; runs missed while no worker
was up are simply caught up by the next one): it never asks "what changed
since the last run", it compares every open clock with "now" in SQL. Per
tenant, one transaction:

1. open steps whose stored colour differs from the one "now" gives get it;
2. cases likewise; each case whose colour changed gets a hash-chained
   ``WARNING_COLOR_CHANGED`` event (nothing else: no version bump);
3. open steps that just passed their due time get ``overdue_since`` and a
   ``DEADLINE_OVERDUE`` event; a step whose due time moved back into the
   future (extension, hold) loses the mark;
4. ``cases.red_since`` is set for red cases that lack it (coloured red by a
   mutation) and cleared for cases no longer red.

Each write selects a bounded batch of ids first (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so the scan never waits for a case a user is changing — the next
run picks it up — and cannot deadlock with one), then updates those ids. The
mismatch predicates are index range scans on ``(tenant, colour, due_at)``
(migration 0004): a run touches only the rows that change. No case is loaded
into Python beyond the ids of one batch.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import SYSTEM
from backend.cases.events import GENESIS, chain_hash
from backend.cases.models import Case, CaseDeadline, CaseEvent, CaseStatus, DeadlineStatus
from backend.cases.models import WarningColor as C
from backend.cases.policy import load_policy
from backend.cases.rules import end_of_day
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.ids import new_id
from backend.core.logging import get_logger
from backend.jobs.runs import RunRecord, fan_out, prune_job_runs
from backend.tenants.models import Tenant

log = get_logger(__name__)

BATCH = 1000
COLOUR_EVENT = "WARNING_COLOR_CHANGED"
OVERDUE_EVENT = "DEADLINE_OVERDUE"
_ALL = (C.RED.value, C.YELLOW.value, C.BLUE.value, C.NONE.value)


def _colour(due_at: Any, red_until: datetime, yellow_until: datetime) -> Any:
    return sql_case(
        (due_at <= red_until, C.RED.value),
        (due_at <= yellow_until, C.YELLOW.value),
        else_=C.BLUE.value,
    )


def _not(colour: C) -> list[str]:
    return [c for c in _ALL if c != colour.value]


def _mismatch(colour: Any, due_at: Any, red_until: datetime, yellow_until: datetime):
    """Stored colour differs from the one "now" gives: three index range scans, no full pass."""
    return or_(
        and_(due_at <= red_until, colour.in_(_not(C.RED))),
        and_(due_at > red_until, due_at <= yellow_until, colour.in_(_not(C.YELLOW))),
        and_(due_at > yellow_until, colour.in_(_not(C.BLUE))),
    )


async def _locked_ids(
    session: AsyncSession, query: Select, id_col: Any, after: Any, of: Any = None
) -> list[Any]:
    """One batch of rows (ids first) past ``after``, locked, skipping rows others hold."""
    if after is not None:
        query = query.where(id_col > after)
    query = query.order_by(id_col).limit(BATCH).with_for_update(skip_locked=True, of=of)
    return list((await session.execute(query)).all())


async def _update_locked(session: AsyncSession, query: Select, model: Any, **values: Any) -> int:
    """``UPDATE model SET values`` for every row ``query`` selects, one locked batch at a time."""
    count, after = 0, None
    while batch := await _locked_ids(session, query, model.id, after):
        ids = [r.id for r in batch]
        await session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        count, after = count + len(ids), ids[-1]
    return count


async def append_system_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    items: Sequence[tuple[uuid.UUID, str, str | None, dict[str, Any]]],
) -> int:
    """Append ``(case_id, kind, reason, data)`` events by the system, chained per case.

    The set-based twin of :func:`backend.cases.events.append_event` (same fields,
    same :func:`chain_hash`): one statement reads the last link of every case in
    the batch, one flush inserts the batch. Callers hold the cases' row locks
    (or the steps'), so no concurrent writer extends the same chains.
    """
    if not items:
        return 0
    ids = sorted({case_id for case_id, *_ in items})
    last_seq = (
        select(CaseEvent.case_id, func.max(CaseEvent.seq).label("seq"))
        .where(CaseEvent.tenant_id == tenant_id, CaseEvent.case_id.in_(ids))
        .group_by(CaseEvent.case_id)
        .subquery()
    )
    rows = await session.execute(
        select(CaseEvent.case_id, CaseEvent.seq, CaseEvent.hash).join(
            last_seq,
            and_(
                CaseEvent.tenant_id == tenant_id,
                CaseEvent.case_id == last_seq.c.case_id,
                CaseEvent.seq == last_seq.c.seq,
            ),
        )
    )
    last: dict[uuid.UUID, tuple[int, str]] = {cid: (seq, h) for cid, seq, h in rows}
    at = now()
    events: list[dict[str, Any]] = []
    for case_id, kind, reason, data in items:
        seq, prev = last.get(case_id, (0, GENESIS))
        event = {
            "tenant_id": tenant_id,
            "id": new_id(),
            "case_id": case_id,
            "seq": seq + 1,
            "kind": kind,
            "at": at,
            "actor_id": None,
            "actor_username": SYSTEM.username,
            "from_status": None,
            "to_status": None,
            "reason": reason,
            "data": data,
            "prev_hash": prev,
            "created_at": at,
        }
        # chain_hash reads the fields by attribute, as on a CaseEvent row
        event["hash"] = chain_hash(prev, SimpleNamespace(**event))  # type: ignore[arg-type]
        last[case_id] = (seq + 1, event["hash"])
        events.append(event)
    await session.execute(insert(CaseEvent), events)  # one executemany, no ORM objects
    return len(events)


async def _recolour_steps(
    session: AsyncSession, red_until: datetime, yellow_until: datetime
) -> int:
    d = CaseDeadline
    colour = _colour(d.due_at, red_until, yellow_until)
    query = select(d.id).where(
        d.status == DeadlineStatus.OPEN,
        _mismatch(d.warning_color, d.due_at, red_until, yellow_until),
    )
    return await _update_locked(session, query, d, warning_color=colour)


async def _recolour_cases(
    session: AsyncSession, tenant_id: uuid.UUID, red_until: datetime, yellow_until: datetime
) -> int:
    current = now()
    colour = _colour(Case.due_at, red_until, yellow_until)
    query = select(Case.id, Case.warning_color, colour.label("new"), Case.due_at).where(
        Case.status != CaseStatus.CLOSED,
        _mismatch(Case.warning_color, Case.due_at, red_until, yellow_until),
    )
    changed, after = 0, None
    while batch := await _locked_ids(session, query, Case.id, after):
        ids = [r.id for r in batch]
        await session.execute(
            update(Case)
            .where(Case.id.in_(ids))
            .values(
                warning_color=colour,
                red_since=sql_case(
                    (colour == C.RED.value, literal(current, Case.red_since.type)), else_=null()
                ),
            )
            .execution_options(synchronize_session=False)
        )
        events = [
            (
                r.id,
                COLOUR_EVENT,
                f"{r.warning_color} → {r.new}",
                {"from": r.warning_color, "to": r.new, "dueAt": r.due_at.isoformat()},
            )
            for r in batch
        ]
        await append_system_events(session, tenant_id, events)
        changed, after = changed + len(ids), ids[-1]
    return changed


async def _mark_overdue(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, int]:
    current = now()
    d = CaseDeadline
    # the case rows are locked too: their event chains grow here (a user's mutation on one
    # of them waits for this transaction; one already running makes the scan skip that case)
    query = (
        select(d.id, d.case_id, d.step, d.due_date, d.due_at)
        .join(Case, and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id))
        .where(d.status == DeadlineStatus.OPEN, d.overdue_since.is_(None), d.due_at < current)
    )
    marked, after = 0, None
    while batch := await _locked_ids(session, query, d.id, after, of=(d, Case)):
        ids = [r.id for r in batch]
        await session.execute(
            update(d)
            .where(d.id.in_(ids))
            .values(overdue_since=current)
            .execution_options(synchronize_session=False)
        )
        events = [
            (
                r.case_id,
                OVERDUE_EVENT,
                f"{r.step} was due {r.due_date.isoformat()}",
                {"step": r.step, "dueDate": r.due_date.isoformat(), "dueAt": r.due_at.isoformat()},
            )
            for r in sorted(batch, key=lambda r: (r.due_at, r.id))
        ]
        await append_system_events(session, tenant_id, events)
        marked, after = marked + len(ids), ids[-1]
    # a due time pushed back into the future (extension approved, hold resumed): not overdue
    query = select(d.id).where(
        d.status == DeadlineStatus.OPEN, d.overdue_since.is_not(None), d.due_at >= current
    )
    cleared = await _update_locked(session, query, d, overdue_since=None)
    return marked, cleared


async def _reconcile_red_since(session: AsyncSession) -> int:
    """Cases coloured by a mutation: red without a start, or a start without red."""
    current = now()
    fixed = 0
    for where, value in (
        # (tenant, colour, due) index: a red case has a due time
        (
            and_(
                Case.warning_color == C.RED.value,
                Case.due_at.is_not(None),
                Case.red_since.is_(None),
            ),
            current,
        ),
        # (tenant, colour, red_since) WHERE red_since IS NOT NULL: the colours as an IN list
        (and_(Case.red_since.is_not(None), Case.warning_color.in_(_not(C.RED))), None),
    ):
        fixed += await _update_locked(session, select(Case.id).where(where), Case, red_since=value)
    return fixed


def thresholds(current: datetime, policy: Any) -> tuple[datetime, datetime]:
    """End of the last RED day and of the last YELLOW day, from "now" (tenant-local dates)."""
    today = current.astimezone(policy.tz).date()
    return (
        end_of_day(today + timedelta(days=policy.red_days), policy),
        end_of_day(today + timedelta(days=policy.yellow_days), policy),
    )


async def scan_tenant(db: Database, tenant_id: uuid.UUID) -> dict[str, int]:
    """The whole scan for one tenant, in one transaction; counts of what changed."""
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        policy = await load_policy(session, tenant_id)
        red_until, yellow_until = thresholds(now(), policy)
        steps = await _recolour_steps(session, red_until, yellow_until)
        cases = await _recolour_cases(session, tenant_id, red_until, yellow_until)
        overdue, cleared = await _mark_overdue(session, tenant_id)
        red_since_fixed = await _reconcile_red_since(session)
    return {
        "steps": steps,
        "cases": cases,
        "overdue": overdue,
        "overdueCleared": cleared,
        "redSinceFixed": red_since_fixed,
    }


async def refresh_tenant_colours(db: Database, tenant_id: Any) -> dict[str, int]:
    """The scan of one tenant; the steps and cases whose colour changed."""
    counts = await scan_tenant(db, tenant_id)
    return {"steps": counts["steps"], "cases": counts["cases"]}


async def _scan_step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    run.add(**await scan_tenant(db, tenant.id))


async def deadline_scan(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job (every 15 minutes, which includes 07:30 in every time zone, and at start)."""
    result = await fan_out(ctx, "deadline_scan", _scan_step)
    if not ctx.get("tenant"):
        result["jobRunsPruned"] = await prune_job_runs(ctx["db"])
    return result


# The name the job had before the scan recorded events; kept for callers of the old API.
refresh_warning_colours = deadline_scan


def open_case_filter() -> ColumnElement[bool]:
    """Cases with a running clock (what the digest and the scan look at)."""
    return and_(Case.due_at.is_not(None), Case.status != CaseStatus.CLOSED)
