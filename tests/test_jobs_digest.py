"""The 08:00 red digest, escalation to the next level up, overdue supervision orders, reminders."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from backend.cases import service
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import TenantPolicy
from backend.cases.rules import DeadlinePolicy
from backend.core.db import TenantScope
from backend.jobs.digest import digest_due, red_cutoff, red_digest
from backend.jobs.reminders import schedule_reminder
from backend.jobs.runs import tenants_for
from backend.notifications.models import Notification
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique
from tests.test_jobs_support import act, register, route, sent, tenant_id, who


async def _digest(db, city, **ctx):
    return await red_digest({"db": db, "runner": "test", "tenant": city.slug, **ctx})


def _names(city, by_user):
    return {u.removeprefix(f"{city.slug}_") for u in by_user}


async def test_digest_goes_once_a_day_to_the_holder_units_officials_and_the_case_leader(db):
    city = await build_city(db, unique("dg"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        red = await register(db, city)
        await route(db, city, red, "c1")  # acceptance due 11-17
        await act(
            db, city, "leader", red, service.assign_case_leader, username=f"{city.slug}_leader"
        )
        calm = await register(db, city)  # still with the city: routing due 11-17 too …
    with frozen(sh(2026, 11, 10)):
        await route(db, city, calm, "c2")  # … until routed: acceptance due 11-25, not red on 11-15

    with frozen(sh(2026, 11, 15, 7, 30)):  # before 08:00 local: not due yet
        result = await _digest(db, city)
        assert result["notDue"] == 1 and "digests" not in result
    with frozen(sh(2026, 11, 15, 8, 1)):
        first = await _digest(db, city)
        again = await _digest(db, city)  # today's run is done: nothing happens
        forced = await _digest(db, city, force=True)  # by hand: dedupe keeps one message
    assert first["digests"] == 3 and first["notifications"] == 3
    assert again["notDue"] == 1 and forced["notifications"] == 0

    digests = await sent(db, tid, "digest")
    assert _names(city, digests) == {"c1_officer", "c1_leader", "leader"}
    assert all(len(rows) == 1 for rows in digests.values())  # one message per person per day
    message = digests[f"{city.slug}_c1_officer"][0]
    assert message.data["total"] == 1 and message.data["cases"][0]["id"] == str(red)
    assert message.dedupe_key.endswith(":2026-11-15") and message.channel == "inapp"
    assert "红色预警" in message.subject

    with frozen(sh(2026, 11, 16, 9)):  # the next day: a new message each
        await _digest(db, city)
    assert all(len(rows) == 2 for rows in (await sent(db, tid, "digest")).values())
    assert await sent(db, tid, "escalation") == {}


async def test_escalation_after_n_working_days_goes_to_the_parent_units_officials(db):
    city = await build_city(db, unique("de"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        case_id = await register(db, city)
        await route(db, city, case_id, "c1/t1")  # held by township t1, parent c1
    with frozen(sh(2026, 11, 14, 9)):  # Saturday: red from now (due Tue 11-17)
        await _digest(db, city)
    with frozen(sh(2026, 11, 16, 9)):  # Monday: one working day red
        await _digest(db, city)
    assert await sent(db, tid, "escalation") == {}
    assert _names(city, await sent(db, tid, "digest")) == {"t1_officer"}
    with frozen(sh(2026, 11, 17, 9)):  # Tuesday: two working days → next level up
        result = await _digest(db, city)
        await _digest(db, city, force=True)
    assert result["escalations"] == 2
    escalated = await sent(db, tid, "escalation")
    assert _names(city, escalated) == {"c1_officer", "c1_leader"}  # not c2, not the city
    assert all(len(v) == 1 for v in escalated.values())
    assert escalated[f"{city.slug}_c1_leader"][0].data["cases"][0]["id"] == str(case_id)

    # a tenant asking for 3 working days does not escalate on the same day
    other = await build_city(db, unique("d3"), unique("p"))
    other_tid = await tenant_id(db, other)
    async with db.transaction(TenantScope.of([other_tid])) as session:
        session.add(TenantPolicy(tenant_id=other_tid, data={"escalateAfterRedDays": 3}))
    with frozen(sh(2026, 11, 2)):
        late = await register(db, other)
        await route(db, other, late, "c1/t1")
    with frozen(sh(2026, 11, 14, 9)):
        await _digest(db, other)
    with frozen(sh(2026, 11, 17, 9)):
        await _digest(db, other)
    assert await sent(db, other_tid, "escalation") == {}
    with frozen(sh(2026, 11, 18, 9)):
        await _digest(db, other)
    assert _names(other, await sent(db, other_tid, "escalation")) == {"c1_officer", "c1_leader"}


async def test_one_read_of_the_red_cases_serves_both_lists_of_one_person(db):
    """Issue 21: the digest and the escalation lists come from one read of the red cases;
    an official on both lists gets each with its own cases, totals and kind."""
    city = await build_city(db, unique("db"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        below = await register(db, city)
        await route(db, city, below, "c1/t1")  # held by t1: c1 is its next level up
        own = await register(db, city)
        await route(db, city, own, "c1")  # held by c1 itself
    with frozen(sh(2026, 11, 14, 9)):  # Saturday: both red from now (due Tue 11-17)
        await _digest(db, city)
    with frozen(sh(2026, 11, 17, 9)):  # two working days red: escalated
        result = await _digest(db, city)
    assert result["digests"] == 3 and result["escalations"] == 4
    officer = f"{city.slug}_c1_officer"
    digest = (await sent(db, tid, "digest"))[officer][-1]
    escalation = (await sent(db, tid, "escalation"))[officer][0]
    assert [c["id"] for c in digest.data["cases"]] == [str(own)] and digest.data["total"] == 1
    assert [c["id"] for c in escalation.data["cases"]] == [str(below)]
    assert escalation.data["total"] == 1 and escalation.data["escalateAfterRedDays"] == 2
    assert "升级" in escalation.subject and "日报" in digest.subject
    # the case held by c1 escalates to the city's own officials, the t1 case's digest to t1
    assert _names(city, await sent(db, tid, "escalation")) == {
        "c1_officer",
        "c1_leader",
        "officer",
        "leader",
    }
    assert _names(city, await sent(db, tid, "digest")) == {"t1_officer", "c1_officer", "c1_leader"}


def test_red_cutoff_counts_working_days_back_from_today():
    cal, policy = WorkingDayCalendar(), DeadlinePolicy()
    # Tue 11-17, 2 working days: red since before Mon 11-16 00:00 (i.e. by Sun 11-15)
    assert red_cutoff(date(2026, 11, 17), 2, cal, policy) == sh(2026, 11, 16, 0)
    # Mon 11-16: Mon and the Friday before
    assert red_cutoff(date(2026, 11, 16), 2, cal, policy) == sh(2026, 11, 13, 0)
    # Thu 10-08 after National Day (10-01..07 off): Thu and Fri 09-30
    assert red_cutoff(date(2026, 10, 8), 2, cal, policy) == sh(2026, 9, 30, 0)


async def test_overdue_supervision_order_goes_to_the_issuing_leader(db):
    city = await build_city(db, unique("ds"), unique("p"))
    tid = await tenant_id(db, city)
    with frozen(sh(2026, 11, 2)):
        case_id = await register(db, city)
        await route(db, city, case_id, "c1")
        await act(
            db,
            city,
            "c1_leader",
            case_id,
            service.issue_supervision_order,
            due_date=date(2026, 11, 5),
            note="三日内办结",
        )
    with frozen(sh(2026, 11, 5, 9)):  # due today: red, not yet overdue
        await _digest(db, city)
    assert await sent(db, tid, "supervision_overdue") == {}
    with frozen(sh(2026, 11, 6, 9)):
        await _digest(db, city)
        await _digest(db, city, force=True)
    orders = await sent(db, tid, "supervision_overdue")
    assert _names(city, orders) == {"c1_leader"} and len(orders[f"{city.slug}_c1_leader"]) == 1
    (message,) = orders[f"{city.slug}_c1_leader"]
    assert message.case_id == case_id and "三日内办结" in message.body


async def test_digest_runs_for_a_tenant_whose_08_00_has_passed_only(db):
    city = await build_city(db, unique("dz"), unique("p"))
    (tenant,) = await tenants_for(db, city.slug)
    with frozen(sh(2026, 11, 16, 7, 59)):
        assert await digest_due(db, tenant, False) is None
        assert await digest_due(db, tenant, True) == "2026-11-16"
    with frozen(sh(2026, 11, 16, 8, 0)):
        assert await digest_due(db, tenant, False) == "2026-11-16"


async def test_a_reminder_waits_in_the_outbox_until_its_time(db):
    # The reminder is due on the evening of 11-24: "now" is that morning on any real date.
    with frozen(sh(2026, 11, 24, 9)):
        city = await build_city(db, unique("dr"), unique("p"))
        tid = await tenant_id(db, city)
        officer = await who(db, city, "c1_officer")
        at = sh(2026, 11, 24, 18)
        async with db.transaction(TenantScope.of([tid])) as session:
            for _ in range(2):  # scheduling twice is one reminder
                await schedule_reminder(
                    session,
                    tenant_id=tid,
                    recipient_id=officer.account_id,
                    at=at,
                    subject="明日值班",
                    body="明天 8:30 接访大厅值班",
                    key="shift:42:eve",
                )
        async with db.transaction(TenantScope.of([tid])) as session:
            rows = list(
                await session.scalars(select(Notification).where(Notification.kind == "reminder"))
            )
        assert len(rows) == 1
        assert rows[0].not_before == at and rows[0].status == "PENDING"
        assert rows[0].data["key"] == "shift:42:eve"
