"""The demo as a newcomer meets it: every user of the README's table, over GraphQL/HTTP, with
the README's own query for that user, sees what the table promises.

The demo is loaded into a database of its own (fixed tenant names must not meet the other
tests' cities), on two dates — an ordinary Monday morning and the middle of the 2027 Spring
Festival — since it is generated relative to "today".
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from backend.app import create_app
from backend.authz.tokens import issue_token
from backend.cases.models import Case, CaseStatus
from backend.cli import run_migrations
from backend.core.db import Database, TenantScope
from backend.core.settings import Settings, get_settings
from backend.demo.seed import seed_demo
from backend.tenants.models import Tenant
from tests.clocks import frozen, sh
from tests.helpers import GraphQLClient

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parent.parent / "README.md"
DATES = [sh(2026, 11, 16, 10, 30), sh(2027, 2, 10, 10, 0)]


def readme_users() -> dict[str, str]:
    """username → query letter, from the README's user table."""
    users: dict[str, str] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"[A-Z]", cells[3]):
            for name in re.findall(r"`([a-z_]+)`", cells[0]):
                users[name] = cells[3]
    return users


def readme_queries() -> dict[str, str]:
    """query letter → the GraphQL document of the README block that starts ``# X —``."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```graphql\n(# ([A-Z]) —.*?)```", text, flags=re.S)
    return {letter: body for body, letter in blocks}


async def _demo_database(moment) -> AsyncIterator[str]:
    """A migrated database of its own: a SQLite file, or a new PostgreSQL database."""
    url = get_settings().database_url
    if url.startswith("postgresql"):
        import asyncpg

        name = f"xf_demo_{uuid.uuid4().hex[:10]}"
        server = url.rsplit("/", 1)[0]
        admin = server.replace("postgresql+asyncpg://", "postgresql://") + "/postgres"
        conn = await asyncpg.connect(admin)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        try:
            yield f"{server}/{name}"
        finally:
            conn = await asyncpg.connect(admin)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
    else:
        path = Path(url.split(":///", 1)[1]).with_name(f"demo-{moment:%Y%m%d}.db")
        yield f"sqlite+aiosqlite:///{path}"


@dataclass
class Demo:
    gql: GraphQLClient
    db: Database
    created: list[str]
    again: list[str]
    cases_before_again: int
    tokens: dict[str, str]

    async def ask(self, username: str, query: str) -> dict[str, Any]:
        resp = await self.gql(query, token=self.tokens[username])
        assert resp.status == 200 and not resp.errors, (username, resp.body)
        return resp.data


@pytest.fixture(scope="module", params=DATES, ids=lambda d: f"{d:%Y-%m-%d}")
async def demo(request) -> AsyncIterator[Demo]:
    moment = request.param
    async for url in _demo_database(moment):
        await asyncio.to_thread(run_migrations, url)  # alembic runs its own event loop
        db = Database(url=url)
        app = create_app(Settings(database_url=url), run_jobs=False)
        transport = httpx.ASGITransport(app=app)
        # minted on the real clock, which is the one the JWT library checks expiry against
        tokens = {username: issue_token(username) for username in PROMISES}
        try:
            with frozen(moment):
                created = await seed_demo(db)
                count = await count_cases(db)
                again = await seed_demo(db)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    yield Demo(GraphQLClient(http), db, created, again, count, tokens)
        finally:
            await app.state.db.dispose()
            await db.dispose()


async def count_cases(db: Database) -> int:
    async with db.transaction() as session:
        tenants = list(await session.scalars(select(Tenant.id)))
    async with db.transaction(TenantScope.of(tenants)) as session:
        return await session.scalar(select(func.count(Case.id)))


def cases_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["node"] for e in data["cases"]["edges"]]


async def all_cases(demo: Demo, username: str) -> list[dict[str, Any]]:
    query = """{ cases(first: 200) { totalCount edges { node { number status type subject
      warningColor holderUnit { path } locationUnit { path } leader { username } firstReceiver { username }
      petitioner { phone } deadlines { step } } } } }"""
    return cases_of(await demo.ask(username, query))


async def test_seeding_twice_adds_nothing(demo):
    assert demo.created == ["shangqiu", "zhoukou", "hangzhou"]
    assert demo.again == []
    assert demo.cases_before_again > 50
    assert await count_cases(demo.db) == demo.cases_before_again


async def test_every_readme_user_gets_an_answer_to_the_readme_query(demo):
    users, queries = readme_users(), readme_queries()
    assert set(users.values()) <= set(queries), "a user names a query the README lacks"
    assert set(users) == set(PROMISES), "README table and this test disagree on the users"
    for username, letter in users.items():
        data = await demo.ask(username, queries[letter])
        await PROMISES[username](demo, data)


async def test_every_city_has_cases_in_every_status_and_red_ones(demo):
    for officer in ("sq_officer", "zk_officer", "hz_officer"):
        found = await all_cases(demo, officer)
        assert {c["status"] for c in found} == {s.value for s in CaseStatus}, officer
        assert any(c["warningColor"] == "RED" for c in found), officer
        assert {c["warningColor"] for c in found} >= {"RED", "YELLOW", "BLUE"}, officer


# --- what the README's table promises, user by user ------------------------------------


def subjects(found: list[dict[str, Any]]) -> set[str]:
    return {c["subject"] for c in found}


PREFIXES = {"shangqiu": "SQ", "zhoukou": "ZK", "hangzhou": "HZ"}
ACCUSE_HOUSING = "反映市住建局工作人员在保障房分配中优亲厚友"
ACCUSE_TOWNSHIP = "反映乡干部截留惠农补贴"
AGENT_CASE = "网格员代办：高龄老人补贴未发放"
ASSIGNED_DOWN = "省信访局交办：宅基地确权争议"
MEDIATING = "邻里宅基地边界纠纷"


async def platform(demo: Demo, data: dict[str, Any]) -> None:
    assert {t["slug"] for t in data["tenants"]} == {"shangqiu", "zhoukou", "hangzhou"}
    refused = await demo.gql("{ cases { totalCount } }", token=demo.tokens["platform"])
    assert refused.code == "FORBIDDEN"


def supervisor(cities: set[str]):
    async def check(demo: Demo, data: dict[str, Any]) -> None:
        assert {t["slug"] for t in data["tenants"]} == cities
        prefixes = {c["number"][:2] for c in cases_of(data)}
        assert prefixes <= {PREFIXES[c] for c in cities}
        assert all("****" in (c["petitioner"]["phone"] or "****") for c in cases_of(data))
        officers = {"shangqiu": "sq_officer", "zhoukou": "zk_officer", "hangzhou": "hz_officer"}
        total = 0
        for city in cities:
            total += len(await all_cases(demo, officers[city]))
        assert data["cases"]["totalCount"] == total
        assert data["monthlyReports"], "the cities' reports of last month"

    return check


async def city_admin(demo: Demo, data: dict[str, Any]) -> None:
    slug = data["me"]["tenant"]["slug"]
    assert data["orgUnits"] and data["orgUnits"][0]["children"]
    assert data["monthlyReports"] and all(r["htmlLink"] for r in data["monthlyReports"])
    assert "MONTHLY_REPORT" in {n["kind"] for n in data["notifications"]}
    if slug == "shangqiu":
        assert data["evaluatorPool"]["activeCount"] == 5
    if slug != "hangzhou":
        assert {r["kind"] for r in data["rosterRules"]} >= {"RECEPTION_HALL"}
    username = data["me"]["username"]
    assert (await demo.gql("{ cases { totalCount } }", token=demo.tokens[username])).code == (
        "FORBIDDEN"
    )


def official(
    *, sees_all_of: str | None = None, unit: str | None = None, inbox: frozenset[str] = frozenset()
):
    """An official's view: its scope's cases, a warning board, what its inbox holds."""

    async def check(demo: Demo, data: dict[str, Any]) -> None:
        username = data["me"]["username"]
        found = await all_cases(demo, username)
        assert found, f"{username} sees no case"
        assert data["cases"]["totalCount"] == len(found)
        board = data["warningBoard"]
        assert board["red"] + board["yellow"] + board["blue"] > 0
        if sees_all_of:
            assert len(found) == len(await all_cases(demo, sees_all_of))
        if unit:
            for c in found:
                places = (c["holderUnit"]["path"], c["locationUnit"]["path"])
                assert any(p.startswith(unit) for p in places) or c["leader"], (username, c)
        kinds = {n["kind"] for n in data["notifications"]}
        assert inbox <= kinds, (username, kinds)

    return check


async def sq_officer(demo: Demo, data: dict[str, Any]) -> None:
    await official(inbox=frozenset({"DIGEST"}))(demo, data)
    found = await all_cases(demo, "sq_officer")
    assert {ACCUSE_HOUSING, ACCUSE_TOWNSHIP} <= subjects(found)
    assert data["warningBoard"]["red"] >= 3
    assert any("****" not in (c["petitioner"]["phone"] or "") for c in found)
    inbox = await demo.ask("sq_officer", "{ notifications(first: 50) { kind } }")
    assert "EVALUATION_VERDICT" in {n["kind"] for n in inbox["notifications"]}
    walk_in = next(c for c in found if c["subject"] == "占道经营影响通行")
    assert walk_in["firstReceiver"], "the walk-in was received by the leader on duty"
    await issue_19_practices(demo)


async def issue_19_practices(demo: Demo) -> None:
    """The README's "Issue 19 practices" lines, as sq_officer."""
    board = await demo.ask(
        "sq_officer",
        '{ assignedDownCases(unitPath: "/shangqiu") { origin externalNumber externalDueDate'
        " case { subject deadlines { step } } } }",
    )
    [down] = board["assignedDownCases"]
    assert down["origin"] == "PROVINCIAL_BUREAU" and down["externalNumber"].startswith("省交")
    assert down["case"]["subject"] == ASSIGNED_DOWN
    assert "REPORT_BACK" in {d["step"] for d in down["case"]["deadlines"]}
    found = await demo.ask(
        "sq_officer", "{ cases(first: 200) { edges { node { id subject status } } } }"
    )
    mediating = next(c for c in cases_of(found) if c["subject"] == MEDIATING)
    assert mediating["status"] == "ACCEPTED"
    mediations = await demo.ask(
        "sq_officer", f'{{ caseMediations(caseId: "{mediating["id"]}") {{ kind body }} }}'
    )
    assert [m["kind"] for m in mediations["caseMediations"]] == ["PEOPLES"]


async def leader_inbox(demo: Demo, username: str) -> set[str]:
    inbox = await demo.ask(username, "{ notifications(first: 100) { kind } }")
    return {n["kind"] for n in inbox["notifications"]}


async def sq_leader(demo: Demo, data: dict[str, Any]) -> None:
    await official(sees_all_of="sq_officer")(demo, data)
    assert {"DIGEST", "MONTHLY_REPORT", "SHIFT_REMINDER"} <= await leader_inbox(demo, "sq_leader")
    assert "REQUESTED" in {s["status"] for s in data["shiftSwaps"]}
    paired = {p["villagePath"] for p in data["pairings"]}
    assert "/shangqiu/suiyang/dongfeng/lizhuang" in paired
    unpaired = await demo.ask("sq_leader", "{ unpairedVillages { path } }")
    assert unpaired["unpairedVillages"]
    people = await demo.ask(
        "sq_leader",
        '{ rosterPeople(unitPath: "/shangqiu") { name kind partyMember }'
        ' personPairings(unitPath: "/shangqiu") { villagePath person { name partyMember } }'
        ' rosterRules(unitPath: "/shangqiu") { kind people { name kind } } }',
    )
    assert {p["kind"] for p in people["rosterPeople"]} >= {"PARTY_MEMBER", "LAWYER", "COUNSELLOR"}
    [pairing] = people["personPairings"]
    assert pairing["villagePath"] == "/shangqiu/suiyang/dongfeng/lizhuang"
    assert pairing["person"]["partyMember"]
    staffed = {r["kind"]: [p["kind"] for p in r["people"]] for r in people["rosterRules"]}
    assert staffed["LAWYER_DUTY"] == ["LAWYER"] and staffed["COUNSELLING"] == ["COUNSELLOR"]


async def sq_suiyang_leader(demo: Demo, data: dict[str, Any]) -> None:
    await official(unit="/shangqiu/suiyang")(demo, data)
    owned = [c for c in await all_cases(demo, "sq_suiyang_leader") if c["leader"]]
    assert owned and "SUPERVISION" in {d["step"] for d in owned[0]["deadlines"]}
    assert {s["status"] for s in data["shiftSwaps"]} == {"APPROVED", "REQUESTED"}
    assert "SHIFT_REMINDER" in await leader_inbox(demo, "sq_suiyang_leader")
    auth = {"Authorization": f"Bearer {demo.tokens['sq_suiyang_leader']}"}
    ics = await demo.gql.http.get("/rosters/shangqiu/suiyang.ics", headers=auth)
    assert ics.status_code == 200 and "BEGIN:VEVENT" in ics.text  # README: the feed


async def sq_suiyang_deputy(demo: Demo, data: dict[str, Any]) -> None:
    await official(unit="/shangqiu/suiyang")(demo, data)
    mine = [s for s in data["shiftSwaps"] if s["fromLeader"]["username"] == "sq_suiyang_deputy"]
    assert [s["status"] for s in mine] == ["APPROVED"]


async def sq_dongfeng_officer(demo: Demo, data: dict[str, Any]) -> None:
    await official(unit="/shangqiu/suiyang/dongfeng")(demo, data)
    assert ACCUSE_TOWNSHIP not in subjects(await all_cases(demo, "sq_dongfeng_officer"))


async def sq_housing_handler(demo: Demo, data: dict[str, Any]) -> None:
    await official(unit="/shangqiu/housing")(demo, data)
    found = await all_cases(demo, "sq_housing_handler")
    assert ACCUSE_HOUSING not in subjects(found)
    assert any(c["warningColor"] == "RED" for c in found)


async def sq_grid(demo: Demo, data: dict[str, Any]) -> None:
    assert data["cases"]["totalCount"] == 2  # the case it registered, the one it acts for
    assert subjects(cases_of(data)) == {"农民工工资被拖欠三个月", AGENT_CASE}
    mine = await demo.ask(
        "sq_grid",
        '{ cases(filter: { agent: "sq_grid" }) { edges { node { subject'
        " agent { username kind } } } } }",
    )
    [case] = cases_of(mine)
    assert case["subject"] == AGENT_CASE
    assert case["agent"] == {"username": "sq_grid", "kind": "GRID_WORKER"}


async def sq_evaluator(demo: Demo, data: dict[str, Any]) -> None:
    panels = data["evaluationPanels"]
    assert sorted(p["status"] for p in panels) == ["CONCLUDED", "OPEN"]
    assert all("****" in p["case"]["petitioner"]["phone"] for p in panels)
    waiting = next(p for p in panels if p["status"] == "OPEN")
    assert waiting["myEvaluation"] is None
    assert "EVALUATION_PANEL" in {n["kind"] for n in data["notifications"]}
    concluded = next(p for p in panels if p["status"] == "CONCLUDED")
    assert concluded["myEvaluation"] and concluded["result"]["verdict"]


async def other_evaluator(demo: Demo, data: dict[str, Any]) -> None:
    for panel in data["evaluationPanels"]:
        assert len(panel["members"]) == 3


async def zk_leader(demo: Demo, data: dict[str, Any]) -> None:
    await official(sees_all_of="zk_officer")(demo, data)
    shifts = await demo.ask(
        "zk_leader", '{ rosterRules(unitPath: "/zhoukou") { kind leaders { username } } }'
    )
    assert shifts["rosterRules"]
    assert {"SHIFT_REMINDER", "DIGEST"} <= await leader_inbox(demo, "zk_leader")


PROMISES = {
    "platform": platform,
    "henan_supervisor": supervisor({"shangqiu", "zhoukou"}),
    "zhejiang_supervisor": supervisor({"hangzhou"}),
    "sq_admin": city_admin,
    "zk_admin": city_admin,
    "hz_admin": city_admin,
    "sq_officer": sq_officer,
    "sq_leader": sq_leader,
    "sq_suiyang_officer": official(unit="/shangqiu/suiyang"),
    "sq_suiyang_leader": sq_suiyang_leader,
    "sq_suiyang_deputy": sq_suiyang_deputy,
    "sq_liangyuan_officer": official(unit="/shangqiu/liangyuan"),
    "sq_dongfeng_officer": sq_dongfeng_officer,
    "sq_housing_handler": sq_housing_handler,
    "sq_grid": sq_grid,
    "sq_evaluator": sq_evaluator,
    "sq_eval_scholar": other_evaluator,
    "sq_eval_deputy": other_evaluator,
    "sq_eval_veteran": other_evaluator,
    "sq_eval_elder": other_evaluator,
    "zk_officer": official(sees_all_of="zk_leader"),
    "zk_chuanhui_officer": official(unit="/zhoukou/chuanhui"),
    "zk_leader": zk_leader,
    "zk_chenzhou_officer": official(unit="/zhoukou/chuanhui/chenzhou"),
    "hz_xihu_officer": official(unit="/hangzhou/xihu"),
    "hz_lingyin_officer": official(unit="/hangzhou/xihu/lingyin"),
    "hz_officer": official(sees_all_of="hz_leader"),
    "hz_leader": official(sees_all_of="hz_officer", inbox=frozenset({"DIGEST"})),
}
