"""The deadline scan: colours and overdue marks from "now", events only on change, idempotent."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from backend.cases.audit import verify_tenant_chain
from backend.cases.models import Case, CaseDeadline
from backend.core import clock
from backend.core.db import TenantScope
from backend.jobs.deadlines import COLOUR_EVENT, OVERDUE_EVENT, scan_tenant
from backend.jobs.models import JobRun
from backend.jobs.runs import fan_out
from tests.clocks import frozen, set_time, sh
from tests.helpers import build_city, unique
from tests.test_jobs_support import (
    case_events,
    event_count,
    load_case,
    open_steps,
    register,
    route,
    tenant_id,
)


async def _routed_case(db):
    """A case transferred to county c1 on Mon 2026-11-02: acceptance due Tue 11-17 (BLUE)."""
    city = await build_city(db, unique("js"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        case_id = await register(db, city)
        await route(db, city, case_id, "c1")
    return city, tid, case_id


async def test_scan_records_events_only_on_change_and_is_idempotent(db):
    _, tid, case_id = await _routed_case(db)
    case = await load_case(db, tid, case_id)
    assert (case.warning_color, case.version, case.red_since) == ("BLUE", 2, None)
    assert case.due_at == sh(2026, 11, 17, 23, 59).replace(second=59, microsecond=999999)
    before = [e.kind for e in await case_events(db, tid, case_id)]
    try:
        set_time(sh(2026, 11, 3))  # nothing changes: no event
        assert (await scan_tenant(db, tid))["cases"] == 0
        assert [e.kind for e in await case_events(db, tid, case_id)] == before

        set_time(sh(2026, 11, 8))  # 9 days left: YELLOW
        counts = await scan_tenant(db, tid)
        assert (counts["steps"], counts["cases"]) == (1, 1)
        assert await scan_tenant(db, tid) == dict.fromkeys(counts, 0)  # twice: nothing new
        n_events = await event_count(db, tid)

        set_time(sh(2026, 11, 14, 8))  # 3 days left: RED
        assert (await scan_tenant(db, tid))["cases"] == 1
        case = await load_case(db, tid, case_id)
        assert case.warning_color == "RED" and case.red_since == sh(2026, 11, 14, 8)
        assert await event_count(db, tid) == n_events + 1

        set_time(sh(2026, 11, 18, 0, 30))  # past the due day: overdue, still RED
        counts = await scan_tenant(db, tid)
        assert (counts["cases"], counts["overdue"]) == (0, 1)
        assert (await scan_tenant(db, tid))["overdue"] == 0
        (step,) = await open_steps(db, tid, case_id)
        assert step.overdue_since == sh(2026, 11, 18, 0, 30) and step.warning_color == "RED"
    finally:
        clock.set_clock(None)

    events = await case_events(db, tid, case_id)
    added = [(e.kind, e.data.get("from"), e.data.get("to")) for e in events[len(before) :]]
    assert added == [
        (COLOUR_EVENT, "BLUE", "YELLOW"),
        (COLOUR_EVENT, "YELLOW", "RED"),
        (OVERDUE_EVENT, None, None),
    ]
    assert all(e.actor_username == "system" and e.from_status is None for e in events[2:])
    assert events[-1].data["step"] == "ACCEPTANCE" and events[-1].data["dueDate"] == "2026-11-17"
    case = await load_case(db, tid, case_id)
    assert case.version == 2  # colour changes bump no version
    async with db.transaction(TenantScope.of([tid])) as session:
        assert (await verify_tenant_chain(session))[1] is None  # the chain still verifies


@pytest.mark.postgres
async def test_a_case_a_user_holds_waits_for_the_next_run_the_others_do_not(db):
    """Issue 21: cases are locked by key probes (``SKIP LOCKED``), rows updated by key; a
    case whose row a user's transaction holds keeps its colour and gets no event until a
    later run, while the scan does the rest of the tenant."""
    city, tid, held = await _routed_case(db)
    with frozen(sh(2026, 11, 2)):
        free = await register(db, city)
        await route(db, city, free, "c2")
    with frozen(sh(2026, 11, 14, 8)):  # both due 11-17: RED from now
        async with db.transaction(TenantScope.of([tid])) as user:
            await user.execute(
                select(Case.id).where(Case.tenant_id == tid, Case.id == held).with_for_update()
            )
            counts = await scan_tenant(db, tid)  # while the user's transaction holds it
        assert (counts["steps"], counts["cases"]) == (1, 1)
        assert (await load_case(db, tid, free)).warning_color == "RED"
        assert (await load_case(db, tid, held)).warning_color == "BLUE"
        assert [s.warning_color for s in await open_steps(db, tid, held)] == ["BLUE"]
        counts = await scan_tenant(db, tid)  # the next run, the user done
    assert (counts["steps"], counts["cases"]) == (1, 1)
    case = await load_case(db, tid, held)
    assert case.warning_color == "RED" and case.red_since == sh(2026, 11, 14, 8)
    assert [e.kind for e in await case_events(db, tid, held)][-1] == COLOUR_EVENT


async def test_clock_moved_back_recolours_and_clears_the_overdue_mark(db):
    _, tid, case_id = await _routed_case(db)
    with frozen(sh(2026, 11, 20)):
        await scan_tenant(db, tid)
    case = await load_case(db, tid, case_id)
    assert case.warning_color == "RED" and case.red_since is not None
    with frozen(sh(2026, 11, 3)):
        counts = await scan_tenant(db, tid)
    assert (counts["cases"], counts["overdueCleared"]) == (1, 1)
    case = await load_case(db, tid, case_id)
    (step,) = await open_steps(db, tid, case_id)
    assert (case.warning_color, case.red_since, step.overdue_since) == ("BLUE", None, None)


async def test_red_since_follows_colours_set_by_mutations(db):
    """The scan starts the red-since clock of a case it colours red; a mutation that makes
    the case BLUE again stops it itself (no index may name the column: migration 0011)."""
    city = await build_city(db, unique("jr"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        case_id = await register(db, city)
    with frozen(sh(2026, 11, 16)):  # routing due 11-17: the scan sees RED; red_since starts now
        await scan_tenant(db, tid)
    case = await load_case(db, tid, case_id)
    assert case.warning_color == "RED" and case.red_since == sh(2026, 11, 16)
    with frozen(sh(2026, 11, 16, 10)):  # routed: a fresh acceptance clock, BLUE again
        await route(db, city, case_id, "c1")
        case = await load_case(db, tid, case_id)
        assert (case.warning_color, case.red_since) == ("BLUE", None)
        counts = await scan_tenant(db, tid)
    assert counts == dict.fromkeys(counts, 0)


def test_no_index_of_cases_names_the_colour_or_red_since():
    """The scan's colour updates of cases must stay HOT (PostgreSQL writes no index entry
    only when no indexed column, predicate included, changes): stale cases are found
    through their steps instead (docs/performance.md, migration 0011)."""
    from backend.domains import metadata

    for index in metadata.tables["cases"].indexes:
        names = {c.name for c in index.columns}
        where = index.dialect_options["postgresql"].get("where")
        where = "" if where is None else str(where)
        assert not names & {"warning_color", "red_since"}, index.name
        assert "warning_color" not in where and "red_since" not in where, index.name


async def test_fan_out_skips_a_failing_tenant_and_records_every_run(db):
    good = await build_city(db, unique("jg"), unique("p"))
    bad = await build_city(db, unique("jb"), unique("p"))
    bad_id = await tenant_id(db, bad)
    seen = []

    async def step(_db, tenant, run):
        if tenant.id == bad_id:
            raise RuntimeError("boom")
        seen.append(tenant.slug)
        run.add(things=1)

    name = unique("test_job_")
    result = await fan_out({"db": db, "runner": "test"}, name, step)
    assert good.slug in seen and result["failed"] == 1 and result["status"] == "PARTIAL"
    assert result["things"] == len(seen)
    async with db.transaction() as session:
        runs = list(await session.scalars(select(JobRun).where(JobRun.name == name)))
    by_tenant = {r.target_tenant_id: r for r in runs}
    assert by_tenant[bad_id].status == "FAILED" and "boom" in by_tenant[bad_id].error
    assert by_tenant[None].status == "PARTIAL" and by_tenant[None].finished_at is not None
    assert all(r.finished_at and r.started_at for r in runs)


async def test_fan_out_runs_tenants_side_by_side_on_postgres_only(db):
    """Two cities' steps overlap on PostgreSQL (XF_JOB_TENANT_CONCURRENCY, default 2), each
    in its own transaction; SQLite, with one writer, runs them one after the other."""
    await build_city(db, unique("jc"), unique("p"))
    await build_city(db, unique("jd"), unique("p"))
    running = peak = 0

    async def step(_db, tenant, run):
        nonlocal running, peak
        async with _db.transaction(TenantScope.of([tenant.id])) as session:
            running += 1
            peak = max(peak, running)
            await session.execute(select(1))
            await asyncio.sleep(0.05)  # the other tenant's step starts meanwhile
            running -= 1
        run.add(things=1)

    result = await fan_out({"db": db, "runner": "test"}, unique("test_job_"), step)
    assert result["status"] == "OK" and result["things"] == result["tenants"] >= 2
    assert peak == (db.settings.job_tenant_concurrency if db.dialect == "postgresql" else 1)


async def test_scan_of_one_tenant_leaves_the_others_alone(db):
    city, tid, case_id = await _routed_case(db)
    _, other_tid, other_case = await _routed_case(db)
    with frozen(sh(2026, 11, 15)):
        result = await fan_out(
            {"db": db, "runner": "test", "tenant": city.slug}, "deadline_scan_test", _scan
        )
    assert result["tenants"] == 1 and result["cases"] == 1
    assert (await load_case(db, tid, case_id)).warning_color == "RED"
    assert (await load_case(db, other_tid, other_case)).warning_color == "BLUE"
    async with db.transaction(TenantScope.of([other_tid])) as session:
        steps = list(await session.scalars(select(CaseDeadline.warning_color)))
    assert "RED" not in steps


async def _scan(db, tenant, run):
    run.add(**await scan_tenant(db, tenant.id))
