"""The Citus layout (backend/core/citus.py) covers every table, from the models alone:
a table a migration adds must be placed in a list, and what is distributed by
``tenant_id`` must carry it in every key. Runs on every backend; the cluster itself is
checked by tests/test_citus.py. ``xinfang distribute`` refuses a database without Citus."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import ForeignKeyConstraint, UniqueConstraint
from typer.testing import CliRunner

from backend.core import citus
from backend.domains import metadata
from tests.conftest import IS_CITUS

LISTS = {"distributed": citus.DISTRIBUTED, "reference": citus.REFERENCE}
LISTS["coordinator"] = citus.COORDINATOR


def test_every_table_is_in_exactly_one_list():
    placed = [t for names in LISTS.values() for t in names]
    assert len(placed) == len(set(placed)), "a table is in two lists"
    unlisted = sorted(set(metadata.tables) - set(placed))
    assert not unlisted, f"place these in backend/core/citus.py: {unlisted}"
    assert not set(placed) - set(metadata.tables), "a listed table no longer exists"


def test_every_table_with_a_tenant_id_is_distributed_or_placed_on_purpose():
    with_tenant = {name for name, t in metadata.tables.items() if "tenant_id" in t.c}
    # accounts: the login directory, read before any tenant is known (platform users have
    # no tenant); admin_audit_log: platform actions have no tenant (module docstring)
    assert with_tenant - set(citus.DISTRIBUTED) == {"accounts", "admin_audit_log"}


@pytest.mark.parametrize("name", citus.DISTRIBUTED)
def test_distributed_tables_carry_tenant_id_in_every_key(name):
    table = metadata.tables[name]
    assert table.c.tenant_id.primary_key and not table.c.tenant_id.nullable
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            assert "tenant_id" in constraint.columns, constraint.name
        if isinstance(constraint, ForeignKeyConstraint):
            target = constraint.referred_table.name
            if target in citus.DISTRIBUTED:  # co-located: the key must pair tenant_id
                pairs = {(c.parent.name, c.column.name) for c in constraint.elements}
                assert ("tenant_id", "tenant_id") in pairs, constraint.name
            else:
                assert target in citus.REFERENCE, constraint.name
    for index in table.indexes:
        if index.unique:
            assert "tenant_id" in index.columns, index.name


def test_reference_tables_point_only_at_reference_tables():
    for name in (*citus.REFERENCE, *citus.COORDINATOR):
        for fk in metadata.tables[name].foreign_keys:
            assert fk.column.table.name in citus.REFERENCE, (name, fk.target_fullname)


@pytest.mark.skipif(IS_CITUS, reason="this database is a Citus coordinator")
async def test_distribute_refuses_a_database_without_citus(db):
    async with db.engine.connect() as conn:
        with pytest.raises(citus.NotCitus):
            await citus.distribute(conn)
    from backend.cli import app as cli

    result = await asyncio.to_thread(CliRunner().invoke, cli, ["distribute"])  # own loop
    assert result.exit_code == 2 and "refused" in result.output
