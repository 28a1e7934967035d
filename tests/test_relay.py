"""Issue 20: GraphQL a front-end picks up without workarounds — nullable lookups, Relay
connections in both directions, global object identification (``node``/``nodes``).

Every test goes over HTTP (the ``gql`` client), as a front-end would.
"""

from __future__ import annotations

import uuid

from tests.case_helpers import register

# --- issue 20.3: one miss does not wipe the page ---------------------------------------

ME_AND_CASE = "query($id: ID!) { me { username } case(id: $id) { id number } }"
LOOKUPS = """query($id: ID!, $path: String!) {
  me { username }
  case(id: $id) { id }
  orgUnit(path: $path) { path }
  monthlyReport(id: $id) { id }
  dutyShift(id: $id) { id }
  evaluationPanel(id: $id) { id }
}"""


async def test_issue20_a_case_the_caller_may_not_see_is_null_and_me_survives(gql, world):
    case = await register(gql, world.a.token("officer"), world.a)
    mine = await gql(ME_AND_CASE, {"id": case["id"]}, token=world.a.token("officer"))
    assert mine.ok()["case"]["number"] == case["number"]

    other_city = await gql(ME_AND_CASE, {"id": case["id"]}, token=world.b.token("officer"))
    missing = await gql(ME_AND_CASE, {"id": str(uuid.uuid4())}, token=world.b.token("officer"))
    for resp in (other_city, missing):
        assert resp.status == 200
        assert resp.data == {"me": {"username": f"{world.b.slug}_officer"}, "case": None}
        assert resp.codes == ["NOT_FOUND"]
        assert resp.errors[0]["path"] == ["case"]


async def test_issue20_every_lookup_by_key_misses_alone(gql, world):
    resp = await gql(
        LOOKUPS,
        {"id": str(uuid.uuid4()), "path": world.a.path("no-such-unit")},
        token=world.a.token("officer"),
    )
    assert resp.status == 200
    assert resp.data == {
        "me": {"username": f"{world.a.slug}_officer"},
        "case": None,
        "orgUnit": None,
        "monthlyReport": None,
        "dutyShift": None,
        "evaluationPanel": None,
    }
    assert sorted(e["path"][0] for e in resp.errors) == [
        "case",
        "dutyShift",
        "evaluationPanel",
        "monthlyReport",
        "orgUnit",
    ]
    assert set(resp.codes) == {"NOT_FOUND"}
