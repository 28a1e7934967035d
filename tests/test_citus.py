"""On a Citus cluster (``make test-citus``: a coordinator and two workers): the tables sit
where backend/core/citus.py says, ``xinfang distribute`` is idempotent, a city moved to a
shard of its own keeps working and stays walled off, and a provincial supervisor's case
list is one distributed query over the province's shards, not one query per city."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text

from backend.core import citus
from backend.core.db import TenantScope, build_engine
from backend.core.settings import get_settings
from tests.case_helpers import register_input
from tests.helpers import build_city, create_supervisors, unique

pytestmark = pytest.mark.citus

REGISTER = "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id } }"
CASES = "query { cases(first: 50) { totalCount edges { node { id } } } }"
CASE = "query($id: ID!) { case(id: $id) { id } }"


def owner_dsn() -> str:
    return get_settings().database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def tenant_id_of(db, slug: str):
    async with db.transaction() as session:
        return await session.scalar(text("SELECT id FROM tenants WHERE slug = :s"), {"s": slug})


async def register(gql, city, n: int) -> str:
    data = register_input(city, locationPath=city.path("c1"), subject=f"citus {n}")
    return (await gql(REGISTER, {"i": data}, token=city.token("officer"))).ok()["registerCase"][
        "id"
    ]


async def visible(gql, token: str) -> set[str]:
    data = (await gql(CASES, token=token)).ok()["cases"]
    return {e["node"]["id"] for e in data["edges"]}


async def test_every_table_sits_where_the_layout_says(db):
    async with db.engine.connect() as conn:
        kinds = await citus.current_kinds(conn)
        groups = dict(
            (
                await conn.execute(
                    text("SELECT logicalrelid::regclass::text, colocationid FROM pg_dist_partition")
                )
            ).all()
        )
    for table in (*citus.DISTRIBUTED, *citus.REFERENCE, *citus.COORDINATOR):
        assert kinds.get(table) == citus.wanted_kind(table), table
    assert {groups[t] for t in citus.DISTRIBUTED} == {groups[citus.ANCHOR]}  # co-located


async def test_distribute_again_changes_nothing(db):
    async with db.engine.begin() as conn:
        layout = await citus.distribute(conn, echo=lambda _: None)
    assert not layout.changed and layout.foreign_keys == 0


LATER = (
    "CREATE TABLE later_notes (tenant_id uuid NOT NULL REFERENCES tenants (id),"
    " id uuid NOT NULL, case_id uuid NOT NULL, PRIMARY KEY (tenant_id, id))"
)
LATER_KEY = (
    "ALTER TABLE later_notes ADD CONSTRAINT fk_later_notes_case"
    " FOREIGN KEY (tenant_id, case_id) REFERENCES cases (tenant_id, id)"
)


def _in_migration(sync_conn, fn) -> None:
    """Run ``fn`` as a migration would: with alembic's ``op`` bound to ``sync_conn``."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    with Operations.context(MigrationContext.configure(sync_conn)):
        fn()


@pytest.mark.parametrize("how", ["xinfang distribute", "place_in_migration"])
async def test_a_table_a_later_migration_adds_is_placed_by_the_same_code(monkeypatch, how):
    owner = build_engine()
    try:
        async with owner.begin() as conn:
            await conn.execute(text(LATER))
        async with owner.begin() as conn:
            with pytest.raises(citus.UnlistedTables, match="later_notes"):
                await citus.distribute(conn, echo=lambda _: None)
        monkeypatch.setattr(citus, "DISTRIBUTED", (*citus.DISTRIBUTED, "later_notes"))
        async with owner.begin() as conn:
            if how == "xinfang distribute":
                layout = await citus.distribute(conn, echo=lambda _: None)
                assert layout.converted == {"later_notes": "distributed"}
            else:
                place = lambda: citus.place_in_migration("later_notes")  # noqa: E731
                await conn.run_sync(_in_migration, place)
            await conn.execute(text(LATER_KEY))  # co-located now: a key to cases is allowed
            kinds = await citus.current_kinds(conn)
        assert kinds["later_notes"] == "distributed"
    finally:
        async with owner.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS later_notes"))
        await owner.dispose()


async def test_tenant_scope_reaches_the_workers_as_set_local(db, gql):
    """The policies run on the workers: ``set_config`` stays on the coordinator (the
    worker sees no tenant, so no rows), the app's ``SET LOCAL`` travels with the query."""
    city = await build_city(db, unique("wk"), unique("wp"))
    await register(gql, city, 0)
    tid = await tenant_id_of(db, city.slug)
    async with db.session(TenantScope.of([tid])) as session:  # the app's own transaction
        assert await session.scalar(text("SELECT count(*) FROM cases")) == 1
    conn = await asyncpg.connect(owner_dsn())
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{get_settings().db_app_role}"')
            await conn.execute("SELECT set_config('app.tenant_ids', $1, true)", str(tid))
            count = await conn.fetchval("SELECT count(*) FROM cases WHERE tenant_id = $1", tid)
    finally:
        await conn.close()
    assert count == 0  # fails closed, not open


async def test_city_on_a_shard_of_its_own_keeps_working_and_stays_walled_off(db, gql):
    province = unique("cp")
    big, small = (
        await build_city(db, unique("big"), province),
        await build_city(db, unique("small"), province),
    )
    before = [await register(gql, big, n) for n in range(3)]
    theirs = await register(gql, small, 0)
    tid = await tenant_id_of(db, big.slug)

    conn = await asyncpg.connect(owner_dsn())
    try:
        shard = await conn.fetchval(
            "SELECT isolate_tenant_to_new_shard('cases', $1::uuid, cascade_option => 'CASCADE')",
            str(tid),
        )
        lo, hi = await conn.fetchrow(
            "SELECT shardminvalue, shardmaxvalue FROM pg_dist_shard WHERE shardid = $1", shard
        )
        colocated = await conn.fetchval(
            "SELECT count(*) FROM pg_dist_shard s JOIN pg_dist_partition p USING (logicalrelid)"
            " WHERE p.colocationid = (SELECT colocationid FROM pg_dist_partition"
            "   WHERE logicalrelid = 'cases'::regclass)"
            " AND s.shardminvalue = $1 AND s.shardmaxvalue = $2",
            lo,
            hi,
        )
    finally:
        await conn.close()
    assert lo == hi  # a hash range of one value: the city's own shard
    assert colocated == len(citus.DISTRIBUTED)  # every tenant table moved with it (CASCADE)

    after = await register(gql, big, 99)  # writes still route to it
    assert await visible(gql, big.token("officer")) == {*before, after}
    assert await visible(gql, small.token("officer")) == {theirs}
    refused = await gql(CASE, {"id": after}, token=small.token("officer"))
    assert refused.code == "NOT_FOUND"
    # wall (b) on the new shard: raw SQL in the small city's scope sees none of it
    small_id = await tenant_id_of(db, small.slug)
    async with db.session(TenantScope.of([small_id])) as session:
        seen = set(await session.scalars(text("SELECT DISTINCT tenant_id FROM cases")))
    assert seen == {small_id}


@contextmanager
def statements(engine) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def record(_conn, _cursor, statement, params, _context, _executemany) -> None:
        seen.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_supervisor_case_list_is_one_distributed_query(app, db, gql):
    province = unique("sp")
    cities = [await build_city(db, unique("sc"), province) for _ in range(4)]
    ids = {await register(gql, city, n) for n, city in enumerate(cities)}
    sup = (await create_supervisors(db, {"sup": province}))["sup"]

    with statements(app.state.db.engine) as seen:
        assert await visible(gql, sup) == ids
    on_cases = [(s, p) for s, p in seen if re.search(r"\bFROM cases\b", s)]
    assert len(on_cases) == 1  # the page with its total: one statement, not one per city

    scope = ",".join(sorted([str(await tenant_id_of(db, c.slug)) for c in cities]))
    conn = await asyncpg.connect(owner_dsn())
    try:
        async with conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{get_settings().db_app_role}"')
            await conn.execute(f"SET LOCAL app.tenant_ids = '{scope}'")
            statement, params = on_cases[0]
            rows = await conn.fetch(f"EXPLAIN {statement}", *(params or ()))
    finally:
        await conn.close()
    plan = "\n".join(r[0] for r in rows)
    # Citus runs the total (a scalar subquery) as a distributed subplan first, then the
    # page: each one parallel query over the shards holding the province's cities
    tasks = [int(n) for n in re.findall(r"Task Count: (\d+)", plan)]
    assert plan.count("Custom Scan (Citus Adaptive)") == len(tasks) == 2, plan
    assert all(1 <= n <= len(cities) for n in tasks), plan


BULK = "mutation($i: [RegisterCaseInput!]!) { registerCases(inputs: $i) { id number } }"


async def test_issue21_a_bulk_intake_is_routed_multi_row_values(app, db, gql):
    """registerCases on the cluster: the batch's cases, first events and clocks go in as
    multi-row ``INSERT … VALUES`` (routed to the city's shard; Citus refuses ``INSERT …
    SELECT`` into row-level-secured tables as a COPY), numbers gap-free in the list's
    order, the events' chain verifies."""
    from backend.cases.audit import verify_tenant_chain

    city = await build_city(db, unique("bk"), unique("bp"))
    inputs = [register_input(city, subject=f"citus bulk {n}") for n in range(37)]
    with statements(app.state.db.engine) as seen:
        cases = (await gql(BULK, {"i": inputs}, token=city.token("officer"))).ok()
    numbers = [int(c["number"].rsplit("-", 1)[1]) for c in cases["registerCases"]]
    assert numbers == list(range(1, 38))
    inserts = [s for s, _ in seen if s.lstrip().upper().startswith("INSERT")]
    for table in ("cases", "case_events", "case_deadlines"):
        into = [s for s in inserts if re.match(rf"\s*INSERT INTO {table} \(", s)]
        assert into and all(" VALUES " in s and " SELECT " not in s for s in into), into
        assert len(into) <= 3  # 37 = 32 + 4 + 1: one statement per chunk, not per case
    tid = await tenant_id_of(db, city.slug)
    async with db.transaction(TenantScope.of([tid])) as session:
        assert await verify_tenant_chain(session) == (37, None)
