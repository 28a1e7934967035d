"""The case lifecycle over GraphQL: the happy path with its events and clocks, the side
paths (diversion, rejection, Art. 23 objection), every forbidden transition, stale
versions, extensions, holds, supervision orders, 包案 leaders, escalation and the
petitioner's 30-day windows."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend.cases.events import GENESIS, chain_hash, verify_chain
from backend.cases.models import CaseEvent
from backend.core import clock
from backend.core.db import TenantScope
from backend.tenants import service as tenants
from tests.case_helpers import (
    SHANGHAI,
    fetch,
    open_step,
    register,
    step,
    step_brief,
    step_resp,
)
from tests.clocks import shifted_clock
from tests.helpers import City, unique

# --- building cases ------------------------------------------------------------------------


async def registered(gql, city: City, **overrides: Any) -> dict[str, Any]:
    """Registered at the city petition office, located in c1/t1."""
    return await register(gql, city.token("officer"), city, **overrides)


async def routed(gql, city: City, **overrides: Any) -> dict[str, Any]:
    case = await registered(gql, city, **overrides)
    return await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="TRANSFER"
    )


async def accepted(gql, city: City, **overrides: Any) -> dict[str, Any]:
    return await step(gql, city.token("c1_officer"), "acceptCase", await routed(gql, city))


async def replied(gql, city: City) -> dict[str, Any]:
    case = await accepted(gql, city)
    return await step(gql, city.token("c1_officer"), "replyCase", case, opinion="答复意见")


def today() -> date:
    return clock.now().astimezone(SHANGHAI).date()


def days_between(later: str, earlier: str) -> int:
    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def last_event(case: dict[str, Any]) -> dict[str, Any]:
    return case["events"][-1]


# --- the happy path ----------------------------------------------------------------------------


async def test_full_lifecycle_through_re_review_to_closure(gql, world, db):
    """Handled by the township; reviewed by its county (Art. 35), re-reviewed by the city
    above the county (Art. 36)."""
    a = world.a
    officer, c1_officer, t1_officer = (
        a.token("officer"),
        a.token("c1_officer"),
        a.token("t1_officer"),
    )
    c1_leader, leader = a.token("c1_leader"), a.token("leader")
    case = await registered(gql, a)
    assert (case["status"], case["version"]) == ("REGISTERED", 1)
    assert open_step(case, "ROUTING") is not None

    plan = [
        (
            officer,
            "routeCase",
            {"toUnitPath": a.path("c1/t1"), "mode": "ASSIGN"},
            "ROUTE",
            "ROUTED",
        ),
        (t1_officer, "acceptCase", {}, "ACCEPT", "ACCEPTED"),
        (
            t1_officer,
            "requestExtension",
            {"days": 20, "reason": "情况复杂"},
            "REQUEST_EXTENSION",
            "ACCEPTED",
        ),
        (c1_leader, "approveExtension", {}, "APPROVE_EXTENSION", "EXTENDED"),
        (t1_officer, "replyCase", {"opinion": "经核查，依法答复如下"}, "REPLY", "REPLIED"),
        (
            t1_officer,
            "rateSatisfaction",
            {"rating": "DISSATISFIED"},
            "RATE_SATISFACTION",
            "REPLIED",
        ),
        (c1_officer, "requestReview", {"reason": "不服答复"}, "REQUEST_REVIEW", "REVIEW_REQUESTED"),
        (c1_officer, "decideReview", {"opinion": "维持原答复"}, "DECIDE_REVIEW", "REVIEWED"),
        (officer, "requestReReview", {}, "REQUEST_RE_REVIEW", "RE_REVIEW_REQUESTED"),
        (leader, "decideReReview", {"opinion": "复核维持"}, "DECIDE_RE_REVIEW", "RE_REVIEWED"),
        (c1_officer, "closeCase", {"resolution": "已复核，终结"}, "CLOSE", "CLOSED"),
    ]
    snapshots = {"REGISTERED": case}
    for token, name, fields, kind, status in plan:
        before = case
        case = await step(gql, token, name, case, **fields)
        assert case["status"] == status, name
        assert case["version"] == before["version"] + 1, name
        assert len(case["events"]) == len(before["events"]) + 1, name
        assert case["events"][: len(before["events"])] == before["events"], name
        event = last_event(case)
        assert event["seq"] == len(case["events"])
        assert (event["kind"], event["fromStatus"], event["toStatus"]) == (
            kind,
            before["status"],
            status,
        ), name
        snapshots[kind] = case

    # holder and clocks along the way
    assert snapshots["ROUTE"]["holderUnit"]["path"] == a.path("c1/t1")
    assert last_event(snapshots["REPLY"])["data"] == {"unit": a.path("c1/t1")}
    assert last_event(snapshots["REQUEST_REVIEW"])["data"] == {"decidingUnit": a.path("c1")}
    assert last_event(snapshots["DECIDE_REVIEW"])["data"] == {"unit": a.path("c1")}
    assert last_event(snapshots["REQUEST_RE_REVIEW"])["data"] == {"decidingUnit": a.path()}
    assert last_event(snapshots["DECIDE_RE_REVIEW"])["data"] == {"unit": a.path()}
    assert open_step(snapshots["ROUTE"], "ROUTING") is None
    assert open_step(snapshots["ROUTE"], "ACCEPTANCE") is not None
    handling = open_step(snapshots["ACCEPT"], "HANDLING")
    assert handling["rule"]["days"] == 60 and "第三十四条" in handling["rule"]["article"]
    assert open_step(snapshots["ACCEPT"], "ACCEPTANCE") is None
    assert snapshots["REQUEST_EXTENSION"]["extensionDays"] == 20
    assert not snapshots["REQUEST_EXTENSION"]["extensionApproved"]
    assert open_step(snapshots["REQUEST_EXTENSION"], "HANDLING") == handling

    extended = open_step(snapshots["APPROVE_EXTENSION"], "HANDLING")
    assert snapshots["APPROVE_EXTENSION"]["extensionApproved"]
    assert extended["rule"]["days"] == 80 and extended["rule"]["extensionDays"] == 20
    assert extended["startedAt"] == handling["startedAt"]
    assert days_between(extended["rule"]["rawDueDate"], handling["rule"]["rawDueDate"]) == 20
    assert days_between(extended["dueDate"], extended["rule"]["rawDueDate"]) == len(
        extended["rule"]["rolledOverDays"]
    )
    assert extended["dueDate"] > handling["dueDate"]
    assert snapshots["APPROVE_EXTENSION"]["dueAt"] == extended["dueAt"]

    after_reply = snapshots["REPLY"]
    assert open_step(after_reply, "HANDLING") is None
    assert (after_reply["dueAt"], after_reply["warningColor"]) == (None, "NONE")
    assert snapshots["RATE_SATISFACTION"]["rating"] == "DISSATISFIED"
    assert open_step(snapshots["REQUEST_REVIEW"], "REVIEW_DECISION") is not None
    assert open_step(snapshots["DECIDE_REVIEW"], "REVIEW_DECISION") is None
    assert open_step(snapshots["REQUEST_RE_REVIEW"], "RE_REVIEW_DECISION") is not None
    assert not [d for d in case["deadlines"] if d["status"] == "OPEN"]
    assert case["resolution"] == "已复核，终结"

    # the chain: distinct hashes, each linking the previous one, recomputable from the rows
    hashes = [e["hash"] for e in case["events"]]
    assert len(set(hashes)) == len(hashes) == 12
    rows = await _event_rows(db, a, case["id"])
    assert [r.hash for r in rows] == hashes
    prev = GENESIS
    for row in rows:
        assert row.prev_hash == prev
        assert chain_hash(prev, row) == row.hash
        prev = row.hash

    async def iterate():
        for row in rows:
            yield row

    assert await verify_chain(iterate()) is None


async def _event_rows(db, city: City, case_id: str) -> list[CaseEvent]:
    async with db.transaction() as session:
        tenant = await tenants.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        rows = await session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == uuid.UUID(case_id)).order_by(CaseEvent.seq)
        )
        return list(rows)


async def test_diverted_case_is_closed_with_the_advice(gql, world):
    a = world.a
    case = await registered(gql, a)
    case = await step(
        gql, a.token("officer"), "divertCase", case, channel="LITIGATION", reason="属诉讼事项"
    )
    assert (case["status"], case["version"]) == ("DIVERTED", 2)
    event = last_event(case)
    assert (event["kind"], event["reason"], event["data"]) == (
        "DIVERT",
        "属诉讼事项",
        {"channel": "LITIGATION"},
    )
    assert open_step(case, "ROUTING") is None
    case = await step(gql, a.token("officer"), "closeCase", case, resolution="告知通过诉讼解决")
    assert (case["status"], case["version"]) == ("CLOSED", 3)
    assert [e["kind"] for e in case["events"]] == ["REGISTERED", "DIVERT", "CLOSE"]


async def test_rejected_case_is_closed(gql, world):
    a = world.a
    case = await routed(gql, a)
    case = await step(gql, a.token("c1_officer"), "rejectCase", case, reason="不属于信访事项")
    assert (case["status"], case["version"]) == ("NOT_ACCEPTED", 3)
    assert (last_event(case)["kind"], last_event(case)["reason"]) == ("REJECT", "不属于信访事项")
    assert not [d for d in case["deadlines"] if d["status"] == "OPEN"]
    case = await step(gql, a.token("c1_officer"), "closeCase", case, resolution="不予受理，已告知")
    assert case["status"] == "CLOSED"
    assert [e["kind"] for e in case["events"]] == ["REGISTERED", "ROUTE", "REJECT", "CLOSE"]


async def test_rejection_needs_a_reason(gql, world):
    case = await routed(gql, world.a)
    resp = await step_resp(gql, world.a.token("c1_officer"), "rejectCase", case, reason=" ")
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "reason")
    assert (await fetch(gql, world.a.token("officer"), case["id"]))["version"] == case["version"]


# --- every forbidden transition -----------------------------------------------------------------

OPEN = [
    "REGISTERED",
    "ROUTED",
    "ACCEPTED",
    "NOT_ACCEPTED",
    "EXTENDED",
    "REPLIED",
    "REVIEW_REQUESTED",
    "REVIEWED",
    "RE_REVIEW_REQUESTED",
    "RE_REVIEWED",
    "DIVERTED",
]
HANDLING = ["ACCEPTED", "EXTENDED", "REVIEW_REQUESTED", "RE_REVIEW_REQUESTED"]

# Where each mutation may start from (DOMAIN.md "Lifecycle"); everywhere else it is refused.
ALLOWED_FROM: dict[str, list[str]] = {
    "routeCase": ["REGISTERED", "ROUTED"],
    "divertCase": ["REGISTERED", "ROUTED"],
    "acceptCase": ["REGISTERED", "ROUTED"],
    "rejectCase": ["REGISTERED", "ROUTED"],
    "objectToTransfer": ["ROUTED"],
    "decideObjection": ["ROUTED"],
    "requestExtension": ["ACCEPTED"],
    "approveExtension": ["ACCEPTED"],
    "replyCase": ["ACCEPTED", "EXTENDED"],
    "rateSatisfaction": ["REPLIED", "REVIEWED", "RE_REVIEWED"],
    "requestReview": ["REPLIED"],
    "decideReview": ["REVIEW_REQUESTED"],
    "requestReReview": ["REVIEWED"],
    "decideReReview": ["RE_REVIEW_REQUESTED"],
    "holdCase": HANDLING,
    "resumeCase": HANDLING,
    "closeCase": ["REPLIED", "REVIEWED", "RE_REVIEWED", "NOT_ACCEPTED", "DIVERTED"],
    "assignCaseLeader": OPEN,
    "issueSupervisionOrder": OPEN,
    "escalateCase": OPEN,
    "recordJointMeeting": OPEN,
}
BY_LEADER = {"approveExtension", "assignCaseLeader", "issueSupervisionOrder", "holdCase"}
# on the main road the township handles and replies, its county reviews (Arts. 35, 36)
BY_UNIT = {
    "acceptCase": "t1_officer",
    "requestExtension": "t1_officer",
    "replyCase": "t1_officer",
    "decideReview": "c1_officer",
}


def _fields(city: City, name: str) -> dict[str, Any]:
    return {
        "routeCase": {"toUnitPath": city.path("c1/t2"), "mode": "ASSIGN"},
        "divertCase": {"channel": "ARBITRATION", "reason": "r"},
        "rejectCase": {"reason": "r"},
        "objectToTransfer": {"reason": "r"},
        "decideObjection": {"agree": True, "reason": "r"},
        "requestExtension": {"days": 10, "reason": "r"},
        "replyCase": {"opinion": "o"},
        "rateSatisfaction": {"rating": "SATISFIED"},
        "decideReview": {"opinion": "o"},
        "decideReReview": {"opinion": "o"},
        "holdCase": {"reason": "r"},
        "closeCase": {"resolution": "r"},
        "assignCaseLeader": {"username": f"{city.slug}_leader"},
        "issueSupervisionOrder": {
            "dueDate": (today() + timedelta(days=10)).isoformat(),
            "note": "n",
        },
        "escalateCase": {"target": "LEADERSHIP_GROUP", "reason": "r"},
        "recordJointMeeting": {"notes": "n", "participants": []},
    }.get(name, {})


# The way to each status from REGISTERED: (mutation, by leader?, fields).
MAIN_ROAD = [
    ("routeCase", {"mode": "ASSIGN"}),
    ("acceptCase", {}),
    ("requestExtension", {"days": 10, "reason": "r"}),
    ("approveExtension", {}),
    ("replyCase", {"opinion": "o"}),
    ("requestReview", {}),
    ("decideReview", {"opinion": "o"}),
    ("requestReReview", {}),
    ("decideReReview", {"opinion": "o"}),
    ("closeCase", {"resolution": "r"}),
]
ROAD_TO: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "REGISTERED": [],
    "ROUTED": MAIN_ROAD[:1],
    "ACCEPTED": MAIN_ROAD[:2],
    "EXTENDED": MAIN_ROAD[:4],
    "REPLIED": MAIN_ROAD[:5],
    "REVIEW_REQUESTED": MAIN_ROAD[:6],
    "REVIEWED": MAIN_ROAD[:7],
    "RE_REVIEW_REQUESTED": MAIN_ROAD[:8],
    "RE_REVIEWED": MAIN_ROAD[:9],
    "CLOSED": MAIN_ROAD,
    "NOT_ACCEPTED": [("rejectCase", {"reason": "r"})],
    "DIVERTED": [("divertCase", {"channel": "LITIGATION", "reason": "r"})],
}


@pytest.fixture(scope="module")
async def case_in(gql, world) -> dict[str, dict[str, Any]]:
    """A case of world.b in each status, one per status (the tests using it change nothing)."""
    b = world.b
    out: dict[str, dict[str, Any]] = {}
    for status, road in ROAD_TO.items():
        case = await registered(gql, b)
        for name, fields in road:
            token = b.token("leader" if name in BY_LEADER else BY_UNIT.get(name, "officer"))
            if name == "routeCase":
                fields = {**fields, "toUnitPath": b.path("c1/t1")}
            case = await step_brief(gql, token, name, case, **fields)
        assert case["status"] == status
        out[status] = await fetch(gql, b.token("officer"), case["id"])
    return out


@pytest.mark.parametrize("status", [*OPEN, "CLOSED"])
async def test_every_forbidden_transition_is_refused(gql, world, case_in, status):
    b = world.b
    case = case_in[status]
    refused = [name for name, sources in ALLOWED_FROM.items() if status not in sources]
    assert refused
    for name in refused:
        token = b.token("leader" if name in BY_LEADER else "officer")
        resp = await step_resp(gql, token, name, case, **_fields(b, name))
        assert resp.code == "INVALID_TRANSITION", (name, resp.body)
        error = resp.errors[0]
        assert status in error["message"], (name, error)
        assert error["extensions"]["currentStatus"] == status, (name, error)
    after = await fetch(gql, b.token("officer"), case["id"])
    assert (after["status"], after["version"]) == (status, case["version"])
    assert len(after["events"]) == len(case["events"])


async def test_rating_before_the_reply_is_refused(gql, world):
    case = await accepted(gql, world.a)
    resp = await step_resp(
        gql, world.a.token("c1_officer"), "rateSatisfaction", case, rating="SATISFIED"
    )
    assert resp.code == "INVALID_TRANSITION"
    assert resp.errors[0]["extensions"]["currentStatus"] == "ACCEPTED"


async def test_after_re_review_the_case_cannot_be_reopened(gql, world, case_in):
    case = case_in["RE_REVIEWED"]
    for name in ("requestReview", "requestReReview"):
        resp = await step_resp(gql, world.b.token("officer"), name, case)
        assert resp.code == "INVALID_TRANSITION", name
        assert "RE_REVIEWED" in resp.errors[0]["message"]


# --- versions -----------------------------------------------------------------------------------


async def test_stale_version_is_conflict_and_writes_nothing(gql, world):
    a = world.a
    case = await routed(gql, a)
    stale = {**case, "version": case["version"] - 1}
    resp = await step_resp(gql, a.token("c1_officer"), "acceptCase", stale)
    assert (resp.code, resp.field) == ("CONFLICT", "version")
    assert resp.errors[0]["extensions"]["currentVersion"] == case["version"]
    after = await fetch(gql, a.token("officer"), case["id"])
    assert (after["status"], after["version"]) == ("ROUTED", case["version"])
    assert after["events"] == case["events"]
    assert after["deadlines"] == case["deadlines"]


async def test_future_version_is_conflict(gql, world):
    case = await registered(gql, world.a)
    resp = await step_resp(
        gql, world.a.token("officer"), "acceptCase", {**case, "version": case["version"] + 1}
    )
    assert (resp.code, resp.field) == ("CONFLICT", "version")


# --- extensions (Art. 34) -----------------------------------------------------------------------


@pytest.mark.parametrize("days", [31, 0, -5])
async def test_extension_outside_1_to_30_days_is_bad_input(gql, world, days):
    case = await accepted(gql, world.a)
    resp = await step_resp(
        gql, world.a.token("c1_officer"), "requestExtension", case, days=days, reason="r"
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "days")
    after = await fetch(gql, world.a.token("officer"), case["id"])
    assert after["version"] == case["version"] and after["extensionDays"] is None


async def test_only_one_extension(gql, world):
    a = world.a
    case = await accepted(gql, a)
    case = await step(gql, a.token("c1_officer"), "requestExtension", case, days=30, reason="r")
    again = await step_resp(
        gql, a.token("c1_officer"), "requestExtension", case, days=5, reason="r"
    )
    assert again.code == "INVALID_TRANSITION"
    case = await step(gql, a.token("c1_leader"), "approveExtension", case)
    assert case["status"] == "EXTENDED"
    again = await step_resp(
        gql, a.token("c1_officer"), "requestExtension", case, days=5, reason="r"
    )
    assert again.code == "INVALID_TRANSITION"
    assert again.errors[0]["extensions"]["currentStatus"] == "EXTENDED"


async def test_approval_without_a_request_is_refused(gql, world):
    case = await accepted(gql, world.a)
    resp = await step_resp(gql, world.a.token("c1_leader"), "approveExtension", case)
    assert resp.code == "INVALID_TRANSITION"


async def test_petition_officer_cannot_approve_an_extension(gql, world):
    a = world.a
    case = await accepted(gql, a)
    case = await step(gql, a.token("c1_officer"), "requestExtension", case, days=5, reason="r")
    resp = await step_resp(gql, a.token("officer"), "approveExtension", case)
    assert resp.code == "FORBIDDEN"


async def test_the_requester_cannot_approve_its_own_extension(gql, world):
    a = world.a
    admin = a.token("admin")
    username = unique(f"{a.slug}_boss")[:60]
    create = "mutation($i: CreateUserInput!) { createUser(input: $i) { username } }"
    assign = "mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"
    (
        await gql(
            create, {"i": {"tenant": a.slug, "username": username, "displayName": "B"}}, token=admin
        )
    ).ok()
    for role in ("PETITION_OFFICER", "LEADER"):
        grant = {"username": username, "role": role, "orgUnitPath": a.path("c1")}
        (await gql(assign, {"i": grant}, token=admin)).ok()
    from backend.authz.tokens import issue_token

    boss = issue_token(username)
    case = await accepted(gql, a)
    case = await step(gql, boss, "requestExtension", case, days=15, reason="r")
    resp = await step_resp(gql, boss, "approveExtension", case)
    assert resp.code == "FORBIDDEN", resp.body
    unchanged = await fetch(gql, a.token("officer"), case["id"])
    assert (unchanged["status"], unchanged["version"]) == ("ACCEPTED", case["version"])
    case = await step(gql, a.token("c1_leader"), "approveExtension", case)
    assert case["status"] == "EXTENDED"


# --- hold / resume ------------------------------------------------------------------------------


async def test_a_hold_stops_the_handling_clock(gql, world):
    a = world.a
    c1_officer = a.token("c1_officer")
    case = await accepted(gql, a)
    before = open_step(case, "HANDLING")
    case = await step(gql, a.token("c1_leader"), "holdCase", case, reason="举行听证")
    assert case["onHold"] and case["status"] == "ACCEPTED"
    assert (last_event(case)["kind"], last_event(case)["reason"]) == ("HOLD", "举行听证")
    again = await step_resp(gql, a.token("c1_leader"), "holdCase", case, reason="x")
    assert again.code == "INVALID_TRANSITION"

    held = 9
    with shifted_clock(timedelta(days=held)):
        case = await step(gql, c1_officer, "resumeCase", case)
    assert not case["onHold"] and case["status"] == "ACCEPTED"
    event = last_event(case)
    assert (event["kind"], event["data"]) == ("RESUME", {"heldDays": {"HANDLING": held}})
    after = open_step(case, "HANDLING")
    assert after["rule"]["heldDays"] == held
    assert after["rule"]["days"] == 60
    assert after["startedAt"] == before["startedAt"]
    assert days_between(after["rule"]["rawDueDate"], before["rule"]["rawDueDate"]) == held
    assert days_between(after["dueDate"], after["rule"]["rawDueDate"]) == len(
        after["rule"]["rolledOverDays"]
    )
    assert case["version"] == 5
    again = await step_resp(gql, c1_officer, "resumeCase", case)
    assert again.code == "INVALID_TRANSITION"


async def test_a_hold_after_an_extension_keeps_the_extension(gql, world):
    a = world.a
    case = await accepted(gql, a)
    case = await step(gql, a.token("c1_officer"), "requestExtension", case, days=10, reason="r")
    case = await step(gql, a.token("c1_leader"), "approveExtension", case)
    before = open_step(case, "HANDLING")
    case = await step(gql, a.token("c1_leader"), "holdCase", case, reason="听证")
    with shifted_clock(timedelta(days=3)):
        case = await step(gql, a.token("c1_officer"), "resumeCase", case)
    after = open_step(case, "HANDLING")
    assert after["rule"]["days"] == 70 and after["rule"]["extensionDays"] == 10
    assert days_between(after["rule"]["rawDueDate"], before["rule"]["rawDueDate"]) == 3


# --- supervision orders, 包案 leaders, escalation, joint meetings ----------------------------------


async def test_supervision_order_opens_its_own_deadline(gql, world):
    a = world.a
    case = await routed(gql, a)
    due = today() + timedelta(days=12)
    case = await step(
        gql,
        a.token("leader"),
        "issueSupervisionOrder",
        case,
        dueDate=due.isoformat(),
        note="限期办结",
    )
    order = open_step(case, "SUPERVISION")
    assert order is not None and order["note"] == "限期办结"
    assert order["rule"]["orderedDueDate"] == due.isoformat()
    assert order["dueDate"] >= due.isoformat()
    event = last_event(case)
    assert (event["kind"], event["data"]) == (
        "ISSUE_SUPERVISION_ORDER",
        {"dueDate": due.isoformat()},
    )
    assert case["status"] == "ROUTED" and case["version"] == 3


async def test_supervision_order_due_in_the_past_is_bad_input(gql, world):
    case = await routed(gql, world.a)
    resp = await step_resp(
        gql,
        world.a.token("leader"),
        "issueSupervisionOrder",
        case,
        dueDate=(today() - timedelta(days=1)).isoformat(),
        note="n",
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "dueDate")
    after = await fetch(gql, world.a.token("officer"), case["id"])
    assert after["version"] == case["version"] and open_step(after, "SUPERVISION") is None


async def test_petition_officer_cannot_issue_a_supervision_order(gql, world):
    case = await routed(gql, world.a)
    resp = await step_resp(
        gql,
        world.a.token("officer"),
        "issueSupervisionOrder",
        case,
        dueDate=(today() + timedelta(days=5)).isoformat(),
        note="n",
    )
    assert resp.code == "FORBIDDEN"


async def test_case_leader_must_be_a_leader_over_the_case(gql, world):
    a = world.a
    case = await routed(gql, a)
    for username in (f"{a.slug}_c1_officer", "nobody-here", f"{world.b.slug}_leader"):
        resp = await step_resp(gql, a.token("leader"), "assignCaseLeader", case, username=username)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username"), username
    case = await step(
        gql, a.token("c1_leader"), "assignCaseLeader", case, username=f"{a.slug}_c1_leader"
    )
    assert case["leader"] == {"username": f"{a.slug}_c1_leader"}
    assert (last_event(case)["kind"], case["version"]) == ("ASSIGN_LEADER", 3)


async def test_escalation_and_joint_meeting_are_events(gql, world):
    a = world.a
    case = await accepted(gql, a)
    case = await step(
        gql,
        a.token("leader"),
        "escalateCase",
        case,
        target="SUPERVISION_BRIGADE",
        reason="久拖未决",
    )
    assert (last_event(case)["kind"], last_event(case)["data"]) == (
        "ESCALATE",
        {"target": "SUPERVISION_BRIGADE"},
    )
    case = await step(
        gql,
        a.token("officer"),
        "recordJointMeeting",
        case,
        notes="一会四联会商纪要",
        participants=["信访局", "人社局"],
    )
    event = last_event(case)
    assert (event["kind"], event["reason"], event["data"]) == (
        "RECORD_JOINT_MEETING",
        "一会四联会商纪要",
        {"participants": ["信访局", "人社局"]},
    )
    assert (case["status"], case["version"], len(case["events"])) == ("ACCEPTED", 5, 5)


# --- the petitioner's windows ---------------------------------------------------------------------


async def test_review_cannot_be_requested_after_30_days(gql, world):
    a = world.a
    case = await replied(gql, a)
    with shifted_clock(timedelta(days=40)):
        resp = await step_resp(gql, a.token("c1_officer"), "requestReview", case)
    assert resp.code == "INVALID_TRANSITION", resp.body
    assert resp.errors[0]["extensions"]["currentStatus"] == "REPLIED"
    with shifted_clock(timedelta(days=10)):
        case = await step(gql, a.token("c1_officer"), "requestReview", case)
    assert case["status"] == "REVIEW_REQUESTED"


async def test_re_review_cannot_be_requested_after_30_days(gql, world):
    a = world.a
    case = await replied(gql, a)
    case = await step(gql, a.token("c1_officer"), "requestReview", case)
    case = await step(gql, a.token("officer"), "decideReview", case, opinion="维持")
    with shifted_clock(timedelta(days=40)):
        resp = await step_resp(gql, a.token("officer"), "requestReReview", case)
    assert resp.code == "INVALID_TRANSITION"


# --- Art. 23 objection to a transfer ---------------------------------------------------------------


async def test_objection_sends_the_case_back_to_the_routing_office(gql, world):
    a = world.a
    case = await routed(gql, a)
    assert case["holderUnit"]["path"] == a.path("c1")
    case = await step(gql, a.token("c1_officer"), "objectToTransfer", case, reason="不属本机关职权")
    # the case waits with the objecting body for the routing office (Art. 23)
    assert (case["status"], case["version"]) == ("ROUTED", 3)
    assert case["holderUnit"]["path"] == a.path("c1")
    event = last_event(case)
    assert (event["kind"], event["fromStatus"], event["toStatus"]) == (
        "OBJECT_TRANSFER",
        "ROUTED",
        "ROUTED",
    )
    assert event["data"] == {"from": a.path("c1"), "to": a.path()}
    assert open_step(case, "OBJECTION_DECISION") is not None
    assert open_step(case, "ACCEPTANCE") is not None
    case = await step(
        gql, a.token("officer"), "decideObjection", case, agree=True, reason="同意，重新转送"
    )
    assert (case["status"], case["version"]) == ("REGISTERED", 4)
    assert case["holderUnit"]["path"] == a.path()
    event = last_event(case)
    assert (event["kind"], event["fromStatus"], event["toStatus"]) == (
        "AGREE_OBJECTION",
        "ROUTED",
        "REGISTERED",
    )
    assert open_step(case, "ACCEPTANCE") is None
    assert open_step(case, "OBJECTION_DECISION") is None
    assert open_step(case, "ROUTING") is not None
    # the office routes it again, elsewhere
    case = await step(
        gql, a.token("officer"), "routeCase", case, toUnitPath=a.path("c2"), mode="ASSIGN"
    )
    assert (case["status"], case["holderUnit"]["path"]) == ("ROUTED", a.path("c2"))


async def test_objection_after_five_working_days_is_refused(gql, world):
    a = world.a
    case = await routed(gql, a)
    with shifted_clock(timedelta(days=20)):
        resp = await step_resp(gql, a.token("c1_officer"), "objectToTransfer", case, reason="r")
    assert resp.code == "INVALID_TRANSITION"
    assert resp.errors[0]["extensions"]["currentStatus"] == "ROUTED"


async def test_a_case_accepted_directly_cannot_be_objected_to(gql, world):
    case = await registered(gql, world.a)
    resp = await step_resp(gql, world.a.token("officer"), "objectToTransfer", case, reason="r")
    assert resp.code == "INVALID_TRANSITION"


async def test_objection_goes_back_to_whoever_routed_last(gql, world):
    a = world.a
    case = await routed(gql, a)
    case = await step(
        gql, a.token("c1_officer"), "routeCase", case, toUnitPath=a.path("c1/t1"), mode="ASSIGN"
    )
    assert (case["status"], case["version"]) == ("ROUTED", 3)
    case = await step(gql, a.token("t1_officer"), "objectToTransfer", case, reason="非本镇职责")
    case = await step(
        gql, a.token("c1_officer"), "decideObjection", case, agree=True, reason="同意"
    )
    assert (case["status"], case["holderUnit"]["path"]) == ("REGISTERED", a.path("c1"))


# --- holds and status changes --------------------------------------------------------------------


async def test_a_case_on_hold_is_resumed_before_it_is_replied(gql, world):
    a = world.a
    officer = a.token("c1_officer")
    case = await accepted(gql, a)
    case = await step(gql, a.token("c1_leader"), "holdCase", case, reason="中止办理")
    resp = await step_resp(gql, officer, "replyCase", case, opinion="答复")
    assert resp.code == "INVALID_TRANSITION", resp.body
    assert "ACCEPTED" in resp.errors[0]["message"]
    assert resp.errors[0]["extensions"]["currentStatus"] == "ACCEPTED"
    # what stays inside the held step is still possible
    case = await step(gql, officer, "requestExtension", case, days=10, reason="r")
    case = await step(gql, officer, "resumeCase", case)
    case = await step(gql, officer, "replyCase", case, opinion="答复")
    assert (case["status"], case["onHold"]) == ("REPLIED", False)


async def test_a_review_on_hold_is_resumed_before_it_is_decided(gql, world):
    a = world.a
    case = await replied(gql, a)
    case = await step(gql, a.token("c1_officer"), "requestReview", case)
    case = await step(gql, a.token("leader"), "holdCase", case, reason="举行听证")
    resp = await step_resp(gql, a.token("officer"), "decideReview", case, opinion="维持")
    assert resp.code == "INVALID_TRANSITION"
    case = await step(gql, a.token("officer"), "resumeCase", case)
    case = await step(gql, a.token("officer"), "decideReview", case, opinion="维持")
    assert (case["status"], case["onHold"]) == ("REVIEWED", False)


# --- who may act ---------------------------------------------------------------------------------


async def test_department_handler_handles_a_case_transferred_to_it(gql, world):
    a = world.a
    case = await registered(gql, a, category="wages")
    case = await step(
        gql, a.token("officer"), "routeCase", case, toUnitPath=a.path("dept"), mode="ASSIGN"
    )
    handler = a.token("handler")
    resp = await step_resp(
        gql, handler, "routeCase", case, toUnitPath=a.path("c1"), mode="TRANSFER"
    )
    assert resp.code == "FORBIDDEN"
    case = await step(gql, handler, "acceptCase", case)
    case = await step(gql, handler, "requestExtension", case, days=5, reason="r")
    case = await step(gql, handler, "replyCase", case, opinion="已督促企业支付工资")
    assert (case["status"], case["version"]) == ("REPLIED", 5)
    assert [e["actor"]["username"] for e in case["events"][2:]] == [f"{a.slug}_handler"] * 3
    resp = await step_resp(gql, handler, "closeCase", case, resolution="r")
    assert resp.code == "FORBIDDEN"


async def test_cases_out_of_reach_are_not_found(gql, world):
    a = world.a
    case = await registered(gql, a, locationPath=a.path("c2/t1"))
    case = await step(
        gql, a.token("officer"), "routeCase", case, toUnitPath=a.path("c2"), mode="TRANSFER"
    )
    for token in (a.token("c1_officer"), world.b.token("officer"), world.c.token("officer")):
        resp = await step_resp(gql, token, "acceptCase", case)
        assert resp.code == "NOT_FOUND", resp.body
    assert (await fetch(gql, a.token("officer"), case["id"]))["version"] == case["version"]


async def test_satisfied_petitioner_case_is_closed_after_the_reply(gql, world):
    a = world.a
    case = await replied(gql, a)
    case = await step(gql, a.token("c1_officer"), "rateSatisfaction", case, rating="SATISFIED")
    case = await step(gql, a.token("c1_officer"), "closeCase", case, resolution="已办结")
    assert (case["status"], case["rating"], case["version"]) == ("CLOSED", "SATISFIED", 6)
