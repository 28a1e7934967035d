"""Deadline scan: colours, overdue marks and red-since clocks, derived from "now" and due dates.

Stateless and idempotent (arq may run it twice; runs missed while no worker
was up are simply caught up by the next one): it never asks "what changed
since the last run", it compares every open clock with "now" in SQL. Per
tenant, one transaction:

1. open steps whose stored colour differs from the one "now" gives get it,
   and so do their cases; each case whose colour changed gets a hash-chained
   ``WARNING_COLOR_CHANGED`` event (nothing else: no version bump) and its
   ``red_since`` clock starts (turned red) or stops;
2. open steps that just passed their due time get ``overdue_since`` and a
   ``DEADLINE_OVERDUE`` event; a step whose due time moved back into the
   future (extension, hold) loses the mark.

Each write locks a bounded batch of rows first (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so the scan never waits for a case a user is changing — the next
run picks it up — and cannot deadlock with one), then updates those ids. Every
candidate query is one index range read in index order: a colour change is
"stored colour = X and due time in Y's band" on the steps' ``(tenant, colour,
due_at)`` (nine ranges, see :func:`_transitions`), overdue marks have partial
indexes of their own (migration 0004). Cases are reached through their steps
only: no index of ``cases`` names ``warning_color`` or ``red_since``, so the
case updates are HOT — no index entry written (migration 0011; mutations keep
the colour, the steps' colours and ``red_since`` in step, see
:func:`backend.cases.deadlines.set_case_colour`). A run touches only the rows
that change; a run with nothing to do costs a dozen empty index probes per
tenant. No case is loaded into Python beyond one batch.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import SYSTEM
from backend.cases.events import GENESIS, chain_hash
from backend.cases.models import Case, CaseDeadline, CaseEvent, DeadlineStatus
from backend.cases.models import WarningColor as C
from backend.cases.policy import load_policy
from backend.cases.rules import end_of_day
from backend.core import live
from backend.core.clock import now
from backend.core.db import Database, TenantScope, array_params, insert_values
from backend.core.ids import new_id
from backend.core.logging import get_logger
from backend.jobs.runs import RunRecord, fan_out, prune_job_runs
from backend.tenants.models import Tenant

log = get_logger(__name__)

BATCH = 1000
COLOUR_EVENT = "WARNING_COLOR_CHANGED"
OVERDUE_EVENT = "DEADLINE_OVERDUE"
_ALL = (C.RED.value, C.YELLOW.value, C.BLUE.value, C.NONE.value)


def _lit(value: str) -> Any:
    """An enum constant inlined into the SQL (never user input): partial indexes
    (``WHERE status = 'OPEN'``) match only literals, not the parameters of a cached plan."""
    return literal_column(f"'{value}'", String)


def _bands(due_at: Any, red_until: datetime, yellow_until: datetime) -> list[tuple[str, Any]]:
    """(colour, the due-time range that has it "now")."""
    return [
        (C.RED.value, due_at <= red_until),
        (C.YELLOW.value, and_(due_at > red_until, due_at <= yellow_until)),
        (C.BLUE.value, due_at > yellow_until),
    ]


def _transitions(
    colour: Any, due_at: Any, red_until: datetime, yellow_until: datetime
) -> list[tuple[str, str, Any]]:
    """Every (from, to) colour change as one index range on ``(tenant, colour = from, due_at)``.

    Nine small ranges instead of one "stored colour differs" predicate: the
    planner cannot estimate the latter (colour and due time are correlated, so
    it expects a fifth of the table and walks it all), while an equality on the
    colour plus a due-time range, read in index order, is cheap whatever the
    statistics say — empty when nothing crossed a threshold since the last run.
    """
    return [
        (old, new, and_(colour == _lit(old), band))
        for new, band in _bands(due_at, red_until, yellow_until)
        for old in _ALL
        if old != new
    ]


async def _locked_batches(
    session: AsyncSession,
    query: Select,
    model: Any,
    tenant_id: uuid.UUID,
    values: dict[str, Any],
    of: Any = None,
) -> AsyncIterator[list[Any]]:
    """Lock a batch of the rows ``query`` selects (index order, ``SKIP LOCKED``), set
    ``values`` on them, yield the batch; again until the rows are done.

    No keyset: a row once updated no longer matches ``query``; a short batch means the
    rest (if any) is held by someone else — the next run takes it.
    """
    query = query.limit(BATCH).with_for_update(skip_locked=True, of=of)
    while batch := list((await session.execute(query)).all()):
        await update_each(session, model.__table__, tenant_id, [(r.id, values) for r in batch])
        yield batch
        if len(batch) < BATCH:
            return


async def _update_locked(
    session: AsyncSession, query: Select, model: Any, tenant_id: uuid.UUID, **values: Any
) -> int:
    """``UPDATE model SET values`` for every row ``query`` selects, one locked batch at a time."""
    count = 0
    async for batch in _locked_batches(session, query, model, tenant_id, values):
        count += len(batch)
    return count


@functools.cache
def _set_by_key(table: Any, columns: tuple[str, ...]) -> Any:
    """``UPDATE table SET columns WHERE tenant_id = ? AND id = ?``, for an executemany."""
    return (
        update(table)
        .where(table.c.tenant_id == bindparam("_tenant"), table.c.id == bindparam("_id"))
        .values({c: bindparam(f"_v_{c}") for c in columns})
    )


async def update_each(
    session: AsyncSession,
    table: Any,
    tenant_id: uuid.UUID,
    rows: Sequence[tuple[uuid.UUID, dict[str, Any]]],
) -> None:
    """Set ``values`` on each ``(id, values)`` row (all naming the same columns): one
    single-row UPDATE by primary key per row, sent as one executemany (pipelined).

    Not ``WHERE id IN (…1,000 ids)``: under row-level security the planner prices each
    probe of ``(tenant_id, id = ANY(…))`` as if the tenant setting's array held several
    tenants and read the whole tenant instead — 50,000 heap pages per batch at 1M cases,
    most of the scan's time (docs/performance.md). A single-row UPDATE by key is a key
    probe whatever the statistics say, on Citus a router statement to one shard.

    On PostgreSQL a batch of several rows is one statement instead
    (:func:`_set_from_arrays`): it updates each row by its ``ctid``, so the rows must be
    locked by this transaction already (every caller selects them ``FOR UPDATE``).
    """
    if not rows:
        return
    columns = tuple(rows[0][1])
    conn = await session.connection()
    if conn.dialect.name == "postgresql" and len(rows) > 1:
        await conn.execute(
            _set_from_arrays(table, columns),
            {
                "tenant": tenant_id,
                "ids": [key for key, _ in rows],
                **{f"v_{c}": [v[c] for _, v in rows] for c in columns},
            },
        )
        return
    await conn.execute(
        _set_by_key(table, columns),
        [
            {"_tenant": tenant_id, "_id": key, **{f"_v_{c}": v[c] for c in columns}}
            for key, v in rows
        ],
    )


@functools.cache
def _set_from_arrays(table: Any, columns: tuple[str, ...]) -> Any:
    """PostgreSQL: one ``UPDATE`` for a whole batch of ``(id, values…)`` arrays.

    Each id is found by one primary-key probe (``unnest … CROSS JOIN LATERAL``, as in
    :data:`_LOCK_CASES`) and its row updated by its ``ctid`` (a TID scan): a join on
    ``id = v.id`` would be planned as a scan of the whole tenant (the RLS estimate, see
    :func:`update_each`). The rows are locked by this transaction already, so their
    ``ctid`` cannot change in between.
    """
    arrays = array_params(table, columns, "v_")
    names = ", ".join(columns)
    sets = ", ".join(f"{c} = s.{c}" for c in columns)
    return text(
        f"UPDATE {table.name} AS t SET {sets} FROM ("
        f"SELECT x.tid, v.* FROM unnest(CAST(:ids AS uuid[]), {arrays}) AS v(id, {names})"
        f" CROSS JOIN LATERAL (SELECT k.ctid AS tid FROM {table.name} k"
        " WHERE k.tenant_id = :tenant AND k.id = v.id LIMIT 1) AS x"
        ") AS s WHERE t.ctid = s.tid AND t.tenant_id = :tenant"
    )


# PostgreSQL: lock cases by id, one key probe each (``unnest … CROSS JOIN LATERAL``): the
# same RLS estimate that makes ``id IN (…)`` read the whole tenant (see update_each)
_LOCK_CASES = text(
    """
    SELECT c.id, c.due_at, c.warning_color, c.red_since, c.status
    FROM unnest(CAST(:ids AS uuid[])) AS ids(id)
    CROSS JOIN LATERAL (
        SELECT x.id, x.due_at, x.warning_color, x.red_since, x.status FROM cases x
        WHERE x.tenant_id = :tenant AND x.id = ids.id
        FOR UPDATE SKIP LOCKED
    ) AS c
    """
).columns(*(Case.__table__.c[n] for n in ("id", "due_at", "warning_color", "red_since", "status")))


async def _lock_cases(
    session: AsyncSession, tenant_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[Any]:
    """Lock the cases ``ids`` (``SKIP LOCKED``: one a user is changing is left out); their
    id, due time, colour, red-since clock and status."""
    ids = sorted(set(ids))
    if session.get_bind().dialect.name == "postgresql":
        return list(await session.execute(_LOCK_CASES, {"ids": ids, "tenant": tenant_id}))
    return list(
        await session.execute(
            select(Case.id, Case.due_at, Case.warning_color, Case.red_since, Case.status)
            .where(Case.tenant_id == tenant_id, Case.id.in_(ids))
            .with_for_update(skip_locked=True)
        )
    )


# PostgreSQL: the last link of each case as one backward probe of uq_case_events_seq per
# case (a plan that does not depend on the statistics of a table the scan itself grows).
_LAST_LINKS = text(
    """
    SELECT ids.case_id, last.seq, last.hash
    FROM unnest(CAST(:ids AS uuid[])) AS ids(case_id)
    CROSS JOIN LATERAL (
        SELECT e.seq, e.hash FROM case_events e
        WHERE e.tenant_id = :tenant AND e.case_id = ids.case_id
        ORDER BY e.seq DESC LIMIT 1
    ) AS last
    """
)


async def _last_links(
    session: AsyncSession, tenant_id: uuid.UUID, ids: list[uuid.UUID], postgres: bool
) -> dict[uuid.UUID, tuple[int, str]]:
    """``case id → (seq, hash)`` of the last event of each case that has one."""
    if postgres:
        rows = await session.execute(_LAST_LINKS, {"ids": ids, "tenant": tenant_id})
    else:
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
    return {cid: (seq, h) for cid, seq, h in rows}


async def append_system_events(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    items: Sequence[tuple[uuid.UUID, str, str | None, dict[str, Any]]],
) -> int:
    """Append ``(case_id, kind, reason, data)`` events by the system, chained per case.

    The set-based twin of :func:`backend.cases.events.append_event` (same fields,
    same :func:`chain_hash`): one statement reads the last link of every case in
    the batch, one statement inserts the batch. Callers hold the cases' row locks
    (or the steps'), so no concurrent writer extends the same chains.
    """
    if not items:
        return 0
    postgres = session.get_bind().dialect.name == "postgresql"
    last = await _last_links(session, tenant_id, sorted({c for c, *_ in items}), postgres)
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
    await insert_values(session, CaseEvent.__table__, events)
    live.publish(session, live.CASE, tenant_id, [c for c, *_ in items])  # colour changes
    return len(events)


def _colour_of(due_at: datetime, red_until: datetime, yellow_until: datetime) -> str:
    """The colour "now" gives a due time: :func:`_bands` in Python."""
    if due_at <= red_until:
        return C.RED.value
    return C.YELLOW.value if due_at <= yellow_until else C.BLUE.value


async def _recolour(
    session: AsyncSession, tenant_id: uuid.UUID, red_until: datetime, yellow_until: datetime
) -> tuple[int, int, int]:
    """Recolour the open steps whose colour "now" differs, and their cases; (steps, cases,
    red-since clocks repaired).

    Stale cases are found through their steps: a case's colour mirrors its earliest open
    step and both are always written together (by :func:`backend.cases.deadlines.refresh_due`
    and here), so a case cannot fall stale without one of its steps. That keeps
    ``warning_color`` and ``red_since`` out of every index of ``cases`` and the case
    updates HOT (migration 0011). Each batch of steps locks its cases too (``SKIP LOCKED``:
    a step whose case a user is changing waits for the next run, with its case), then
    updates the steps and then the cases by key (:func:`update_each`).
    """
    d = CaseDeadline
    current = now()
    open_ = d.status == _lit(DeadlineStatus.OPEN.value)
    steps = cases = fixed = 0
    for _old, new, where in _transitions(d.warning_color, d.due_at, red_until, yellow_until):
        stale = (
            select(d.id, d.case_id, d.due_at)
            .where(d.tenant_id == tenant_id, open_, where)
            .order_by(d.due_at, d.id)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        async for batch in _step_batches(session, stale):
            locked = {
                r.id: r for r in await _lock_cases(session, tenant_id, [r.case_id for r in batch])
            }
            colour = {"warning_color": new}
            ids = [(r.id, colour) for r in batch if r.case_id in locked]
            if ids:
                await update_each(session, d.__table__, tenant_id, ids)
                steps += len(ids)
                changed, repaired = await _recolour_cases(
                    session, tenant_id, locked.values(), red_until, yellow_until, current
                )
                cases, fixed = cases + changed, fixed + repaired
    return steps, cases, fixed


async def _step_batches(session: AsyncSession, query: Any) -> AsyncIterator[list[Any]]:
    """``query``'s rows (open steps, locked, ``BATCH`` at most, ordered by due time and id)
    batch after batch, by keyset: a step skipped because a user's transaction holds it
    stays behind instead of coming back in every later batch."""
    d = CaseDeadline
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        page = query
        if after is not None:
            at, last = after
            page = query.where(or_(d.due_at > at, and_(d.due_at == at, d.id > last)))
        batch = list((await session.execute(page)).all())
        if not batch:
            return
        after = (batch[-1].due_at, batch[-1].id)
        yield batch
        if len(batch) < BATCH:
            return


async def _recolour_cases(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    rows: Any,
    red_until: datetime,
    yellow_until: datetime,
    current: datetime,
) -> tuple[int, int]:
    """Give locked cases the colour of their due time, with a ``WARNING_COLOR_CHANGED``
    event each; also repair a red-since clock out of step with the colour (rows written
    before migration 0011). (cases recoloured, clocks repaired)."""
    updates: list[tuple[uuid.UUID, dict[str, Any]]] = []
    events = []
    repaired = 0
    for r in rows:
        if r.due_at is None:  # a closed case is here only for a running FOLLOW_UP step
            continue
        new = _colour_of(r.due_at, red_until, yellow_until)
        values = {"warning_color": new, "red_since": current if new == C.RED.value else None}
        if new != r.warning_color:
            updates.append((r.id, values))
            reason = f"{r.warning_color} → {new}"
            data = {"from": r.warning_color, "to": new, "dueAt": r.due_at.isoformat()}
            events.append((r.id, COLOUR_EVENT, reason, data))
        elif (new == C.RED.value) != (r.red_since is not None):
            updates.append((r.id, values))
            repaired += 1
    await update_each(session, Case.__table__, tenant_id, updates)
    return await append_system_events(session, tenant_id, events), repaired


async def _mark_overdue(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, int]:
    current = now()
    d = CaseDeadline
    open_ = d.status == _lit(DeadlineStatus.OPEN.value)
    due = (
        select(d.id, d.case_id, d.step, d.due_date, d.due_at)
        .where(d.tenant_id == tenant_id, open_, d.overdue_since.is_(None), d.due_at < current)
        .order_by(d.due_at, d.id)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    marked = 0
    async for batch in _step_batches(session, due):
        # the cases are locked too: their event chains grow here. Apart from the steps (a
        # join would make the planner read the tenant's cases to find none overdue); a step
        # whose case a user is changing is skipped, the next run marks it
        locked = {r.id for r in await _lock_cases(session, tenant_id, [r.case_id for r in batch])}
        batch = [r for r in batch if r.case_id in locked]
        if batch:
            mark = {"overdue_since": current}
            await update_each(session, d.__table__, tenant_id, [(r.id, mark) for r in batch])
            events = [
                (
                    r.case_id,
                    OVERDUE_EVENT,
                    f"{r.step} was due {r.due_date.isoformat()}",
                    {
                        "step": r.step,
                        "dueDate": r.due_date.isoformat(),
                        "dueAt": r.due_at.isoformat(),
                    },
                )
                for r in batch
            ]
            marked += await append_system_events(session, tenant_id, events)
    # a due time pushed back into the future (extension approved, hold resumed): not overdue
    query = (
        select(d.id)
        .where(d.tenant_id == tenant_id, open_, d.overdue_since.is_not(None), d.due_at >= current)
        .order_by(d.due_at)
    )
    cleared = await _update_locked(session, query, d, tenant_id, overdue_since=None)
    return marked, cleared


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
        steps, cases, red_since_fixed = await _recolour(session, tenant_id, red_until, yellow_until)
        overdue, cleared = await _mark_overdue(session, tenant_id)
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
    """Cases with a running clock (what the digest and the scan look at): open cases, and
    closed ones whose follow-up duty (``FOLLOW_UP``, an evaluation verdict's) is not done —
    closing leaves that step open, so a closed case has a due time only while it runs."""
    return Case.due_at.is_not(None)
