"""Tenant isolation seen from the outside, with real tokens: another city's administrator
or official can neither change nor see a city, and cannot even tell whether a path exists;
provincial supervisors read their province only and write nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.authz.principal import SYSTEM
from backend.authz.scope import subtree_filter
from backend.authz.tokens import issue_token
from backend.core.db import TenantScope
from backend.tenants import service
from backend.tenants.models import Account, OrgUnit, RoleAssignment, Tenant, User
from tests.helpers import USERS, refusal_shape, unique

CREATE_UNIT = "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { path } }"
CREATE_USER = "mutation($i: CreateUserInput!) { createUser(input: $i) { username } }"
ASSIGN = "mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"
REVOKE = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { username } }"
CREATE_TENANT = "mutation($i: CreateTenantInput!) { createTenant(input: $i) { slug } }"
CREATE_SUPERVISOR = """mutation($i: CreateProvincialSupervisorInput!) {
  createProvincialSupervisor(input: $i) { username } }"""
ME = "{ me { username tenant { slug } roles { role orgUnit { path } } } }"
TENANTS = "{ tenants { slug rootUnit { path } } }"
CHILDREN = "query($p: String) { orgUnits(parentPath: $p) { path } }"
UNIT = "query($p: String!) { orgUnit(path: $p) { path children { path } } }"


async def snapshot(db) -> dict[str, int]:
    """Row counts of every administration table, over all tenants."""
    async with db.transaction() as session:
        ids = list(await session.scalars(select(Tenant.id)))
    async with db.transaction(TenantScope.of(ids)) as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model))
            for model in (Tenant, Account, OrgUnit, User, RoleAssignment)
        }


# --- another city's administrator writes nothing in A and learns nothing about A -----------


async def test_other_city_admin_cannot_create_org_unit_in_a(gql, world, db):
    before = await snapshot(db)
    answers = []
    for parent in (world.a.path(), world.a.path("c1"), world.a.path("c1/nothing-here")):
        unit = {"parentPath": parent, "slug": unique("x"), "name": "x", "level": "TOWNSHIP"}
        resp = await gql(CREATE_UNIT, {"i": unit}, token=world.b.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "parentPath")
        answers.append(refusal_shape(resp, parent))
    assert answers[0] == answers[1] == answers[2]
    assert await snapshot(db) == before


async def test_error_for_existing_and_missing_path_of_another_tenant_is_identical(gql, world):
    """B's admin probing A: an existing unit, a missing one and a missing tenant look alike."""
    probes = [world.a.path("c1/t1"), world.a.path("c9/t9"), f"/{unique('ghost')}/c1"]
    answers = []
    for parent in probes:
        unit = {"parentPath": parent, "slug": "probe", "name": "x", "level": "VILLAGE"}
        resp = await gql(CREATE_UNIT, {"i": unit}, token=world.b.token("admin"))
        answers.append(refusal_shape(resp, parent))
    assert answers[0][2] == {"code": "BAD_USER_INPUT", "field": "parentPath"}
    assert answers[0] == answers[1] == answers[2]


async def test_other_city_admin_cannot_create_user_in_a(gql, world, db):
    before = await snapshot(db)
    answers = []
    for tenant in (world.a.slug, unique("ghost")):
        username = unique("intruder")
        resp = await gql(
            CREATE_USER,
            {"i": {"tenant": tenant, "username": username, "displayName": "x"}},
            token=world.b.token("admin"),
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "tenant")
        answers.append(refusal_shape(resp, tenant))
    assert answers[0] == answers[1]
    assert await snapshot(db) == before


async def test_other_city_admin_cannot_assign_or_revoke_roles_in_a(gql, world, db):
    before = await snapshot(db)
    a_user = f"{world.a.slug}_officer"
    b_user = f"{world.b.slug}_officer"
    for mutation in (ASSIGN, REVOKE):
        answers = []
        for username, path in (
            (a_user, world.a.path()),  # A's user at A's existing root
            (b_user, world.a.path("c1")),  # B's own user at A's existing unit
            (a_user, world.a.path("no-such-unit")),  # A's user at a missing unit
        ):
            grant = {"username": username, "role": "CITY_ADMIN", "orgUnitPath": path}
            resp = await gql(mutation, {"i": grant}, token=world.b.token("admin"))
            assert (resp.code, resp.field) == ("BAD_USER_INPUT", "orgUnitPath")
            answers.append(refusal_shape(resp, path))
        assert answers[0] == answers[1] == answers[2]
    assert await snapshot(db) == before
    me = (await gql(ME, token=world.a.token("officer"))).ok()["me"]
    assert me["roles"] == [{"role": "PETITION_OFFICER", "orgUnit": {"path": world.a.path()}}]


async def test_other_city_admin_cannot_grant_its_own_user_a_role_in_a(gql, world, db):
    b_user = f"{world.b.slug}_admin"
    grant = {"username": b_user, "role": "CITY_ADMIN", "orgUnitPath": world.a.path()}
    resp = await gql(ASSIGN, {"i": grant}, token=world.b.token("admin"))
    assert resp.code == "BAD_USER_INPUT"
    me = (await gql(ME, token=world.b.token("admin"))).ok()["me"]
    assert me["roles"] == [{"role": "CITY_ADMIN", "orgUnit": {"path": world.b.path()}}]


# --- another city's official sees nothing of A -------------------------------------------


@pytest.mark.parametrize("rel", ["", "c1", "c1/t1/v1/g1", "dept"])
async def test_officer_of_b_gets_not_found_for_a_unit(gql, world, rel):
    token = world.b.token("officer")
    existing = await gql(UNIT, {"p": world.a.path(rel)}, token=token)
    missing = await gql(UNIT, {"p": world.b.path("no-such-unit")}, token=token)
    assert existing.code == missing.code == "NOT_FOUND"
    assert existing.data == missing.data == {"orgUnit": None}
    assert refusal_shape(existing, world.a.path(rel)) == refusal_shape(
        missing, world.b.path("no-such-unit")
    )


async def test_officer_of_b_lists_no_children_of_a(gql, world):
    token = world.b.token("officer")
    for rel in ("", "c1", "c1/t1"):
        assert (await gql(CHILDREN, {"p": world.a.path(rel)}, token=token)).ok() == {"orgUnits": []}
    roots = (await gql(CHILDREN, token=token)).ok()["orgUnits"]
    assert roots == [{"path": world.b.path()}]


@pytest.mark.parametrize("who", ["admin", "officer", "c1_officer", "grid", "evaluator"])
async def test_tenants_lists_only_the_callers_own_city(gql, world, who):
    for city in (world.a, world.b, world.c):
        data = (await gql(TENANTS, token=city.token(who))).ok()
        assert data["tenants"] == [{"slug": city.slug, "rootUnit": {"path": city.path()}}]


async def test_county_officer_sees_the_whole_city_tree_but_not_sibling_cities(gql, world):
    """Reading the org tree is city-wide (every official routes cases across it)."""
    token = world.a.token("c1_officer")
    sibling = (await gql(UNIT, {"p": world.a.path("c2")}, token=token)).ok()
    assert {"path": world.a.path("c2/t1")} in sibling["orgUnit"]["children"]
    assert (await gql(UNIT, {"p": world.b.path("c2")}, token=token)).code == "NOT_FOUND"


# --- officials who are not administrators ------------------------------------------------


@pytest.mark.parametrize(
    "who", [u for u, role, _ in USERS if role.value != "CITY_ADMIN"], ids=lambda u: u
)
async def test_non_admin_officials_cannot_administer_their_own_city(gql, world, db, who):
    token = world.a.token(who)
    before = await snapshot(db)
    unit = {"parentPath": world.a.path("c1"), "slug": unique("x"), "name": "x", "level": "TOWNSHIP"}
    assert (await gql(CREATE_UNIT, {"i": unit}, token=token)).code == "FORBIDDEN"
    user = {"tenant": world.a.slug, "username": unique("x"), "displayName": "x"}
    assert (await gql(CREATE_USER, {"i": user}, token=token)).code == "FORBIDDEN"
    grant = {
        "username": f"{world.a.slug}_{who}",
        "role": "CITY_ADMIN",
        "orgUnitPath": world.a.path(),
    }
    assert (await gql(ASSIGN, {"i": grant}, token=token)).code == "FORBIDDEN"
    grant["role"] = "PETITION_OFFICER"
    assert (await gql(REVOKE, {"i": grant}, token=token)).code == "FORBIDDEN"
    assert await snapshot(db) == before


async def test_county_officer_cannot_create_org_units(gql, world, db):
    before = await snapshot(db)
    for parent in ("c1", "c1/t1", ""):
        unit = {"parentPath": world.a.path(parent), "slug": unique("x"), "name": "x"}
        unit["level"] = "TOWNSHIP" if parent == "c1" else "VILLAGE" if parent else "COUNTY"
        resp = await gql(CREATE_UNIT, {"i": unit}, token=world.a.token("c1_officer"))
        assert resp.code == "FORBIDDEN"
    assert await snapshot(db) == before


async def test_city_admin_held_at_a_county_administers_only_that_subtree(gql, world, db):
    admin_token = world.a.token("admin")
    username = unique(f"{world.a.slug}_cadm")
    user = {"tenant": world.a.slug, "username": username, "displayName": "县管理员"}
    (await gql(CREATE_USER, {"i": user}, token=admin_token)).ok()
    grant = {"username": username, "role": "CITY_ADMIN", "orgUnitPath": world.a.path("c1")}
    (await gql(ASSIGN, {"i": grant}, token=admin_token)).ok()
    token = issue_token(username)
    inside = {"parentPath": world.a.path("c1/t2"), "slug": unique("v"), "name": "x"}
    inside["level"] = "VILLAGE"
    assert (await gql(CREATE_UNIT, {"i": inside}, token=token)).ok()
    before = await snapshot(db)
    # (the city's tree is readable by every official, so the message may differ here)
    for parent in (world.a.path("c2"), world.a.path(), world.a.path("c2/missing")):
        unit = {"parentPath": parent, "slug": unique("t"), "name": "x", "level": "DEPARTMENT"}
        resp = await gql(CREATE_UNIT, {"i": unit}, token=token)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "parentPath")
    sibling = {"username": username, "role": "LEADER", "orgUnitPath": world.a.path("c2")}
    resp = await gql(ASSIGN, {"i": sibling}, token=token)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "orgUnitPath")
    assert await snapshot(db) == before


# --- provincial supervisors: read the province, write nothing ----------------------------


async def test_supervisor_reads_every_city_of_its_province_only(gql, world):
    sup1 = world.tokens["sup1"]
    tenants = (await gql(TENANTS, token=sup1)).ok()["tenants"]
    assert sorted(t["slug"] for t in tenants) == sorted([world.a.slug, world.b.slug])
    roots = (await gql(CHILDREN, token=sup1)).ok()["orgUnits"]
    assert sorted(r["path"] for r in roots) == sorted([world.a.path(), world.b.path()])
    for city in (world.a, world.b):
        unit = (await gql(UNIT, {"p": city.path("c1/t1")}, token=sup1)).ok()["orgUnit"]
        assert {"path": city.path("c1/t1/v1")} in unit["children"]
        children = (await gql(CHILDREN, {"p": city.path()}, token=sup1)).ok()["orgUnits"]
        paths = [c["path"] for c in children]
        assert {city.path(r) for r in ("c1", "c2", "dept")} <= set(paths)
        assert paths == sorted(paths) and all(p.count("/") == 2 for p in paths)
    assert (await gql(UNIT, {"p": world.c.path()}, token=sup1)).code == "NOT_FOUND"
    assert (await gql(CHILDREN, {"p": world.c.path()}, token=sup1)).ok()["orgUnits"] == []


async def test_supervisor_of_other_province_sees_only_its_city(gql, world):
    sup2 = world.tokens["sup2"]
    tenants = (await gql(TENANTS, token=sup2)).ok()["tenants"]
    assert tenants == [{"slug": world.c.slug, "rootUnit": {"path": world.c.path()}}]
    for city in (world.a, world.b):
        assert (await gql(UNIT, {"p": city.path()}, token=sup2)).code == "NOT_FOUND"
        assert (await gql(CHILDREN, {"p": city.path()}, token=sup2)).ok()["orgUnits"] == []
    assert (await gql(UNIT, {"p": world.c.path("c1")}, token=sup2)).ok()


@pytest.mark.parametrize("sup", ["sup1", "sup2"])
async def test_every_admin_mutation_by_a_supervisor_is_forbidden(gql, world, db, sup):
    token = world.tokens[sup]
    city = world.a if sup == "sup1" else world.c
    before = await snapshot(db)
    calls = [
        (CREATE_TENANT, {"slug": unique("t"), "name": "x", "province": city.province}),
        (
            CREATE_UNIT,
            {"parentPath": city.path(), "slug": unique("x"), "name": "x", "level": "COUNTY"},
        ),
        (CREATE_USER, {"tenant": city.slug, "username": unique("x"), "displayName": "x"}),
        (
            ASSIGN,
            {"username": f"{city.slug}_officer", "role": "LEADER", "orgUnitPath": city.path()},
        ),
        (
            REVOKE,
            {
                "username": f"{city.slug}_officer",
                "role": "PETITION_OFFICER",
                "orgUnitPath": city.path(),
            },
        ),
        (
            CREATE_SUPERVISOR,
            {"username": unique("x"), "displayName": "x", "province": city.province},
        ),
    ]
    for mutation, variables in calls:
        resp = await gql(mutation, {"i": variables}, token=token)
        assert resp.code == "FORBIDDEN", (mutation, resp.body)
        assert resp.data is None
    assert await snapshot(db) == before


async def test_supervisor_me_has_no_tenant(gql, world):
    me = (await gql(ME, token=world.tokens["sup1"])).ok()["me"]
    assert me["tenant"] is None
    assert me["roles"] == [{"role": "PROVINCIAL_SUPERVISOR", "orgUnit": None}]


# --- platform staff --------------------------------------------------------------------


async def test_platform_admin_administers_any_city_and_sees_all_tenants(gql, world, db):
    token = world.tokens["platform"]
    me = (await gql(ME, token=token)).ok()["me"]
    assert me["tenant"] is None
    assert me["roles"] == [{"role": "PLATFORM_ADMIN", "orgUnit": None}]
    slugs = {t["slug"] for t in (await gql(TENANTS, token=token)).ok()["tenants"]}
    assert {world.a.slug, world.b.slug, world.c.slug} <= slugs

    slug = unique("t")
    (
        await gql(CREATE_TENANT, {"i": {"slug": slug, "name": "x", "province": "p"}}, token=token)
    ).ok()
    for city_slug in (slug, world.c.slug):
        unit = {"parentPath": f"/{city_slug}", "slug": "newc", "name": "x", "level": "COUNTY"}
        (await gql(CREATE_UNIT, {"i": unit}, token=token)).ok()
        username = unique(f"{city_slug}_")
        user = {"tenant": city_slug, "username": username, "displayName": "x"}
        (await gql(CREATE_USER, {"i": user}, token=token)).ok()
        grant = {"username": username, "role": "LEADER", "orgUnitPath": f"/{city_slug}/newc"}
        (await gql(ASSIGN, {"i": grant}, token=token)).ok()
    children = (await gql(CHILDREN, {"p": f"/{slug}"}, token=token)).ok()["orgUnits"]
    assert children == [{"path": f"/{slug}/newc"}]
    # the new city's unit did not leak into another city and vice versa
    c_children = (await gql(CHILDREN, {"p": world.c.path()}, token=world.c.token("officer"))).ok()
    assert world.c.path("newc") in [u["path"] for u in c_children["orgUnits"]]
    a_children = (await gql(CHILDREN, {"p": world.a.path()}, token=world.a.token("officer"))).ok()
    assert all(not u["path"].endswith("/newc") for u in a_children["orgUnits"])


async def test_platform_admin_must_name_a_parent_to_list_org_units(gql, world):
    resp = await gql(CHILDREN, token=world.tokens["platform"])
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "parentPath")


# --- the org-unit subtree predicate (every backend) ---------------------------------------


async def test_unit_subtree_never_includes_a_sibling_sharing_its_name_prefix(db, world):
    lookalike = unique("c1")  # /a/c1xxxx: c1's sibling, whose path starts with "/a/c1"
    async with db.transaction() as session:
        await service.create_org_unit(
            session, SYSTEM, parent_path=world.a.path(), slug=lookalike, name="x", level="COUNTY"
        )
        await service.create_org_unit(
            session,
            SYSTEM,
            parent_path=world.a.path(lookalike),
            slug="t1",
            name="x",
            level="TOWNSHIP",
        )
        a_id = (await service.tenant_by_slug(session, world.a.slug)).id
        b_id = (await service.tenant_by_slug(session, world.b.slug)).id

    async def subtree(scope_id, path: str) -> set[str]:
        async with db.transaction(TenantScope.of([scope_id])) as session:
            stmt = select(OrgUnit.path).where(subtree_filter(OrgUnit.path, [path]))
            return set(await session.scalars(stmt))

    c1 = await subtree(a_id, world.a.path("c1"))
    assert {world.a.path(p) for p in ("c1", "c1/t1", "c1/t2", "c1/t1/v1", "c1/t1/v1/g1")} <= c1
    assert all(p == world.a.path("c1") or p.startswith(world.a.path("c1") + "/") for p in c1)
    assert await subtree(a_id, world.a.path(lookalike)) == {
        world.a.path(lookalike),
        world.a.path(f"{lookalike}/t1"),
    }
    assert await subtree(a_id, world.a.path("c1/t1/v1/g1")) == {world.a.path("c1/t1/v1/g1")}
    assert await subtree(b_id, world.a.path()) == set()
