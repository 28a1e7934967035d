"""Issue 19, the review items: who decides 复查/复核 (Arts. 35, 36), closing only after the
petitioner's windows (Arts. 35, 36), windows a tenant cannot shorten (Arts. 23, 35, 36), and
suspension (中止) approved by a leader over the holder.

World A's tree: the city office (``officer``, ``leader``) above county c1 (``c1_officer``,
``c1_leader``) above township c1/t1 (``t1_officer``); ``handler`` works in department
``dept``. The clock is frozen at a Monday with no holiday within the windows below.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from backend.cases.models import TenantPolicy
from backend.cases.policy import policy_from
from backend.cases.rules import DeadlinePolicy, Step
from backend.core.db import TenantScope
from backend.core.errors import BadUserInput
from backend.tenants import service as tenants
from tests.case_helpers import fetch, register, step, step_resp
from tests.clocks import frozen, sh, ticking
from tests.helpers import City, build_city, unique

T0 = sh(2026, 11, 16, 10, 0)  # Monday: the reply, and every decision, on this day
# day 1 is 11-17, day 30 is Wednesday 2026-12-16 (a working day): the window's last day
WINDOW_ENDS = "2026-12-16"
LAST_DAY = sh(2026, 12, 16, 23, 0)
DAY_AFTER = sh(2026, 12, 17, 9, 0)


async def handled_by(gql, city: City, unit: str, replier: str) -> dict[str, Any]:
    """Registered by the city office in c1/t1, assigned to ``unit``, replied by ``replier``."""
    case = await register(gql, city.token("officer"), city)
    case = await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path(unit), mode="ASSIGN"
    )
    case = await step(gql, city.token(replier), "acceptCase", case)
    return await step(gql, city.token(replier), "replyCase", case, opinion="答复意见")


async def refused(gql, city: City, who: str, name: str, case: dict[str, Any], **fields: Any):
    """The error of a refused mutation, after checking nothing was written."""
    resp = await step_resp(gql, city.token(who), name, case, **fields)
    assert resp.code is not None, resp.body
    after = await fetch(gql, city.token("officer"), case["id"])
    assert (after["status"], after["version"]) == (case["status"], case["version"])
    assert len(after["events"]) == len(case["events"])
    return resp


# --- Arts. 35, 36: review and re-review by the body one level above ----------------------------


async def test_art35_review_is_decided_by_the_parent_of_the_unit_that_replied(gql, world):
    """The issue's case: the county replied; the county cannot also decide the review."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1", "c1_officer")
        assert case["events"][-1]["data"] == {"unit": a.path("c1")}
        case = await step(gql, a.token("c1_officer"), "requestReview", case, reason="不服")
        assert case["events"][-1]["data"] == {"decidingUnit": a.path()}
        for who in ("c1_officer", "c1_leader"):
            resp = await refused(gql, a, who, "decideReview", case, opinion="维持")
            assert resp.code == "FORBIDDEN", (who, resp.body)
            assert resp.errors[0]["extensions"]["decidingUnit"] == a.path()
            assert "Art. 35" in resp.errors[0]["message"]
        case = await step(gql, a.token("officer"), "decideReview", case, opinion="维持")
    assert case["status"] == "REVIEWED"
    assert case["events"][-1]["data"] == {"unit": a.path()}


async def test_art35_a_unit_two_levels_up_does_not_decide_the_review(gql, world):
    """The township replied: its county reviews, not the city (nor the township itself)."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1/t1", "t1_officer")
        case = await step(gql, a.token("t1_officer"), "requestReview", case)
        for who in ("officer", "leader", "t1_officer"):
            resp = await refused(gql, a, who, "decideReview", case, opinion="维持")
            assert resp.code == "FORBIDDEN", (who, resp.body)
            assert resp.errors[0]["extensions"]["decidingUnit"] == a.path("c1")
        case = await step(gql, a.token("c1_leader"), "decideReview", case, opinion="维持")
    assert case["status"] == "REVIEWED"


async def test_art35_the_unit_that_replied_is_the_replier_s_not_only_the_holder(gql, world):
    """A county officer replying on a township's case replies as the county: the city reviews."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1/t1", "c1_officer")
        assert case["events"][-1]["data"] == {"unit": a.path("c1")}
        case = await step(gql, a.token("c1_officer"), "requestReview", case)
        resp = await refused(gql, a, "c1_officer", "decideReview", case, opinion="维持")
        assert resp.code == "FORBIDDEN"
        assert resp.errors[0]["extensions"]["decidingUnit"] == a.path()
        case = await step(gql, a.token("leader"), "decideReview", case, opinion="维持")
    assert case["status"] == "REVIEWED"


async def test_art36_re_review_is_decided_by_the_parent_of_the_reviewer(gql, world):
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1/t1", "t1_officer")
        case = await step(gql, a.token("officer"), "requestReview", case)
        case = await step(gql, a.token("c1_officer"), "decideReview", case, opinion="维持")
        case = await step(gql, a.token("c1_officer"), "requestReReview", case)
        assert case["events"][-1]["data"] == {"decidingUnit": a.path()}
        for who in ("c1_officer", "c1_leader", "t1_officer"):
            resp = await refused(gql, a, who, "decideReReview", case, opinion="维持")
            assert resp.code == "FORBIDDEN", (who, resp.body)
            assert resp.errors[0]["extensions"]["decidingUnit"] == a.path()
            assert "Art. 36" in resp.errors[0]["message"]
        case = await step(gql, a.token("leader"), "decideReReview", case, opinion="复核维持")
    assert case["status"] == "RE_REVIEWED"
    assert case["events"][-1]["data"] == {"unit": a.path()}


async def test_art36_the_city_s_own_review_is_re_reviewed_above_the_city(gql, world):
    """The city reviewed a county's reply: the re-review body (the province) is not in the city."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1", "c1_officer")
        case = await step(gql, a.token("officer"), "requestReview", case)
        case = await step(gql, a.token("leader"), "decideReview", case, opinion="维持")
        resp = await refused(gql, a, "officer", "requestReReview", case)
    assert resp.code == "INVALID_TRANSITION"
    assert resp.errors[0]["extensions"]["decidingUnit"] is None
    assert "Art. 36" in resp.errors[0]["message"]


# --- Arts. 35, 36: closing does not cut off the petitioner's windows --------------------------


async def test_art35_a_replied_case_is_closed_only_after_the_review_window(gql, world):
    """closeCase the day of the reply used to succeed and then requestReview failed."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1", "c1_officer")
        late = await handled_by(gql, a, "c1", "c1_officer")
        resp = await refused(gql, a, "c1_officer", "closeCase", case, resolution="办结")
        assert resp.code == "INVALID_TRANSITION"
        assert resp.errors[0]["extensions"]["windowEndsOn"] == WINDOW_ENDS
        assert resp.errors[0]["extensions"]["currentStatus"] == "REPLIED"
        assert "Art. 35" in resp.errors[0]["message"]
    with frozen(LAST_DAY):
        resp = await refused(gql, a, "c1_officer", "closeCase", case, resolution="办结")
        assert resp.code == "INVALID_TRANSITION"
        # the right the refusal kept: the petitioner still asks on the last day
        asked = await step(gql, a.token("c1_officer"), "requestReview", case)
    assert asked["status"] == "REVIEW_REQUESTED"
    with frozen(DAY_AFTER):
        resp = await refused(gql, a, "c1_officer", "requestReview", late)
        assert resp.code == "INVALID_TRANSITION"
        assert resp.errors[0]["extensions"]["windowEndsOn"] == WINDOW_ENDS
        late = await step(gql, a.token("c1_officer"), "closeCase", late, resolution="逾期未请求")
    assert late["status"] == "CLOSED"


async def test_art35_an_unused_review_window_lets_the_case_close(gql, world):
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1", "c1_officer")
        case = await step(
            gql, a.token("c1_officer"), "rateSatisfaction", case, rating="DISSATISFIED"
        )
    with frozen(DAY_AFTER):
        case = await step(
            gql, a.token("c1_officer"), "closeCase", case, resolution="逾期未请求复查"
        )
    assert case["status"] == "CLOSED"


@pytest.mark.parametrize("rating", ["SATISFIED", "BASICALLY_SATISFIED"])
async def test_art35_a_satisfied_petitioner_s_case_closes_at_once(gql, world, rating):
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1", "c1_officer")
        case = await step(gql, a.token("c1_officer"), "rateSatisfaction", case, rating=rating)
        case = await step(gql, a.token("c1_officer"), "closeCase", case, resolution="信访人满意")
    assert case["status"] == "CLOSED"


async def test_art36_a_reviewed_case_is_closed_only_after_the_re_review_window(gql, world):
    """Satisfaction declared before the review decision does not count for the re-review."""
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1/t1", "t1_officer")
        case = await step(gql, a.token("t1_officer"), "rateSatisfaction", case, rating="SATISFIED")
        case = await step(gql, a.token("t1_officer"), "requestReview", case)
        case = await step(gql, a.token("c1_officer"), "decideReview", case, opinion="维持")
        resp = await refused(gql, a, "c1_officer", "closeCase", case, resolution="办结")
        assert resp.code == "INVALID_TRANSITION"
        assert resp.errors[0]["extensions"]["windowEndsOn"] == WINDOW_ENDS
        assert "re-review" in resp.errors[0]["message"]
    with frozen(DAY_AFTER):
        case = await step(
            gql, a.token("c1_officer"), "closeCase", case, resolution="逾期未请求复核"
        )
    assert case["status"] == "CLOSED"


async def test_art36_after_the_re_review_decision_the_case_closes_at_once(gql, world):
    a = world.a
    with ticking(T0):
        case = await handled_by(gql, a, "c1/t1", "t1_officer")
        case = await step(gql, a.token("t1_officer"), "requestReview", case)
        case = await step(gql, a.token("c1_officer"), "decideReview", case, opinion="维持")
        # satisfied with the review decision: closes without waiting for the re-review window
        other = await handled_by(gql, a, "c1/t1", "t1_officer")
        other = await step(gql, a.token("t1_officer"), "requestReview", other)
        other = await step(gql, a.token("c1_officer"), "decideReview", other, opinion="维持")
        other = await step(
            gql, a.token("c1_officer"), "rateSatisfaction", other, rating="SATISFIED"
        )
        other = await step(gql, a.token("c1_officer"), "closeCase", other, resolution="满意")
        case = await step(gql, a.token("c1_officer"), "requestReReview", case)
        case = await step(gql, a.token("officer"), "decideReReview", case, opinion="复核维持")
        case = await step(gql, a.token("c1_officer"), "closeCase", case, resolution="复核终结")
    assert (case["status"], other["status"]) == ("CLOSED", "CLOSED")


# --- Arts. 23, 35, 36: windows a tenant cannot shorten ----------------------------------------

UPDATE = """mutation($i: UpdateTenantPolicyInput!) {
  updateTenantPolicy(input: $i) { limits { step days } } }"""
READ = "{ tenantPolicy { limits { step days } } }"


@pytest.mark.parametrize(
    ("window", "days", "article"),
    [
        ("REVIEW_REQUEST", 5, "第三十五条"),
        ("RE_REVIEW_REQUEST", 3, "第三十六条"),
        ("OBJECTION", 1, "第二十三条"),
    ],
)
async def test_art23_35_36_a_tenant_cannot_shorten_the_petitioner_s_windows(
    gql, world, window, days, article
):
    a = world.a
    before = (await gql(READ, token=a.token("officer"))).ok()["tenantPolicy"]
    limits = [{"step": "HANDLING", "days": 50}, {"step": window, "days": days}]
    resp = await gql(UPDATE, {"i": {"limits": limits}}, token=a.token("admin"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "limits")
    assert article in resp.errors[0]["message"] and window in resp.errors[0]["message"]
    assert (await gql(READ, token=a.token("officer"))).ok()["tenantPolicy"] == before
    with pytest.raises(BadUserInput):
        DeadlinePolicy(limits={Step(window): days})


def test_art23_35_36_the_officials_own_limits_may_still_be_shortened():
    policy = DeadlinePolicy(
        limits={
            Step.ROUTING: 10,
            Step.HANDLING: 50,
            Step.REVIEW_DECISION: 20,
            Step.RE_REVIEW_DECISION: 20,
        }
    )
    assert policy.days_for(Step.HANDLING) == 50
    assert policy.days_for(Step.REVIEW_REQUEST) == 30


async def test_art35_a_policy_stored_with_a_shortened_window_keeps_the_statutory_one(gql, db):
    """A policy saved before the rule: the shortened window is ignored, the rest applies."""
    assert policy_from(
        {"limits": {"REVIEW_REQUEST": 5, "OBJECTION": 1, "HANDLING": 50}}, None
    ).limits == {Step.HANDLING: 50}
    city = await build_city(db, unique("legacy"), unique("p"))
    async with db.transaction() as session:
        tenant = await tenants.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        stored = {"limits": {"REVIEW_REQUEST": 5, "RE_REVIEW_REQUEST": 3, "HANDLING": 50}}
        row = await session.scalar(select(TenantPolicy).where(TenantPolicy.tenant_id == tenant.id))
        if row is None:
            session.add(TenantPolicy(tenant_id=tenant.id, data=stored))
        else:
            row.data = stored
    with ticking(T0):
        case = await handled_by(gql, city, "c1", "c1_officer")
    with frozen(sh(2026, 11, 30, 10)):  # day 14: a 5-day window would have ended
        resp = await step_resp(gql, city.token("c1_officer"), "closeCase", case, resolution="r")
        assert resp.errors[0]["extensions"]["windowEndsOn"] == WINDOW_ENDS
        case = await step(gql, city.token("c1_officer"), "requestReview", case)
    assert case["status"] == "REVIEW_REQUESTED"


# --- suspension (中止) approved by a leader over the holder ---------------------------------------


async def test_art34_suspension_is_approved_by_a_leader_over_the_holder(gql, world):
    """A department handler no longer stops its own clock; a leader over the department does."""
    a = world.a
    with ticking(T0):
        case = await register(gql, a.token("officer"), a, category="wages")
        case = await step(
            gql, a.token("officer"), "routeCase", case, toUnitPath=a.path("dept"), mode="ASSIGN"
        )
        case = await step(gql, a.token("handler"), "acceptCase", case)
        for who in ("handler", "officer", "c1_officer"):
            resp = await refused(gql, a, who, "holdCase", case, reason="中止办理")
            assert resp.code == "FORBIDDEN", (who, resp.body)
        # a leader, but of county c1: not over the department holding the case
        resp = await refused(gql, a, "c1_leader", "holdCase", case, reason="中止办理")
        assert resp.code in ("FORBIDDEN", "NOT_FOUND"), resp.body
        case = await step(gql, a.token("leader"), "holdCase", case, reason="中止办理：等待鉴定结论")
        assert case["onHold"]
        event = case["events"][-1]
        assert (event["kind"], event["actor"]["username"]) == ("HOLD", f"{a.slug}_leader")
    with frozen(T0 + timedelta(days=5)):
        case = await step(gql, a.token("handler"), "resumeCase", case)
    assert not case["onHold"]
    assert case["events"][-1]["data"] == {"heldDays": {"HANDLING": 5}}
