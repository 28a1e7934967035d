"""Issue 20: GraphQL a front-end picks up without workarounds — nullable lookups, Relay
connections in both directions, global object identification (``node``/``nodes``).

Every test goes over HTTP (the ``gql`` client), as a front-end would.
"""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.case_helpers import days_ago, register
from tests.helpers import refusal_shape, unique
from tests.test_notifications import new_town, put

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


@pytest.mark.parametrize("who", ["officer", "grid", "evaluator", "admin", "handler"])
async def test_issue20_every_lookup_by_key_misses_alone(gql, world, who):
    """Each lookup answers null + NOT_FOUND, as the schema says, also to a role that reads
    no object of its kind at all (FORBIDDEN there before the outside probe of issue 21)."""
    resp = await gql(
        LOOKUPS,
        {"id": str(uuid.uuid4()), "path": world.a.path("no-such-unit")},
        token=world.a.token(who),
    )
    assert resp.status == 200
    assert resp.data == {
        "me": {"username": f"{world.a.slug}_{who}"},
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


# --- issue 20.2: connections in both directions ------------------------------------------

CASES = """query($f: CaseFilter, $first: Int, $after: String, $last: Int, $before: String) {
  cases(filter: $f, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id subject } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


@pytest.fixture(scope="module")
async def five(gql, world) -> tuple[str, list[str]]:
    """Five cases of city A under one marker, received on five days; ids newest first."""
    marker = unique("relay-")
    ids = []
    for n in range(5, 0, -1):  # oldest first
        case = await register(
            gql, world.a.token("officer"), world.a, subject=f"{marker} {n}", receivedAt=days_ago(n)
        )
        ids.append(case["id"])
    return marker, ids[::-1]


async def page(gql, token: str, marker: str, **args) -> dict:
    resp = await gql(CASES, {"f": {"search": marker}, **args}, token=token)
    return resp.ok()["cases"]


def ids_of(conn: dict) -> list[str]:
    return [e["node"]["id"] for e in conn["edges"]]


async def test_issue20_cases_page_forward_and_backward_in_one_stable_order(gql, world, five):
    marker, newest_first = five
    token = world.a.token("officer")
    p1 = await page(gql, token, marker, first=2)
    assert ids_of(p1) == newest_first[:2] and p1["totalCount"] == 5
    info = p1["pageInfo"]
    assert (info["hasNextPage"], info["hasPreviousPage"]) == (True, False)
    assert (info["startCursor"], info["endCursor"]) == (
        p1["edges"][0]["cursor"],
        p1["edges"][-1]["cursor"],
    )
    p2 = await page(gql, token, marker, first=2, after=info["endCursor"])
    assert ids_of(p2) == newest_first[2:4]
    assert (p2["pageInfo"]["hasNextPage"], p2["pageInfo"]["hasPreviousPage"]) == (True, True)

    # backward: the last two, then the two before them — the same order, read from the end
    end = await page(gql, token, marker, last=2)
    assert ids_of(end) == newest_first[3:]
    assert (end["pageInfo"]["hasNextPage"], end["pageInfo"]["hasPreviousPage"]) == (False, True)
    back = await page(gql, token, marker, last=2, before=end["pageInfo"]["startCursor"])
    assert ids_of(back) == newest_first[1:3]
    assert back["pageInfo"]["hasPreviousPage"] is True
    top = await page(gql, token, marker, last=2, before=back["pageInfo"]["startCursor"])
    assert ids_of(top) == newest_first[:1]
    assert (top["pageInfo"]["hasNextPage"], top["pageInfo"]["hasPreviousPage"]) == (True, False)

    # a window between two cursors, and the forward cursors read backward
    between = await page(
        gql, token, marker, after=p1["pageInfo"]["startCursor"], before=end["pageInfo"]["endCursor"]
    )
    assert ids_of(between) == newest_first[1:4]
    assert (
        ids_of(await page(gql, token, marker, last=5, before=p2["pageInfo"]["startCursor"]))
        == (newest_first[:2])
    )


async def test_issue20_cases_backward_pages_stay_inside_the_callers_scope(gql, world, five):
    marker, _ = five
    for token in (world.b.token("officer"), world.a.token("c2_officer")):
        conn = await page(gql, token, marker, last=5)
        assert conn["edges"] == [] and conn["totalCount"] == 0
        assert conn["pageInfo"] == {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        }


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"first": 2, "last": 2}, "last"),
        ({"last": 201}, "last"),
        ({"last": -1}, "last"),
        ({"last": 2, "before": "not-a-cursor"}, "before"),
        ({"after": "bm90LWEtY3Vyc29y"}, "after"),
    ],
)
async def test_issue20_bad_connection_arguments_are_bad_user_input(gql, world, args, field):
    resp = await gql(CASES, args, token=world.a.token("officer"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), resp.body


INBOX = """query($first: Int, $last: Int, $before: String, $after: String) {
  notificationsConnection(first: $first, last: $last, before: $before, after: $after) {
    edges { cursor node { id subject } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}"""


async def test_issue20_the_inbox_tells_what_is_new_since_a_cursor(gql, db):
    town = await new_town(db)
    token = town.token("officer")
    for n in range(3):
        await put(db, town, "officer", f"old{n}", channels=["inapp"], subject=f"old {n}")
    read = (await gql(INBOX, {"first": 10}, token=token)).ok()["notificationsConnection"]
    assert [e["node"]["subject"] for e in read["edges"]] == ["old 2", "old 1", "old 0"]
    since = read["pageInfo"]["startCursor"]

    nothing = await gql(INBOX, {"last": 10, "before": since}, token=token)
    assert nothing.ok()["notificationsConnection"]["edges"] == []

    for n in range(3):
        await put(db, town, "officer", f"new{n}", channels=["inapp"], subject=f"new {n}")
    await put(db, town, "leader", "other", channels=["inapp"], subject="not mine")
    new = (await gql(INBOX, {"last": 10, "before": since}, token=token)).ok()
    conn = new["notificationsConnection"]
    assert [e["node"]["subject"] for e in conn["edges"]] == ["new 2", "new 1", "new 0"]
    assert (conn["pageInfo"]["hasPreviousPage"], conn["pageInfo"]["hasNextPage"]) == (False, True)
    # a small page of what is new: the oldest new ones first when read with last
    two = (await gql(INBOX, {"last": 2, "before": since}, token=token)).ok()
    assert [e["node"]["subject"] for e in two["notificationsConnection"]["edges"]] == [
        "new 1",
        "new 0",
    ]
    assert two["notificationsConnection"]["pageInfo"]["hasPreviousPage"] is True
    # the old list answers as before (deprecated, not removed)
    old = await gql("{ notifications(first: 10) { subject } }", token=token)
    assert len(old.ok()["notifications"]) == 6


async def test_issue20_deprecated_lists_have_connections(gql, world, db):
    town = await new_town(db)
    admin = town.token("admin")
    create = "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { path } }"
    for n in range(4):
        unit = {"parentPath": town.city.path(), "slug": f"u{n}", "name": f"u{n}", "level": "COUNTY"}
        (await gql(create, {"i": unit}, token=admin)).ok()
    listed = (await gql("{ adminAuditLog(first: 50) { id target } }", token=admin)).ok()
    newest_first = [e["id"] for e in listed["adminAuditLog"]]
    assert len(newest_first) >= 4
    audit = (
        "query($last: Int, $before: String) { adminAuditLogConnection(last: $last, "
        "before: $before) { edges { node { id } } pageInfo { hasPreviousPage startCursor } } }"
    )
    oldest = (await gql(audit, {"last": 2}, token=admin)).ok()["adminAuditLogConnection"]
    assert [e["node"]["id"] for e in oldest["edges"]] == newest_first[-2:]
    before = {"last": 2, "before": oldest["pageInfo"]["startCursor"]}
    older = (await gql(audit, before, token=admin)).ok()["adminAuditLogConnection"]
    assert [e["node"]["id"] for e in older["edges"]] == newest_first[-4:-2]
    # another city's admin reads nothing of it, forward or backward
    other = await gql(audit, {"last": 50}, token=world.a.token("admin"))
    assert not {e["node"]["id"] for e in other.ok()["adminAuditLogConnection"]["edges"]} & set(
        newest_first
    )
    for query, field in (
        ("{ monthlyReportsConnection(first: 5) { edges { node { id } } pageInfo "
         "{ hasNextPage } } }", "monthlyReportsConnection"),
        ("{ evaluationPanelsConnection(first: 5) { edges { node { id } } pageInfo "
         "{ hasNextPage } } }", "evaluationPanelsConnection"),
    ):  # fmt: skip
        got = (await gql(query, token=world.a.token("officer"))).ok()[field]
        assert got["pageInfo"]["hasNextPage"] is False


# --- issue 20.1: global object identification --------------------------------------------

NODE = """query($id: ID!) {
  me { username }
  node(id: $id) { __typename id ... on Case { number } ... on OrgUnit { path } }
}"""
NODES = """query($ids: [ID!]!) {
  me { username }
  nodes(ids: $ids) { __typename id ... on Case { number } ... on OrgUnit { path }
    ... on Notification { subject } }
}"""


def global_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


async def test_issue20_node_refetches_a_case_by_its_id_or_its_global_id(gql, world):
    token = world.a.token("officer")
    case = await register(gql, token, world.a)
    for id_ in (
        case["id"],
        global_id("Case", case["id"]),
        global_id("Case", case["id"]).rstrip("="),
    ):
        got = (await gql(NODE, {"id": id_}, token=token)).ok()["node"]
        assert got == {"__typename": "Case", "id": case["id"], "number": case["number"]}
    # every typed lookup takes the global form as well
    by_global = await gql(ME_AND_CASE, {"id": global_id("Case", case["id"])}, token=token)
    assert by_global.ok()["case"]["number"] == case["number"]
    city_unit = await unit_id(gql, world)
    unit = (await gql(NODE, {"id": global_id("OrgUnit", city_unit)}, token=token)).ok()
    assert unit["node"] == {"__typename": "OrgUnit", "id": city_unit, "path": world.a.path()}


async def unit_id(gql, world) -> str:
    query = "query($p: String!) { orgUnit(path: $p) { id } }"
    return (await gql(query, {"p": world.a.path()}, token=world.a.token("officer"))).ok()[
        "orgUnit"
    ]["id"]


async def test_art30_node_never_shows_an_accusation_to_the_accused_unit(gql, world):
    """检举控告: node() applies the case's read rule — to the accused unit's officials the
    accusation is null + NOT_FOUND, exactly like an id that does not exist."""
    officer = world.a.token("officer")
    accusation = await register(
        gql, officer, world.a, type="ACCUSATION", accusedUnitPath=world.a.path("c1")
    )
    assert (await gql(NODE, {"id": accusation["id"]}, token=officer)).ok()["node"]["id"]
    missing = str(uuid.uuid4())
    for who in ("c1_officer", "c1_leader", "t1_officer"):
        token = world.a.token(who)
        for hidden, absent in (
            (accusation["id"], missing),
            (global_id("Case", accusation["id"]), global_id("Case", missing)),
        ):
            seen = await gql(NODE, {"id": hidden}, token=token)
            none = await gql(NODE, {"id": absent}, token=token)
            assert seen.data == {"me": {"username": f"{world.a.slug}_{who}"}, "node": None}
            assert refusal_shape(seen, hidden) == refusal_shape(none, absent), who
            assert seen.code == "NOT_FOUND"


async def test_issue20_node_keeps_cities_apart_and_types_honest(gql, world):
    case = await register(gql, world.a.token("officer"), world.a)
    missing = str(uuid.uuid4())
    for token in (world.b.token("officer"), world.c.token("admin"), world.tokens["platform"]):
        for hidden, absent in (
            (case["id"], missing),
            (global_id("Case", case["id"]), global_id("Case", missing)),
        ):
            seen = await gql(NODE, {"id": hidden}, token=token)
            none = await gql(NODE, {"id": absent}, token=token)
            assert seen.data["node"] is None and seen.code == "NOT_FOUND"
            assert refusal_shape(seen, hidden) == refusal_shape(none, absent)
    # the right key under another type's name is no way in either
    officer = world.a.token("officer")
    for wrong in (global_id("Panel", case["id"]), global_id("Nope", case["id"])):
        resp = await gql(NODE, {"id": wrong}, token=officer)
        assert (resp.data["node"], resp.code) == (None, "NOT_FOUND"), wrong


# --- one decoding for every id argument ------------------------------------------------

MALFORMED = ["", "abc", "garbage", "Q2FzZTpub3QtYS11dWlk", "x" * 5000]  # the 4th: "Case:not-a-uuid"
MISTYPED = ("Notification", "Bogus", "Panel")


async def test_every_id_argument_refuses_malformed_ids_and_ignores_other_types(gql, world):
    """case(id:), node(id:), nodes(ids:) and a mutation's caseId decode ids in one place:
    a malformed one is BAD_USER_INPUT naming the argument, quoting at most a short prefix;
    the right key under another type's name is the NOT_FOUND of an unknown id."""
    officer = world.a.token("officer")
    case = await register(gql, officer, world.a)
    accept = (
        "mutation($i: AcceptCaseInput!) { acceptCase(input: $i) { id } }",
        lambda id_: {"i": {"caseId": id_, "version": case["version"]}},
        "caseId",
    )
    lookups = [
        (ME_AND_CASE, lambda id_: {"id": id_}, "id"),
        (NODE, lambda id_: {"id": id_}, "id"),
        accept,
    ]
    for query, variables, field in lookups:
        ghost = str(uuid.uuid4())
        unknown = await gql(query, variables(ghost), token=officer)
        assert unknown.code == "NOT_FOUND", unknown.body
        for type_name in MISTYPED:
            wrong = global_id(type_name, case["id"])
            resp = await gql(query, variables(wrong), token=officer)
            assert refusal_shape(resp, wrong) == refusal_shape(unknown, ghost)
        for bad in MALFORMED:
            resp = await gql(query, variables(bad), token=officer)
            assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), (bad[:30], resp.body)
            assert len(resp.errors[0]["message"]) < 120, resp.errors[0]["message"]
    # nodes: each malformed id refused in its place, the others answered
    resp = await gql(
        NODES, {"ids": [case["id"], "x" * 5000, global_id("Bogus", case["id"])]}, token=officer
    )
    assert resp.data["nodes"][0]["id"] == case["id"] and resp.data["nodes"][1:] == [None, None]
    assert [(e["path"], e["extensions"]["code"]) for e in resp.errors] == [
        (["nodes", 1], "BAD_USER_INPUT"),
        (["nodes", 2], "NOT_FOUND"),
    ]


async def test_issue20_nodes_answers_in_order_and_nulls_each_miss_alone(gql, world):
    officer = world.a.token("officer")
    one = await register(gql, officer, world.a)
    two = await register(gql, officer, world.a)
    other_city = await register(gql, world.b.token("officer"), world.b)
    unit = await unit_id(gql, world)
    ids = [
        two["id"],
        global_id("OrgUnit", unit),
        other_city["id"],
        global_id("Bogus", one["id"]),
        global_id("Case", one["id"]),
    ]
    resp = await gql(NODES, {"ids": ids}, token=officer)
    assert resp.status == 200
    assert resp.data["me"] == {"username": f"{world.a.slug}_officer"}
    assert resp.data["nodes"] == [
        {"__typename": "Case", "id": two["id"], "number": two["number"]},
        {"__typename": "OrgUnit", "id": unit, "path": world.a.path()},
        None,
        None,
        {"__typename": "Case", "id": one["id"], "number": one["number"]},
    ]
    assert [(e["path"], e["extensions"]["code"]) for e in resp.errors] == [
        (["nodes", 2], "NOT_FOUND"),
        (["nodes", 3], "NOT_FOUND"),
    ]
    too_many = await gql(NODES, {"ids": [one["id"]] * 101}, token=officer)
    assert (too_many.code, too_many.field) == ("BAD_USER_INPUT", "ids")


async def test_issue20_a_notification_node_is_its_recipients_alone(gql, db):
    town = await new_town(db)
    (row,) = await put(db, town, "officer", "mine", channels=["inapp"], subject="for the officer")
    mine = await gql(NODES, {"ids": [str(row.id)]}, token=town.token("officer"))
    assert mine.ok()["nodes"] == [
        {"__typename": "Notification", "id": str(row.id), "subject": "for the officer"}
    ]
    for who in ("leader", "admin"):
        resp = await gql(NODES, {"ids": [str(row.id)]}, token=town.token(who))
        assert (resp.data["nodes"], resp.code) == ([None], "NOT_FOUND"), who
