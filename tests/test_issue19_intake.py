"""Issue 19, the intake-side items: handling limits by case type (Arts. 32-34), repeats that
compare the subject, re-review is final (Art. 36), and handling on the petitioner's behalf
(代办/帮办, seeds 001 and 002).

World A's tree (tests/helpers.py): the city office (``officer``, ``leader``) above county c1
(``c1_officer``, ``c1_leader``) above township c1/t1 (``t1_officer``) and its grid
c1/t1/v1/g1 (``grid``). Tests that change a city's policy build a city of their own.
"""

from __future__ import annotations

from typing import Any

from backend.cases.repeats import SIMILARITY_THRESHOLD, similar
from tests.case_helpers import fetch, make_id_number, register, register_resp, step
from tests.clocks import sh, ticking
from tests.helpers import build_city, unique

T0 = sh(
    2026, 11, 16, 10, 0
)  # Monday; +30 d = Wed 2026-12-16, +45 = Thu 12-31, +60 = Fri 2027-01-15

POLICY = """mutation($i: UpdateTenantPolicyInput!) {
  updateTenantPolicy(input: $i) { limits { step days } handlingLimitsByType { type days } } }"""
REPEAT_OF = "query($id: ID!) { case(id: $id) { repeatOf { id } } }"
READ_POLICY = "{ tenantPolicy { handlingLimitsByType { type days } redDays } }"


def handling(case: dict[str, Any]) -> dict[str, Any]:
    return next(d for d in case["deadlines"] if d["step"] == "HANDLING" and d["status"] == "OPEN")


async def accepted(gql, city, **fields: Any) -> dict[str, Any]:
    """Registered by the city office in c1/t1, assigned to c1 and accepted there."""
    case = await register(gql, city.token("officer"), city, **fields)
    case = await step(
        gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="ASSIGN"
    )
    return await step(gql, city.token("c1_officer"), "acceptCase", case)


# --- 1. handling limits by type (Arts. 32, 33, 34) ---------------------------------------------


async def test_art33_suggestions_and_accusations_get_the_city_s_shorter_handling_limit(gql, db):
    city = await build_city(db, unique("ht"), unique("p"))
    limits = [{"type": "SUGGESTION", "days": 30}, {"type": "ACCUSATION", "days": 45}]
    got = await gql(POLICY, {"i": {"handlingLimitsByType": limits}}, token=city.token("admin"))
    assert got.ok()["updateTenantPolicy"]["handlingLimitsByType"] == sorted(
        limits, key=lambda x: x["type"]
    )
    with ticking(T0):
        suggestion = handling(await accepted(gql, city, type="SUGGESTION"))
        accusation = handling(await accepted(gql, city, type="ACCUSATION"))
        claim = handling(await accepted(gql, city, type="CLAIM"))
    assert (suggestion["dueDate"], suggestion["rule"]["days"]) == ("2026-12-16", 30)
    assert suggestion["rule"]["caseType"] == "SUGGESTION"
    assert suggestion["rule"]["typeArticle"] == "《信访工作条例》第三十二条"
    assert (accusation["dueDate"], accusation["rule"]["days"]) == ("2026-12-31", 45)
    assert accusation["rule"]["typeArticle"] == "《信访工作条例》第三十三条"
    assert (claim["dueDate"], claim["rule"]["days"]) == ("2027-01-15", 60)
    assert "caseType" not in claim["rule"]


async def test_art34_a_type_limit_longer_than_the_statute_is_refused(gql, db):
    city = await build_city(db, unique("ht"), unique("p"))
    admin = city.token("admin")
    keep = [{"type": "SUGGESTION", "days": 20}]
    (await gql(POLICY, {"i": {"handlingLimitsByType": keep}}, token=admin)).ok()
    for bad in ({"type": "ACCUSATION", "days": 61}, {"type": "SUGGESTION", "days": 0}):
        resp = await gql(POLICY, {"i": {"handlingLimitsByType": [bad]}}, token=admin)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "handlingLimitsByType"), resp.body
    resp = await gql(
        POLICY, {"i": {"handlingLimitsByType": [{"type": "CLAIM", "days": 30}]}}, token=admin
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "handlingLimitsByType")
    assert (
        "第三十四条"
        in (
            await gql(
                POLICY,
                {"i": {"handlingLimitsByType": [{"type": "ACCUSATION", "days": 90}]}},
                token=admin,
            )
        ).errors[0]["message"]
    )
    twice = [{"type": "SUGGESTION", "days": 20}, {"type": "SUGGESTION", "days": 30}]
    resp = await gql(POLICY, {"i": {"handlingLimitsByType": twice}}, token=admin)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "handlingLimitsByType")
    # nothing half-written; an update that leaves the list out keeps it
    (await gql(POLICY, {"i": {"redDays": 2}}, token=admin)).ok()
    read = (await gql(READ_POLICY, token=city.token("officer"))).ok()["tenantPolicy"]
    assert read == {"handlingLimitsByType": keep, "redDays": 2}


async def test_art34_an_extension_keeps_the_type_limit_it_extends(gql, db):
    city = await build_city(db, unique("ht"), unique("p"))
    limits = [{"type": "SUGGESTION", "days": 30}]
    (await gql(POLICY, {"i": {"handlingLimitsByType": limits}}, token=city.token("admin"))).ok()
    with ticking(T0):
        case = await accepted(gql, city, type="SUGGESTION")
        case = await step(
            gql, city.token("c1_officer"), "requestExtension", case, days=10, reason="复杂"
        )
        case = await step(gql, city.token("c1_leader"), "approveExtension", case)
    rule = handling(case)["rule"]
    assert (handling(case)["dueDate"], rule["days"]) == ("2026-12-28", 40)  # Mon 12-26 → 12-28
    assert (rule["caseType"], rule["extensionDays"]) == ("SUGGESTION", 10)


# --- 2. repeat detection compares the subject (重复访) --------------------------------------------


async def test_repeat_same_petitioner_and_category_but_another_matter_is_not_a_repeat(gql, world):
    token, petitioner = world.a.token("officer"), {"name": "孙八", "idNumber": make_id_number()}
    first = await register(gql, token, world.a, petitioner=petitioner, subject="土地补偿款未发放")
    other = await register(
        gql, token, world.a, petitioner=petitioner, subject="村道路灯损坏无人维修"
    )
    assert (first["repeatCount"], other["repeatCount"]) == (0, 0)
    again = await register(
        gql, token, world.a, petitioner=petitioner, subject="关于土地补偿款至今未发放的问题！"
    )
    assert again["repeatCount"] == 1
    assert again["events"][0]["data"]["repeatCount"] == 1
    repeat_of = (await gql(REPEAT_OF, {"id": again["id"]}, token=token)).ok()["case"]
    assert repeat_of["repeatOf"] == {"id": first["id"]}


def test_repeat_similar_subject_rule_as_documented():
    assert similar("土地补偿款未发放", "土地补偿款 未发放。")  # spaces and punctuation
    assert similar("Land compensation", "LAND COMPENSATION!")  # NFKC, case
    assert similar("土地补偿款未发放", "关于土地补偿款至今未发放的问题")  # containment
    assert similar("拖欠农民工工资三个月", "拖欠农民工工资四个月")  # ratio 0.9
    assert not similar("土地补偿款未发放", "村道路灯损坏无人维修")
    assert not similar("拖欠工资", "讨要工资")  # ratio 0.5 < 0.6
    assert not similar("补偿", "土地补偿款")  # too short to count as contained (< 4)
    assert SIMILARITY_THRESHOLD == 0.6


# --- 3. re-review is final (Art. 36) ------------------------------------------------------------

FINAL = """query($id: ID!) { case(id: $id) { finalAfterReReview finalOf { id status }
  events { kind data } } }"""


async def re_reviewed(gql, city, petitioner: dict[str, Any]) -> dict[str, Any]:
    """Replied by township c1/t1, reviewed by county c1, re-reviewed by the city (Art. 36)."""
    officer = city.token("officer")
    case = await register(gql, officer, city, petitioner=petitioner)
    case = await step(gql, officer, "routeCase", case, toUnitPath=city.path("c1/t1"), mode="ASSIGN")
    case = await step(gql, city.token("t1_officer"), "acceptCase", case)
    case = await step(gql, city.token("t1_officer"), "replyCase", case, opinion="答复")
    case = await step(gql, officer, "requestReview", case)
    case = await step(gql, city.token("c1_officer"), "decideReview", case, opinion="维持")
    case = await step(gql, city.token("c1_officer"), "requestReReview", case)
    return await step(gql, officer, "decideReReview", case, opinion="复核维持")


async def test_art36_the_same_matter_after_re_review_is_flagged_and_needs_a_reason(gql, world):
    a, petitioner = world.a, {"name": "周九", "idNumber": make_id_number()}
    officer = a.token("officer")
    with ticking(T0):
        earlier = await re_reviewed(gql, a, petitioner)
        assert earlier["status"] == "RE_REVIEWED"
        again = await register(gql, officer, a, petitioner=petitioner, subject="土地补偿款仍未发放")
        got = (await gql(FINAL, {"id": again["id"]}, token=officer)).ok()["case"]
        assert got["finalAfterReReview"] is True
        assert got["finalOf"] == {"id": earlier["id"], "status": "RE_REVIEWED"}
        assert got["events"][0]["data"]["finalOf"] == earlier["id"]
        # not accepted without a reason: nothing written
        resp = await gql(
            "mutation($i: AcceptCaseInput!) { acceptCase(input: $i) { status } }",
            {"i": {"caseId": again["id"], "version": again["version"]}},
            token=officer,
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "reason"), resp.body
        assert "Art. 36" in resp.errors[0]["message"]
        assert resp.errors[0]["extensions"]["finalOf"] == earlier["id"]
        assert (await fetch(gql, officer, again["id"]))["version"] == again["version"]
        accepted = await step(
            gql, officer, "acceptCase", again, reason="出现新的事实：补偿标准已调整"
        )
    assert accepted["status"] == "ACCEPTED"
    event = accepted["events"][-1]
    assert (event["kind"], event["reason"]) == ("ACCEPT", "出现新的事实：补偿标准已调整")
    assert event["data"] == {"finalOf": earlier["id"]}


async def test_art36_another_matter_or_a_rejection_needs_no_reason(gql, world):
    a, petitioner = world.a, {"name": "吴十", "idNumber": make_id_number()}
    officer = a.token("officer")
    with ticking(T0):
        await re_reviewed(gql, a, petitioner)
        other = await register(gql, officer, a, petitioner=petitioner, subject="宅基地确权纠纷")
        assert other["repeatCount"] == 0
        got = (await gql(FINAL, {"id": other["id"]}, token=officer)).ok()["case"]
        assert (got["finalAfterReReview"], got["finalOf"]) == (False, None)
        assert (await step(gql, officer, "acceptCase", other))["status"] == "ACCEPTED"
        same = await register(gql, officer, a, petitioner=petitioner)
        rejected = await step(gql, officer, "rejectCase", same, reason="复核后同一事实不再受理")
    assert rejected["status"] == "NOT_ACCEPTED"


async def test_art36_final_of_is_null_for_a_reader_who_may_not_see_the_earlier_case(gql, world):
    """The earlier case was re-reviewed by the city; a grid worker registering the same matter
    in its grid sees the flag but not the case it links to (read predicate)."""
    a, petitioner = world.a, {"name": "郑一", "idNumber": make_id_number()}
    with ticking(T0):
        await re_reviewed(gql, a, petitioner)
        again = await register(
            gql, a.token("grid"), a, petitioner=petitioner, locationPath=a.path("c1/t1/v1/g1")
        )
        got = (await gql(FINAL, {"id": again["id"]}, token=a.token("grid"))).ok()["case"]
    assert (got["finalAfterReReview"], got["finalOf"]) == (True, None)


# --- 4. 代办/帮办: handling on the petitioner's behalf (seeds 001, 002) ----------------------------

AGENT_VIEW = """query($id: ID!) { case(id: $id) { status replyOpinion agent { username kind }
  deadlines { step status } petitioner { phone masked } } }"""
MINE = "query($u: String) { cases(filter: {agent: $u}) { totalCount edges { node { id } } } }"
ASSIGN = """mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"""


def user(city, short: str) -> str:
    return f"{city.slug}_{short}"


async def mine(gql, city, who: str) -> list[str]:
    got = (await gql(MINE, {"u": user(city, who)}, token=city.token(who))).ok()["cases"]
    assert got["totalCount"] == len(got["edges"])
    return [e["node"]["id"] for e in got["edges"]]


async def test_seed002_party_member_agent_follows_the_case_it_acts_for(gql, db):
    """The petition office registers for the petitioner with a party-member agent (the grid
    user of c1/t1/v1/g1): the agent follows status, deadlines and reply of a case outside
    its grid, sees the petitioner masked, and lists the cases it acts for."""
    city = await build_city(db, unique("ag"), unique("p"))
    officer = city.token("officer")
    agent = {"username": user(city, "grid"), "kind": "PARTY_MEMBER"}
    with ticking(T0):
        plain = await register(gql, officer, city)
        case = await register(gql, officer, city, agent=agent)
        assert case["events"][0]["data"]["agent"] == agent
        case = await step(
            gql, officer, "routeCase", case, toUnitPath=city.path("c1"), mode="ASSIGN"
        )
        case = await step(gql, city.token("c1_officer"), "acceptCase", case)
        case = await step(gql, city.token("c1_officer"), "replyCase", case, opinion="已发放")
        seen = (await gql(AGENT_VIEW, {"id": case["id"]}, token=city.token("grid"))).ok()["case"]
        hidden = await gql(AGENT_VIEW, {"id": plain["id"]}, token=city.token("grid"))
    assert (seen["status"], seen["replyOpinion"]) == ("REPLIED", "已发放")
    assert seen["agent"] == agent
    assert {d["step"] for d in seen["deadlines"]} >= {"ROUTING", "HANDLING"}
    assert seen["petitioner"]["masked"] is True and "*" in seen["petitioner"]["phone"]
    assert hidden.code == "NOT_FOUND"  # a case it does not act for stays out of its scope
    assert await mine(gql, city, "grid") == [case["id"]]
    assert await mine(gql, city, "c2_officer") == []  # filtered in SQL by the reader's scope


async def test_seed001_grid_worker_registers_as_its_own_agent(gql, db):
    city = await build_city(db, unique("ag"), unique("p"))
    case = await register(
        gql,
        city.token("grid"),
        city,
        locationPath=city.path("c1/t1/v1/g1"),
        agent={"kind": "GRID_WORKER"},
    )
    got = (await gql(AGENT_VIEW, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert got["agent"] == {"username": user(city, "grid"), "kind": "GRID_WORKER"}
    assert got["petitioner"]["masked"] is False  # the city office handles it: PII rules unchanged
    assert await mine(gql, city, "grid") == [case["id"]]


async def test_seed001_the_agent_is_an_official_of_the_city(gql, world):
    a, b = world.a, world.b
    for username in (user(b, "grid"), user(a, "evaluator"), user(a, "admin"), "nobody-here"):
        resp = await register_resp(
            gql, a.token("officer"), a, agent={"username": username, "kind": "PROXY"}
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "agent.username"), resp.body


async def test_art30_an_agent_inside_the_accused_unit_is_refused_at_intake(gql, db):
    city = await build_city(db, unique("ag"), unique("p"))
    officer = city.token("officer")
    before = (await gql(MINE, {"u": None}, token=officer)).ok()["cases"]["totalCount"]
    resp = await register_resp(
        gql,
        officer,
        city,
        type="ACCUSATION",
        accusedUnitPath=city.path("c1/t1"),
        agent={"username": user(city, "grid"), "kind": "GRID_WORKER"},
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "agent.username")
    assert "Art. 30" in resp.errors[0]["message"]
    after = (await gql(MINE, {"u": None}, token=officer)).ok()["cases"]["totalCount"]
    assert after == before  # nothing half-written


async def test_art30_an_agent_who_takes_a_post_in_the_accused_unit_sees_nothing(gql, db):
    """Art. 30 always wins: the agent of an accusation against county c2 reads it until it
    holds a role inside c2; from then on the case, its list and the count are closed to it."""
    city = await build_city(db, unique("ag"), unique("p"))
    agent = {"username": user(city, "grid"), "kind": "PARTY_MEMBER"}
    case = await register(
        gql,
        city.token("officer"),
        city,
        type="ACCUSATION",
        accusedUnitPath=city.path("c2"),
        agent=agent,
    )
    grid = city.token("grid")
    assert (await gql(AGENT_VIEW, {"id": case["id"]}, token=grid)).ok()["case"]["agent"] == agent
    role = {"username": agent["username"], "role": "GRID_WORKER", "orgUnitPath": city.path("c2/t1")}
    (await gql(ASSIGN, {"i": role}, token=city.token("admin"))).ok()
    assert (await gql(AGENT_VIEW, {"id": case["id"]}, token=grid)).code == "NOT_FOUND"
    assert await mine(gql, city, "grid") == []
