"""Tenant isolation of cases, from the outside with two tenants' tokens: another city can
neither read, count nor touch a case, nor even learn that it exists; provincial supervisors
read their own province's cities only and change nothing; and (PostgreSQL) raw SQL sees
only the session's tenants."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from backend.authz.principal import SYSTEM
from backend.authz.tokens import issue_token
from backend.core import clock
from backend.core.db import TenantScope
from backend.core.ids import to_global_id as global_id
from backend.tenants import service
from tests.case_helpers import register_input
from tests.clocks import SH as SHANGHAI
from tests.helpers import City, build_city, refusal_shape, unique

REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id version } }"""
CASE = """query($id: ID!) { case(id: $id) {
  id version status events { seq } petitioner { phone masked } } }"""
CASES = """query($f: CaseFilter) { cases(filter: $f, first: 200) {
  totalCount edges { node { id } } } }"""
BOARD = "query($u: String) { warningBoard(unitPath: $u) { red yellow blue } }"

_seq = itertools.count(1)


async def register(gql, city: City, rel: str = "c1/t1") -> dict[str, Any]:
    data = register_input(city, locationPath=city.path(rel), subject=f"isolation {next(_seq)}")
    return (await gql(REGISTER, {"i": data}, token=city.token("officer"))).ok()["registerCase"]


async def case_ids(gql, token: str, **f: Any) -> tuple[int, set[str]]:
    conn = (await gql(CASES, {"f": f}, token=token)).ok()["cases"]
    return conn["totalCount"], {e["node"]["id"] for e in conn["edges"]}


async def tenant_refusal(gql, token: str, slug: str) -> tuple[str | None, Any, str]:
    """A ``tenant:`` filter outside the caller's scope: (code, data, message with the slug
    blanked) — one answer whether the city exists or not (outside probe of issue 21:
    it used to be an empty page here and FORBIDDEN in the statistics)."""
    resp = await gql(CASES, {"f": {"tenant": slug}}, token=token)
    message = resp.errors[0]["message"] if resp.errors else ""
    return resp.code, resp.data, message.replace(slug, "<slug>")


REFUSED_TENANT = ("FORBIDDEN", None, "no cases of tenant <slug> for this account")


@dataclass
class Province:
    """Cities A and B in one province, C in another, each with cases of its own only."""

    a: City
    b: City
    c: City
    sup1: str
    sup2: str
    tenant_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    cases: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def ids(self, *keys: str) -> set[str]:
        return {c["id"] for k in keys for c in self.cases[k]}


@pytest.fixture(scope="module")
async def prov(db, gql) -> Province:
    p1, p2 = unique("ip"), unique("iq")
    a = await build_city(db, unique("ia"), p1)
    b = await build_city(db, unique("ib"), p1)
    c = await build_city(db, unique("ic"), p2)
    sups = {}
    async with db.transaction() as session:
        for name, province in (("sup1", p1), ("sup2", p2)):
            username = unique(name)
            await service.create_provincial_supervisor(
                session, SYSTEM, username=username, display_name=name, province=province
            )
            sups[name] = issue_token(username)
        tids = {
            k: (await service.tenant_by_slug(session, x.slug)).id
            for k, x in zip("abc", (a, b, c), strict=True)
        }
    world = Province(a, b, c, sups["sup1"], sups["sup2"], tids)
    world.cases["a"] = [await register(gql, a, rel) for rel in ("c1/t1", "c1", "c2/t1")]
    world.cases["b"] = [await register(gql, b, rel) for rel in ("c1/t1", "dept")]
    world.cases["c"] = [await register(gql, c)]
    return world


# --- another city's officials cannot read or count A's cases ------------------------------


@pytest.mark.parametrize("who", ["officer", "leader", "c1_officer", "handler", "grid"])
async def test_other_city_official_gets_not_found_for_a_case(gql, prov, who):
    for case in prov.cases["a"]:
        resp = await gql(CASE, {"id": case["id"]}, token=prov.b.token(who))
        assert (resp.code, resp.data) == ("NOT_FOUND", {"case": None})


async def test_other_city_lists_and_counts_none_of_a_cases(gql, prov):
    officer = prov.b.token("officer")
    assert await case_ids(gql, officer) == (2, prov.ids("b"))
    assert await tenant_refusal(gql, officer, prov.a.slug) == REFUSED_TENANT
    assert await tenant_refusal(gql, officer, "no-such-city") == REFUSED_TENANT
    assert await case_ids(gql, officer, unitPath=prov.a.path("c1")) == (0, set())
    assert await case_ids(gql, officer, search="isolation") == (2, prov.ids("b"))
    for unit_path in (prov.a.path(), prov.a.path("c1")):
        b = (await gql(BOARD, {"u": unit_path}, token=officer)).ok()["warningBoard"]
        assert (b["red"], b["yellow"], b["blue"]) == (0, 0, 0)
    own = (await gql(BOARD, {}, token=officer)).ok()["warningBoard"]
    assert own["red"] + own["yellow"] + own["blue"] == 2
    # and the other way round: A's own officer sees A's three only
    assert await case_ids(gql, prov.a.token("officer")) == (3, prov.ids("a"))
    assert await case_ids(gql, prov.a.token("officer"), tenant=prov.a.slug) == (3, prov.ids("a"))


# every lifecycle mutation, with the least input it needs, and who in B may attempt it
IN_THREE_DAYS = str(clock.now().astimezone(SHANGHAI).date() + timedelta(days=3))
MUTATIONS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("routeCase", "RouteCaseInput", "officer", {"toUnitPath": "/x/c1", "mode": "TRANSFER"}),
    ("objectToTransfer", "ObjectToTransferInput", "officer", {"reason": "r"}),
    ("decideObjection", "DecideObjectionInput", "officer", {"agree": True, "reason": "r"}),
    ("divertCase", "DivertCaseInput", "officer", {"channel": "LITIGATION", "reason": "r"}),
    ("acceptCase", "AcceptCaseInput", "officer", {}),
    ("rejectCase", "RejectCaseInput", "officer", {"reason": "r"}),
    ("requestExtension", "RequestExtensionInput", "officer", {"days": 10, "reason": "r"}),
    ("approveExtension", "ApproveExtensionInput", "leader", {}),
    ("replyCase", "ReplyCaseInput", "officer", {"opinion": "o"}),
    ("rateSatisfaction", "RateSatisfactionInput", "officer", {"rating": "SATISFIED"}),
    ("requestReview", "RequestReviewInput", "officer", {"reason": "r"}),
    ("decideReview", "DecideReviewInput", "officer", {"opinion": "o"}),
    ("requestReReview", "RequestReReviewInput", "officer", {"reason": "r"}),
    ("decideReReview", "DecideReReviewInput", "officer", {"opinion": "o"}),
    ("holdCase", "HoldCaseInput", "leader", {"reason": "r"}),
    ("resumeCase", "ResumeCaseInput", "officer", {}),
    ("closeCase", "CloseCaseInput", "officer", {"resolution": "r"}),
    ("assignCaseLeader", "AssignCaseLeaderInput", "leader", {"username": "someone"}),
    ("issueSupervisionOrder", "IssueSupervisionOrderInput", "leader",
     {"dueDate": IN_THREE_DAYS, "note": "n"}),
    ("escalateCase", "EscalateCaseInput", "officer", {"target": "LEADERSHIP_GROUP", "reason": "r"}),
    ("recordJointMeeting", "RecordJointMeetingInput", "leader", {"notes": "n"}),
]  # fmt: skip


def mutation(name: str, input_type: str) -> str:
    return f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ id version }} }}"


async def snapshot_case(gql, city: City, case_id: str) -> tuple[int, str, int]:
    got = (await gql(CASE, {"id": case_id}, token=city.token("officer"))).ok()["case"]
    return got["version"], got["status"], len(got["events"])


@pytest.mark.parametrize(("name", "input_type", "who", "extra"), MUTATIONS)
async def test_other_city_mutation_on_a_case_is_not_found_and_changes_nothing(
    gql, prov, name, input_type, who, extra
):
    case = prov.cases["a"][0]
    before = await snapshot_case(gql, prov.a, case["id"])
    token = prov.b.token(who)
    if name == "routeCase":
        extra = {**extra, "toUnitPath": prov.a.path("c1")}
    answers = []
    # the right version, a stale one: neither CONFLICT nor INVALID_TRANSITION leaks existence
    for version in (case["version"], case["version"] + 7):
        resp = await gql(
            mutation(name, input_type),
            {"i": {"caseId": case["id"], "version": version, **extra}},
            token=token,
        )
        assert (resp.code, resp.data) == ("NOT_FOUND", None), resp.body
        answers.append(refusal_shape(resp, case["id"]))
    for ghost in (str(uuid.uuid4()), global_id("Notification", case["id"])):
        resp = await gql(
            mutation(name, input_type),
            {"i": {"caseId": ghost, "version": case["version"], **extra}},
            token=token,
        )
        answers.append(refusal_shape(resp, ghost))
    assert all(answer == answers[0] for answer in answers), answers
    assert await snapshot_case(gql, prov.a, case["id"]) == before


async def test_unknown_and_mistyped_ids_look_exactly_like_another_city_case(gql, prov):
    """Another city's case, an unknown id, the case's key under another type's name: one
    NOT_FOUND. What is no id at all is refused as input (BAD_USER_INPUT) whatever exists."""
    officer = prov.b.token("officer")
    real = prov.cases["a"][0]["id"]
    answers = []
    for cid in (
        real,
        str(uuid.uuid4()),
        "00000000-0000-0000-0000-000000000000",
        global_id("Notification", real),
        global_id("Bogus", real),
    ):
        resp = await gql(CASE, {"id": cid}, token=officer)
        assert resp.code == "NOT_FOUND"
        answers.append(refusal_shape(resp, cid))
    assert all(answer == answers[0] for answer in answers), answers
    garbage = await gql(CASE, {"id": "garbage"}, token=officer)
    assert (garbage.code, garbage.field, garbage.data) == ("BAD_USER_INPUT", "id", {"case": None})


# --- provincial supervisors: their province, read-only -----------------------------------


async def test_supervisor_reads_every_city_of_its_province_and_none_other(gql, prov):
    assert await case_ids(gql, prov.sup1) == (5, prov.ids("a", "b"))
    assert await case_ids(gql, prov.sup1, tenant=prov.a.slug) == (3, prov.ids("a"))
    assert await case_ids(gql, prov.sup1, tenant=prov.b.slug) == (2, prov.ids("b"))
    assert await tenant_refusal(gql, prov.sup1, prov.c.slug) == REFUSED_TENANT
    assert await tenant_refusal(gql, prov.sup1, "no-such-city") == REFUSED_TENANT
    assert await case_ids(gql, prov.sup2) == (1, prov.ids("c"))
    assert await tenant_refusal(gql, prov.sup2, prov.a.slug) == REFUSED_TENANT
    for case in prov.cases["a"]:
        got = (await gql(CASE, {"id": case["id"]}, token=prov.sup1)).ok()["case"]
        assert got["petitioner"]["masked"] is True
        assert (await gql(CASE, {"id": case["id"]}, token=prov.sup2)).code == "NOT_FOUND"
    c_case = prov.cases["c"][0]["id"]
    assert (await gql(CASE, {"id": c_case}, token=prov.sup1)).code == "NOT_FOUND"
    b1 = (await gql(BOARD, {}, token=prov.sup1)).ok()["warningBoard"]
    assert b1["red"] + b1["yellow"] + b1["blue"] == 5
    b2 = (await gql(BOARD, {}, token=prov.sup2)).ok()["warningBoard"]
    assert b2["red"] + b2["yellow"] + b2["blue"] == 1


@pytest.mark.parametrize(("name", "input_type", "who", "extra"), MUTATIONS)
async def test_supervisor_case_mutation_is_forbidden(gql, prov, name, input_type, who, extra):
    case = prov.cases["a"][1]
    before = await snapshot_case(gql, prov.a, case["id"])
    resp = await gql(
        mutation(name, input_type),
        {"i": {"caseId": case["id"], "version": case["version"], **extra}},
        token=prov.sup1,
    )
    assert (resp.code, resp.data) == ("FORBIDDEN", None), resp.body
    assert await snapshot_case(gql, prov.a, case["id"]) == before


async def test_supervisor_cannot_register_a_case(gql, prov):
    data = {
        "clientKey": unique("sup-"),
        "channel": "VISIT",
        "type": "CLAIM",
        "category": "land",
        "subject": "s",
        "content": "c",
        "petitioner": {"name": "王五"},
        "locationPath": prov.a.path("c1"),
    }
    resp = await gql(REGISTER, {"i": data}, token=prov.sup1)
    assert (resp.code, resp.data) == ("FORBIDDEN", None)
    assert await case_ids(gql, prov.a.token("officer")) == (3, prov.ids("a"))
    assert await case_ids(gql, prov.a.token("officer"), tenant=prov.a.slug) == (3, prov.ids("a"))


# --- wall (b): raw SQL under row-level security (PostgreSQL) -------------------------------


@pytest.mark.postgres
async def test_raw_sql_counts_only_the_scope_tenant_cases(db, prov):
    a, b, c = (prov.tenant_ids[k] for k in "abc")
    for scope, expected in (
        (TenantScope.of([a]), 3),
        (TenantScope.of([b]), 2),
        (TenantScope.of([c]), 1),
        (TenantScope.of([a, b], read_only=True), 5),
    ):
        async with db.session(scope) as session:
            assert (await session.execute(text("SELECT count(*) FROM cases"))).scalar() == expected
    async with db.session(TenantScope.of([a])) as session:
        foreign = await session.execute(
            text("SELECT count(*) FROM cases WHERE tenant_id = :b"), {"b": b}
        )
        assert foreign.scalar() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("table", ["cases", "case_events", "case_deadlines"])
async def test_raw_sql_without_a_scope_sees_no_case_rows(db, prov, table):
    async with db.session() as session:
        assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0
