"""Seed 000 (Shangqiu: "实时动态监测京、省、市交办的重点案件办理情况"): cases assigned down by
the national or provincial petition bureau — intake with the bureau's number and deadline,
their own board, the red digest, the report back (报结) and what provincial supervisors see.

World A's tree: the city office (``officer``, ``leader``) above county c1 (``c1_officer``)
and c2 (``c2_officer``); cases are registered in c1/t1.
"""

from __future__ import annotations

from typing import Any

from backend.notifications.models import Notification
from tests.case_helpers import fetch, open_step, register, register_input, step, step_resp
from tests.clocks import frozen, sh, ticking
from tests.helpers import City, build_city, unique
from tests.test_jobs_support import sent, tenant_id

T0 = sh(2026, 11, 16, 10, 0)  # Monday
BOARD = """query($u: String, $all: Boolean) {
  assignedDownCases(unitPath: $u, includeReported: $all) {
    origin externalNumber externalDueDate reportedAt reportedBy report
    case { id number status }
  }
}"""


def down(due: str = "2026-11-26", number: str = "豫信交〔2026〕17号", **kw: Any) -> dict:
    return {"origin": "PROVINCIAL_BUREAU", "externalNumber": number, "externalDueDate": due, **kw}


async def board(gql, token: str, **variables: Any) -> list[dict]:
    return (await gql(BOARD, variables, token=token)).ok()["assignedDownCases"]


async def answered(gql, city: City, case: dict) -> dict:
    """Routed to county c1, accepted and replied there."""
    tok = city.token("c1_officer")
    case = await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="ASSIGN"
    )
    case = await step(gql, tok, "acceptCase", case)
    return await step(gql, tok, "replyCase", case, opinion="答复意见")


async def test_seed000_intake_records_the_bureau_its_number_and_its_earlier_deadline(gql, world):
    a = world.a
    with ticking(T0):
        case = await register(gql, a.token("officer"), a, assignedDown=down())
    report = open_step(case, "REPORT_BACK")
    assert report["dueDate"] == "2026-11-26"
    assert report["rule"]["externalNumber"] == "豫信交〔2026〕17号"
    assert report["rule"]["origin"] == "PROVINCIAL_BUREAU"
    # the routing clock runs to 11-30; the bureau's 11-26 comes first and governs dueAt
    assert open_step(case, "ROUTING")["dueDate"] == "2026-11-30"
    assert case["dueAt"].startswith("2026-11-26T23:59:59")
    assert [e["kind"] for e in case["events"]] == ["REGISTERED", "ASSIGNED_DOWN"]
    assert case["events"][-1]["data"]["externalDueDate"] == "2026-11-26"


async def test_seed000_a_later_bureau_deadline_leaves_our_own_limit_in_charge(gql, world):
    a = world.a
    with ticking(T0):
        case = await register(gql, a.token("officer"), a, assignedDown=down(due="2027-01-29"))
    assert case["dueAt"].startswith("2026-11-30T23:59:59")  # routing, the earlier
    assert open_step(case, "REPORT_BACK")["dueDate"] == "2027-01-29"


async def test_seed000_bad_deadline_and_a_replay_with_another_order_are_refused(gql, world):
    a = world.a
    tok = a.token("officer")
    with ticking(T0):
        resp = await gql(
            "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id } }",
            {"i": register_input(a, assignedDown=down(due="2026-10-01"))},
            token=tok,
        )
        assert resp.code == "BAD_USER_INPUT" and resp.field == "assignedDown.externalDueDate"
        # in a batch the refused order names its item, as every other refusal there does
        for bad in (down(due="2026-10-01"), down(number=" ")):
            batch = await gql(
                "mutation($i: [RegisterCaseInput!]!) { registerCases(inputs: $i) { id } }",
                {"i": [register_input(a), register_input(a, assignedDown=bad)]},
                token=tok,
            )
            assert (batch.code, batch.errors[0]["extensions"].get("index")) == (
                "BAD_USER_INPUT",
                1,
            ), batch.body
        data = register_input(a, assignedDown=down())
        doc = "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id events { kind } } }"
        first = (await gql(doc, {"i": data}, token=tok)).ok()["registerCase"]
        again = (await gql(doc, {"i": data}, token=tok)).ok()["registerCase"]
        other = await gql(doc, {"i": {**data, "assignedDown": down(number="国信交1号")}}, token=tok)
    assert again == first  # the replay records nothing twice
    assert other.code == "CONFLICT" and other.field == "clientKey"
    # nothing half-written by the refused intake; the replay is one row on the board
    rows = await board(gql, tok)
    assert "2026-10-01" not in {r["externalDueDate"] for r in rows}
    assert [r["case"]["id"] for r in rows].count(first["id"]) == 1


async def test_seed000_board_is_filtered_by_tenant_scope_and_art30(gql, db):
    a = await build_city(db, unique("ad"), unique("p"))  # fresh: the board lists all of a city
    b = await build_city(db, unique("ad"), unique("p"))
    with ticking(T0):
        plain = await register(gql, a.token("officer"), a, assignedDown=down())
        # an accusation against county c1, assigned down by Beijing (Art. 30)
        accusation = await register(
            gql,
            a.token("officer"),
            a,
            type="ACCUSATION",
            accusedUnitPath=a.path("c1"),
            assignedDown=down(origin="NATIONAL_BUREAU", number="国信交〔2026〕5号"),
        )
        await register(gql, b.token("officer"), b, assignedDown=down())

        def ids(rows: list[dict]) -> set[str]:
            return {r["case"]["id"] for r in rows}

        assert ids(await board(gql, a.token("officer"))) == {plain["id"], accusation["id"]}
        assert ids(await board(gql, a.token("c1_officer"))) == {plain["id"]}  # Art. 30
        assert ids(await board(gql, a.token("c2_officer"))) == set()  # another county
        assert ids(await board(gql, a.token("officer"), u=a.path("c2"))) == set()
        assert plain["id"] not in ids(await board(gql, b.token("officer")))  # another city
        denied = await gql(BOARD, {}, token=a.token("grid"))
    assert denied.code == "FORBIDDEN"


async def test_seed000_report_back_meets_the_bureau_deadline_once_answered(gql, world):
    a = world.a
    tok = a.token("officer")
    with ticking(T0):
        case = await register(gql, tok, a, assignedDown=down())
        early = await step_resp(gql, tok, "reportAssignedCase", case, report="已办结")
        assert early.code == "INVALID_TRANSITION"
        case = await answered(gql, a, case)
        # the reply ends our handling clock, not the report owed to the bureau
        assert open_step(case, "REPORT_BACK") is not None
        assert case["dueAt"].startswith("2026-11-26")
        case = await step(gql, tok, "reportAssignedCase", case, report="已答复，信访人表示接受")
        twice = await step_resp(gql, tok, "reportAssignedCase", case, report="再报")
    assert twice.code == "INVALID_TRANSITION"
    event = case["events"][-1]
    assert event["kind"] == "REPORT_BACK" and event["data"]["onTime"] is True
    assert [d["status"] for d in case["deadlines"] if d["step"] == "REPORT_BACK"] == ["MET"]
    assert case["id"] not in {r["case"]["id"] for r in await board(gql, tok)}
    (row,) = [r for r in await board(gql, tok, all=True) if r["case"]["id"] == case["id"]]
    assert row["reportedBy"] == f"{a.slug}_officer" and row["report"].startswith("已答复")
    # 省级督办 sees the case's clocks: the report status sits beside the supervision orders
    seen = await fetch(gql, world.tokens["sup1"], case["id"])
    assert [d["status"] for d in seen["deadlines"] if d["step"] == "REPORT_BACK"] == ["MET"]
    outsider = await step_resp(gql, world.tokens["sup2"], "reportAssignedCase", case, report="x")
    assert outsider.code in {"FORBIDDEN", "NOT_FOUND"}


async def test_seed000_a_late_report_is_recorded_as_late(gql, world):
    a = world.a
    tok = a.token("officer")
    with ticking(T0):
        case = await register(gql, tok, a, assignedDown=down(due="2026-11-17"))
        case = await answered(gql, a, case)
    with ticking(sh(2026, 11, 18, 9)):
        case = await step(gql, tok, "reportAssignedCase", case, report="迟报")
    assert case["events"][-1]["data"]["onTime"] is False


async def test_seed000_the_bureau_deadline_puts_the_case_in_the_red_digest(gql, db):
    from backend.jobs.digest import red_digest

    a = await build_city(db, unique("ad"), unique("p"))  # fresh: the digest lists all its red
    with frozen(sh(2026, 11, 10, 9)):  # routing due 11-25: yellow on 11-15 by our own clock
        case = await register(
            gql,
            a.token("officer"),
            a,
            receivedAt="2026-11-10T09:00:00+08:00",
            assignedDown=down(due="2026-11-17"),
        )
    with frozen(sh(2026, 11, 15, 8, 1)):
        await red_digest({"db": db, "runner": "test", "tenant": a.slug})
    digests = await sent(db, await tenant_id(db, a), "digest")
    message: Notification = digests[f"{a.slug}_officer"][0]
    assert [c["id"] for c in message.data["cases"]] == [case["id"]]
    assert message.data["cases"][0]["externalNumber"] == "豫信交〔2026〕17号"
    assert "交办 豫信交〔2026〕17号" in message.body
    assert "c1_officer" not in {u.removeprefix(f"{a.slug}_") for u in digests}
