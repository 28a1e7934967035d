"""Isolation as a property (issue 10, item 3): for random cities, org trees, roles and
cases, every principal sees through the API exactly the cases the independent reference
model (tests/reference_model.py, written from DOMAIN.md) says it may — no more, no less —
with the petitioner's phone and id number masked exactly where the model says.

Each example builds two cities of one province (unique slugs; tenants accumulate in the
database, which is fine), a supervisor of that province, one of another province and a
platform admin; registers cases through the API as random officials (accusations with an
accused unit and/or person among them), assigns 包案 leaders and routes cases, then for
every principal compares ``cases`` (all pages, random page size), ``totalCount``,
``case(id)`` of every case (NOT_FOUND when invisible), the petitioner block, and the
``warningBoard`` counts.

``XF_PROPERTY_EXAMPLES`` (default 3) bounds the examples; a longer run::

    XF_PROPERTY_EXAMPLES=100 uv run pytest tests/test_isolation_property.py -q
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.core import clock
from backend.tenants import service
from backend.tenants.flows import onboard_tenant
from backend.tenants.models import OrgUnitLevel as L
from tests import helpers
from tests.helpers import id_number
from tests.reference_model import (
    Case,
    Grant,
    Official,
    PlatformAdmin,
    Supervisor,
    World,
    covers,
)

EXAMPLES = int(os.environ.get("XF_PROPERTY_EXAMPLES", "3"))

ROLES = [
    "petition_officer",
    "leader",
    "department_handler",
    "grid_worker",
    "evaluator",
    "city_admin",
]
REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id version holderUnit { path } } }"""
ROUTE = (
    """mutation($i: RouteCaseInput!) { routeCase(input: $i) { id version holderUnit { path } } }"""
)
LEAD = """mutation($i: AssignCaseLeaderInput!) { assignCaseLeader(input: $i) {
  id version leader { username } } }"""
CASES = """query($first: Int!, $after: String) { cases(first: $first, after: $after) {
  totalCount edges { node { id warningColor status } } pageInfo { hasNextPage endCursor } } }"""
CASE_FIELDS = "id petitioner { phone idNumber masked }"
BOARD = "{ warningBoard { red yellow blue } }"


# --- plans: pure data drawn by hypothesis ----------------------------------------------


@st.composite
def org_tree(draw: st.DrawFn) -> list[tuple[str, L]]:
    """Relative unit paths with levels; sibling slugs share prefixes (c1 / c10) on purpose."""
    units: list[tuple[str, L]] = []
    counties = draw(st.lists(st.sampled_from(["c1", "c10", "c2"]), min_size=1, unique=True))
    if draw(st.booleans()):
        units.append(("d1", L.DEPARTMENT))
    for c in counties:
        units.append((c, L.COUNTY))
        if draw(st.booleans()):
            units.append((f"{c}/d1", L.DEPARTMENT))
        for t in draw(st.lists(st.sampled_from(["t1", "t10"]), max_size=2, unique=True)):
            units.append((f"{c}/{t}", L.TOWNSHIP))
            if draw(st.booleans()):
                units.append((f"{c}/{t}/v1", L.VILLAGE))
                if draw(st.booleans()):
                    units.append((f"{c}/{t}/v1/g1", L.GRID))
    return units


@dataclass
class CityPlan:
    units: list[tuple[str, L]]
    grants: list[list[tuple[str, int]]]  # per user: (role, unit index; 0 = the city root)
    cases: list[dict[str, Any]]


@st.composite
def city_plan(draw: st.DrawFn) -> CityPlan:
    units = draw(org_tree())
    n_units = len(units) + 1
    grant = st.tuples(st.sampled_from(ROLES), st.integers(0, n_units - 1))
    users = [[("petition_officer", 0)]]  # every city has a petition office at its root
    users += draw(st.lists(st.lists(grant, min_size=1, max_size=2), min_size=2, max_size=6))
    idx = st.integers(0, 63)
    case = st.fixed_dictionaries(
        {
            "registrar": idx,
            "location": idx,
            "type": st.sampled_from(["CLAIM", "SUGGESTION", "ACCUSATION", "ACCUSATION"]),
            "accused_unit": st.none() | idx,
            "accused_user": st.none() | idx,
            "days_ago": st.integers(0, 30),
            # 包案 and 转送 in any order: a leader can own a case that is then routed away
            "steps": st.lists(st.tuples(st.sampled_from(["lead", "route"]), idx, idx), max_size=4),
        }
    )
    return CityPlan(units, users, draw(st.lists(case, min_size=1, max_size=5)))


# --- building a plan through services and the API -------------------------------------


@dataclass
class Built:
    world: World = field(default_factory=World)
    principals: dict[str, Any] = field(default_factory=dict)  # username → model principal
    tokens: dict[str, str] = field(default_factory=dict)


async def build_city(db, built: Built, plan: CityPlan, slug: str, province: str) -> list[str]:
    """Tenant, units and users from the plan; returns the unit paths (root first)."""
    paths = [f"/{slug}"] + [f"/{slug}/{rel}" for rel, _ in plan.units]
    async with db.transaction() as session:
        await onboard_tenant(session, SYSTEM, slug=slug, name=slug, province=province)
        for (rel, level), path in zip(plan.units, paths[1:], strict=True):
            parent, _, leaf = path.rpartition("/")
            await service.create_org_unit(
                session, SYSTEM, parent_path=parent, slug=leaf, name=rel, level=level
            )
        for n, grants in enumerate(plan.grants):
            username = f"{slug}_u{n}"
            await service.create_user(
                session, SYSTEM, tenant=slug, username=username, display_name=username
            )
            held = []
            for role, unit in dict.fromkeys(grants):
                await service.assign_role(
                    session, SYSTEM, username=username, role=Role(role.upper()),
                    org_unit_path=paths[unit],
                )  # fmt: skip
                held.append(Grant(role, paths[unit]))
            built.principals[username] = Official(username, slug, tuple(held))
            built.tokens[username] = issue_token(username)
    built.world.provinces[slug] = province
    return paths


def pick(options: list[Any], index: int) -> Any:
    return options[index % len(options)] if options else None


async def run_cases(gql, built: Built, plan: CityPlan, slug: str, paths: list[str]) -> None:
    """Register, assign leaders and route as the plan says, keeping the model in step."""
    w = built.world
    users = [p for p in built.principals.values() if isinstance(p, Official) and p.tenant == slug]
    for spec in plan.cases:
        registrars = [u for u in users if any(w.registering_unit(u, p) for p in paths)]
        registrar = pick(registrars, spec["registrar"])
        location = pick([p for p in paths if w.registering_unit(registrar, p)], spec["location"])
        accusation = spec["type"] == "ACCUSATION"
        accused_unit = (
            pick(paths, spec["accused_unit"])
            if accusation and spec["accused_unit"] is not None
            else None
        )
        accused_user = (
            pick(users, spec["accused_user"]).username
            if accusation and spec["accused_user"] is not None
            else None
        )
        n = len(w.cases) + 1
        phone, id_no = f"139{uuid.uuid4().int % 10**8:08d}", id_number(uuid.uuid4().int % 997)
        data = {
            "clientKey": f"prop-{uuid.uuid4().hex}",
            "channel": "VISIT",
            "type": spec["type"],
            "category": "land",
            "subject": f"property case {n}",
            "content": "内容",
            "petitioner": {"name": "王五", "phone": phone, "idNumber": id_no},
            "locationPath": location,
            "receivedAt": (clock.now() - timedelta(days=spec["days_ago"], hours=1)).isoformat(),
        }
        if accused_unit:
            data["accusedUnitPath"] = accused_unit
        if accused_user:
            data["accusedUsername"] = accused_user
        accused = next((u for u in users if u.username == accused_user), None)
        units = w.accused_units(accused_unit, accused)
        resp = await gql(REGISTER, {"i": data}, token=built.tokens[registrar.username])
        if w.refused(units):  # against the city itself: for the body above (Art. 30)
            assert resp.code == "BAD_USER_INPUT", (spec, resp.body)
            continue
        got = resp.ok()["registerCase"]
        holder = w.intake_holder(w.registering_unit(registrar, location), units)
        case = Case(
            got["id"], slug, spec["type"], location, holder, registrar.username,
            accused_unit, accused_user, tuple(u for u in units if u != accused_unit),
            phone=phone, id_number=id_no,
        )  # fmt: skip
        if w.sees(registrar, case):
            assert got["holderUnit"]["path"] == holder, (spec, got)
        else:  # a receipt: id and number, nothing of where it went (Art. 30)
            assert got["holderUnit"] is None and got["id"], (spec, got)
        w.cases[case.id] = case
        version = got["version"]
        for step, choice, who in spec["steps"]:
            if step == "lead":
                version = await lead(gql, built, users, case, version, choice)
            else:
                version = await route(gql, built, users, paths, case, version, choice, who)


async def lead(gql, built: Built, users: list[Official], case: Case, version: int, choice: int):
    """包案 by a leader over the holder, who assigns itself."""
    owner = pick([u for u in users if built.world.may_own(u, case)], choice)
    if owner is None or owner.username == case.accused_user:
        return version
    ref = {"caseId": case.id, "version": version, "username": owner.username}
    resp = await gql(LEAD, {"i": ref}, token=built.tokens[owner.username])
    case.leader = owner.username
    return resp.ok()["assignCaseLeader"]["version"]


async def route(gql, built, users, paths, case: Case, version: int, choice: int, who: int):
    """转送 by a petition officer over the holder, to a unit in its scope."""
    w = built.world
    router = pick([u for u in users if w.may_route(u, case)], who)
    if router is None:
        return version
    scopes = w.may_route(router, case)
    targets = [
        p
        for p in paths
        if any(p == s or p.startswith(s + "/") for s in scopes)
        and p != case.holder
        and not any(
            (p + "/").startswith(a + "/")
            for a in (case.accused_unit, *case.accused_person_units)
            if a
        )
    ]
    target = pick(targets, choice)
    if target is None:
        return version
    ref = {"caseId": case.id, "version": version, "toUnitPath": target, "mode": "TRANSFER"}
    resp = await gql(ROUTE, {"i": ref}, token=built.tokens[router.username])
    got = resp.ok()["routeCase"]
    assert got["holderUnit"]["path"] == target
    case.holder = target
    return got["version"]


# --- comparing ------------------------------------------------------------------------


def chunks(ids: list[str], size: int = 20) -> list[list[str]]:
    """Batches under the alias limit (one request reads up to ``size`` cases)."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def case_batch(ids: list[str]) -> str:
    """``case(id:)`` for each id under aliases ``c0``, ``c1``, ...; errors carry the alias."""
    fields = " ".join(f'c{n}: case(id: "{cid}") {{ {CASE_FIELDS} }}' for n, cid in enumerate(ids))
    return "{ " + fields + " }"


async def listed(gql, token: str, page: int) -> tuple[int, list[dict[str, Any]]]:
    nodes: list[dict[str, Any]] = []
    after, total = None, None
    while True:
        conn = (await gql(CASES, {"first": page, "after": after}, token=token)).ok()["cases"]
        assert total in (None, conn["totalCount"])
        total = conn["totalCount"]
        nodes += [e["node"] for e in conn["edges"]]
        if not conn["pageInfo"]["hasNextPage"]:
            return total, nodes
        after = conn["pageInfo"]["endCursor"]


async def check_principal(gql, built: Built, username: str, facts: dict[str, dict], page: int):
    w, p, token = built.world, built.principals[username], built.tokens[username]
    if not w.may_read_cases(p):
        for query, variables in ((CASES, {"first": 1}), (BOARD, {})):
            resp = await gql(query, variables, token=token)
            assert (resp.code, resp.data) == ("FORBIDDEN", None), (username, resp.body)
        return
    expected = w.visible(p)
    total, nodes = await listed(gql, token, page)
    got = [n["id"] for n in nodes]
    assert len(got) == len(set(got)), (username, "a case listed twice")
    diff = set(got) ^ expected
    assert not diff, (username, p, [(c in expected, w.cases.get(c)) for c in diff])
    assert total == len(expected), username
    shown = [cid for cid in w.cases if cid in expected]
    for chunk in chunks(shown):
        data = (await gql(case_batch(chunk), token=token)).ok()
        for n, cid in enumerate(chunk):
            got_pii = data[f"c{n}"]["petitioner"]
            assert got_pii == w.petitioner(p, w.cases[cid]), (username, p, w.cases[cid])
    hidden = [cid for cid in w.cases if cid not in expected]
    for chunk in chunks(hidden):
        # ``case`` is nullable (issue 20): each miss is its own null + NOT_FOUND
        resp = await gql(case_batch(chunk), token=token)
        assert resp.data == {f"c{n}": None for n in range(len(chunk))}, (username, p, chunk)
        assert resp.codes == ["NOT_FOUND"] * len(chunk), (username, p, chunk)
    board = (await gql(BOARD, {}, token=token)).ok()["warningBoard"]
    colours = [facts[c]["warningColor"] for c in expected if facts[c]["status"] != "CLOSED"]
    assert (board["red"], board["yellow"], board["blue"]) == tuple(
        colours.count(c) for c in ("RED", "YELLOW", "BLUE")
    ), username


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # shrinking rebuilds cities per step and can run for many minutes: opt in with XF_SHRINK=1
    phases=list(Phase) if os.environ.get("XF_SHRINK") else [Phase.explicit, Phase.generate],
)
@given(plans=st.lists(city_plan(), min_size=2, max_size=2), page=st.integers(1, 4))
async def test_every_principal_sees_exactly_what_the_reference_model_allows(db, gql, plans, page):
    run = uuid.uuid4().hex[:6]
    province, other = f"pp{run}", f"pq{run}"
    built = Built()
    cities = []
    for n, plan in enumerate(plans):
        slug = f"ip{run}{n}"
        cities.append((plan, slug, await build_city(db, built, plan, slug, province)))
    for plan, slug, paths in cities:
        await run_cases(gql, built, plan, slug, paths)
    async with db.transaction() as session:
        await onboard_tenant(session, SYSTEM, slug=f"iq{run}", name="far", province=other)
        for name, prov in (("sup", province), ("far", other)):
            username = f"{name}{run}"
            await service.create_provincial_supervisor(
                session, SYSTEM, username=username, display_name=name, province=prov
            )
            built.principals[username] = Supervisor(username, prov)
            built.tokens[username] = issue_token(username)
        admin = f"pa{run}"
        await service.create_platform_admin(session, username=admin)
        built.principals[admin] = PlatformAdmin(admin)
        built.tokens[admin] = issue_token(admin)
    # facts (colour, status) come from the province's supervisor, who reads every case
    _, nodes = await listed(gql, built.tokens[f"sup{run}"], 200)
    facts = {n["id"]: n for n in nodes}
    assert set(facts) == set(built.world.cases)
    for case in built.world.cases.values():
        owner = built.principals.get(case.leader or "")
        reach = (case.holder, case.location)
        if owner and not any(covers(g.unit, u) for g in owner.grants for u in reach):
            event("包案 leader outside the case's scope")
        if case.accused_unit or case.accused_user:
            event("accusation naming an accused")
    for username in built.principals:
        await check_principal(gql, built, username, facts, page)


# --- disagreements found by the property, pinned ---------------------------------------


async def test_accusation_is_hidden_from_a_member_of_the_accused_unit_with_a_grant_above(db, gql):
    """Found by the property: a city leader also posted in the accused county (any role
    there, even city_admin) must not read the accusation through its city-level grant."""
    city = await helpers.build_city(db, helpers.unique("ia"), helpers.unique("iap"))
    async with db.transaction() as session:
        for role, rel in ((Role.CITY_ADMIN, "c1/t1"), (Role.GRID_WORKER, "c1/t1/v1/g1")):
            await service.assign_role(
                session, SYSTEM, username=f"{city.slug}_leader", role=role,
                org_unit_path=city.path(rel),
            )  # fmt: skip
    data = {
        "clientKey": helpers.unique("acc-"), "channel": "VISIT", "type": "ACCUSATION",
        "category": "land", "subject": "检举", "content": "内容", "petitioner": {"name": "王五"},
        "locationPath": city.path("c2/t1"), "accusedUnitPath": city.path("c1"),
    }  # fmt: skip
    case = (await gql(REGISTER, {"i": data}, token=city.token("officer"))).ok()["registerCase"]
    member = city.token("leader")
    resp = await gql(case_batch([case["id"]]), token=member)
    assert (resp.code, resp.data) == ("NOT_FOUND", {"c0": None})
    listed = (await gql(CASES, {"first": 200}, token=member)).ok()["cases"]
    assert case["id"] not in {e["node"]["id"] for e in listed["edges"]}
    (await gql(case_batch([case["id"]]), token=city.token("officer"))).ok()
    # nor may it be made the case's 包案 leader by another city leader
    async with db.transaction() as session:
        await service.create_user(session, SYSTEM, tenant=city.slug, username=f"{city.slug}_l2",
                                  display_name="l2")  # fmt: skip
        await service.assign_role(
            session, SYSTEM, username=f"{city.slug}_l2", role=Role.LEADER, org_unit_path=city.path()
        )
    ref = {"caseId": case["id"], "version": case["version"], "username": f"{city.slug}_leader"}
    resp = await gql(LEAD, {"i": ref}, token=issue_token(f"{city.slug}_l2"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username"), resp.body


async def test_a_leader_keeps_reading_its_baoan_case_after_it_is_routed_away(db, gql):
    """Found by the property: 包案 is ownership, not scope — the c1 leader who owns a case
    still reads it (PII masked: it no longer handles it) after the city routes it to c2."""
    city = await helpers.build_city(db, helpers.unique("il"), helpers.unique("ilp"))
    officer, owner = city.token("officer"), city.token("c1_leader")
    data = {
        "clientKey": helpers.unique("own-"), "channel": "VISIT", "type": "CLAIM",
        "category": "land", "subject": "包案", "content": "内容",
        "petitioner": {"name": "王五", "phone": "13912345678"}, "locationPath": city.path("c2/t1"),
    }  # fmt: skip
    case = (await gql(REGISTER, {"i": data}, token=officer)).ok()["registerCase"]
    ref = {"caseId": case["id"], "version": case["version"]}
    to_c1 = {**ref, "toUnitPath": city.path("c1"), "mode": "TRANSFER"}
    version = (await gql(ROUTE, {"i": to_c1}, token=officer)).ok()["routeCase"]["version"]
    lead = {"caseId": case["id"], "version": version, "username": f"{city.slug}_c1_leader"}
    version = (await gql(LEAD, {"i": lead}, token=owner)).ok()["assignCaseLeader"]["version"]
    away = {
        "caseId": case["id"],
        "version": version,
        "toUnitPath": city.path("c2"),
        "mode": "ASSIGN",
    }
    (await gql(ROUTE, {"i": away}, token=officer)).ok()
    got = (await gql(case_batch([case["id"]]), token=owner)).ok()["c0"]
    assert got["petitioner"] == {"phone": "139****5678", "idNumber": None, "masked": True}
    listed = (await gql(CASES, {"first": 200}, token=owner)).ok()["cases"]
    assert case["id"] in {e["node"]["id"] for e in listed["edges"]}
    other = city.token("c1_officer")  # same county, no ownership: the case left its scope
    assert (await gql(case_batch([case["id"]]), token=other)).code == "NOT_FOUND"
