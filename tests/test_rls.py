"""Wall (b): PostgreSQL row-level security under the app's own sessions, with raw SQL that
the ORM filter (wall a) never sees; the catalogue facts that make the policies bite; and
the subtree filter's index."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from backend.authz.principal import SYSTEM
from backend.authz.scope import subtree_filter
from backend.core.db import Database, TenantScope, set_local
from backend.core.settings import Settings, get_settings
from backend.tenants import service
from backend.tenants.models import OrgUnit
from tests.helpers import unique

pytestmark = pytest.mark.postgres

# Platform tables: the login directory maps a token to a tenant before any tenant is known.
PLATFORM_TABLES = {"accounts", "tenants"}
SUBTREE = "SELECT id FROM org_units WHERE tenant_id = :t AND (path = :p OR path LIKE :p || '/%')"


async def tenant_ids(db, *cities) -> list[uuid.UUID]:
    async with db.transaction() as session:
        return [(await service.tenant_by_slug(session, c.slug)).id for c in cities]


async def distinct_tenants(db, scope: TenantScope, table: str = "org_units") -> set[uuid.UUID]:
    async with db.session(scope) as session:
        rows = await session.execute(text(f"SELECT DISTINCT tenant_id FROM {table}"))
        return {r[0] for r in rows}


# --- (a) raw SQL through the app's session -----------------------------------------------


@pytest.mark.parametrize("table", ["org_units", "users", "role_assignments"])
async def test_raw_select_sees_only_the_scope_tenant(db, world, table):
    a, b, c = await tenant_ids(db, world.a, world.b, world.c)
    assert await distinct_tenants(db, TenantScope.of([a]), table) == {a}
    assert await distinct_tenants(db, TenantScope.of([c]), table) == {c}
    assert await distinct_tenants(db, TenantScope.of([a, b], read_only=True), table) == {a, b}


@pytest.mark.parametrize("table", ["org_units", "users", "role_assignments"])
async def test_raw_select_without_scope_sees_no_rows(db, world, table):
    async with db.session() as session:
        assert (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar() == 0


async def test_raw_select_with_a_filter_for_another_tenant_still_sees_nothing(db, world):
    a, b = await tenant_ids(db, world.a, world.b)
    async with db.session(TenantScope.of([a])) as session:
        rows = await session.execute(
            text("SELECT path FROM org_units WHERE tenant_id = :b"), {"b": b}
        )
        assert rows.all() == []


async def test_raw_insert_for_another_tenant_is_refused_by_with_check(db, world):
    a, b = await tenant_ids(db, world.a, world.b)
    with pytest.raises(DBAPIError, match="row-level security"):
        async with db.transaction(TenantScope.of([a])) as session:
            await session.execute(
                text(
                    "INSERT INTO org_units (tenant_id, id, parent_id, path, slug, name, level,"
                    " depth, created_at) VALUES (:b, :id, NULL, '/smuggled', 'smuggled',"
                    " 'x', 'CITY', 0, now())"
                ),
                {"b": b, "id": uuid.uuid4()},
            )
    async with db.session(TenantScope.of([b])) as session:
        found = await session.execute(text("SELECT 1 FROM org_units WHERE path = '/smuggled'"))
        assert found.all() == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("app.tenant_ids", "x'; RESET ROLE; --"), ("app.tenant_ids", "A1"), ("role", "postgres")],
)
def test_tenant_setting_splices_only_uuids_into_set_local(name, value):
    # SET takes no bind parameter: the value is checked before it is spliced in, and
    # nothing reaches the connection (None here) when the check fails
    with pytest.raises(ValueError, match="refusing setting"):
        set_local(None, name, value)


async def test_raw_update_cannot_move_a_row_into_another_tenant(db, world):
    a, b = await tenant_ids(db, world.a, world.b)
    # plain PostgreSQL: the policy's WITH CHECK; Citus refuses earlier, as tenant_id is the
    # distribution column ("modifying the partition value of rows is not allowed")
    with pytest.raises(DBAPIError, match=r"row-level security|partition value"):
        async with db.transaction(TenantScope.of([a])) as session:
            await session.execute(
                text("UPDATE users SET tenant_id = :b WHERE tenant_id = :a"), {"a": a, "b": b}
            )


async def test_raw_update_and_delete_of_another_tenant_touch_nothing(db, world):
    a, b = await tenant_ids(db, world.a, world.b)
    async with db.transaction(TenantScope.of([a])) as session:
        updated = await session.execute(
            text("UPDATE org_units SET name = 'hijacked' WHERE tenant_id = :b"), {"b": b}
        )
        deleted = await session.execute(
            text("DELETE FROM role_assignments WHERE tenant_id = :b"), {"b": b}
        )
        assert (updated.rowcount, deleted.rowcount) == (0, 0)
    async with db.session(TenantScope.of([b])) as session:
        names = await session.execute(
            text("SELECT count(*) FROM org_units WHERE name = 'hijacked'")
        )
        assert names.scalar() == 0


async def test_supervisor_scope_is_read_only(db, world):
    a, b = await tenant_ids(db, world.a, world.b)
    with pytest.raises(DBAPIError, match="read-only"):
        async with db.transaction(TenantScope.of([a, b], read_only=True)) as session:
            await session.execute(
                text("UPDATE org_units SET name = name WHERE tenant_id = :a"), {"a": a}
            )


async def test_sessions_run_as_the_app_role_with_a_transaction_local_scope(db, world):
    (a,) = await tenant_ids(db, world.a)
    async with db.session(TenantScope.of([a])) as session:
        row = (
            await session.execute(
                text(
                    "SELECT current_user, current_setting('is_superuser'),"
                    " current_setting('app.tenant_ids', true)"
                )
            )
        ).one()
    assert tuple(row) == (get_settings().db_app_role, "off", str(a))


async def test_pooled_connection_does_not_carry_a_tenant_into_the_next_session(world):
    """One pooled connection, used by a scoped session then an unscoped one."""
    one = Database(Settings(db_pool_size=1))
    try:
        a = (await tenant_ids(one, world.a))[0]
        async with one.session(TenantScope.of([a])) as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar()
            assert (await session.execute(text("SELECT count(*) FROM org_units"))).scalar() > 0
        async with one.session() as session:
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar() == pid
            assert (await session.execute(text("SELECT count(*) FROM org_units"))).scalar() == 0
        async with one.engine.connect() as conn:  # the owner, outside any app session
            row = (
                await conn.execute(
                    text(
                        "SELECT pg_backend_pid(), current_user <> :role,"
                        " coalesce(current_setting('app.tenant_ids', true), '')"
                    ),
                    {"role": get_settings().db_app_role},
                )
            ).one()
        assert tuple(row) == (pid, True, "")
    finally:
        await one.dispose()


# --- (b) the catalogue: every tenant table enables, forces and has a policy ---------------


async def tenant_tables(db) -> list[str]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.table_name FROM information_schema.columns c"
                " JOIN information_schema.tables t USING (table_schema, table_name)"
                " WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id'"
                " AND t.table_type = 'BASE TABLE' ORDER BY 1"
            )
        )
        return [r[0] for r in rows if r[0] not in PLATFORM_TABLES]


async def test_every_tenant_table_forces_rls_with_a_policy(db):
    tables = await tenant_tables(db)
    assert {"org_units", "users", "role_assignments"} <= set(tables)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
                " (SELECT count(*) FROM pg_policies p"
                "   WHERE p.schemaname = 'public' AND p.tablename = c.relname)"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relname = ANY(:tables)"
            ),
            {"tables": tables},
        )
        facts = {name: (rls, force, policies > 0) for name, rls, force, policies in rows}
    assert facts == dict.fromkeys(tables, (True, True, True))


async def test_every_tenant_table_shows_nothing_without_a_scope_and_one_tenant_with_one(db, world):
    (a,) = await tenant_ids(db, world.a)
    for table in await tenant_tables(db):
        async with db.session() as session:
            empty = await session.execute(text(f"SELECT count(*) FROM {table}"))
            assert empty.scalar() == 0, table
        assert await distinct_tenants(db, TenantScope.of([a]), table) <= {a}, table


async def test_every_tenant_policy_checks_writes_too(db):
    tables = await tenant_tables(db)
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT tablename, cmd, qual, with_check FROM pg_policies"
                " WHERE schemaname = 'public' AND tablename = ANY(:tables)"
            ),
            {"tables": tables},
        )
        policies = rows.all()
    for table in tables:
        mine = [p for p in policies if p.tablename == table]
        assert any(p.cmd == "ALL" and p.qual and p.with_check for p in mine), table
        assert all("app.tenant_ids" in (p.qual or "") for p in mine), table


# --- (c) the serving role can neither bypass RLS nor own a table --------------------------


async def test_serving_role_is_not_superuser_cannot_bypass_rls_and_owns_nothing(db):
    role = get_settings().db_app_role
    async with db.engine.connect() as conn:
        attrs = (
            await conn.execute(
                text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"),
                {"r": role},
            )
        ).one()
        owned = await conn.execute(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE r.rolname = :r AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            ),
            {"r": role},
        )
        assert owned.all() == []
    assert tuple(attrs) == (False, False)


async def test_serving_role_cannot_touch_the_migration_table(db):
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.session() as session:
            await session.execute(text("SELECT * FROM alembic_version"))


# --- (d) the subtree filter is answered from the text_pattern_ops index --------------------
#
# Under RLS the planner may use only *leakproof* operators as index conditions (a qual
# evaluated inside the index must not leak rows the policy hides). ``LIKE`` is not
# leakproof, so ``path LIKE :p || '/%'`` is a Filter over every row of the tenant; the
# byte range ``path ~>=~ (:p || '/') AND path ~<~ (:p || '0')`` is leakproof and is what
# ``backend.authz.scope.subtree_filter`` emits. Tiny test tables make any plan cheap, so
# each EXPLAIN runs with 5,000 extra units in A, analysed, in a rolled-back transaction.

BULK = 5000
RANGE_SUBTREE = (
    "SELECT id FROM org_units WHERE tenant_id = :t"
    " AND (path = :p OR (path ~>=~ (:p || '/') AND path ~<~ (:p || '0')))"
)


async def explain(db, world, sql: str, params: dict) -> str:
    """EXPLAIN as the serving role under A's RLS scope, with ``BULK`` extra units in A."""
    (a,) = await tenant_ids(db, world.a)
    async with db.session(TenantScope.of([a])) as session, session.begin() as tx:
        await session.execute(
            text(
                "INSERT INTO org_units (tenant_id, id, parent_id, path, slug, name, level,"
                " depth, created_at) SELECT :a, gen_random_uuid(), NULL,"
                " :root || '/bulk' || g, 'bulk' || g, 'x', 'COUNTY', 1, now()"
                " FROM generate_series(1, :n) g"
            ),
            {"a": a, "root": world.a.path(), "n": BULK},
        )
        await session.execute(text("RESET ROLE"))  # ANALYZE needs the table owner
        await session.execute(text("ANALYZE org_units"))
        await session.execute(text(f'SET LOCAL ROLE "{get_settings().db_app_role}"'))
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        rows = await session.execute(text(f"EXPLAIN {sql}"), params)
        plan = "\n".join(r[0] for r in rows)
        await tx.rollback()
    return plan


def index_conditions(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if "Index Cond" in line]


def app_subtree_sql(db, tenant_id: uuid.UUID, path: str) -> str:
    stmt = select(OrgUnit.id).where(
        OrgUnit.tenant_id == tenant_id, subtree_filter(OrgUnit.path, [path])
    )
    return str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))


# On Citus the plan is the coordinator's (a Custom Scan over a shard's plan) and the fixture's
# INSERT … SELECT generate_series runs as a COPY, which RLS refuses: these assert plain
# PostgreSQL's planner; the same predicate is pushed to the shard unchanged.
PLAN_ON_PLAIN_POSTGRES = pytest.mark.citus_incompatible(
    reason="asserts a plain-PostgreSQL index plan (shard plans sit under Citus's Custom Scan)"
)


@PLAN_ON_PLAIN_POSTGRES
@pytest.mark.parametrize("form", ["raw-range", "app-subtree-filter"])
async def test_subtree_filter_uses_the_tenant_path_prefix_index(db, world, form):
    (a,) = await tenant_ids(db, world.a)
    if form == "raw-range":
        plan = await explain(db, world, RANGE_SUBTREE, {"t": a, "p": world.a.path("c1")})
    else:
        plan = await explain(db, world, app_subtree_sql(db, a, world.a.path("c1")), {})
    assert "ix_org_units_tenant_path_prefix" in plan, plan
    conds = index_conditions(plan)
    assert any("~>=~" in c and "~<~" in c for c in conds), plan
    assert any("path)::text = " in c for c in conds), plan


@PLAN_ON_PLAIN_POSTGRES
async def test_like_subtree_filter_cannot_reach_the_path_index_under_rls(db, world):
    """The naive LIKE form: the index can at most find the tenant, the path is a Filter."""
    (a,) = await tenant_ids(db, world.a)
    plan = await explain(db, world, SUBTREE, {"t": a, "p": world.a.path("c1")})
    assert not any("path" in c for c in index_conditions(plan)), plan
    assert "~~" in plan, plan


async def test_like_is_not_leakproof_but_the_pattern_range_operators_are(db):
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT o.oprname, p.proleakproof FROM pg_operator o"
                " JOIN pg_proc p ON p.oid = o.oprcode"
                " WHERE o.oprleft = 'text'::regtype AND o.oprright = 'text'::regtype"
                " AND o.oprname IN ('=', '~~', '~>=~', '~<~')"
            )
        )
        leakproof = dict(rows.all())
    assert leakproof == {"=": True, "~~": False, "~>=~": True, "~<~": True}


async def test_subtree_filter_never_matches_a_sibling_sharing_the_prefix(db, world):
    lookalike = unique("c1")  # /a/c1xxxx is c1's sibling, not its child
    async with db.transaction() as session:
        await service.create_org_unit(
            session, SYSTEM, parent_path=world.a.path(), slug=lookalike, name="x", level="COUNTY"
        )
    (a,) = await tenant_ids(db, world.a)
    async with db.session(TenantScope.of([a])) as session:
        rows = await session.execute(
            select(OrgUnit.path).where(subtree_filter(OrgUnit.path, [world.a.path("c1")]))
        )
        paths = {r[0] for r in rows}
        raw = await session.execute(
            text(SUBTREE.replace("SELECT id", "SELECT path")), {"t": a, "p": world.a.path("c1")}
        )
        assert {r[0] for r in raw} == paths
    assert {world.a.path(p) for p in ("c1", "c1/t1", "c1/t2", "c1/t1/v1", "c1/t1/v1/g1")} <= paths
    assert all(p == world.a.path("c1") or p.startswith(world.a.path("c1") + "/") for p in paths)
    assert world.a.path(lookalike) not in paths
