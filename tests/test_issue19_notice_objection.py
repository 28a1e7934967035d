"""Issue 19, domain round 2: the yearly holiday notice moves the dates already computed,
follow-up duties outlive closure, and an Art. 23 objection waits for the routing office.

Every test freezes the project's clock (tests/clocks.py): the dates below are the rule's,
not today's.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select

from backend.authz.principal import SYSTEM
from backend.cases.calendar import HolidayNotice, parse_override_file
from backend.cases.holidays import load_notice
from backend.cases.models import HolidayOverride
from backend.cases.policy import forget_calendar
from backend.core.db import TenantScope
from backend.jobs.deadlines import deadline_scan
from backend.jobs.digest import build_digest
from backend.jobs.holidays import EVENT, holiday_recompute, load_and_recompute
from backend.notifications.models import Notification
from backend.tenants import service as tenants
from tests.case_helpers import fetch, open_step, register, step, step_resp
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique

# A fictitious 2027 notice: Feb 1-3 off (the package's estimate has them as working days).
SOURCE_2027 = "国务院办公厅关于2027年部分节假日安排的通知（测试）"
DAYS_OFF_2027 = ["2027-01-01", "2027-02-01", "2027-02-02", "2027-02-03"]


def notice(days_off: list[str] = DAYS_OFF_2027) -> HolidayNotice:
    """The notice as ``xinfang holidays load`` parses it from its file."""
    data = {
        "year": 2027,
        "source": SOURCE_2027,
        "days_off": days_off,
        "working_days": ["2027-01-30"],
    }
    return parse_override_file(json.dumps(data, ensure_ascii=False))


async def _forget_2027(db) -> None:
    """The notice table is platform-wide: leave it as the other tests expect it."""
    async with db.transaction() as session:
        await session.execute(delete(HolidayOverride).where(HolidayOverride.year == 2027))
    forget_calendar()


async def _tenant_id(db, slug: str):
    async with db.transaction() as session:
        return (await tenants.tenant_by_slug(session, slug)).id


def events_of(case: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in case["events"] if e["kind"] == kind]


# --- item 4: the yearly notice ------------------------------------------------------------------


async def test_state_council_notice_recomputes_every_open_step_of_its_year(db, gql):
    city = await build_city(db, unique("hol"), unique("holp"))
    officer, c1 = city.token("officer"), city.token("c1_officer")
    try:
        with frozen(sh(2026, 12, 4, 10)):
            # accepted 2026-12-04: 60 days of handling end on Tue 2027-02-02 (package estimate)
            moving = await register(gql, officer, city)
            moving = await step(
                gql, officer, "routeCase", moving, toUnitPath=city.path("c1"), mode="TRANSFER"
            )
            moving = await step(gql, c1, "acceptCase", moving)
            handling = open_step(moving, "HANDLING")
            assert handling["dueDate"] == "2027-02-02"
            assert handling["rule"]["officialCalendar"] is False
            # a routed case whose acceptance clock ends in 2026: nothing to move
            still = await register(gql, officer, city)
            still = await step(
                gql, officer, "routeCase", still, toUnitPath=city.path("c1"), mode="TRANSFER"
            )
            assert open_step(still, "ACCEPTANCE")["dueDate"] == "2026-12-21"
        with frozen(sh(2027, 1, 30, 9)):
            await deadline_scan({"db": db, "runner": "test", "tenant": city.slug})
            moving = await fetch(gql, officer, moving["id"])
            assert moving["warningColor"] == "RED"  # 3 days left
            days, result = await load_and_recompute(db, SYSTEM, notice(), tenant=city.slug)
            assert days == 5
            assert (result["status"], result["moved"], result["cases"], result["events"]) == (
                "OK",
                1,
                1,
                1,
            )
            got = await fetch(gql, officer, moving["id"])
            handling = open_step(got, "HANDLING")
            assert (handling["dueDate"], handling["rule"]["officialCalendar"]) == (
                "2027-02-04",
                True,
            )
            assert handling["rule"]["rolledOverDays"] == ["2027-02-02", "2027-02-03"]
            assert handling["rule"]["recomputedBy"] == [SOURCE_2027]
            assert handling["rule"]["article"] == "《信访工作条例》第三十四条"
            assert got["dueAt"] == handling["dueAt"]
            # the colours follow: 5 days left
            assert (got["warningColor"], handling["warningColor"]) == ("YELLOW", "YELLOW")
            (event,) = events_of(got, EVENT)
            assert event["actor"] is None or event["actor"]["username"] in (None, "system")
            assert event["data"]["steps"] == [
                {
                    "step": "HANDLING",
                    "from": "2027-02-02",
                    "to": "2027-02-04",
                    "notices": [{"year": 2027, "source": SOURCE_2027}],
                }
            ]
            assert event["data"]["colour"] == {"from": "RED", "to": "YELLOW"}
            assert "2027-02-02 → 2027-02-04" in event["reason"]
            assert got["version"] == moving["version"]  # not an edit: clients may still write
            other = await fetch(gql, officer, still["id"])
            assert events_of(other, EVENT) == []
            assert open_step(other, "ACCEPTANCE")["dueDate"] == "2026-12-21"

            # the cron entry: nothing new to do for this notice, and a forced run moves nothing
            again = await holiday_recompute({"db": db, "runner": "test", "tenant": city.slug})
            assert again.get("moved", 0) == 0 and again["notDue"] == 1
            forced = await holiday_recompute(
                {"db": db, "runner": "test", "tenant": city.slug, "force": True}
            )
            assert (forced["moved"], forced["events"]) == (0, 0)

            # a corrected notice (Feb 3 a working day after all) moves it again, and the
            # cron entry sees the change by itself
            async with db.transaction() as session:
                await load_notice(
                    session, SYSTEM, notice(days_off=["2027-01-01", "2027-02-01", "2027-02-02"])
                )
            fixed = await holiday_recompute({"db": db, "runner": "test", "tenant": city.slug})
            assert (fixed["moved"], fixed["cases"]) == (1, 1)
            got = await fetch(gql, officer, moving["id"])
            assert open_step(got, "HANDLING")["dueDate"] == "2027-02-03"
            assert [e["data"]["steps"][0]["to"] for e in events_of(got, EVENT)] == [
                "2027-02-04",
                "2027-02-03",
            ]
    finally:
        await _forget_2027(db)


async def test_state_council_notice_keeps_each_steps_own_rule(db, gql):
    """An extension's days, a 督办 order's calendar days and a follow-up's own article stay
    as the step was opened: only the calendar changes."""
    city = await build_city(db, unique("hol"), unique("holp"))
    officer = city.token("officer")
    try:
        with frozen(sh(2026, 11, 20, 10)):
            case = await register(gql, officer, city)
            case = await step(gql, officer, "acceptCase", case)
            case = await step(gql, officer, "requestExtension", case, days=14, reason="复杂")
            case = await step(gql, city.token("leader"), "approveExtension", case)
            handling = open_step(case, "HANDLING")
            # 60 + 14 days from 2026-11-20: Tue 2027-02-02 on the package's calendar
            assert (handling["dueDate"], handling["rule"]["days"]) == ("2027-02-02", 74)
            case = await step(
                gql,
                city.token("leader"),
                "issueSupervisionOrder",
                case,
                dueDate="2027-02-02",
                note="督办",
            )
        with frozen(sh(2027, 1, 4, 9)):
            _, result = await load_and_recompute(db, SYSTEM, notice(), tenant=city.slug)
            assert (result["moved"], result["cases"]) == (2, 1)
            got = await fetch(gql, officer, case["id"])
            handling = open_step(got, "HANDLING")
            assert handling["dueDate"] == "2027-02-04"
            assert (handling["rule"]["days"], handling["rule"]["extensionDays"]) == (74, 14)
            order = open_step(got, "SUPERVISION")
            assert order["dueDate"] == "2027-02-04"
            assert order["rule"]["orderedDueDate"] == "2027-02-02"
            assert order["rule"]["counting"] == "calendar"
            (event,) = events_of(got, EVENT)
            assert {s["step"] for s in event["data"]["steps"]} == {"HANDLING", "SUPERVISION"}
    finally:
        await _forget_2027(db)


# --- item 7: follow-up duties outlive closure ---------------------------------------------------


async def test_closure_follow_up_duties_stay_open_until_done(db, gql):
    from tests.test_evaluations import (
        SETTLE,
        SPEC,
        dissatisfied_case,
        draw,
        make_town,
        member_tokens,
        submit,
    )

    town = await make_town(db, gql, SPEC)  # tokens issued on the real clock
    city = town.city
    officer = city.token("officer")
    with frozen(sh(2026, 11, 2, 9)):
        case = await dissatisfied_case(gql, city)
    # the petitioner's 30-day review window has passed unused: the case may be closed
    with frozen(sh(2026, 12, 7, 9)):
        panel = (await draw(gql, town, case)).ok()["drawEvaluationPanel"]
        for token in member_tokens(town, panel):
            (await submit(gql, token, panel["id"], "UNLAWFUL")).ok()
        got = await fetch(gql, officer, case["id"])
        follow = open_step(got, "FOLLOW_UP")
        assert follow is not None and follow["dueDate"] == "2026-12-17"
        got = await step(gql, officer, "closeCase", got, resolution="办结")
        assert got["status"] == "CLOSED"
        follow = open_step(got, "FOLLOW_UP")
        assert follow is not None, "closing must not end the follow-up duty"
        assert got["dueAt"] == follow["dueAt"] and got["warningColor"] == "YELLOW"
        board = (await gql("{ warningBoard { yellow } }", token=officer)).ok()["warningBoard"]
        assert board["yellow"] == 1
    # days later: the scan turns it red, and the morning digest lists it
    with frozen(sh(2026, 12, 15, 8, 30)):
        scan = await deadline_scan({"db": db, "runner": "test", "tenant": city.slug})
        assert scan["cases"] >= 1
        got = await fetch(gql, officer, case["id"])
        assert got["warningColor"] == "RED" and got["status"] == "CLOSED"
        board = (await gql("{ warningBoard { red } }", token=officer)).ok()["warningBoard"]
        assert board["red"] == 1
        tid = await _tenant_id(db, city.slug)
        async with db.transaction(TenantScope.of([tid])) as session:
            tenant = await tenants.tenant_by_slug(session, city.slug)
            counts = await build_digest(session, tenant, day=sh(2026, 12, 15).date())
            assert counts["digests"] >= 1
            bodies = list(
                await session.scalars(
                    select(Notification.body).where(
                        Notification.tenant_id == tid, Notification.kind == "digest"
                    )
                )
            )
        assert any(got["number"] in body for body in bodies)
    # done: settling the evaluation ends the duty; the case leaves the board
    with frozen(sh(2026, 12, 16, 9)):
        i = {"panelId": panel["id"], "note": "依法处理完毕"}
        (await gql(SETTLE, {"i": i}, token=officer)).ok()
        got = await fetch(gql, officer, case["id"])
        assert [d["status"] for d in got["deadlines"] if d["step"] == "FOLLOW_UP"] == ["MET"]
        assert (got["dueAt"], got["warningColor"]) == (None, "NONE")
        board = (await gql("{ warningBoard { red yellow blue } }", token=officer)).ok()
        assert board["warningBoard"] == {"red": 0, "yellow": 0, "blue": 0}


# --- item 8: Art. 23 objections need the routing office's agreement -----------------------------

STATS = """query($from: Date!, $to: Date!) {
  caseStatistics(from: $from, to: $to) { acceptanceDue onTimeAcceptanceRate }
}"""


def step_of(case: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [d for d in case["deadlines"] if d["step"] == name]


async def transferred(gql, city) -> dict[str, Any]:
    """Registered at the city petition office and transferred (转送) to county c1."""
    case = await register(gql, city.token("officer"), city)
    return await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="TRANSFER"
    )


async def test_art23_objection_needs_the_routing_office(gql, world):
    a = world.a
    officer, c1 = a.token("officer"), a.token("c1_officer")
    with frozen(sh(2026, 11, 2, 9)):  # Monday
        case = await transferred(gql, a)
        acceptance_due = open_step(case, "ACCEPTANCE")["dueDate"]
        case = await step(gql, c1, "objectToTransfer", case, reason="不属本机关职权范围")
        # the case waits with c1 for the routing office: nothing went back yet
        assert (case["status"], case["holderUnit"]["path"]) == ("ROUTED", a.path("c1"))
        decision = open_step(case, "OBJECTION_DECISION")
        assert decision is not None and decision["note"] == "不属本机关职权范围"
        assert decision["dueDate"] == "2026-11-09"  # 5 working days
        assert decision["rule"]["article"] == "《信访工作条例》第二十三条"
        assert open_step(case, "ACCEPTANCE")["dueDate"] == acceptance_due
        # meanwhile nothing else moves the case, and nobody objects twice
        for name, fields in (
            ("acceptCase", {}),
            ("rejectCase", {"reason": "r"}),
            ("objectToTransfer", {"reason": "again"}),
        ):
            resp = await step_resp(gql, c1, name, case, **fields)
            assert resp.code == "INVALID_TRANSITION", (name, resp.body)
        resp = await step_resp(
            gql, officer, "routeCase", case, toUnitPath=a.path("c2"), mode="TRANSFER"
        )
        assert resp.code == "INVALID_TRANSITION"
        # the body that objected does not decide its own objection
        resp = await step_resp(gql, c1, "decideObjection", case, agree=True, reason="自己同意")
        assert resp.code == "FORBIDDEN"
        assert (await fetch(gql, officer, case["id"]))["version"] == case["version"]
        # the routing office agrees: the case is back with it, to be routed again
        case = await step(
            gql, officer, "decideObjection", case, agree=True, reason="同意，另行转送"
        )
        assert (case["status"], case["holderUnit"]["path"]) == ("REGISTERED", a.path())
        event = case["events"][-1]
        assert (event["kind"], event["fromStatus"], event["toStatus"], event["reason"]) == (
            "AGREE_OBJECTION",
            "ROUTED",
            "REGISTERED",
            "同意，另行转送",
        )
        assert event["data"]["agree"] is True and event["data"]["objectedBy"] == a.path("c1")
        # the acceptance step ended by the objection, not met; the office's step is met
        assert [d["status"] for d in step_of(case, "ACCEPTANCE")] == ["OBJECTED"]
        assert [d["status"] for d in step_of(case, "OBJECTION_DECISION")] == ["MET"]
        assert open_step(case, "ROUTING") is not None
        case = await step(gql, officer, "routeCase", case, toUnitPath=a.path("c2"), mode="TRANSFER")
        assert (case["status"], case["holderUnit"]["path"]) == ("ROUTED", a.path("c2"))


async def test_art23_refused_objection_keeps_the_case_with_the_body(gql, world):
    a = world.a
    officer, c1 = a.token("officer"), a.token("c1_officer")
    with frozen(sh(2026, 11, 2, 9)):
        case = await transferred(gql, a)
        acceptance = open_step(case, "ACCEPTANCE")
        case = await step(gql, c1, "objectToTransfer", case, reason="不属本机关职权范围")
    with frozen(sh(2026, 11, 4, 9)):
        case = await step(gql, officer, "decideObjection", case, agree=False, reason="属你单位职责")
        assert (case["status"], case["holderUnit"]["path"]) == ("ROUTED", a.path("c1"))
        event = case["events"][-1]
        assert (event["kind"], event["toStatus"], event["data"]["agree"]) == (
            "REFUSE_OBJECTION",
            "ROUTED",
            False,
        )
        assert [d["status"] for d in step_of(case, "OBJECTION_DECISION")] == ["MET"]
        # the acceptance clock ran on: same step, same due date
        still = open_step(case, "ACCEPTANCE")
        assert (still["startedAt"], still["dueDate"]) == (
            acceptance["startedAt"],
            acceptance["dueDate"],
        )
        # one objection per transfer; nothing waits now, and a second decision is refused
        resp = await step_resp(gql, c1, "objectToTransfer", case, reason="再次异议")
        assert resp.code == "INVALID_TRANSITION"
        resp = await step_resp(gql, officer, "decideObjection", case, agree=True, reason="r")
        assert resp.code == "INVALID_TRANSITION"
        case = await step(gql, c1, "acceptCase", case)
        assert case["status"] == "ACCEPTED"
        assert [d["status"] for d in step_of(case, "ACCEPTANCE")] == ["MET"]


async def test_art23_acceptance_ended_by_objection_is_neither_on_time_nor_late(db, gql):
    city = await build_city(db, unique("obj"), unique("objp"))
    officer, c1 = city.token("officer"), city.token("c1_officer")
    with frozen(sh(2026, 11, 2, 9)):
        objected = await transferred(gql, city)
        objected = await step(gql, c1, "objectToTransfer", objected, reason="不属本机关职权")
        objected = await step(gql, officer, "decideObjection", objected, agree=True, reason="同意")
        accepted = await step(gql, c1, "acceptCase", await transferred(gql, city))
        assert accepted["status"] == "ACCEPTED"
    with frozen(sh(2026, 12, 1, 9)):
        got = (await gql(STATS, {"from": "2026-11-01", "to": "2026-11-30"}, token=officer)).ok()
        stats = got["caseStatistics"]
        assert (stats["acceptanceDue"], stats["onTimeAcceptanceRate"]) == (1, 1.0)
