"""Issue 19, evaluations and rosters: who may be evaluated (seed 000), who may judge (the
case's own units), the proposed verdict, and the 15th-of-month down-visits (seeds 002, 003)."""

from __future__ import annotations

import uuid
from typing import Any

from backend.authz.principal import SYSTEM
from backend.cases.models import Case, CaseType
from backend.evaluations.eligibility import UpwardCount, reasons_for
from backend.evaluations.models import Evaluator, EvaluatorCategory, EvaluatorStatus
from backend.evaluations.panels import conflicts
from backend.tenants import service
from tests.clocks import sh, ticking
from tests.helpers import id_number
from tests.test_evaluations import (
    ELIGIBLE,
    _n,
    dissatisfied_case,
    make_town,
    register,
    usernames,
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
    with ticking(sh(2026, 11, 2, 9)):
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
    with ticking(sh(2026, 11, 2, 9)):
        in_c1 = await dissatisfied_case(gql, city, "c1/t1")
        in_c2 = await dissatisfied_case(gql, city, "c2/t1")
    resp = await _draw(gql, city, in_c1, size=3)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "size")
    panel = (await _draw(gql, city, in_c1, size=2)).ok()["drawEvaluationPanel"]
    assert {u.removeprefix(city.slug + "_") for u in usernames(panel)} == {"law1", "vol1"}
    panel = (await _draw(gql, city, in_c2, size=3)).ok()["drawEvaluationPanel"]
    assert f"{city.slug}_off1" in usernames(panel)
