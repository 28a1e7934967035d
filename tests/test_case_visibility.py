"""Who sees which case, from the outside with real tokens: scope up the org tree, never
sideways; department handlers and grid workers see only their own; 检举控告 stays hidden
from the accused (Art. 30); PII is masked unless handling in scope, and every unmasked
read is logged; the list filters and keyset pagination of ``cases``."""

from __future__ import annotations

import base64
import itertools
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from backend.authz.principal import SYSTEM
from backend.authz.tokens import issue_token
from backend.cases.models import PiiAccess
from backend.core import clock
from backend.core.db import TenantScope
from backend.tenants import service
from backend.tenants.models import OrgUnitLevel
from tests.helpers import City, build_city, unique
from tests.helpers import id_number as valid_id

SH = ZoneInfo("Asia/Shanghai")

REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id number status version warningColor receivedAt holderUnit { path } } }"""
CASE = """query($id: ID!) { case(id: $id) {
  id version status holderUnit { path } petitioner { name phone idNumber masked } } }"""
CASES = """query($f: CaseFilter, $first: Int! = 200, $after: String) {
  cases(filter: $f, first: $first, after: $after) {
    totalCount
    edges { cursor node { id subject type status warningColor receivedAt
      holderUnit { path } locationUnit { path } leader { username } } }
    pageInfo { hasNextPage endCursor } } }"""
BOARD = """query($u: String) { warningBoard(unitPath: $u) {
  red yellow blue
  r: cases(color: RED, first: 200) { totalCount edges { node { id } } }
  y: cases(color: YELLOW, first: 200) { totalCount edges { node { id } } }
  b: cases(color: BLUE, first: 200) { totalCount edges { node { id } } } } }"""
ROUTE = """mutation($i: RouteCaseInput!) { routeCase(input: $i) {
  id version status holderUnit { path } } }"""
ACCEPT = "mutation($i: AcceptCaseInput!) { acceptCase(input: $i) { id version status } }"
ASSIGN_LEADER = """mutation($i: AssignCaseLeaderInput!) {
  assignCaseLeader(input: $i) { id version leader { username } } }"""

# --- small helpers (self-contained: other modules own tests/case_helpers.py) ---------------

_seq = itertools.count(1)


def masked_id(value: str) -> str:
    return value[:6] + "*" * 10 + value[-2:]


async def register(
    gql,
    token: str,
    location: str,
    *,
    type: str = "CLAIM",
    subject: str | None = None,
    content: str = "事项详情",
    received_at: datetime | None = None,
    accused_unit: str | None = None,
    accused_user: str | None = None,
    phone: str | None = None,
    id_number: str | None = None,
) -> dict[str, Any]:
    n = next(_seq)
    data: dict[str, Any] = {
        "clientKey": unique("vis-"),
        "channel": "VISIT",
        "type": type,
        "category": "land",
        "subject": subject or f"subject {n}",
        "content": content,
        "petitioner": {
            "name": "张三",
            "phone": phone or f"139{n:04d}5678",
            "idNumber": id_number or valid_id(n),
        },
        "locationPath": location,
    }
    if received_at is not None:
        data["receivedAt"] = received_at.isoformat()
    if accused_unit is not None:
        data["accusedUnitPath"] = accused_unit
    if accused_user is not None:
        data["accusedUsername"] = accused_user
    return (await gql(REGISTER, {"i": data}, token=token)).ok()["registerCase"]


async def list_cases(gql, token: str, **f: Any) -> dict[str, Any]:
    return (await gql(CASES, {"f": f}, token=token)).ok()["cases"]


def ids(conn: dict[str, Any]) -> list[str]:
    return [e["node"]["id"] for e in conn["edges"]]


async def board(gql, token: str, unit_path: str | None = None) -> dict[str, Any]:
    return (await gql(BOARD, {"u": unit_path}, token=token)).ok()["warningBoard"]


def board_ids(b: dict[str, Any]) -> set[str]:
    return {e["node"]["id"] for k in ("r", "y", "b") for e in b[k]["edges"]}


def counts(b: dict[str, Any]) -> tuple[int, int, int]:
    return b["red"], b["yellow"], b["blue"]


async def tenant_id(db, city: City) -> uuid.UUID:
    async with db.transaction() as session:
        return (await service.tenant_by_slug(session, city.slug)).id


async def add_unit(db, city: City, rel: str, level: OrgUnitLevel) -> None:
    parent, _, leaf = city.path(rel).rpartition("/")
    async with db.transaction() as session:
        await service.create_org_unit(
            session, SYSTEM, parent_path=parent, slug=leaf, name=leaf, level=level
        )


async def supervisor_token(db, province: str) -> str:
    username = unique("sup")
    async with db.transaction() as session:
        await service.create_provincial_supervisor(
            session, SYSTEM, username=username, display_name="省督查", province=province
        )
    return issue_token(username)


# --- fixtures: a city of this module's own, and a second one with a fixed set of cases -------


@dataclass
class Town:
    city: City
    tenant_id: uuid.UUID
    sup: str  # provincial supervisor of the city's province
    platform: str  # a platform admin


@pytest.fixture(scope="module")
async def town(db) -> Town:
    city = await build_city(db, unique("v"), unique("vp"))
    await add_unit(db, city, "c10", OrgUnitLevel.COUNTY)  # its path starts with .../c1
    platform = unique("platform")
    async with db.transaction() as session:
        await service.create_platform_admin(session, username=platform)
    sup = await supervisor_token(db, city.province)
    return Town(city, await tenant_id(db, city), sup, issue_token(platform))


@dataclass
class Seeded:
    """City F: nine cases, then nothing else ever added (exact totals)."""

    city: City
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    boundary_day: date | None = None

    def id(self, key: str) -> str:
        return self.cases[key]["id"]

    def idset(self, *keys: str) -> set[str]:
        return {self.id(k) for k in keys}


@pytest.fixture(scope="module")
async def seeded(db, gql) -> Seeded:
    city = await build_city(db, unique("f"), unique("fp"))
    await add_unit(db, city, "c10", OrgUnitLevel.COUNTY)
    s = Seeded(city)
    officer, now = city.token("officer"), clock.now().astimezone(SH)
    day = (now - timedelta(days=20)).date()
    s.boundary_day = day
    tie = (now - timedelta(days=5)).replace(microsecond=0)
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("s1", "c1/t1", {"subject": "排水沟堵塞 drain-alpha", "received_at": now - timedelta(30)}),
        ("s2", "c1/t2", {"subject": "路灯 streetlight_42", "type": "SUGGESTION",
                         "received_at": now - timedelta(days=8)}),
        ("s3", "c2/t1", {"subject": "举报 beta 100%", "type": "ACCUSATION",
                         "received_at": now - timedelta(hours=1)}),
        ("s4", "dept", {"subject": "boundary late",
                        "received_at": datetime.combine(day, time(23, 30), SH)}),
        ("s5", "c1", {"subject": "boundary early", "content": "提到 DRAIN-ALPHA 的内容",
                      "received_at": datetime.combine(day + timedelta(1), time(0, 10), SH)}),
        ("s6", "c1/t1/v1", {"subject": "tie one", "received_at": tie}),
        ("s7", "c1/t1/v1", {"subject": "tie two", "received_at": tie}),
        ("s8", "c1/t1/v1", {"subject": "tie three", "received_at": tie}),
        ("s9", "c10", {"subject": "prefix sibling", "received_at": now - timedelta(days=2)}),
    ]  # fmt: skip
    for key, rel, kw in specs:
        s.cases[key] = await register(gql, officer, city.path(rel), **kw)
    s6, s7, s8 = s.cases["s6"], s.cases["s7"], s.cases["s8"]
    route = {"caseId": s6["id"], "version": s6["version"], "toUnitPath": city.path("c1")}
    (await gql(ROUTE, {"i": {**route, "mode": "TRANSFER"}}, token=officer)).ok()
    (await gql(ACCEPT, {"i": {"caseId": s7["id"], "version": s7["version"]}}, token=officer)).ok()
    lead = {"caseId": s8["id"], "version": s8["version"], "username": f"{city.slug}_leader"}
    (await gql(ASSIGN_LEADER, {"i": lead}, token=city.token("leader"))).ok()
    return s


async def pii_reads(db, tid: uuid.UUID, case_id: str, username: str | None = None) -> int:
    query = (
        select(func.count()).select_from(PiiAccess).where(PiiAccess.case_id == uuid.UUID(case_id))
    )
    if username is not None:
        query = query.where(PiiAccess.username == username)
    async with db.session(TenantScope.of([tid])) as session:
        return await session.scalar(query)


# --- scope: up the tree, never sideways ---------------------------------------------------

UP_THE_CHAIN = ["officer", "leader", "c1_officer", "c1_leader", "t1_officer"]


async def test_township_case_is_visible_to_every_level_above_it(gql, town):
    city, marker = town.city, unique("chain-")
    case = await register(gql, city.token("officer"), city.path("c1/t1"), subject=marker)
    for who in UP_THE_CHAIN:
        got = (await gql(CASE, {"id": case["id"]}, token=city.token(who))).ok()["case"]
        assert got["id"] == case["id"], who
        found = await list_cases(gql, city.token(who), search=marker)
        assert (found["totalCount"], ids(found)) == (1, [case["id"]]), who
        assert case["id"] in board_ids(await board(gql, city.token(who))), who


async def test_sibling_county_officer_sees_nothing_of_another_county(gql, town):
    city = town.city
    case = await register(gql, city.token("officer"), city.path("c1/t1"))
    c2 = city.token("c2_officer")
    resp = await gql(CASE, {"id": case["id"]}, token=c2)
    assert (resp.code, resp.data) == ("NOT_FOUND", {"case": None})
    everything = await list_cases(gql, c2)
    assert (everything["totalCount"], everything["edges"]) == (0, [])
    assert (await list_cases(gql, c2, unitPath=city.path("c1")))["totalCount"] == 0
    for unit_path in (None, city.path("c1")):
        b = await board(gql, c2, unit_path)
        assert counts(b) == (0, 0, 0) and board_ids(b) == set()


async def test_county_officer_cannot_see_a_county_whose_path_merely_starts_like_its_own(gql, town):
    city = town.city
    case = await register(gql, city.token("officer"), city.path("c10"))
    for who in ("c1_officer", "c1_leader", "t1_officer"):
        resp = await gql(CASE, {"id": case["id"]}, token=city.token(who))
        assert resp.code == "NOT_FOUND", who
        assert case["id"] not in ids(await list_cases(gql, city.token(who))), who
    (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()


async def test_department_handler_sees_a_case_once_it_is_routed_to_the_department(gql, town):
    city, marker = town.city, unique("dept-")
    officer, handler = city.token("officer"), city.token("handler")
    case = await register(gql, officer, city.path("c1/t1"), subject=marker)
    assert (await gql(CASE, {"id": case["id"]}, token=handler)).code == "NOT_FOUND"
    assert (await list_cases(gql, handler, search=marker))["totalCount"] == 0
    route = {"caseId": case["id"], "version": case["version"], "toUnitPath": city.path("dept")}
    routed = (await gql(ROUTE, {"i": {**route, "mode": "ASSIGN"}}, token=officer)).ok()
    assert routed["routeCase"]["holderUnit"]["path"] == city.path("dept")
    got = (await gql(CASE, {"id": case["id"]}, token=handler)).ok()["case"]
    assert (got["status"], got["holderUnit"]["path"]) == ("ROUTED", city.path("dept"))
    assert ids(await list_cases(gql, handler, search=marker)) == [case["id"]]


async def test_department_handler_never_sees_a_case_held_elsewhere(gql, town):
    city = town.city
    handler = city.token("handler")
    # located in the department's own unit, but held by the city petition office
    elsewhere = await register(gql, city.token("officer"), city.path("dept"))
    assert elsewhere["holderUnit"]["path"] == city.path()
    assert (await gql(CASE, {"id": elsewhere["id"]}, token=handler)).code == "NOT_FOUND"
    mine = await list_cases(gql, handler)
    assert elsewhere["id"] not in ids(mine)
    assert all(e["node"]["holderUnit"]["path"] == city.path("dept") for e in mine["edges"])
    assert mine["totalCount"] == len(mine["edges"])
    assert board_ids(await board(gql, handler)) <= set(ids(mine))


async def test_grid_worker_sees_only_the_cases_it_registered(gql, town):
    city, grid_path = town.city, town.city.path("c1/t1/v1/g1")
    grid = city.token("grid")
    own = [await register(gql, grid, grid_path) for _ in range(2)]
    other = await register(gql, city.token("officer"), grid_path)
    for case in own:
        got = (await gql(CASE, {"id": case["id"]}, token=grid)).ok()["case"]
        assert got["petitioner"]["masked"] is True  # registering is not handling
    assert (await gql(CASE, {"id": other["id"]}, token=grid)).code == "NOT_FOUND"
    listed = await list_cases(gql, grid)
    assert listed["totalCount"] == 2
    assert set(ids(listed)) == {c["id"] for c in own}


async def test_platform_admin_never_reads_case_content(gql, town):
    city = town.city
    case = await register(gql, city.token("officer"), city.path("c1/t1"))
    for query, variables in ((CASES, {}), (BOARD, {})):
        resp = await gql(query, variables, token=town.platform)
        assert (resp.code, resp.data) == ("FORBIDDEN", None), query
    # one case: null + NOT_FOUND as case(id) promises (and node(id) answers), the same as
    # for an id that does not exist (outside probe of issue 21)
    for case_id in (case["id"], "01a24934-0000-7000-8000-000000000000"):
        resp = await gql(CASE, {"id": case_id}, token=town.platform)
        assert (resp.code, resp.data) == ("NOT_FOUND", {"case": None}), case_id


async def test_evaluator_off_panel_sees_no_case(gql, town):
    """An evaluator reads only the cases of its panels (tests/test_evaluations.py); any
    other case is absent to it, in the case, the list and the board."""
    city = town.city
    case = await register(gql, city.token("officer"), city.path("c1/t1"))
    token = city.token("evaluator")
    assert (await gql(CASE, {"id": case["id"]}, token=token)).code == "NOT_FOUND"
    assert case["id"] not in ids(await list_cases(gql, token))
    assert case["id"] not in board_ids(await board(gql, token))


# --- 检举控告: never visible to the accused unit or person (Art. 30) -------------------------

ACCUSED_UNIT_ROLES = ["c1_officer", "c1_leader", "t1_officer"]


async def snapshot(gql, city: City, who: str) -> tuple:
    """What ``who`` can count: total, accusations, and the board's colours and cases."""
    token = city.token(who)
    total = (await list_cases(gql, token))["totalCount"]
    accusations = (await list_cases(gql, token, type="ACCUSATION"))["totalCount"]
    b = await board(gql, token)
    return total, accusations, counts(b), board_ids(b)


async def test_accusation_against_a_county_is_invisible_inside_that_county(gql, town):
    city, marker = town.city, unique("accuse-")
    watchers = [*ACCUSED_UNIT_ROLES, "officer", "leader"]
    before = {who: await snapshot(gql, city, who) for who in watchers}
    case = await register(
        gql,
        city.token("officer"),
        city.path("c1/t1"),
        type="ACCUSATION",
        subject=marker,
        accused_unit=city.path("c1"),
    )
    colour_index = ["RED", "YELLOW", "BLUE"].index(case["warningColor"])
    for who in ACCUSED_UNIT_ROLES:
        token = city.token(who)
        resp = await gql(CASE, {"id": case["id"]}, token=token)
        assert (resp.code, resp.data) == ("NOT_FOUND", {"case": None}), who
        assert (await list_cases(gql, token, search=marker))["totalCount"] == 0, who
        assert case["id"] not in ids(await list_cases(gql, token)), who
        assert await snapshot(gql, city, who) == before[who], who
    for who in ("officer", "leader"):
        token = city.token(who)
        (await gql(CASE, {"id": case["id"]}, token=token)).ok()
        assert ids(await list_cases(gql, token, search=marker)) == [case["id"]], who
        total, accusations, colours, on_board = await snapshot(gql, city, who)
        old_total, old_accusations, old_colours, old_board = before[who]
        assert (total, accusations) == (old_total + 1, old_accusations + 1), who
        expected = list(old_colours)
        expected[colour_index] += 1
        assert colours == tuple(expected), who
        assert on_board == old_board | {case["id"]}, who


async def test_accusation_registered_inside_the_accused_unit_goes_to_the_unit_above(gql, town):
    """A township officer takes down an accusation against its own county: the county must
    never hold it, so it lands at the city, and the registrar cannot read it back — its
    answer is a receipt (id, number, what it typed) that does not say where it went."""
    city = town.city
    case = await register(
        gql,
        city.token("t1_officer"),
        city.path("c1/t1"),
        type="ACCUSATION",
        accused_unit=city.path("c1"),
    )
    assert case["number"] and case["holderUnit"] is None and case["status"] == "REGISTERED"
    for who in ACCUSED_UNIT_ROLES:
        resp = await gql(CASE, {"id": case["id"]}, token=city.token(who))
        assert resp.code == "NOT_FOUND", who
    got = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert got["holderUnit"]["path"] == city.path()


async def test_accusation_cannot_be_routed_to_the_accused_unit_or_below(gql, town):
    city = town.city
    officer = city.token("officer")
    case = await register(
        gql, officer, city.path("c1/t1"), type="ACCUSATION", accused_unit=city.path("c1")
    )
    for rel in ("c1", "c1/t1", "c1/t1/v1/g1"):
        route = {"caseId": case["id"], "version": case["version"], "toUnitPath": city.path(rel)}
        resp = await gql(ROUTE, {"i": {**route, "mode": "TRANSFER"}}, token=officer)
        assert (resp.code, resp.field, resp.data) == ("BAD_USER_INPUT", "toUnitPath", None), rel
    got = (await gql(CASE, {"id": case["id"]}, token=officer)).ok()["case"]
    assert (got["version"], got["holderUnit"]["path"]) == (case["version"], city.path())
    # elsewhere it may go: the department is outside the accused county
    route = {"caseId": case["id"], "version": case["version"], "toUnitPath": city.path("dept")}
    routed = (await gql(ROUTE, {"i": {**route, "mode": "TRANSFER"}}, token=officer)).ok()
    assert routed["routeCase"]["holderUnit"]["path"] == city.path("dept")
    for who in ACCUSED_UNIT_ROLES:
        assert (await gql(CASE, {"id": case["id"]}, token=city.token(who))).code == "NOT_FOUND"


# who else may (and may not: posted inside a unit of the accused person) read it; an
# accusation against someone posted at the city root is refused at intake
# (tests/test_art30_accused_person.py)
ACCUSED_PERSON_READERS = {
    "c1_leader": (("officer", "leader"), ("c1_officer", "t1_officer")),
    "t1_officer": (("officer", "leader", "c1_officer", "c1_leader"), ()),
}


@pytest.mark.parametrize("accused", sorted(ACCUSED_PERSON_READERS))
async def test_accused_person_cannot_see_the_accusation_even_in_scope(gql, town, accused):
    city, marker = town.city, unique("person-")
    case = await register(
        gql,
        city.token("officer"),
        city.path("c1/t1"),
        type="ACCUSATION",
        subject=marker,
        accused_user=f"{city.slug}_{accused}",
    )
    token = city.token(accused)
    assert (await gql(CASE, {"id": case["id"]}, token=token)).code == "NOT_FOUND"
    assert (await list_cases(gql, token, search=marker))["totalCount"] == 0
    assert case["id"] not in board_ids(await board(gql, token))
    others, colleagues = ACCUSED_PERSON_READERS[accused]
    for who in others:
        (await gql(CASE, {"id": case["id"]}, token=city.token(who))).ok()
    for who in colleagues:
        assert (await gql(CASE, {"id": case["id"]}, token=city.token(who))).code == "NOT_FOUND"


# --- PII: unmasked only when handling in scope; every unmasked read is logged ---------------


async def test_pii_is_unmasked_for_the_holding_office_and_each_read_is_logged(gql, db, town):
    city, phone, id_no = town.city, "13812341234", valid_id(7)
    officer_token = city.token("officer")
    case = await register(gql, officer_token, city.path("c1/t1"), phone=phone, id_number=id_no)
    officer = f"{city.slug}_officer"
    assert await pii_reads(db, town.tenant_id, case["id"]) == 0
    for n in (1, 2):
        got = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
        unmasked = {"name": "张三", "phone": phone, "idNumber": id_no, "masked": False}
        assert got["petitioner"] == unmasked
        assert await pii_reads(db, town.tenant_id, case["id"], officer) == n
    marker = unique("pii-")
    listed = await register(gql, city.token("officer"), city.path("c1"), subject=marker)
    query = """query($s: String) { cases(filter: {search: $s}) {
      edges { node { id petitioner { phone masked } } } } }"""
    edges = (await gql(query, {"s": marker}, token=city.token("officer"))).ok()["cases"]["edges"]
    assert [e["node"]["petitioner"]["masked"] for e in edges] == [False]
    assert await pii_reads(db, town.tenant_id, listed["id"], officer) == 1


async def test_location_only_visibility_and_supervisors_see_pii_masked_and_unlogged(gql, db, town):
    city, phone, id_no = town.city, "13812341234", valid_id(11)
    officer = city.token("officer")
    case = await register(gql, officer, city.path("c1/t1"), phone=phone, id_number=id_no)
    assert case["holderUnit"]["path"] == city.path()  # held by the city, located in c1/t1
    for token in [city.token(w) for w in ("c1_officer", "c1_leader", "t1_officer")] + [town.sup]:
        got = (await gql(CASE, {"id": case["id"]}, token=token)).ok()["case"]
        masked = {"phone": "138****1234", "idNumber": masked_id(id_no), "masked": True}
        assert got["petitioner"] == {"name": "张三", **masked}
        assert got["petitioner"]["idNumber"].startswith(id_no[:6] + "**********")
    assert await pii_reads(db, town.tenant_id, case["id"]) == 0


async def test_routing_down_makes_the_new_holder_see_pii_but_not_units_below_it(gql, db, town):
    city, id_no = town.city, valid_id(13)
    officer = city.token("officer")
    case = await register(gql, officer, city.path("c1/t1"), phone="13812341234", id_number=id_no)
    route = {"caseId": case["id"], "version": case["version"], "toUnitPath": city.path("c1")}
    (await gql(ROUTE, {"i": {**route, "mode": "TRANSFER"}}, token=officer)).ok()
    got = (await gql(CASE, {"id": case["id"]}, token=city.token("c1_officer"))).ok()["case"]
    assert (got["petitioner"]["masked"], got["petitioner"]["idNumber"]) == (False, id_no)
    assert await pii_reads(db, town.tenant_id, case["id"], f"{city.slug}_c1_officer") == 1
    below = (await gql(CASE, {"id": case["id"]}, token=city.token("t1_officer"))).ok()["case"]
    assert below["petitioner"]["masked"] is True
    sup = (await gql(CASE, {"id": case["id"]}, token=town.sup)).ok()["case"]
    assert sup["petitioner"]["phone"] == "138****1234"
    assert await pii_reads(db, town.tenant_id, case["id"]) == 1


# --- filters and keyset pagination over city F's fixed nine cases ---------------------------


async def all_nodes(gql, seeded: Seeded) -> list[dict[str, Any]]:
    conn = await list_cases(gql, seeded.city.token("officer"))
    assert conn["totalCount"] == len(seeded.cases) == len(conn["edges"])
    return [e["node"] for e in conn["edges"]]


async def filtered(gql, seeded: Seeded, **f: Any) -> set[str]:
    conn = await list_cases(gql, seeded.city.token("officer"), **f)
    assert conn["totalCount"] == len(conn["edges"]), f
    return set(ids(conn))


async def test_filter_by_status_and_type(gql, seeded):
    nodes = await all_nodes(gql, seeded)
    assert await filtered(gql, seeded, status="ROUTED") == seeded.idset("s6")
    assert await filtered(gql, seeded, status="ACCEPTED") == seeded.idset("s7")
    registered = {n["id"] for n in nodes if n["status"] == "REGISTERED"}
    assert await filtered(gql, seeded, status="REGISTERED") == registered
    assert len(registered) == 7
    assert await filtered(gql, seeded, status="CLOSED") == set()
    assert await filtered(gql, seeded, type="ACCUSATION") == seeded.idset("s3")
    assert await filtered(gql, seeded, type="SUGGESTION") == seeded.idset("s2")
    claims = seeded.idset("s1", "s4", "s5", "s6", "s7", "s8", "s9")
    assert await filtered(gql, seeded, type="CLAIM") == claims
    assert await filtered(gql, seeded, type="CLAIM", status="REGISTERED") == claims - seeded.idset(
        "s6", "s7"
    )


async def test_filter_by_unit_path_takes_the_subtree_of_holder_or_location(gql, seeded):
    p = seeded.city.path
    assert await filtered(gql, seeded, unitPath=p("c1")) == seeded.idset(
        "s1", "s2", "s5", "s6", "s7", "s8"
    )
    assert await filtered(gql, seeded, unitPath=p("c1/t1")) == seeded.idset("s1", "s6", "s7", "s8")
    assert await filtered(gql, seeded, unitPath=p("c10")) == seeded.idset("s9")
    assert await filtered(gql, seeded, unitPath=p("dept")) == seeded.idset("s4")
    assert await filtered(gql, seeded, unitPath=p("c2")) == seeded.idset("s3")
    assert len(await filtered(gql, seeded, unitPath=p())) == 9
    assert await filtered(gql, seeded, unitPath=p("c1/t2/nowhere")) == set()
    resp = await gql(CASES, {"f": {"unitPath": "not a path"}}, token=seeded.city.token("officer"))
    assert resp.code == "BAD_USER_INPUT"


async def test_filter_by_warning_colour_matches_each_case_colour(gql, seeded):
    nodes = await all_nodes(gql, seeded)
    by_colour: dict[str, set[str]] = {}
    for n in nodes:
        by_colour.setdefault(n["warningColor"], set()).add(n["id"])
    assert seeded.id("s1") in by_colour["RED"]  # routing limit long past
    assert seeded.id("s3") in by_colour["BLUE"]  # received an hour ago
    for colour in ("RED", "YELLOW", "BLUE", "NONE"):
        assert await filtered(gql, seeded, warningColor=colour) == by_colour.get(colour, set())
    b = await board(gql, seeded.city.token("officer"))
    assert counts(b) == tuple(len(by_colour.get(c, ())) for c in ("RED", "YELLOW", "BLUE"))
    for key, colour in (("r", "RED"), ("y", "YELLOW"), ("b", "BLUE")):
        assert {e["node"]["id"] for e in b[key]["edges"]} == by_colour.get(colour, set())
        assert b[key]["totalCount"] == len(by_colour.get(colour, ()))
    c1 = await board(gql, seeded.city.token("officer"), seeded.city.path("c1"))
    in_c1 = seeded.idset("s1", "s2", "s5", "s6", "s7", "s8")
    coloured = set().union(*(by_colour.get(c, set()) for c in ("RED", "YELLOW", "BLUE")))
    assert board_ids(c1) == in_c1 & coloured


async def test_filter_by_received_dates_uses_local_days(gql, seeded):
    day = seeded.boundary_day
    assert day is not None
    one = timedelta(days=1)
    assert await filtered(gql, seeded, receivedFrom=str(day), receivedTo=str(day)) == (
        seeded.idset("s4")  # 23:30 Beijing time is still that day (15:30 UTC)
    )
    assert await filtered(
        gql, seeded, receivedFrom=str(day + one), receivedTo=str(day + one)
    ) == seeded.idset("s5")  # 00:10 Beijing time is the next day (16:10 UTC the day before)
    assert await filtered(gql, seeded, receivedTo=str(day)) == seeded.idset("s1", "s4")
    nodes = await all_nodes(gql, seeded)
    later = {
        n["id"]
        for n in nodes
        if datetime.fromisoformat(n["receivedAt"]).astimezone(SH).date() >= day + one
    }
    assert await filtered(gql, seeded, receivedFrom=str(day + one)) == later
    assert len(later) == 7
    reversed_range = await gql(
        "query($f: CaseFilter) { cases(filter: $f) { totalCount } }",
        {"f": {"receivedFrom": str(day + one), "receivedTo": str(day)}},
        token=seeded.city.token("officer"),
    )  # refused as every from/to pair of the API is, not an empty list
    assert (reversed_range.code, reversed_range.field) == ("BAD_USER_INPUT", "filter.receivedTo")


async def test_filter_by_search_text_of_subject_or_content(gql, seeded):
    assert await filtered(gql, seeded, search="drain-alpha") == seeded.idset("s1", "s5")
    assert await filtered(gql, seeded, search="DRAIN-alpha") == seeded.idset("s1", "s5")
    assert await filtered(gql, seeded, search="路灯") == seeded.idset("s2")
    assert await filtered(gql, seeded, search="  tie  ") == seeded.idset("s6", "s7", "s8")
    assert await filtered(gql, seeded, search="no-such-words") == set()
    # LIKE wildcards in the text are searched for literally
    assert await filtered(gql, seeded, search="streetlight_42") == seeded.idset("s2")
    assert await filtered(gql, seeded, search="100%") == seeded.idset("s3")
    assert await filtered(gql, seeded, search="%") == seeded.idset("s3")
    assert await filtered(gql, seeded, search="_") == seeded.idset("s2")


async def test_filter_by_leader(gql, seeded):
    slug = seeded.city.slug
    assert await filtered(gql, seeded, leader=f"{slug}_leader") == seeded.idset("s8")
    assert await filtered(gql, seeded, leader=f"{slug}_c1_leader") == set()
    assert await filtered(gql, seeded, leader="nobody-at-all") == set()
    nodes = {n["id"]: n for n in await all_nodes(gql, seeded)}
    assert nodes[seeded.id("s8")]["leader"] == {"username": f"{slug}_leader"}


async def test_pages_of_two_walk_every_case_exactly_once_in_a_stable_order(gql, seeded):
    officer = seeded.city.token("officer")
    full = [n["id"] for n in await all_nodes(gql, seeded)]
    stamps = [n["receivedAt"] for n in await all_nodes(gql, seeded)]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    walked, after, pages = [], None, 0
    while True:
        conn = (await gql(CASES, {"first": 2, "after": after}, token=officer)).ok()["cases"]
        assert conn["totalCount"] == 9
        assert len(conn["edges"]) <= 2
        walked += ids(conn)
        pages += 1
        if conn["edges"]:
            assert conn["pageInfo"]["endCursor"] == conn["edges"][-1]["cursor"]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert (walked, pages) == (full, 5)
    ties = [full.index(seeded.id(k)) for k in ("s6", "s7", "s8")]
    assert sorted(ties) == list(range(min(ties), min(ties) + 3))  # same instant: adjacent
    # a cursor keeps its place: resuming after the third case gives the rest
    third = (await gql(CASES, {"first": 3}, token=officer)).ok()["cases"]["pageInfo"]["endCursor"]
    rest = (await gql(CASES, {"first": 200, "after": third}, token=officer)).ok()["cases"]
    assert ids(rest) == full[3:] and rest["pageInfo"]["hasNextPage"] is False
    # filters and cursors combine
    f = {"unitPath": seeded.city.path("c1/t1")}
    conn = await list_cases(gql, officer, **f)
    first = (await gql(CASES, {"f": f, "first": 1}, token=officer)).ok()["cases"]
    after = first["pageInfo"]["endCursor"]
    tail = (await gql(CASES, {"f": f, "after": after}, token=officer)).ok()["cases"]
    assert ids(first) + ids(tail) == ids(conn) and first["pageInfo"]["hasNextPage"] is True


@pytest.mark.parametrize("first", [201, -1, 10_000])
async def test_page_size_beyond_limits_is_bad_user_input(gql, seeded, first):
    resp = await gql(CASES, {"first": first}, token=seeded.city.token("officer"))
    assert (resp.code, resp.field, resp.data) == ("BAD_USER_INPUT", "first", None)


async def test_largest_page_and_empty_page_are_allowed(gql, seeded):
    officer = seeded.city.token("officer")
    assert len((await gql(CASES, {"first": 200}, token=officer)).ok()["cases"]["edges"]) == 9
    empty = (await gql(CASES, {"first": 0}, token=officer)).ok()["cases"]
    assert (empty["totalCount"], empty["edges"], empty["pageInfo"]["hasNextPage"]) == (9, [], True)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "%%%",
        base64.urlsafe_b64encode(b"hello").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(b"yesterday|" + str(uuid.uuid4()).encode()).decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        "",
    ],
)
async def test_malformed_cursor_is_bad_user_input(gql, seeded, cursor):
    resp = await gql(CASES, {"first": 2, "after": cursor}, token=seeded.city.token("officer"))
    if cursor == "":  # an empty cursor is no cursor: the first page
        assert len(resp.ok()["cases"]["edges"]) == 2
        return
    assert (resp.code, resp.field, resp.data) == ("BAD_USER_INPUT", "after", None)


async def test_sibling_county_mutation_is_not_found_whatever_the_version(gql, town):
    city = town.city
    case = await register(gql, city.token("officer"), city.path("c1/t1"))
    for version in (case["version"], case["version"] + 3):
        ref = {"caseId": case["id"], "version": version, "toUnitPath": city.path("c2")}
        resp = await gql(ROUTE, {"i": {**ref, "mode": "TRANSFER"}}, token=city.token("c2_officer"))
        assert (resp.code, resp.data) == ("NOT_FOUND", None)
    got = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert (got["version"], got["status"]) == (case["version"], "REGISTERED")


@pytest.mark.parametrize("unit_path", ["not a path", "/UPPER", "relative/path"])
async def test_malformed_unit_path_is_bad_user_input_naming_the_argument(gql, seeded, unit_path):
    officer = seeded.city.token("officer")
    resp = await gql(BOARD, {"u": unit_path}, token=officer)
    assert (resp.code, resp.field, resp.data) == ("BAD_USER_INPUT", "unitPath", None)
    resp = await gql(CASES, {"f": {"unitPath": unit_path}}, token=officer)
    assert (resp.code, resp.field, resp.data) == ("BAD_USER_INPUT", "filter.unitPath", None)


async def test_a_later_mutation_in_one_document_reads_what_the_earlier_one_wrote(gql, town):
    """Nested fields of the second mutation are not served from the first one's loaders."""
    city = town.city
    officer = city.token("officer")
    case = await register(gql, officer, city.path("c1/t1"))
    fields = "version status events { seq kind } deadlines { step status }"
    document = f"""mutation($a: AcceptCaseInput!, $b: ReplyCaseInput!) {{
      a: acceptCase(input: $a) {{ {fields} }}
      b: replyCase(input: $b) {{ {fields} }} }}"""
    ref = {"caseId": case["id"], "version": case["version"]}
    data = (
        await gql(
            document,
            {"a": ref, "b": {**ref, "version": ref["version"] + 1, "opinion": "答复意见"}},
            token=officer,
        )
    ).ok()
    assert [e["kind"] for e in data["a"]["events"]] == ["REGISTERED", "ACCEPT"]
    assert [e["kind"] for e in data["b"]["events"]] == ["REGISTERED", "ACCEPT", "REPLY"]
    assert {d["step"]: d["status"] for d in data["a"]["deadlines"]}["HANDLING"] == "OPEN"
    assert {d["step"]: d["status"] for d in data["b"]["deadlines"]}["HANDLING"] == "MET"
    fresh = await gql(CASE.replace("version status", fields), {"id": case["id"]}, token=officer)
    assert fresh.ok()["case"]["events"] == data["b"]["events"]
