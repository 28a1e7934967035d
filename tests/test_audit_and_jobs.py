"""The audit trail (tamper detection), the deadline colour job and the holiday notice CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from backend.cases import service
from backend.cases.audit import verify_tenant_chain
from backend.cases.models import Case, CaseDeadline, CaseEvent, CaseType, Channel
from backend.cases.pii import check_character
from backend.core import clock
from backend.core.db import Database, build_engine
from backend.jobs.deadlines import refresh_tenant_colours
from backend.tenants.principals import load_principal
from tests.clocks import frozen
from tests.helpers import build_city, unique

ROOT = Path(__file__).resolve().parent.parent


def _id_number(seq: int) -> str:
    body = f"41140319800101{seq:03d}"
    return body + check_character(body)


async def _city_with_cases(db: Database, n: int, *, received_days_ago: int = 1):
    city = await build_city(db, unique("au"), unique("p"))
    officer = await load_principal(db, f"{city.slug}_officer")
    ids = []
    for i in range(n):
        async with db.transaction(officer.scope()) as session:
            case = await service.register_case(
                session,
                officer,
                service.RegisterCaseInput(
                    client_key=f"k{i}",
                    channel=Channel.LETTER,
                    type=CaseType.CLAIM,
                    category="land",
                    subject=f"subject {i}",
                    content="content",
                    petitioner=service.PetitionerInput("张三", "13800001234", _id_number(i)),
                    location_path=city.path("c1/t1"),
                    received_at=clock.now() - timedelta(days=received_days_ago),
                ),
            )
            await service.route_case(
                session,
                officer,
                service.CaseRef(str(case.id), case.version),
                to_unit_path=city.path("c1"),
                mode="TRANSFER",
            )
            ids.append(case.id)
    return city, officer, ids


async def test_untouched_event_chain_verifies(db):
    _, officer, _ = await _city_with_cases(db, 2)
    async with db.transaction(officer.scope()) as session:
        count, broken = await verify_tenant_chain(session)
    assert (count, broken) == (4, None)


@pytest.mark.postgres
async def test_app_role_cannot_update_or_delete_events(db):
    _, officer, _ = await _city_with_cases(db, 1)
    for statement in ("UPDATE case_events SET reason = 'x'", "DELETE FROM case_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction(officer.scope()) as session:
                await session.execute(text(statement))


@pytest.mark.postgres
async def test_audit_verify_finds_an_event_tampered_with_by_the_owner(db):
    city, officer, ids = await _city_with_cases(db, 2)
    owner = build_engine()  # the migration owner: bypasses RLS, must disable the trigger
    async with owner.begin() as conn:
        # Citus refuses trigger DDL on a distributed table without this (a placeholder
        # setting, without effect, on plain PostgreSQL)
        await conn.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
        await conn.execute(text("ALTER TABLE case_events DISABLE TRIGGER case_events_append_only"))
        await conn.execute(
            text("UPDATE case_events SET reason = 'rewritten' WHERE case_id = :c AND seq = 2"),
            {"c": ids[1]},
        )
        await conn.execute(text("ALTER TABLE case_events ENABLE TRIGGER case_events_append_only"))
    await owner.dispose()
    async with db.transaction(officer.scope()) as session:
        _, broken = await verify_tenant_chain(session)
    assert broken is not None and (broken.case_id, broken.seq) == (ids[1], 2)

    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend.cli", "audit", "verify", "--tenant", city.slug],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "event 2" in result.stdout


async def test_colour_job_turns_a_case_red_as_its_deadline_approaches(db):
    _, officer, ids = await _city_with_cases(db, 1)
    scope = officer.scope()
    async with db.transaction(scope) as session:
        case = await session.scalar(select(Case).where(Case.id == ids[0]))
        due = case.due_at
    assert case.warning_color == "BLUE"  # acceptance due in 15 days
    try:
        clock.set_clock(lambda: due - timedelta(days=2))
        changed = await refresh_tenant_colours(db, officer.tenant_id)
        assert changed == {"steps": 1, "cases": 1}
        assert await refresh_tenant_colours(db, officer.tenant_id) == {"steps": 0, "cases": 0}
        clock.set_clock(lambda: due - timedelta(days=8))
        await refresh_tenant_colours(db, officer.tenant_id)
    finally:
        clock.set_clock(None)
    async with db.transaction(scope) as session:
        case = await session.scalar(select(Case).where(Case.id == ids[0]))
        step = await session.scalar(
            select(CaseDeadline).where(
                CaseDeadline.case_id == ids[0], CaseDeadline.status == "OPEN"
            )
        )
    assert (case.warning_color, step.warning_color) == ("YELLOW", "YELLOW")


async def test_colour_job_agrees_with_the_rule_used_at_write_time(db):
    """The bulk SQL colouring and rules.warning_color give the same answer."""
    from backend.cases.policy import load_policy
    from backend.cases.rules import warning_color

    _, officer, _ = await _city_with_cases(db, 3, received_days_ago=14)
    moment = clock.now()  # one instant for the job and the rule (no midnight in between)
    with frozen(moment):
        await refresh_tenant_colours(db, officer.tenant_id)
    async with db.transaction(officer.scope()) as session:
        policy = await load_policy(session, officer.tenant_id)
        rows = (await session.execute(select(Case.due_at, Case.warning_color))).all()
    assert rows and all(colour == warning_color(due, moment, policy) for due, colour in rows)


def test_holiday_notice_cli_loads_and_lists(tmp_path):
    notice = tmp_path / "n.json"
    notice.write_text(
        '{"year": 2031, "source": "测试通知", "days_off": ["2031-01-01"],'
        ' "working_days": ["2031-01-04"]}',
        encoding="utf-8",
    )
    run = [sys.executable, "-m", "backend.cli", "holidays"]
    loaded = subprocess.run(
        [*run, "load", str(notice)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "2031\t2 days\t测试通知" in listed.stdout
    notice.write_text('{"year": 2031, "days_off": []}', encoding="utf-8")
    bad = subprocess.run(
        [*run, "load", str(notice)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert bad.returncode == 1 and "error" in bad.stderr


def test_lifecycle_doc_is_generated_from_the_transition_table():
    from backend.cases.lifecycle import render_markdown

    assert (ROOT / "docs" / "lifecycle.md").read_text(encoding="utf-8") == render_markdown()


async def test_events_are_returned_in_order_with_distinct_hashes(db):
    _, officer, ids = await _city_with_cases(db, 1)
    async with db.transaction(officer.scope()) as session:
        events = list(
            await session.scalars(
                select(CaseEvent).where(CaseEvent.case_id == ids[0]).order_by(CaseEvent.seq)
            )
        )
    assert [e.kind for e in events] == ["REGISTERED", "ROUTE"]
    assert events[1].prev_hash == events[0].hash != events[1].hash
