"""The administration mutations of the contract, over HTTP: success, every refusal, and
"a failed mutation changes nothing" checked against the database afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from backend.authz.tokens import issue_token
from backend.core.db import TenantScope
from backend.tenants import service
from backend.tenants.models import Account, OrgUnit, Province, RoleAssignment, Tenant, User
from tests.helpers import unique

CREATE_TENANT = """mutation($i: CreateTenantInput!) {
  createTenant(input: $i) { slug name casePrefix rootUnit { path level depth } } }"""
CREATE_UNIT = """mutation($i: CreateOrgUnitInput!) {
  createOrgUnit(input: $i) { id path name level depth } }"""
CREATE_USER = """mutation($i: CreateUserInput!) {
  createUser(input: $i) { id username displayName phone } }"""
ASSIGN = """mutation($i: AssignRoleInput!) {
  assignRole(input: $i) { username roles { role orgUnit { path } } } }"""
REVOKE = """mutation($i: RevokeRoleInput!) {
  revokeRole(input: $i) { username roles { role orgUnit { path } } } }"""
CREATE_SUPERVISOR = """mutation($i: CreateProvincialSupervisorInput!) {
  createProvincialSupervisor(input: $i) { username displayName roles { role orgUnit { path } } } }"""
ME = "{ me { username tenant { slug } roles { role orgUnit { path } } } }"
TENANTS = "{ tenants { slug rootUnit { path } } }"
CHILDREN = "query($p: String) { orgUnits(parentPath: $p) { path name level } }"
UNIT = "query($p: String!) { orgUnit(path: $p) { path name level depth } }"


# --- database probes (the real database, through the app's own tenant walls) -------------


async def all_tenants(db) -> TenantScope:
    async with db.transaction() as session:
        return TenantScope.of(await session.scalars(select(Tenant.id)))


async def count(db, model, *where) -> int:
    """Rows of ``model`` matching ``where`` in any tenant."""
    scope = await all_tenants(db)
    async with db.transaction(scope) as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


async def units_with_slug(db, slug: str) -> int:
    return await count(db, OrgUnit, OrgUnit.slug == slug)


async def account_exists(db, username: str) -> bool:
    async with db.transaction() as session:
        return await service.account_by_username(session, username) is not None


async def grants_of(db, username: str) -> list[tuple[str, str]]:
    """``(role, unit path)`` of every grant ``username`` holds, read in its own tenant."""
    async with db.transaction() as session:
        account = await service.account_by_username(session, username)
    async with db.transaction(TenantScope.of([account.tenant_id])) as session:
        return sorted((r, u.path) for r, u in await service.grants_of(session, account.id))


async def new_user(gql, city, admin_token: str | None = None) -> str:
    username = unique(f"{city.slug}_u")
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": city.slug, "username": username, "displayName": "新用户"}},
        token=admin_token or city.token("admin"),
    )
    resp.ok()
    return username


# --- createTenant -----------------------------------------------------------------------


async def test_platform_admin_creates_tenant_with_root_unit(gql, world, db):
    slug, province = unique("t"), unique("prov")
    data = (
        await gql(
            CREATE_TENANT,
            {"i": {"slug": slug, "name": "新城市", "province": province, "casePrefix": "xc"}},
            token=world.tokens["platform"],
        )
    ).ok()
    assert data["createTenant"] == {
        "slug": slug,
        "name": "新城市",
        "casePrefix": "XC",
        "rootUnit": {"path": f"/{slug}", "level": "CITY", "depth": 0},
    }
    listed = (await gql(TENANTS, token=world.tokens["platform"])).ok()["tenants"]
    assert {"slug": slug, "rootUnit": {"path": f"/{slug}"}} in listed
    assert await count(db, Province, Province.slug == province) == 1


@pytest.mark.parametrize("who", ["admin", "officer", "sup1"])
async def test_create_tenant_is_platform_admin_only(gql, world, db, who):
    token = world.tokens[who] if who in world.tokens else world.a.token(who)
    slug, province = unique("t"), unique("prov")
    resp = await gql(
        CREATE_TENANT, {"i": {"slug": slug, "name": "x", "province": province}}, token=token
    )
    assert resp.code == "FORBIDDEN"
    assert resp.data is None
    assert await count(db, Tenant, Tenant.slug == slug) == 0
    assert await count(db, Province, Province.slug == province) == 0


async def test_duplicate_tenant_slug_is_conflict_on_slug(gql, world, db):
    province = unique("prov")
    resp = await gql(
        CREATE_TENANT,
        {"i": {"slug": world.a.slug, "name": "冒名", "province": province}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("CONFLICT", "slug")
    async with db.transaction() as session:
        tenant = await service.tenant_by_slug(session, world.a.slug)
    assert tenant.name == f"City {world.a.slug}"
    assert await count(db, Province, Province.slug == province) == 0


@pytest.mark.parametrize("slug", ["Bad_Slug", "UPPER", "-lead", "a.b", "a/b", "", "x" * 64])
async def test_tenant_slug_outside_lowercase_digits_dash_is_bad_user_input(gql, world, db, slug):
    before = await count(db, Tenant)
    resp = await gql(
        CREATE_TENANT,
        {"i": {"slug": slug, "name": "x", "province": unique("prov")}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "slug")
    assert await count(db, Tenant) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [("casePrefix", "TOOLONGPREFIX"), ("casePrefix", "S Q"), ("provinceName", "省" * 201)],
)
async def test_overlong_or_malformed_tenant_fields_are_bad_user_input(gql, world, db, field, value):
    slug, province = unique("t"), unique("prov")
    resp = await gql(
        CREATE_TENANT,
        {"i": {"slug": slug, "name": "x", "province": province, field: value}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", field)
    assert await count(db, Tenant, Tenant.slug == slug) == 0
    assert await count(db, Province, Province.slug == province) == 0


# --- createOrgUnit ---------------------------------------------------------------------


async def test_city_admin_creates_org_unit_at_parent_path_plus_slug(gql, world):
    slug = unique("u")
    data = (
        await gql(
            CREATE_UNIT,
            {
                "i": {
                    "parentPath": world.a.path("c1"),
                    "slug": slug,
                    "name": "新镇",
                    "level": "TOWNSHIP",
                }
            },
            token=world.a.token("admin"),
        )
    ).ok()["createOrgUnit"]
    path = world.a.path(f"c1/{slug}")
    assert data["id"]
    assert {k: data[k] for k in ("path", "name", "level", "depth")} == {
        "path": path,
        "name": "新镇",
        "level": "TOWNSHIP",
        "depth": 2,
    }
    officer = world.a.token("c1_officer")
    assert (await gql(UNIT, {"p": path}, token=officer)).ok()["orgUnit"]["path"] == path
    children = (await gql(CHILDREN, {"p": world.a.path("c1")}, token=officer)).ok()["orgUnits"]
    assert path in [c["path"] for c in children]


async def test_platform_admin_creates_org_unit_in_any_tenant(gql, world, db):
    slug = unique("u")
    resp = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": world.c.path(), "slug": slug, "name": "x", "level": "DEPARTMENT"}},
        token=world.tokens["platform"],
    )
    assert resp.ok()["createOrgUnit"]["path"] == world.c.path(slug)
    assert await units_with_slug(db, slug) == 1


@pytest.mark.parametrize("parent", ["nope", "c1/nope", "c1/t1/v1/g1/nope"])
async def test_unknown_parent_is_bad_user_input_on_parent_path(gql, world, db, parent):
    slug = unique("u")
    resp = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": world.a.path(parent), "slug": slug, "name": "x", "level": "GRID"}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "parentPath")
    assert await units_with_slug(db, slug) == 0


async def test_unknown_tenant_in_parent_path_is_bad_user_input_on_parent_path(gql, world, db):
    slug = unique("u")
    resp = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": f"/{unique('ghost')}", "slug": slug, "name": "x", "level": "COUNTY"}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "parentPath")
    assert await units_with_slug(db, slug) == 0


async def test_duplicate_org_unit_slug_is_conflict_and_keeps_the_original(gql, world, db):
    resp = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": world.a.path(), "slug": "c1", "name": "冒名", "level": "COUNTY"}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("CONFLICT", "slug")
    unit = (await gql(UNIT, {"p": world.a.path("c1")}, token=world.a.token("admin"))).ok()
    assert unit["orgUnit"]["name"] == "c1"
    assert await count(db, OrgUnit, OrgUnit.path == world.a.path("c1")) == 1


@pytest.mark.parametrize(
    ("parent", "level"),
    [
        ("c1/t1/v1", "COUNTY"),
        ("", "CITY"),
        ("", "TOWNSHIP"),
        ("c1", "VILLAGE"),
        ("c1", "COUNTY"),
        ("c1/t1", "DEPARTMENT"),
        ("c1/t1/v1/g1", "GRID"),
        ("dept", "DEPARTMENT"),
    ],
)
async def test_level_not_allowed_under_parent_is_bad_user_input_on_level(
    gql, world, db, parent, level
):
    slug = unique("u")
    resp = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": world.a.path(parent), "slug": slug, "name": "x", "level": level}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "level")
    assert await units_with_slug(db, slug) == 0


async def test_unknown_level_literal_is_bad_user_input(gql, world, db):
    slug = unique("u")
    query = (
        'mutation { createOrgUnit(input: {parentPath: PARENT, slug: SLUG, name: "x", '
        "level: PLANET}) { path } }"
    )
    query = query.replace("PARENT", f'"{world.a.path()}"').replace("SLUG", f'"{slug}"')
    resp = await gql(query, token=world.a.token("admin"))
    assert resp.code == "BAD_USER_INPUT"
    assert resp.data is None
    assert await units_with_slug(db, slug) == 0


@pytest.mark.parametrize(
    "variables",
    [
        {"level": "PLANET"},
        {"level": None},
        {"slug": 7},
        {"name": ["x"]},
    ],
)
async def test_uncoercible_variables_are_bad_user_input_not_internal(gql, world, db, variables):
    slug = unique("u")
    unit = {"parentPath": world.a.path(), "slug": slug, "name": "x", "level": "COUNTY"}
    resp = await gql(CREATE_UNIT, {"i": {**unit, **variables}}, token=world.a.token("admin"))
    assert resp.codes == ["BAD_USER_INPUT"], resp.body
    assert "Internal server error" not in resp.errors[0]["message"]
    assert await units_with_slug(db, slug) == 0


async def test_missing_input_variable_is_bad_user_input(gql, world):
    resp = await gql(CREATE_UNIT, {}, token=world.a.token("admin"))
    assert resp.codes == ["BAD_USER_INPUT"], resp.body


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("parentPath", "/{a}/C1"),
        ("parentPath", "/{a}/c1/"),
        ("parentPath", "{a}/c1"),
        ("parentPath", "/{a}//c1"),
        ("parentPath", "/{a}/c_1"),
        ("parentPath", "/{a}/c1%"),
        ("parentPath", "/{a}/县"),
        ("parentPath", ""),
        ("slug", "New_Town"),
        ("slug", "a/b"),
        ("slug", "a%"),
        ("slug", "镇"),
        ("slug", ""),
        ("name", "   "),
    ],
)
async def test_paths_and_slugs_outside_lowercase_digits_dash_are_bad_user_input(
    gql, world, db, field, value
):
    slug = unique("u")
    unit = {"parentPath": world.a.path(), "slug": slug, "name": "x", "level": "COUNTY"}
    unit[field] = value.replace("{a}", world.a.slug)
    resp = await gql(CREATE_UNIT, {"i": unit}, token=world.a.token("admin"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", field)
    assert await units_with_slug(db, slug) == 0


# --- createUser ------------------------------------------------------------------------


async def test_city_admin_creates_user_who_can_sign_in_without_roles(gql, world, db):
    username = unique(f"{world.a.slug}_u")
    data = (
        await gql(
            CREATE_USER,
            {
                "i": {
                    "tenant": world.a.slug,
                    "username": username,
                    "displayName": "李四",
                    "phone": "138 0000 5678",
                }
            },
            token=world.a.token("admin"),
        )
    ).ok()["createUser"]
    assert data["username"] == username
    assert data["displayName"] == "李四"
    assert data["phone"] == "13800005678"
    me = (await gql(ME, token=issue_token(username))).ok()["me"]
    assert me["tenant"] == {"slug": world.a.slug}
    assert me["roles"] == []
    assert await count(db, User, User.username == username) == 1


async def test_another_citys_username_is_refused_without_saying_it_exists(gql, world, db):
    """Usernames are global; a city admin's new ones live in its city's namespace, checked
    before anything is looked up (issue 18, item 9: test_security_probe.py)."""
    taken = f"{world.a.slug}_officer"
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.b.slug, "username": taken, "displayName": "冒名"}},
        token=world.b.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    assert "taken" not in resp.errors[0]["message"]
    assert await count(db, User, User.username == taken) == 1
    own = f"{world.b.slug}_officer"
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.b.slug, "username": own, "displayName": "重名"}},
        token=world.b.token("admin"),
    )
    assert (resp.code, resp.field) == ("CONFLICT", "username")
    me = (await gql(ME, token=world.a.token("officer"))).ok()["me"]
    assert me["tenant"] == {"slug": world.a.slug}


async def test_duplicate_username_of_a_supervisor_is_conflict(gql, world, db):
    username = unique(f"{world.a.slug}_sup")  # platform staff name accounts freely
    (
        await gql(
            CREATE_SUPERVISOR,
            {"i": {"username": username, "displayName": "s", "province": world.a.province}},
            token=world.tokens["platform"],
        )
    ).ok()
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.a.slug, "username": username, "displayName": "x"}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("CONFLICT", "username")
    assert await count(db, User, User.username == username) == 0


@pytest.mark.parametrize(
    "phone", ["12345", "1380000123a", "23800001234", "138000012345", "+8613800001234", "电话"]
)
async def test_bad_phone_is_bad_user_input_on_phone(gql, world, db, phone):
    username = unique(f"{world.a.slug}_u")
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.a.slug, "username": username, "displayName": "x", "phone": phone}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "phone")
    assert not await account_exists(db, username)
    assert await count(db, User, User.username == username) == 0


@pytest.mark.parametrize("username", ["A", "Upper", "has space", "中文名", "x" * 65, ""])
async def test_bad_username_is_bad_user_input_on_username(gql, world, db, username):
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.a.slug, "username": username, "displayName": "x"}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    assert not await account_exists(db, username)


async def test_user_in_unknown_tenant_is_bad_user_input_on_tenant(gql, world, db):
    username = unique("u")
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": unique("ghost"), "username": username, "displayName": "x"}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "tenant")
    assert not await account_exists(db, username)


async def test_platform_admin_creates_user_in_any_tenant(gql, world, db):
    username = unique("u")
    resp = await gql(
        CREATE_USER,
        {"i": {"tenant": world.c.slug, "username": username, "displayName": "x"}},
        token=world.tokens["platform"],
    )
    assert resp.ok()["createUser"]["username"] == username
    me = (await gql(ME, token=issue_token(username))).ok()["me"]
    assert me["tenant"] == {"slug": world.c.slug}


# --- assignRole / revokeRole -----------------------------------------------------------


async def test_assigned_role_shows_in_me_and_revoke_removes_it(gql, world, db):
    username = await new_user(gql, world.a)
    grant = {"username": username, "role": "LEADER", "orgUnitPath": world.a.path("c2")}
    data = (await gql(ASSIGN, {"i": grant}, token=world.a.token("admin"))).ok()["assignRole"]
    assert data["roles"] == [{"role": "LEADER", "orgUnit": {"path": world.a.path("c2")}}]
    me = (await gql(ME, token=issue_token(username))).ok()["me"]
    assert me["roles"] == [{"role": "LEADER", "orgUnit": {"path": world.a.path("c2")}}]
    data = (await gql(REVOKE, {"i": grant}, token=world.a.token("admin"))).ok()["revokeRole"]
    assert data == {"username": username, "roles": []}
    assert await grants_of(db, username) == []


async def test_role_at_unit_of_another_tenant_is_bad_user_input_on_org_unit_path(gql, world, db):
    username = await new_user(gql, world.a)
    resp = await gql(
        ASSIGN,
        {"i": {"username": username, "role": "LEADER", "orgUnitPath": world.b.path("c1")}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "orgUnitPath")
    assert await grants_of(db, username) == []


async def test_platform_admin_cannot_grant_a_user_a_role_in_another_tenant(gql, world, db):
    username = await new_user(gql, world.a)
    resp = await gql(
        ASSIGN,
        {"i": {"username": username, "role": "LEADER", "orgUnitPath": world.b.path("c1")}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    assert await grants_of(db, username) == []


@pytest.mark.parametrize("role", ["PROVINCIAL_SUPERVISOR", "PLATFORM_ADMIN"])
async def test_staff_roles_cannot_be_assigned_at_an_org_unit(gql, world, db, role):
    username = await new_user(gql, world.a)
    for token in (world.a.token("admin"), world.tokens["platform"]):
        resp = await gql(
            ASSIGN,
            {"i": {"username": username, "role": role, "orgUnitPath": world.a.path()}},
            token=token,
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "role")
    assert await grants_of(db, username) == []


async def test_unknown_user_is_bad_user_input_on_username(gql, world, db):
    ghost = unique("ghost")
    before = await count(db, RoleAssignment)
    resp = await gql(
        ASSIGN,
        {"i": {"username": ghost, "role": "LEADER", "orgUnitPath": world.a.path()}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    assert await count(db, RoleAssignment) == before


async def test_user_of_another_tenant_looks_exactly_like_an_unknown_user(gql, world, db):
    other = f"{world.b.slug}_officer"
    ghost = f"{world.b.slug}_nobody"
    answers = []
    for username in (other, ghost):
        resp = await gql(
            ASSIGN,
            {"i": {"username": username, "role": "LEADER", "orgUnitPath": world.a.path()}},
            token=world.a.token("admin"),
        )
        answers.append((resp.code, resp.field, resp.errors[0]["message"].replace(username, "?")))
    assert answers[0][:2] == ("BAD_USER_INPUT", "username")
    assert answers[0] == answers[1]
    assert await grants_of(db, other) == [("PETITION_OFFICER", world.b.path())]


async def test_duplicate_grant_is_conflict_and_leaves_one_grant(gql, world, db):
    username = await new_user(gql, world.a)
    grant = {"username": username, "role": "PETITION_OFFICER", "orgUnitPath": world.a.path("c1")}
    (await gql(ASSIGN, {"i": grant}, token=world.a.token("admin"))).ok()
    resp = await gql(ASSIGN, {"i": grant}, token=world.a.token("admin"))
    assert resp.code == "CONFLICT"
    assert await grants_of(db, username) == [("PETITION_OFFICER", world.a.path("c1"))]


async def test_same_role_at_two_units_is_two_grants(gql, world, db):
    username = await new_user(gql, world.a)
    for rel in ("c1", "c2"):
        grant = {"username": username, "role": "PETITION_OFFICER", "orgUnitPath": world.a.path(rel)}
        (await gql(ASSIGN, {"i": grant}, token=world.a.token("admin"))).ok()
    assert await grants_of(db, username) == [
        ("PETITION_OFFICER", world.a.path("c1")),
        ("PETITION_OFFICER", world.a.path("c2")),
    ]


async def test_revoking_a_role_not_held_is_not_found_and_keeps_other_grants(gql, world, db):
    username = await new_user(gql, world.a)
    grant = {"username": username, "role": "LEADER", "orgUnitPath": world.a.path("c1")}
    (await gql(ASSIGN, {"i": grant}, token=world.a.token("admin"))).ok()
    for other in (
        {**grant, "role": "EVALUATOR"},
        {**grant, "orgUnitPath": world.a.path("c2")},
        {**grant, "role": "PROVINCIAL_SUPERVISOR"},
    ):
        resp = await gql(REVOKE, {"i": other}, token=world.a.token("admin"))
        assert resp.code == "NOT_FOUND", other
    assert await grants_of(db, username) == [("LEADER", world.a.path("c1"))]


async def test_revoke_at_unit_of_another_tenant_is_bad_user_input_on_org_unit_path(gql, world, db):
    target = f"{world.b.slug}_leader"
    resp = await gql(
        REVOKE,
        {"i": {"username": target, "role": "LEADER", "orgUnitPath": world.b.path()}},
        token=world.a.token("admin"),
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "orgUnitPath")
    assert await grants_of(db, target) == [("LEADER", world.b.path())]


async def test_role_mutations_with_bad_org_unit_path_are_bad_user_input(gql, world):
    username = f"{world.a.slug}_leader"
    for mutation in (ASSIGN, REVOKE):
        resp = await gql(
            mutation,
            {"i": {"username": username, "role": "LEADER", "orgUnitPath": "not/a/path"}},
            token=world.a.token("admin"),
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "orgUnitPath")


# --- createProvincialSupervisor --------------------------------------------------------


async def test_platform_admin_creates_provincial_supervisor(gql, world, db):
    username = unique("sup")
    data = (
        await gql(
            CREATE_SUPERVISOR,
            {"i": {"username": username, "displayName": "督查", "province": world.a.province}},
            token=world.tokens["platform"],
        )
    ).ok()["createProvincialSupervisor"]
    assert data == {
        "username": username,
        "displayName": "督查",
        "roles": [{"role": "PROVINCIAL_SUPERVISOR", "orgUnit": None}],
    }
    token = issue_token(username)
    me = (await gql(ME, token=token)).ok()["me"]
    assert me["tenant"] is None
    assert me["roles"] == [{"role": "PROVINCIAL_SUPERVISOR", "orgUnit": None}]
    slugs = {t["slug"] for t in (await gql(TENANTS, token=token)).ok()["tenants"]}
    assert slugs == {world.a.slug, world.b.slug}


@pytest.mark.parametrize("who", ["admin", "officer", "sup1", "sup2"])
async def test_create_provincial_supervisor_is_platform_admin_only(gql, world, db, who):
    token = world.tokens[who] if who in world.tokens else world.a.token(who)
    username = unique("sup")
    resp = await gql(
        CREATE_SUPERVISOR,
        {"i": {"username": username, "displayName": "x", "province": world.a.province}},
        token=token,
    )
    assert resp.code == "FORBIDDEN"
    assert not await account_exists(db, username)


async def test_unknown_province_is_bad_user_input_on_province(gql, world, db):
    username = unique("sup")
    resp = await gql(
        CREATE_SUPERVISOR,
        {"i": {"username": username, "displayName": "x", "province": unique("ghost")}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "province")
    assert not await account_exists(db, username)


async def test_supervisor_with_taken_username_is_conflict(gql, world, db):
    taken = f"{world.a.slug}_admin"
    resp = await gql(
        CREATE_SUPERVISOR,
        {"i": {"username": taken, "displayName": "x", "province": world.a.province}},
        token=world.tokens["platform"],
    )
    assert (resp.code, resp.field) == ("CONFLICT", "username")
    async with db.transaction() as session:
        account = await service.account_by_username(session, taken)
    assert account.kind == "TENANT_USER"
    assert await count(db, Account, Account.username == taken) == 1
