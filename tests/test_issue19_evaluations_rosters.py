"""Issue 19, evaluations and rosters: who may be evaluated (seed 000), who may judge (the
case's own units), the proposed verdict, and the 15th-of-month down-visits (seeds 002, 003)."""

from __future__ import annotations

import uuid
from typing import Any

from backend.authz.principal import SYSTEM
from backend.cases.models import Case, CaseType
from backend.evaluations.eligibility import UpwardCount, reasons_for
from backend.evaluations.models import Evaluator, EvaluatorCategory, EvaluatorStatus, Verdict
from backend.evaluations.panels import conflicts
from backend.evaluations.scoring import confirms, propose
from backend.tenants import service
from tests.clocks import frozen, ticking
from tests.clocks import sh as sh_at
from tests.helpers import id_number
from tests.test_evaluations import (
    ELIGIBLE,
    _n,
    dissatisfied_case,
    make_town,
    member_tokens,
    register,
    submit,
    usernames,
)
from tests.test_rosters import (
    SHIFT,
    register_first_receiver,
    roster_city,
    set_rule,
    sh,
    shifts,
    user,
)

DRAW = """mutation($i: DrawEvaluationPanelInput!) { drawEvaluationPanel(input: $i) {
  id reasons members { username category } } }"""


def _matter() -> dict[str, Any]:
    n = next(_n)
    return {
        "subject": f"征地补偿 {n}",
        "petitioner": {"name": "王五", "phone": f"137{n:04d}0000", "idNumber": id_number(n)},
    }


async def _draw(gql, city, case: dict, size: int = 2, seed: int = 7) -> Any:
    i = {"caseId": case["id"], "size": size, "seed": seed}
    return await gql(DRAW, {"i": i}, token=city.token("officer"))


async def _listed(gql, city) -> set[str]:
    page = (await gql(ELIGIBLE, token=city.token("officer"))).ok()["evaluationEligibleCases"]
    return {e["node"]["id"] for e in page["edges"]}


# --- 5. eligibility: 不满意和赴京到省重复信访3次以上 ------------------------------------------


def test_seed000_three_or_more_includes_the_third():
    """ "3次以上" includes the third (以上 includes the number): ≥ 3 upward petitions."""
    assert reasons_for(None, UpwardCount(province=2)) == []
    assert reasons_for(None, UpwardCount(province=3)) == ["UPWARD_REPEATS_3", "TO_PROVINCE_3"]
    assert reasons_for(None, UpwardCount(province=1, beijing=2)) == [
        "UPWARD_REPEATS_3",
        "TO_PROVINCE_1",
        "TO_BEIJING_2",
    ]
    assert reasons_for("DISSATISFIED", UpwardCount()) == ["DISSATISFIED"]
    assert reasons_for("SATISFIED", UpwardCount(beijing=1)) == []


async def test_seed000_eligibility_counts_provincial_and_beijing_repeats(db, gql):
    town = await make_town(db, gql, [("law1", "LAWYER"), ("vol1", "VOLUNTEER")])
    city, officer = town.city, town.city.token("officer")
    with ticking(sh_at(2026, 11, 2, 9)):
        # three purely local repeats of one matter: not eligible
        local = _matter()
        for _ in range(3):
            plain = await register(gql, officer, city, "c1/t1", **local)
        # one skip-level petition alone: not eligible
        once = await register(gql, officer, city, "c1/t1", skipLevel="BEIJING", **_matter())
        # to the province, to Beijing, a local visit, to the province again: the fourth
        # petition is the third upward one
        matter = _matter()
        up = [
            await register(gql, officer, city, "c1/t1", skipLevel=level, **matter)
            for level in ("PROVINCE", "BEIJING", "NONE", "PROVINCE")
        ]
        # the same petitioner to the province on another matter counts for that one only
        other = await register(
            gql, officer, city, "c1/t1", skipLevel="PROVINCE", category="other", **matter
        )
        later_local = await register(gql, officer, city, "c1/t1", **matter)
        dissatisfied = await dissatisfied_case(gql, city)
    listed = await _listed(gql, city)
    assert up[3]["id"] in listed and later_local["id"] in listed and dissatisfied["id"] in listed
    for case in (plain, once, up[0], up[1], up[2], other):
        assert case["id"] not in listed
        resp = await _draw(gql, city, case)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "caseId")
    panel = (await _draw(gql, city, up[3])).ok()["drawEvaluationPanel"]
    assert panel["reasons"] == ["UPWARD_REPEATS_3", "TO_PROVINCE_2", "TO_BEIJING_1"]
    panel = (await _draw(gql, city, dissatisfied, seed=8)).ok()["drawEvaluationPanel"]
    assert panel["reasons"] == ["DISSATISFIED"]


# --- the case's own units: an official does not judge them ------------------------------------


def _evaluator(category: EvaluatorCategory = EvaluatorCategory.OFFICIAL) -> Evaluator:
    return Evaluator(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        category=category,
        status=EvaluatorStatus.ACTIVE,
        excluded_unit_paths=[],
        related_persons=[],
    )


def test_seed000_official_evaluators_never_judge_cases_of_their_own_units():
    ev = _evaluator()
    held = Case(
        type=CaseType.CLAIM, location_path="/x/c2/t1", holder_path="/x/c1", petitioner_key=None
    )
    assert conflicts(ev, "u", held, set(), official_paths=["/x/c1"])  # held by its unit
    assert conflicts(ev, "u", held, set(), official_paths=["/x/c2"])  # located in it
    assert not conflicts(ev, "u", held, set(), official_paths=["/x/c10", "/x/c1/t1"])
    assert not conflicts(ev, "u", held, set(), role_paths=["/x"])  # the EVALUATOR role alone
    # Art. 30 stays: a role inside the accused unit bars even a non-official role holder
    accused = Case(
        type=CaseType.ACCUSATION,
        location_path="/x/c2/t1",
        holder_path="/x",
        accused_path="/x/c3",
        petitioner_key=None,
    )
    assert conflicts(ev, "u", accused, set(), role_paths=["/x/c3/t9"])


async def test_seed000_the_draw_excludes_officials_of_the_cases_units(db, gql):
    spec = [("law1", "LAWYER"), ("vol1", "VOLUNTEER"), ("off1", "OFFICIAL")]
    town = await make_town(db, gql, spec)
    city = town.city
    async with db.transaction() as session:
        await service.assign_role(
            session,
            SYSTEM,
            username=f"{city.slug}_off1",
            role="LEADER",
            org_unit_path=city.path("c1"),
        )
    with ticking(sh_at(2026, 11, 2, 9)):
        in_c1 = await dissatisfied_case(gql, city, "c1/t1")
        in_c2 = await dissatisfied_case(gql, city, "c2/t1")
    resp = await _draw(gql, city, in_c1, size=3)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "size")
    panel = (await _draw(gql, city, in_c1, size=2)).ok()["drawEvaluationPanel"]
    assert {u.removeprefix(city.slug + "_") for u in usernames(panel)} == {"law1", "vol1"}
    panel = (await _draw(gql, city, in_c2, size=3)).ok()["drawEvaluationPanel"]
    assert f"{city.slug}_off1" in usernames(panel)


# --- 6. 15th-of-month down-visits: every leader to its paired township --------------------------

TOWNSHIP_PAIR = """mutation($i: AssignTownshipPairingInput!) {
  assignTownshipPairing(input: $i) { townshipPath township { path } leader { username } } }"""
TOWNSHIP_PAIRINGS = """query($unit: String) {
  townshipPairings(unitPath: $unit) { townshipPath leader { username } }
  pairings(unitPath: $unit) { villagePath } }"""
DOWN_PLAN = f"""mutation($i: PlanReceptionDaysInput!) {{ planReceptionDays(input: $i) {{
  created updated removed kept unfilled unpairedLeaders shifts {{ {SHIFT} }} }} }}"""


async def _pair_township(gql, city, township: str, leader: str) -> Any:
    i = {"townshipPath": city.path(township), "username": user(city, leader)}
    return await gql(TOWNSHIP_PAIR, {"i": i}, token=city.token("admin"))


async def _plan(gql, city, month: str, rel: str = "c1") -> dict:
    i = {"unitPath": city.path(rel), "month": month}
    return (await gql(DOWN_PLAN, {"i": i}, token=city.token("admin"))).ok()["planReceptionDays"]


def _down_visits(planned: dict) -> set[tuple[str, str, str, str]]:
    return {
        (s["unitPath"], s["leader"]["username"], s["startsAt"][11:16], s["endsAt"][11:16])
        for s in planned["shifts"]
        if s["kind"] == "DOWN_VISIT"
    }


async def test_seed003_every_county_leader_down_visits_its_paired_township_on_the_15th(db, gql):
    city = await roster_city(db)
    p = city.path
    with frozen(sh(2026, 11, 2)):
        await set_rule(gql, city, "c1", "DOWN_VISIT", location="联系乡镇")
        planned = await _plan(gql, city, "2026-12")
        assert _down_visits(planned) == set()
        assert planned["unpairedLeaders"] == sorted([user(city, "c1_leader"), user(city, "c1_l2")])
        # only a township, and only a leader above it, can be paired
        resp = await _pair_township(gql, city, "c1/t1/v1", "c1_leader")
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "townshipPath")
        resp = await _pair_township(gql, city, "c1/t1", "t1_l1")
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
        paired = (await _pair_township(gql, city, "c1/t1", "c1_leader")).ok()
        assert paired["assignTownshipPairing"]["township"]["path"] == p("c1/t1")
        (await _pair_township(gql, city, "c1/t2", "c1_l2")).ok()
        planned = await _plan(gql, city, "2026-12")
        # 2026-12-15 is a Tuesday: one shift per leader, each at its own township
        assert _down_visits(planned) == {
            (p("c1/t1"), user(city, "c1_leader"), "09:00", "17:00"),
            (p("c1/t2"), user(city, "c1_l2"), "09:00", "17:00"),
        }
        assert {s["day"] for s in planned["shifts"]} == {"2026-12-15"}
        assert planned["unpairedLeaders"] == [] and planned["unfilled"] == []
        again = await _plan(gql, city, "2026-12")
        assert (again["created"], again["kept"], again["removed"]) == (0, 2, 0)
        # a leader holding two townships spends half the day in each
        (await _pair_township(gql, city, "c1/t1", "c1_l2")).ok()
        moved = await _plan(gql, city, "2026-12")
        assert _down_visits(moved) == {
            (p("c1/t1"), user(city, "c1_l2"), "09:00", "13:00"),
            (p("c1/t2"), user(city, "c1_l2"), "13:00", "17:00"),
        }
        assert moved["unpairedLeaders"] == [user(city, "c1_leader")]
        assert moved["created"] == 0 and moved["removed"] == 0
        listed = (await gql(TOWNSHIP_PAIRINGS, {"unit": p("c1")}, token=city.token("admin"))).ok()
    assert [(r["townshipPath"], r["leader"]["username"]) for r in listed["townshipPairings"]] == [
        (p("c1/t1"), user(city, "c1_l2")),
        (p("c1/t2"), user(city, "c1_l2")),
    ]
    assert listed["pairings"] == []  # village pairings stay apart


async def test_seed002_a_down_visit_leader_is_first_receiver_of_visits_at_its_township(db, gql):
    city = await roster_city(db)
    with frozen(sh(2026, 11, 2)):
        await set_rule(gql, city, "c1", "DOWN_VISIT")
        await set_rule(gql, city, "c1/t1", "WINDOW_DUTY")
        (await _pair_township(gql, city, "c1/t1", "c1_leader")).ok()
        planned = await _plan(gql, city, "2026-12")
    down = [s for s in planned["shifts"] if s["kind"] == "DOWN_VISIT"]
    window = {s["day"]: s for s in planned["shifts"] if s["kind"] == "WINDOW_DUTY"}
    assert [(s["unitPath"], s["leader"]["username"]) for s in down] == [
        (city.path("c1/t1"), user(city, "c1_leader"))
    ]
    assert "2026-12-15" in window  # the township's own window is staffed that day too
    with frozen(sh(2026, 12, 15, 10)):
        visit = await register_first_receiver(gql, city, channel="VISIT")
        letter = await register_first_receiver(gql, city, channel="LETTER")
        rows = await shifts(gql, city, "c1_officer", "2026-12-15", "2026-12-15", "c1")
    with frozen(sh(2026, 12, 16, 10)):
        next_day = await register_first_receiver(gql, city, channel="VISIT")
    assert visit["firstReceiver"]["username"] == user(city, "c1_leader")
    assert letter["firstReceiver"]["username"] == user(city, "t1_officer")
    assert next_day["firstReceiver"]["username"] == window["2026-12-16"]["leader"]["username"]
    received = {s["kind"]: [c["id"] for c in s["casesReceived"]] for s in rows}
    assert received == {"DOWN_VISIT": [visit["id"]], "WINDOW_DUTY": []}


# --- the verdict: the scores propose, the panel confirms --------------------------------------

CONFIRM_VERDICT = """mutation($i: ConfirmEvaluationVerdictInput!) {
  confirmEvaluationVerdict(input: $i) { id status result { verdict proposedVerdict confirmedBy } } }"""
PROPOSAL = """query($id: ID!) { evaluationPanel(id: $id) { status
  proposal { proposedVerdict majority awaitingConfirmation }
  result { verdict proposedVerdict confirmedBy } } }"""


def _means(*values: float) -> dict[str, float]:
    return dict(zip(("facts", "procedure", "lawAndPolicy", "responsibility"), values, strict=True))


def test_seed000_the_four_scores_propose_a_verdict():
    assert propose(_means(2, 2, 3, 2.9)) == Verdict.REASONABLE  # overall 2.475
    assert propose(_means(2.5, 2.5, 2.5, 2.5)) == Verdict.PARTLY_REASONABLE
    assert propose(_means(3.5, 3.5, 3.5, 3.5)) == Verdict.UNREASONABLE
    assert propose(_means(5, 5, 5, 1.5)) == Verdict.PARTLY_REASONABLE  # law or duty failed
    assert confirms(Verdict.UNREASONABLE, Verdict.UNLAWFUL)
    assert confirms(Verdict.PARTLY_REASONABLE, Verdict.HARDSHIP)
    assert not confirms(Verdict.REASONABLE, Verdict.HARDSHIP)
    assert not confirms(Verdict.UNREASONABLE, Verdict.REASONABLE)


async def test_seed000_the_scores_propose_the_verdict_and_the_panel_confirms_it(db, gql):
    spec = [("law1", "LAWYER"), ("vol1", "VOLUNTEER"), ("eld1", "ELDER")]
    town = await make_town(db, gql, spec)
    city, officer = town.city, town.city.token("officer")
    with ticking(sh_at(2026, 11, 2, 9)):
        case = await dissatisfied_case(gql, city)
        panel = (await _draw(gql, city, case, size=3)).ok()["drawEvaluationPanel"]
        tokens = member_tokens(town, panel)
        # the handling fell short (all 2s: REASONABLE), but two members vote UNREASONABLE
        for token, verdict in zip(
            tokens, ["UNREASONABLE", "REASONABLE", "UNREASONABLE"], strict=True
        ):
            (await submit(gql, token, panel["id"], verdict, score=2)).ok()
        seen = (await gql(PROPOSAL, {"id": panel["id"]}, token=officer)).ok()["evaluationPanel"]
        assert seen["status"] == "OPEN" and seen["result"] is None
        assert seen["proposal"] == {
            "proposedVerdict": "REASONABLE",
            "majority": "UNREASONABLE",
            "awaitingConfirmation": True,
        }
        i = {"panelId": panel["id"], "verdict": "HARDSHIP", "note": "评议组复议"}
        resp = await gql(CONFIRM_VERDICT, {"i": i}, token=officer)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "verdict")
        i["verdict"] = "REASONABLE"
        assert (await gql(CONFIRM_VERDICT, {"i": i}, token=tokens[0])).code in (
            "FORBIDDEN",
            "NOT_FOUND",
        )
        done = (await gql(CONFIRM_VERDICT, {"i": i}, token=officer)).ok()
        done = done["confirmEvaluationVerdict"]
        assert done["status"] == "CONCLUDED"
        assert done["result"] == {
            "verdict": "REASONABLE",
            "proposedVerdict": "REASONABLE",
            "confirmedBy": f"{city.slug}_officer",
        }
        again = await gql(CONFIRM_VERDICT, {"i": i}, token=officer)
        assert again.code == "INVALID_TRANSITION"
        # a majority of the proposal's band concludes at once
        other = await dissatisfied_case(gql, city)
        drawn = (await _draw(gql, city, other, size=3, seed=9)).ok()["drawEvaluationPanel"]
        for token, verdict in zip(
            member_tokens(town, drawn), ["UNLAWFUL", "UNLAWFUL", "HARDSHIP"], strict=True
        ):
            (await submit(gql, token, drawn["id"], verdict, score=4)).ok()
        seen = (await gql(PROPOSAL, {"id": drawn["id"]}, token=officer)).ok()["evaluationPanel"]
    assert seen["status"] == "CONCLUDED"
    assert seen["result"] == {
        "verdict": "UNLAWFUL",
        "proposedVerdict": "UNREASONABLE",
        "confirmedBy": "VOTES",
    }
    assert seen["proposal"]["awaitingConfirmation"] is False
