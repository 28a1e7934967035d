"""Generated artefacts stay in sync with the code, and the casbin policy keeps its promises:
realms do not mix, platform staff never read cases, supervisors never write."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLList, GraphQLNonNull

from backend.authz.enforcer import enforcer, role_may
from backend.authz.matrix import ROLES, permissions, render_markdown
from backend.authz.roles import TENANT_ROLES, Role
from backend.schema import build_schema, sdl
from backend.tenants.models import OrgUnitLevel

ROOT = Path(__file__).resolve().parent.parent
REALMS = ("tenant", "province", "platform")
TENANT_ROLE_NAMES = [r.value.lower() for r in TENANT_ROLES]


def xinfang(*args: str) -> list[str]:
    """The console script, as `uv run xinfang` (or the venv's own script without uv)."""
    uv = shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", "xinfang", *args]
    return [str(Path(sys.executable).with_name("xinfang")), *args]


# --- committed artefacts ------------------------------------------------------------------


def test_committed_schema_graphql_is_the_generated_sdl():
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert committed == sdl(), "schema.graphql is stale: run `make docs`"


def test_export_schema_command_prints_the_committed_sdl():
    out = subprocess.run(
        xinfang("export-schema"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "XF_LOG_LEVEL": "WARNING"},
    )
    assert out.stdout == (ROOT / "schema.graphql").read_text(encoding="utf-8")


def test_committed_authz_matrix_is_the_generated_one():
    committed = (ROOT / "docs" / "authz.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), "docs/authz.md is stale: run `make docs`"


# --- contract shape of the schema --------------------------------------------------------


# Bulk mutations (issue 21): ``inputs``, a non-null list of their single mutation's input.
BULK_MUTATIONS = {"registerCases": "registerCase"}


def test_every_mutation_takes_one_input_named_after_it():
    schema = build_schema()._schema
    for name, field in schema.mutation_type.fields.items():
        if name in BULK_MUTATIONS:
            single = BULK_MUTATIONS[name]
            assert list(field.args) == ["inputs"], name
            items = field.args["inputs"].type
            assert isinstance(items, GraphQLNonNull) and isinstance(items.of_type, GraphQLList)
            assert str(items.of_type.of_type) == f"{single[0].upper()}{single[1:]}Input!", name
            continue
        assert list(field.args) == ["input"], name
        arg_type = field.args["input"].type
        assert isinstance(arg_type, GraphQLNonNull), name
        assert isinstance(arg_type.of_type, GraphQLInputObjectType), name
        assert arg_type.of_type.name == name[0].upper() + name[1:] + "Input", name


def test_contract_enums_carry_the_domain_values():
    schema = build_schema()._schema
    level = schema.type_map["OrgUnitLevel"]
    role = schema.type_map["Role"]
    assert isinstance(level, GraphQLEnumType) and isinstance(role, GraphQLEnumType)
    assert (
        set(level.values)
        == {lv.value for lv in OrgUnitLevel}
        == {
            "CITY",
            "COUNTY",
            "TOWNSHIP",
            "VILLAGE",
            "GRID",
            "DEPARTMENT",
        }
    )
    assert {
        "CITY_ADMIN",
        "PETITION_OFFICER",
        "DEPARTMENT_HANDLER",
        "LEADER",
        "GRID_WORKER",
        "EVALUATOR",
    } <= set(role.values)
    assert set(role.values) == {r.value for r in Role}


def test_matrix_covers_every_role_in_its_realm():
    assert sorted(r for r, _ in ROLES) == sorted(r.value.lower() for r in Role)
    realms = dict(ROLES)
    assert all(realms[r] == "tenant" for r in TENANT_ROLE_NAMES)
    assert realms["platform_admin"] == "platform"
    assert realms["provincial_supervisor"] == "province"


# --- casbin: what the policy must never allow ----------------------------------------------


def policy_lines() -> list[list[str]]:
    return enforcer().get_policy()


def test_policy_only_names_known_realms():
    assert {p[1] for p in policy_lines()} <= set(REALMS)
    for _sub, _role, realm in enforcer().get_grouping_policy():
        assert realm in REALMS


@pytest.mark.parametrize("role", TENANT_ROLE_NAMES)
@pytest.mark.parametrize("realm", ["platform", "province"])
def test_tenant_role_is_denied_outside_the_tenant_realm(role, realm):
    allowed = [(o, a) for o, a in permissions() if role_may(role, realm, o, a)]
    assert allowed == []


@pytest.mark.parametrize("role", ["platform_admin", "provincial_supervisor"])
def test_staff_roles_are_denied_in_the_tenant_realm(role):
    assert [(o, a) for o, a in permissions() if role_may(role, "tenant", o, a)] == []


def test_staff_roles_are_denied_in_each_others_realm():
    assert not any(role_may("platform_admin", "province", o, a) for o, a in permissions())
    assert not any(role_may("provincial_supervisor", "platform", o, a) for o, a in permissions())


def test_unknown_role_is_denied_everything():
    for realm in REALMS:
        assert not any(role_may("intruder", realm, o, a) for o, a in permissions())
        assert not any(role_may("tenant_member", realm, "case", a) for _, a in permissions())


@pytest.mark.parametrize("realm", REALMS)
def test_platform_admin_never_touches_case_content(realm):
    case_actions = {a for o, a in permissions() if o == "case"}
    assert "read" in case_actions
    assert [a for a in sorted(case_actions) if role_may("platform_admin", realm, "case", a)] == []
    assert not any(p[0] == "platform_admin" and p[2] == "case" for p in policy_lines())


# Issue 8: the supervision order (省级督办, backend/stats/province.py) is the one write.
SUPERVISOR_WRITES = [("case", "supervise_city")]


def test_provincial_supervisor_has_no_write_action_but_the_supervision_order():
    lines = [p for p in policy_lines() if p[0] == "provincial_supervisor"]
    assert lines, "the policy names no supervisor rights"
    assert {p[3] for p in lines} == {"read", "supervise_city"}, lines
    writes = [(o, a) for o, a in permissions() if a != "read"]
    for realm in REALMS:
        allowed = [w for w in writes if role_may("provincial_supervisor", realm, *w)]
        assert allowed == (SUPERVISOR_WRITES if realm == "province" else [])
    inherited = [g for g in enforcer().get_grouping_policy() if g[0] == "provincial_supervisor"]
    assert inherited == []


def test_supervisor_reads_cases_and_stats_but_platform_admin_administers():
    assert role_may("provincial_supervisor", "province", "case", "read")
    assert role_may("provincial_supervisor", "province", "org_unit", "read")
    assert role_may("platform_admin", "platform", "tenant", "create")
    assert role_may("platform_admin", "platform", "supervisor", "create")
    assert not role_may("city_admin", "tenant", "supervisor", "create")
    assert not role_may("city_admin", "tenant", "tenant", "create")


def test_every_tenant_role_reads_the_org_tree_and_only_city_admin_administers_it():
    for role in TENANT_ROLE_NAMES:
        assert role_may(role, "tenant", "org_unit", "read"), role
        admin = role == "city_admin"
        for obj, act in (("org_unit", "create"), ("user", "create"), ("role", "assign")):
            assert role_may(role, "tenant", obj, act) is admin, (role, obj, act)
