"""N+1 guard: a page of cases with every nested field costs the same number of SQL statements
whether it holds 5 cases or 50 (DataLoaders batch each nested field into one statement)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from backend.authz.principal import SYSTEM
from backend.authz.tokens import issue_token
from backend.tenants import service
from tests.case_helpers import register_input
from tests.helpers import City, build_city, unique

PAGE = """query($n: Int!) { cases(first: $n) {
  edges { node {
    number
    holderUnit { path name }
    locationUnit { path }
    leader { username }
    deadlines { step dueAt }
    events { seq kind }
    petitioner { phone }
  } }
  totalCount } }"""
REGISTER = "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id version } }"
ROUTE = "mutation($i: RouteCaseInput!) { routeCase(input: $i) { id version } }"
ASSIGN_LEADER = "mutation($i: AssignCaseLeaderInput!) { assignCaseLeader(input: $i) { id } }"
CASES_IN_CITY = 52
# per-transaction settings on PostgreSQL (role and tenant scope), not work of the query
SETUP = ("SET LOCAL ROLE", "SET TRANSACTION", "SELECT set_config(")

_seq = itertools.count(1)


async def register(gql, city: City, rel: str) -> dict[str, Any]:
    data = register_input(city, locationPath=city.path(rel), subject=f"query count {next(_seq)}")
    return (await gql(REGISTER, {"i": data}, token=city.token("officer"))).ok()["registerCase"]


@pytest.fixture(scope="module")
async def city(db, gql) -> City:
    """52 cases in four units; the newest routed or given a 包案 leader, so every page of
    five or more has leaders, several holder units and several events per case."""
    city = await build_city(db, unique("qc"), unique("qp"))
    units = ["c1/t1", "c1", "c2/t1", "dept"]
    cases = [await register(gql, city, units[i % len(units)]) for i in range(CASES_IN_CITY)]
    officer, leader = city.token("officer"), city.token("leader")
    leader_name = f"{city.slug}_leader"
    for case in cases[-6:]:
        if cases.index(case) % 2:
            route = {"caseId": case["id"], "version": case["version"], "mode": "TRANSFER"}
            (await gql(ROUTE, {"i": {**route, "toUnitPath": city.path("c2")}}, token=officer)).ok()
        else:
            lead = {"caseId": case["id"], "version": case["version"], "username": leader_name}
            (await gql(ASSIGN_LEADER, {"i": lead}, token=leader)).ok()
    username = unique("sup")
    async with db.transaction() as session:
        await service.create_provincial_supervisor(
            session, SYSTEM, username=username, display_name="sup", province=city.province
        )
    city.tokens["sup"] = issue_token(username)
    return city


@contextmanager
def statements(engine) -> Iterator[list[str]]:
    """Every SQL statement the engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _executemany) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def page_statements(app, gql, token: str, n: int) -> list[str]:
    with statements(app.state.db.engine.sync_engine) as seen:
        data = (await gql(PAGE, {"n": n}, token=token)).ok()["cases"]
    assert data["totalCount"] == CASES_IN_CITY and len(data["edges"]) == n
    nodes = [e["node"] for e in data["edges"]]
    assert any(node["leader"] for node in nodes)
    assert all(node["events"] and node["holderUnit"]["name"] for node in nodes)
    return [s for s in seen if not s.lstrip().startswith(SETUP)]


@pytest.mark.parametrize("who", ["officer", "sup"])
async def test_a_page_of_cases_costs_the_same_statements_for_5_and_50(app, gql, city, who):
    token = city.token(who)
    small = await page_statements(app, gql, token, 5)
    large = await page_statements(app, gql, token, 50)
    print(f"\n{who}: {len(small)} statements for 5 cases, {len(large)} for 50")
    for statement in large:
        print("  ", " ".join(statement.split())[:110])
    assert len(small) == len(large), (small, large)
    assert len(large) <= 12
