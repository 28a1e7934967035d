"""Tenant deadline policy: a city may shorten statutory limits and move colour thresholds."""

from __future__ import annotations

from datetime import timedelta

from backend.cases.pii import check_character
from backend.core import clock
from tests.helpers import build_city, unique

UPDATE = """mutation($i: UpdateTenantPolicyInput!) {
  updateTenantPolicy(input: $i) { limits { step days } counting redDays yellowDays timezone } }"""
READ = "{ tenantPolicy { limits { step days } counting redDays yellowDays } }"
REGISTER = """mutation($i: RegisterCaseInput!) {
  registerCase(input: $i) { deadlines { step rule } } }"""


def _case(city, key: str) -> dict:
    body = "41140319800101001"
    return {
        "clientKey": key,
        "channel": "LETTER",
        "type": "CLAIM",
        "category": "land",
        "subject": "s",
        "content": "c",
        "locationPath": city.path("c1"),
        "petitioner": {"name": "张三", "idNumber": body + check_character(body)},
        "receivedAt": (clock.now() - timedelta(hours=1)).isoformat(),
    }


async def test_city_admin_shortens_routing_and_new_cases_use_it(gql, db):
    city = await build_city(db, unique("po"), unique("p"))
    other = await build_city(db, unique("po"), unique("p"))
    policy = {"limits": [{"step": "ROUTING", "days": 10}], "redDays": 2, "yellowDays": 7}
    data = (await gql(UPDATE, {"i": policy}, token=city.token("admin"))).ok()
    assert data["updateTenantPolicy"]["limits"] == [{"step": "ROUTING", "days": 10}]
    assert (await gql(READ, token=city.token("officer"))).ok()["tenantPolicy"]["redDays"] == 2
    assert (await gql(READ, token=other.token("officer"))).ok()["tenantPolicy"]["limits"] == []
    case = (await gql(REGISTER, {"i": _case(city, "p1")}, token=city.token("officer"))).ok()
    assert case["registerCase"]["deadlines"][0]["rule"]["days"] == 10
    case = (await gql(REGISTER, {"i": _case(other, "p1")}, token=other.token("officer"))).ok()
    assert case["registerCase"]["deadlines"][0]["rule"]["days"] == 15


async def test_a_city_cannot_lengthen_a_statutory_limit(gql, world):
    resp = await gql(
        UPDATE, {"i": {"limits": [{"step": "HANDLING", "days": 90}]}}, token=world.a.token("admin")
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "limits")
    assert "第三十四条" in resp.errors[0]["message"]


async def test_thresholds_must_be_ordered(gql, world):
    resp = await gql(UPDATE, {"i": {"redDays": 5, "yellowDays": 2}}, token=world.a.token("admin"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "redDays")


async def test_only_city_admins_set_the_policy(gql, world):
    for token in (world.a.token("officer"), world.tokens["sup1"], world.tokens["platform"]):
        assert (await gql(UPDATE, {"i": {}}, token=token)).code == "FORBIDDEN"
