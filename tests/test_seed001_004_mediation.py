"""Seeds 001 and 004, 四调联动: a case sent to mediation (people's, administrative, judicial or
the petition office's own), the mediating body and the outcome recorded with events; the
handling clock runs on unless a suspension (中止) is approved; an agreement leads to the
reply and closure as usual; Art. 30 on the mediation list.

World A: the city office (``officer``) routes cases located in c1/t1 to county c1, where
``c1_officer`` handles them and ``c1_leader`` approves holds; ``t1_officer`` is the township.
"""

from __future__ import annotations

from typing import Any

from tests.case_helpers import open_step, register, step, step_resp
from tests.clocks import sh, ticking
from tests.helpers import City

T0 = sh(2026, 11, 16, 10, 0)  # Monday
MEDIATIONS = """query($id: ID!) {
  caseMediations(caseId: $id) { id kind body startedBy outcome terms endedAt }
}"""
BODY = "东风镇人民调解委员会"


async def accepted(gql, city: City, **overrides: Any) -> dict:
    case = await register(gql, city.token("officer"), city, **overrides)
    case = await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="ASSIGN"
    )
    return await step(gql, city.token("c1_officer"), "acceptCase", case)


async def test_seed001_mediation_records_the_body_and_the_outcome_then_the_reply(gql, world):
    a = world.a
    tok = a.token("c1_officer")
    with ticking(T0):
        case = await accepted(gql, a)
        handling = open_step(case, "HANDLING")["dueDate"]
        early = await step_resp(
            gql, tok, "recordMediationOutcome", case, outcome="AGREEMENT", terms="x"
        )
        assert early.code == "INVALID_TRANSITION"
        case = await step(gql, tok, "startMediation", case, kind="PEOPLES", body=BODY)
        event = case["events"][-1]
        assert event["kind"] == "START_MEDIATION" and case["status"] == "ACCEPTED"
        assert event["data"]["body"] == BODY and event["data"]["kind"] == "PEOPLES"
        assert event["data"]["handlingDueDate"] == handling
        again = await step_resp(gql, tok, "startMediation", case, kind="JUDICIAL", body="法院")
        assert again.code == "INVALID_TRANSITION"
        reply = await step_resp(gql, tok, "replyCase", case, opinion="答复")
        assert reply.code == "INVALID_TRANSITION" and "mediation" in reply.errors[0]["message"]
        case = await step(
            gql, tok, "recordMediationOutcome", case, outcome="AGREEMENT", terms="补偿款月底前发放"
        )
        assert case["events"][-1]["kind"] == "RECORD_MEDIATION_OUTCOME"
        assert case["events"][-1]["data"]["outcome"] == "AGREEMENT"
        case = await step(gql, tok, "replyCase", case, opinion="依调解协议答复")
    assert case["status"] == "REPLIED"
    (row,) = (await gql(MEDIATIONS, {"id": case["id"]}, token=tok)).ok()["caseMediations"]
    assert (row["kind"], row["body"], row["outcome"]) == ("PEOPLES", BODY, "AGREEMENT")
    assert row["startedBy"] == f"{a.slug}_c1_officer" and row["terms"] == "补偿款月底前发放"


async def test_seed004_a_failed_mediation_and_a_second_one_by_another_body(gql, world):
    a = world.a
    tok = a.token("c1_officer")
    with ticking(T0):
        case = await accepted(gql, a)
        case = await step(gql, tok, "startMediation", case, kind="ADMINISTRATIVE", body="县住建局")
        case = await step(
            gql, tok, "recordMediationOutcome", case, outcome="FAILED", terms="双方分歧较大"
        )
        case = await step(gql, tok, "startMediation", case, kind="JUDICIAL", body="县人民法院")
    rows = (await gql(MEDIATIONS, {"id": case["id"]}, token=tok)).ok()["caseMediations"]
    assert [(r["kind"], r["outcome"]) for r in rows] == [
        ("ADMINISTRATIVE", "FAILED"),
        ("JUDICIAL", None),
    ]


async def test_seed004_mediation_runs_within_the_handling_clock_unless_suspension_is_approved(
    gql, world
):
    """Mediation does not stop the clock; the approved suspension (中止) does, as before."""
    a = world.a
    tok = a.token("c1_officer")
    with ticking(T0):
        case = await accepted(gql, a)
        due = open_step(case, "HANDLING")["dueDate"]
        case = await step(gql, tok, "startMediation", case, kind="PETITION_OFFICE", body="县信访局")
        assert open_step(case, "HANDLING")["dueDate"] == due  # the clock runs on
        assert not case["onHold"]
        refused = await step_resp(gql, tok, "holdCase", case, reason="调解需要时间")
        assert refused.code == "FORBIDDEN"  # the handler does not stop its own clock
        case = await step(gql, a.token("c1_leader"), "holdCase", case, reason="调解中止")
    with ticking(sh(2026, 11, 23, 10, 0)):  # a week on hold
        case = await step(gql, tok, "resumeCase", case)
    assert open_step(case, "HANDLING")["dueDate"] > due
    assert case["events"][-1]["data"]["heldDays"]["HANDLING"] == 7


async def test_seed001_mediation_needs_an_accepted_case_and_a_body(gql, world):
    a = world.a
    with ticking(T0):
        case = await register(gql, a.token("officer"), a)
        early = await step_resp(
            gql, a.token("officer"), "startMediation", case, kind="PEOPLES", body=BODY
        )
        assert early.code == "INVALID_TRANSITION"
        case = await accepted(gql, a)
        blank = await step_resp(
            gql, a.token("c1_officer"), "startMediation", case, kind="PEOPLES", body="  "
        )
    assert blank.code == "BAD_USER_INPUT" and blank.field == "body"


async def test_seed001_art30_mediations_of_an_accusation_stay_hidden_from_the_accused(gql, world):
    a = world.a
    with ticking(T0):
        plain = await accepted(gql, a)
        accusation = await accepted(gql, a, type="ACCUSATION", accusedUnitPath=a.path("c1/t1"))
        for case in (plain, accusation):
            await step(
                gql, a.token("c1_officer"), "startMediation", case, kind="PEOPLES", body=BODY
            )
    seen = await gql(MEDIATIONS, {"id": plain["id"]}, token=a.token("t1_officer"))
    assert len(seen.ok()["caseMediations"]) == 1  # the township reads its own cases'
    hidden = await gql(MEDIATIONS, {"id": accusation["id"]}, token=a.token("t1_officer"))
    assert hidden.code == "NOT_FOUND" and hidden.data is None
    other_city = await gql(MEDIATIONS, {"id": plain["id"]}, token=world.b.token("officer"))
    assert other_city.code == "NOT_FOUND"
    assert (
        len(
            (await gql(MEDIATIONS, {"id": accusation["id"]}, token=a.token("c1_officer"))).ok()[
                "caseMediations"
            ]
        )
        == 1
    )
