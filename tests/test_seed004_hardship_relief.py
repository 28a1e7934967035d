"""Seed 004 (issue 19, partial item on verdicts): relief for real hardship together with
部分合理 — "严格按照'三到位一处理'要求化解问题，对生活中确实有困难的信访户，做到帮扶救助到位".

A member may find hardship beside its verdict (``hardshipRelief``); when a majority of the
panel does (a ``HARDSHIP`` vote counts), the concluded verdict's follow-up is joined by a
second FOLLOW_UP step for the relief, and settling ends both.
"""

from __future__ import annotations

from backend.evaluations.models import Verdict
from backend.evaluations.scoring import Scores, panel_result
from tests.case_helpers import fetch
from tests.clocks import sh, ticking
from tests.test_evaluations import SETTLE, dissatisfied_case, make_town, member_tokens, submit
from tests.test_issue19_evaluations_rosters import CONFIRM_VERDICT, _draw

SPEC = [("law1", "LAWYER"), ("vol1", "VOLUNTEER"), ("eld1", "ELDER")]
RESULT = """query($id: ID!) { evaluationPanel(id: $id) { status
  result { verdict hardshipRelief followUpDueDate reliefDueDate } } }"""
T0 = sh(2026, 11, 2, 9)  # Monday


def _score(verdict: Verdict, relief: bool = False) -> Scores:
    return Scores(3, 3, 3, 3, verdict, relief)


def test_seed004_a_majority_finding_hardship_adds_relief_to_any_verdict():
    partly = Verdict.PARTLY_REASONABLE
    two = [_score(partly, True), _score(partly), _score(Verdict.HARDSHIP)]
    assert panel_result(two)["verdict"] == "PARTLY_REASONABLE"
    assert panel_result(two)["hardshipRelief"] is True
    one = [_score(partly, True), _score(partly), _score(partly)]
    assert panel_result(one)["hardshipRelief"] is False


def _follow_ups(case: dict) -> list[tuple[str, str]]:
    return sorted(
        (d["rule"]["verdict"], d["status"]) for d in case["deadlines"] if d["step"] == "FOLLOW_UP"
    )


async def scored(gql, town, votes: list[tuple[str, bool]], score: int) -> tuple[dict, dict]:
    """A dissatisfied case and its panel of three, every member scored (verdict, relief)."""
    case = await dissatisfied_case(gql, town.city)
    panel = (await _draw(gql, town.city, case, size=3)).ok()["drawEvaluationPanel"]
    for token, (verdict, relief) in zip(member_tokens(town, panel), votes, strict=True):
        (await submit(gql, token, panel["id"], verdict, score=score, hardshipRelief=relief)).ok()
    return case, panel


async def test_seed004_partly_reasonable_with_hardship_relief_opens_both_duties(db, gql):
    town = await make_town(db, gql, SPEC)
    officer = town.city.token("officer")
    with ticking(T0):
        votes = [("PARTLY_REASONABLE", True), ("PARTLY_REASONABLE", False), ("HARDSHIP", False)]
        case, panel = await scored(gql, town, votes, score=3)
        seen = (await gql(RESULT, {"id": panel["id"]}, token=officer)).ok()["evaluationPanel"]
        assert seen["status"] == "CONCLUDED"
        assert seen["result"]["verdict"] == "PARTLY_REASONABLE"
        assert seen["result"]["hardshipRelief"] is True
        assert seen["result"]["followUpDueDate"] == "2026-12-02"  # 30 days
        assert seen["result"]["reliefDueDate"] == "2026-11-17"  # HARDSHIP's 15 days
        after = await fetch(gql, officer, case["id"])
        assert _follow_ups(after) == [("HARDSHIP", "OPEN"), ("PARTLY_REASONABLE", "OPEN")]
        evaluated = [e for e in after["events"] if e["kind"] == "EVALUATED"][-1]
        assert evaluated["data"]["hardshipRelief"] is True
        assert "救助帮扶" in evaluated["reason"] and "有理部分" in evaluated["reason"]
        i = {"panelId": panel["id"], "note": "有理部分已解决，救助金已发放"}
        (await gql(SETTLE, {"i": i}, token=officer)).ok()
        settled = await fetch(gql, officer, case["id"])
    assert _follow_ups(settled) == [("HARDSHIP", "MET"), ("PARTLY_REASONABLE", "MET")]


async def test_seed004_the_office_s_confirmation_may_record_the_hardship_finding(db, gql):
    town = await make_town(db, gql, SPEC)
    officer = town.city.token("officer")
    with ticking(T0):
        # all 2s propose REASONABLE; the majority votes UNREASONABLE: the office confirms
        votes = [("UNREASONABLE", False), ("REASONABLE", False), ("UNREASONABLE", False)]
        case, panel = await scored(gql, town, votes, score=2)
        i = {
            "panelId": panel["id"],
            "verdict": "PARTLY_REASONABLE",
            "note": "评议组复议：部分有理，生活确有困难",
            "hardshipRelief": True,
        }
        refused = await gql(CONFIRM_VERDICT, {"i": i}, token=officer)
        assert refused.code == "BAD_USER_INPUT"  # PARTLY_REASONABLE is not REASONABLE's band
        i["verdict"] = "REASONABLE"
        (await gql(CONFIRM_VERDICT, {"i": i}, token=officer)).ok()
        seen = (await gql(RESULT, {"id": panel["id"]}, token=officer)).ok()["evaluationPanel"]
        after = await fetch(gql, officer, case["id"])
    assert (seen["result"]["verdict"], seen["result"]["hardshipRelief"]) == ("REASONABLE", True)
    assert _follow_ups(after) == [("HARDSHIP", "OPEN"), ("REASONABLE", "OPEN")]
