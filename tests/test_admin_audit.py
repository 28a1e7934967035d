"""Admin audit log: one append-only row per admin action, committed with the change (or not
at all), without PII, readable by the city's admins and by platform staff only."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from backend.core.db import TenantScope
from backend.tenants.service import tenant_by_slug
from tests.case_helpers import register
from tests.helpers import build_city, unique

LOG = """query($t: String, $a: String, $first: Int! = 50, $before: String) {
  adminAuditLog(tenant: $t, action: $a, first: $first, before: $before) {
    id at tenant actor action target before after requestId via } }"""
CREATE_UNIT = """mutation($i: CreateOrgUnitInput!) { createOrgUnit(input: $i) { path } }"""
CREATE_USER = """mutation($i: CreateUserInput!) { createUser(input: $i) { username } }"""
ASSIGN = """mutation($i: AssignRoleInput!) { assignRole(input: $i) { username } }"""
REVOKE = """mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { username } }"""
POLICY = """mutation($i: UpdateTenantPolicyInput!) { updateTenantPolicy(input: $i) { redDays } }"""
WEBHOOK = """mutation($i: SetNotificationWebhookInput!) {
  setNotificationWebhook(input: $i) { webhookConfigured } }"""
CREATE_TENANT = """mutation($i: CreateTenantInput!) { createTenant(input: $i) { slug } }"""
CREATE_SUPERVISOR = """mutation($i: CreateProvincialSupervisorInput!) {
  createProvincialSupervisor(input: $i) { username } }"""


@pytest.fixture(scope="module")
async def cities(db):
    province = unique("ap")
    return await build_city(db, unique("au"), province), await build_city(
        db, unique("av"), province
    )


async def _log(gql, token, **variables):
    return (await gql(LOG, variables, token=token)).ok()["adminAuditLog"]


async def test_admin_mutations_write_rows_with_who_what_and_request_id(gql, cities):
    city, _ = cities
    admin = city.token("admin")
    request_id = uuid.uuid4().hex
    unit = (
        await gql(
            CREATE_UNIT,
            {
                "i": {
                    "parentPath": city.path("c2"),
                    "slug": "t9",
                    "name": "九镇",
                    "level": "TOWNSHIP",
                }
            },
            token=admin,
            headers={"X-Request-Id": request_id},
        )
    ).ok()["createOrgUnit"]
    (row,) = await _log(gql, admin, a="createOrgUnit", first=1)
    assert row["target"] == unit["path"] == city.path("c2/t9")
    assert row["actor"] == f"{city.slug}_admin" and row["tenant"] == city.slug
    assert row["requestId"] == request_id and row["via"] == "graphql"
    assert row["after"]["created"] == {"org_units": 1}
    assert row["after"]["input"]["name"] == "九镇"

    grant = {"username": f"{city.slug}_officer", "role": "LEADER", "orgUnitPath": city.path("c2")}
    (await gql(ASSIGN, {"i": grant}, token=admin)).ok()
    (await gql(REVOKE, {"i": grant}, token=admin)).ok()
    revoked, assigned = await _log(gql, admin, first=2)
    assert (assigned["action"], revoked["action"]) == ("assignRole", "revokeRole")
    assert assigned["after"]["created"] == {"role_assignments": 1}
    assert revoked["after"]["deleted"] == {"role_assignments": 1}
    assert revoked["target"] == city.path("c2")
    assert revoked["at"] >= assigned["at"]


async def test_a_refused_or_failed_action_leaves_no_row(gql, cities):
    city, _ = cities
    admin = city.token("admin")
    before = await _log(gql, admin, first=200)
    bad = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": city.path("nowhere"), "slug": "x", "name": "x", "level": "COUNTY"}},
        token=admin,
    )
    assert bad.code == "BAD_USER_INPUT"
    forbidden = await gql(  # an officer is not an administrator
        CREATE_UNIT,
        {"i": {"parentPath": city.path("c1"), "slug": "y", "name": "y", "level": "TOWNSHIP"}},
        token=city.token("officer"),
    )
    assert forbidden.code in {"FORBIDDEN", "BAD_USER_INPUT"}
    duplicate = await gql(
        CREATE_UNIT,
        {"i": {"parentPath": city.path(), "slug": "c1", "name": "dup", "level": "COUNTY"}},
        token=admin,
    )
    assert duplicate.code == "CONFLICT"
    assert await _log(gql, admin, first=200) == before


async def test_case_work_is_not_an_admin_action(gql, cities):
    city, _ = cities
    before = await _log(gql, city.token("admin"), first=200)
    await register(gql, city.token("officer"), city)
    assert await _log(gql, city.token("admin"), first=200) == before


async def test_policy_change_keeps_before_and_after(gql, cities):
    city, _ = cities
    admin = city.token("admin")
    (await gql(POLICY, {"i": {"redDays": 2, "yellowDays": 8}}, token=admin)).ok()
    (await gql(POLICY, {"i": {"redDays": 4, "yellowDays": 9}}, token=admin)).ok()
    (row,) = await _log(gql, admin, a="updateTenantPolicy", first=1)
    assert row["before"]["tenant_policies.data"]["redDays"] == 2
    assert row["after"]["changed"]["tenant_policies.data"]["redDays"] == 4
    assert row["after"]["input"]["red_days"] == 4


async def test_no_pii_or_secret_in_the_log(gql, cities):
    city, _ = cities
    admin = city.token("admin")
    phone, secret = "13987654321", "hook-secret-" + uuid.uuid4().hex
    username = unique(f"{city.slug}_svc")
    user = {"tenant": city.slug, "username": username, "displayName": "svc", "phone": phone}
    (await gql(CREATE_USER, {"i": user}, token=admin)).ok()
    hook = {"url": "https://hooks.example.com/audit", "secret": secret}
    (await gql(WEBHOOK, {"i": hook}, token=admin)).ok()
    rows = await _log(gql, admin, first=5)
    assert {"createUser", "setNotificationWebhook"} <= {r["action"] for r in rows}
    dump = json.dumps(rows, ensure_ascii=False)
    assert phone not in dump and secret not in dump
    created = next(r for r in rows if r["action"] == "createUser")
    assert created["target"] == user["username"]


async def test_each_city_sees_only_its_own_log(gql, cities):
    a, b = cities
    marker = unique("m")
    (
        await gql(
            CREATE_UNIT,
            {
                "i": {
                    "parentPath": a.path("c1"),
                    "slug": marker,
                    "name": marker,
                    "level": "TOWNSHIP",
                }
            },
            token=a.token("admin"),
        )
    ).ok()
    seen_by_b = await _log(gql, b.token("admin"), first=200)
    assert marker not in json.dumps(seen_by_b)
    assert all(r["tenant"] == b.slug for r in seen_by_b)
    assert await _log(gql, b.token("admin"), t=a.slug) == []  # naming the other city: nothing
    assert (await gql(LOG, token=a.token("officer"))).code == "FORBIDDEN"
    assert (await gql(LOG, token=a.token("leader"))).code == "FORBIDDEN"


async def test_supervisors_cannot_read_the_log(gql, world):
    assert (await gql(LOG, token=world.tokens["sup1"])).code == "FORBIDDEN"


async def test_platform_actions_are_logged_for_platform_staff(gql, world):
    platform = world.tokens["platform"]
    slug, province = unique("pt"), unique("pv")
    body = {"slug": slug, "name": "新城", "province": province}
    (await gql(CREATE_TENANT, {"i": body}, token=platform)).ok()
    sup = {"username": unique("sup"), "displayName": "s", "province": province}
    (await gql(CREATE_SUPERVISOR, {"i": sup}, token=platform)).ok()
    (row,) = await _log(gql, platform, t=slug)
    assert (row["action"], row["tenant"], row["target"]) == ("createTenant", slug, slug)
    platform_rows = await _log(gql, platform, a="createProvincialSupervisor")
    assert any(r["target"] == sup["username"] and r["tenant"] is None for r in platform_rows)
    # a city admin never sees platform rows, nor the new city's
    assert await _log(gql, world.a.token("admin"), a="createProvincialSupervisor") == []


async def test_cli_admin_commands_are_logged(gql, world):
    from backend.cli import app as cli

    username = unique("boot")
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["create-platform-admin", username])
    assert result.exit_code == 0, result.output
    rows = await _log(gql, world.tokens["platform"], a="createPlatformAdmin")
    (row,) = [r for r in rows if r["target"] == username]
    assert row["via"] == "cli" and row["actor"] == "system"


async def test_paging_newest_first(gql, cities):
    city, _ = cities
    admin = city.token("admin")
    first_page = await _log(gql, admin, first=2)
    second_page = await _log(gql, admin, first=2, before=first_page[-1]["id"])
    assert first_page[0]["at"] >= first_page[1]["at"] >= second_page[0]["at"]
    assert not {r["id"] for r in first_page} & {r["id"] for r in second_page}


@pytest.mark.postgres
async def test_append_only_in_postgresql(db, gql, cities):
    city, _ = cities
    async with db.transaction() as session:
        tid = (await tenant_by_slug(session, city.slug)).id
    for sql in (
        "UPDATE admin_audit_log SET action = 'tampered' WHERE tenant_id = :t",
        "DELETE FROM admin_audit_log WHERE tenant_id = :t",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction(TenantScope.of([tid])) as session:
                await session.execute(
                    text(sql).bindparams(bindparam("t", type_=Uuid())), {"t": tid}
                )
    # the owner cannot either (the trigger fires for everyone)
    from backend.core.db import build_engine

    engine = build_engine()
    try:
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM admin_audit_log"))
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_rls_hides_other_cities_rows_from_raw_sql(db, cities):
    a, _ = cities
    async with db.transaction() as session:
        ta = (await tenant_by_slug(session, a.slug)).id
    async with db.session(TenantScope.of([ta])) as session:
        rows = await session.execute(text("SELECT DISTINCT tenant_id FROM admin_audit_log"))
        assert {r[0] for r in rows} <= {ta}  # nor the platform's NULL rows


SUPERVISE = """mutation($i: SuperviseCityInput!) { superviseCity(input: $i) { tenant eventSeq } }"""


async def test_provincial_supervision_is_logged_in_the_city(gql, world):
    case = await register(gql, world.a.token("officer"), world.a)
    note = {"caseId": case["id"], "note": "请于十日内办结"}
    (await gql(SUPERVISE, {"i": note}, token=world.tokens["sup1"])).ok()
    (row,) = await _log(gql, world.a.token("admin"), a="superviseCity", first=1)
    # no case id in the city admin's log (Art. 30: the admin may sit in an accused unit);
    # the order itself is an event on the case
    assert row["target"] is None and row["tenant"] == world.a.slug
    assert case["id"] not in str(row)
    assert row["actor"].startswith("sup1") and row["after"]["created"]["case_events"] == 1
