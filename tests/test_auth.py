"""Authentication from the outside: bearer JWTs, 401s, and roles read per request."""

from __future__ import annotations

import jwt
import pytest

from backend.authz.tokens import issue_token
from backend.core.settings import ConfigurationError, Settings

ME = "{ me { username tenant { slug } roles { role orgUnit { path } } } }"


async def test_me_shows_tenant_and_roles(gql, world):
    data = (await gql(ME, token=world.a.token("c1_officer"))).ok()
    assert data["me"]["tenant"]["slug"] == world.a.slug
    assert data["me"]["roles"] == [
        {"role": "PETITION_OFFICER", "orgUnit": {"path": world.a.path("c1")}}
    ]


async def test_missing_token_is_401_unauthenticated(gql):
    resp = await gql(ME)
    assert resp.status == 401
    assert resp.code == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-jwt", "Basic abc", "Bearer", "Token x.y.z"],
)
async def test_malformed_token_is_401(http, header):
    resp = await http.post("/graphql", json={"query": ME}, headers={"Authorization": header})
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expired_token_is_401(gql, world):
    username = f"{world.a.slug}_officer"
    token = issue_token(username, ttl_seconds=-60)
    resp = await gql(ME, token=token)
    assert (resp.status, resp.code) == (401, "UNAUTHENTICATED")


async def test_forged_token_is_401(gql, world):
    forged = jwt.encode(
        {"sub": f"{world.a.slug}_admin", "iat": 0, "exp": 4102444800},
        "wrong-secret-wrong-secret-wrong-secret",
        algorithm="HS256",
    )
    resp = await gql(ME, token=forged)
    assert (resp.status, resp.code) == (401, "UNAUTHENTICATED")


async def test_token_without_exp_is_401(gql, world):
    from backend.core.settings import get_settings

    token = jwt.encode(
        {"sub": f"{world.a.slug}_admin", "iat": 0},
        get_settings().effective_jwt_secret,
        algorithm="HS256",
    )
    assert (await gql(ME, token=token)).status == 401


async def test_token_of_unknown_user_is_401(gql):
    resp = await gql(ME, token=issue_token("nobody-at-all"))
    assert (resp.status, resp.code) == (401, "UNAUTHENTICATED")


async def test_revoked_role_takes_effect_at_once(gql, world):
    admin = world.a.token("admin")
    username = f"{world.a.slug}_revokee"
    await gql(
        "mutation($i: CreateUserInput!) { createUser(input: $i) { username } }",
        {"i": {"tenant": world.a.slug, "username": username, "displayName": "R"}},
        token=admin,
    )
    assign = "mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"
    revoke = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { username roles { role } } }"
    grant = {"username": username, "role": "CITY_ADMIN", "orgUnitPath": world.a.path()}
    (await gql(assign, {"i": grant}, token=admin)).ok()
    token = issue_token(username)
    create_unit = "mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { path } }"
    unit = {"parentPath": world.a.path(), "slug": "rv1", "name": "x", "level": "COUNTY"}
    (await gql(create_unit, {"i": unit}, token=token)).ok()
    assert (await gql(revoke, {"i": grant}, token=admin)).ok()["revokeRole"]["roles"] == []
    unit["slug"] = "rv2"
    assert (await gql(create_unit, {"i": unit}, token=token)).code == "FORBIDDEN"


def test_production_refuses_dev_or_missing_secret():
    with pytest.raises(ConfigurationError):
        Settings(env="prod", jwt_secret=None).check_production_safety()
    from backend.core.settings import DEV_JWT_SECRET

    with pytest.raises(ConfigurationError):
        Settings(env="prod", jwt_secret=DEV_JWT_SECRET).check_production_safety()
    Settings(env="prod", jwt_secret="x" * 40).check_production_safety()


def test_production_app_refuses_to_start_without_secret():
    from backend.app import create_app

    with pytest.raises(ConfigurationError):
        create_app(Settings(env="prod", jwt_secret=None))
