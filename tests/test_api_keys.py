"""API keys for integrations: minted by a city admin for a service account, shown once,
stored as argon2id, usable as ``ApiKey`` (or ``Bearer``) credentials with that account's
roles, revocable at once, invisible to other cities (never for a person: see
test_security_probe.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Uuid, bindparam, text

from backend.core.db import TenantScope
from backend.tenants.service import tenant_by_slug
from tests.case_helpers import REGISTER, register_input
from tests.helpers import build_city, unique

CREATE_USER = """mutation($i: CreateServiceAccountInput!) {
  createServiceAccount(input: $i) { username } }"""
ASSIGN = """mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"""
CREATE_KEY = """mutation($i: CreateApiKeyInput!) {
  createApiKey(input: $i) { key apiKey { id name username prefix lastUsedAt revokedAt } } }"""
REVOKE_KEY = """mutation($i: RevokeApiKeyInput!) { revokeApiKey(input: $i) { id revokedAt } }"""
KEYS = "{ apiKeys { id name username prefix lastUsedAt revokedAt } }"
ME = "{ me { username roles { role } } }"
LOG = "query($a: String) { adminAuditLog(action: $a) { action target before after } }"


@pytest.fixture(scope="module")
async def city(db):
    return await build_city(db, unique("ak"), unique("kp"))


async def _service_user(gql, city, role: str = "GRID_WORKER", rel: str = "c1/t1/v1/g1") -> str:
    username = unique(f"{city.slug}_hotline")
    admin = city.token("admin")
    user = {"tenant": city.slug, "username": username, "displayName": "12345 热线"}
    (await gql(CREATE_USER, {"i": user}, token=admin)).ok()  # a service account
    grant = {"username": username, "role": role, "orgUnitPath": city.path(rel)}
    (await gql(ASSIGN, {"i": grant}, token=admin)).ok()
    return username


async def _mint(gql, city, username: str) -> dict:
    resp = await gql(
        CREATE_KEY, {"i": {"username": username, "name": "12345"}}, token=city.token("admin")
    )
    return resp.ok()["createApiKey"]


async def _as_key(gql, query: str, key: str, variables=None, scheme: str = "ApiKey"):
    return await gql(query, variables, headers={"Authorization": f"{scheme} {key}"})


async def test_key_acts_as_its_service_user_and_is_stored_as_argon2(gql, db, city):
    username = await _service_user(gql, city)
    created = await _mint(gql, city, username)
    key = created["key"]
    assert key.startswith(f"xfk.{city.slug}.{created['apiKey']['prefix']}.")
    assert created["apiKey"]["username"] == username

    me = (await _as_key(gql, ME, key)).ok()["me"]
    assert me == {"username": username, "roles": [{"role": "GRID_WORKER"}]}
    assert (await _as_key(gql, ME, key, scheme="Bearer")).ok()["me"]["username"] == username
    intake = register_input(city, locationPath=city.path("c1/t1/v1/g1"), channel="PHONE")
    case = (await _as_key(gql, REGISTER, key, {"i": intake})).ok()["registerCase"]
    assert case["channel"] == "PHONE"

    async with db.transaction() as session:
        tid = (await tenant_by_slug(session, city.slug)).id
    async with db.transaction(TenantScope.of([tid])) as session:
        (stored,) = (
            await session.execute(
                text(
                    "SELECT secret_hash FROM api_keys WHERE tenant_id = :t AND prefix = :p"
                ).bindparams(bindparam("t", type_=Uuid())),
                {"t": tid, "p": created["apiKey"]["prefix"]},
            )
        ).one()
    assert stored.startswith("$argon2id$") and key.split(".")[-1] not in stored

    listed = (await gql(KEYS, token=city.token("admin"))).ok()["apiKeys"]
    mine = next(k for k in listed if k["id"] == created["apiKey"]["id"])
    assert mine["lastUsedAt"] is not None and "key" not in mine


async def test_wrong_or_forged_keys_are_401(gql, world, city):
    username = await _service_user(gql, city)
    key = (await _mint(gql, city, username))["key"]
    scheme, slug, prefix, secret = key.split(".")
    forged = [
        f"{scheme}.{slug}.{prefix}.{'A' * len(secret)}",  # right prefix, wrong secret
        f"{scheme}.{world.a.slug}.{prefix}.{secret}",  # another city's slug
        f"{scheme}.{slug}.{'0' * 12}.{secret}",  # unknown prefix
        "xfk.nonsense",
    ]
    for bad in forged:
        resp = await _as_key(gql, ME, bad)
        assert resp.status == 401 and resp.code == "UNAUTHENTICATED", bad
    assert (await gql(ME, headers={"Authorization": "ApiKey"})).status == 401


async def test_revocation_takes_effect_at_once(gql, city):
    username = await _service_user(gql, city)
    created = await _mint(gql, city, username)
    key = created["key"]
    assert (await _as_key(gql, ME, key)).status == 200  # now verified and cached
    revoked = await gql(
        REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, token=city.token("admin")
    )
    assert revoked.ok()["revokeApiKey"]["revokedAt"] is not None
    resp = await _as_key(gql, ME, key)
    assert resp.status == 401 and resp.code == "UNAUTHENTICATED"


async def test_other_cities_and_non_admins_cannot_touch_keys(gql, world, city):
    username = await _service_user(gql, city)
    created = await _mint(gql, city, username)
    other = world.a.token("admin")
    assert created["apiKey"]["id"] not in json.dumps((await gql(KEYS, token=other)).ok())
    stolen = await gql(REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, token=other)
    assert stolen.code == "NOT_FOUND"
    foreign = await gql(CREATE_KEY, {"i": {"username": username, "name": "x"}}, token=other)
    assert foreign.code == "BAD_USER_INPUT" and foreign.field == "username"
    officer = await gql(
        CREATE_KEY, {"i": {"username": username, "name": "x"}}, token=city.token("officer")
    )
    assert officer.code == "FORBIDDEN"
    assert (await gql(KEYS, token=city.token("officer"))).code == "FORBIDDEN"


async def test_no_keys_for_administrators(gql, city):
    resp = await gql(
        CREATE_KEY,
        {"i": {"username": f"{city.slug}_admin", "name": "x"}},
        token=city.token("admin"),
    )
    assert resp.code == "BAD_USER_INPUT" and resp.field == "username"


async def test_minting_and_revoking_are_audited_without_the_secret(gql, city):
    username = await _service_user(gql, city)
    created = await _mint(gql, city, username)
    (await gql(REVOKE_KEY, {"i": {"id": created["apiKey"]["id"]}}, token=city.token("admin"))).ok()
    log = (await gql(LOG, token=city.token("admin"))).ok()["adminAuditLog"]
    actions = [r["action"] for r in log[:2]]
    assert actions == ["revokeApiKey", "createApiKey"]
    assert log[1]["target"] == f"{username}:{created['apiKey']['prefix']}"
    dump = json.dumps(log)
    assert created["key"] not in dump and created["key"].split(".")[-1] not in dump
