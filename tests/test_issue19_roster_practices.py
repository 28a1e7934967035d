"""Issue 19, the roster practices of seeds 000, 001 and 003: window duty at township and
department level, 两代表一委员 party members paired with villages, roster kinds with their
own people (appointments, joint receptions, the lawyer on duty, counselling) and the
scheduled dispute sweeps (矛盾纠纷排查) with their findings."""

from __future__ import annotations

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.tenants import service as tenants
from tests.clocks import frozen
from tests.helpers import City
from tests.test_rosters import plan, roster_city, set_rule, sh, shifts, user


async def add_leaders(db, city: City, rel: str, *shorts: str) -> None:
    """Leaders held at ``rel`` (e.g. the department's leadership members)."""
    async with db.transaction() as session:
        for short in shorts:
            username = user(city, short)
            await tenants.create_user(
                session, SYSTEM, tenant=city.slug, username=username, display_name=short
            )
            await tenants.assign_role(
                session, SYSTEM, username=username, role=Role.LEADER, org_unit_path=city.path(rel)
            )
            city.tokens[short] = issue_token(username)


# --- 1. window duty at township AND department level (seed 003) ------------------------------


async def test_seed003_department_window_duty_every_working_day(gql, db):
    """Seed 003 (Yiwu): 全市各镇街、各部门 … 每个工作日都安排一名班子成员在窗口接待."""
    city = await roster_city(db)
    await add_leaders(db, city, "dept", "d_l1", "d_l2")
    with frozen(sh(2026, 9, 15)):
        rule = await set_rule(gql, city, "dept", "WINDOW_DUTY")
        await set_rule(gql, city, "c1/t1", "WINDOW_DUTY")
        assert (rule["kind"], rule["unitPath"]) == ("WINDOW_DUTY", city.path("dept"))
        planned = await plan(gql, city, "2026-10")
    dept = [s for s in planned["shifts"] if s["unitPath"] == city.path("dept")]
    town = [s for s in planned["shifts"] if s["unitPath"] == city.path("c1/t1")]
    # October 2026: National Day Oct 1-7, make-up Saturday Oct 10 → 18 working days
    assert len(dept) == len(town) == 18
    assert "2026-10-10" in {s["day"] for s in dept}
    assert all(s["kind"] == "WINDOW_DUTY" and s["title"] == "dept窗口值班" for s in dept)
    names = [s["leader"]["username"] for s in sorted(dept, key=lambda s: s["day"])]
    assert names[:4] == [user(city, "d_l1"), user(city, "d_l2")] * 2  # fair rotation
    assert planned["unfilled"] == []
    # the department's handler reads its own window roster; a county officer does not
    with frozen(sh(2026, 9, 15)):
        own = await shifts(gql, city, "handler", "2026-10-01", "2026-10-31")
        county = await shifts(gql, city, "c1_officer", "2026-10-01", "2026-10-31")
    assert {s["unitPath"] for s in own} == {city.path("dept")}
    assert city.path("dept") not in {s["unitPath"] for s in county}


async def test_seed003_window_duty_stays_refused_at_city_county_and_village(gql, db):
    city = await roster_city(db)
    for rel in ("", "c1", "c1/t1/v1"):
        resp = await gql(
            "mutation($i: SetRosterRuleInput!) { setRosterRule(input: $i) { id } }",
            {"i": {"unitPath": city.path(rel), "kind": "WINDOW_DUTY"}},
            token=city.token("admin"),
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "kind")
