"""Fill a migrated PostgreSQL database with a benchmark province (``xinfang bench-data``).

Tenants, their root units and default categories (and one provincial
supervisor) are created through the services, exactly as an operator would;
the bulk — org trees, officials, role assignments, cases with their events,
deadlines and counters — goes in with ``COPY`` (asyncpg
``copy_records_to_table``) as the database owner, which is what makes a
million cases load in minutes. Large runs split the tenants over worker
processes (one connection each), so the Python side and PostgreSQL keep both
cores busy.

Everything is drawn from ``random.Random(f"{seed}:{tenant}")``: the same seed
gives the same province (ids included), whatever the number of workers.
Case sizes are skewed (tenant ``k`` gets a share ∝ 1/(k+1)), so a few large
cities take most of the traffic. The invariants the app relies on hold:
``tenant_id`` on every row, unit paths consistent with ``parent_id``/depth,
per-tenant gap-free case numbers per year with the matching ``case_counters``
row, case ``due_at``/``warning_color`` mirroring the earliest open clock, and
valid event hash chains.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

from backend.benchdata import tree
from backend.benchdata.cases import (
    CASE_COLUMNS,
    DEADLINE_COLUMNS,
    EVENT_COLUMNS,
    CitySimulation,
    Rows,
)
from backend.cases.models import CaseStatus
from backend.core.progress import Progress, track

CITIES = [
    ("nanyang", "南阳市"), ("zhoukou", "周口市"), ("shangqiu", "商丘市"), ("zhumadian", "驻马店市"),
    ("zhengzhou", "郑州市"), ("xinyang", "信阳市"), ("luoyang", "洛阳市"), ("xinxiang", "新乡市"),
    ("anyang", "安阳市"), ("pingdingshan", "平顶山市"), ("kaifeng", "开封市"), ("xuchang", "许昌市"),
    ("puyang", "濮阳市"), ("jiaozuo", "焦作市"), ("luohe", "漯河市"), ("sanmenxia", "三门峡市"),
    ("hebi", "鹤壁市"), ("jiyuan", "济源市"),
]  # fmt: skip
CHUNK = 10_000  # cases per COPY round
PARALLEL_FROM = 50_000  # below this, one process is faster than spawning workers
BULK_FROM = 100_000  # from here on: no per-row FK triggers, the trigram index built at the end
DEFERRED_INDEXES = ("ix_cases_search_trgm",)  # GIN: far cheaper to build once than to grow


@dataclass(frozen=True)
class TenantSpec:
    rank: int
    tenant_id: uuid.UUID
    province_id: uuid.UUID
    root_id: uuid.UUID
    slug: str
    name: str
    prefix: str
    cases: int
    seed: int
    tenants: int
    bulk: bool = False


def sa_url(raw_url: str) -> str:
    return raw_url.replace("postgresql://", "postgresql+asyncpg://", 1)


def case_shares(cases: int, tenants: int) -> list[int]:
    """Cases per tenant ∝ 1/(rank+1), summing to ``cases`` exactly."""
    weights = [1 / (k + 1) for k in range(tenants)]
    total = sum(weights)
    shares = [int(cases * w / total) for w in weights]
    for k in range(cases - sum(shares)):
        shares[k % tenants] += 1
    return shares


async def generate(
    raw_url: str,
    *,
    cases: int,
    tenants: int,
    seed: int = 1,
    province: str = "benchprov",
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Create province ``province`` with ``tenants`` cities and ``cases`` cases in the
    migrated database at ``raw_url`` (a ``postgresql://`` URL of its owner).

    Returns a summary: per tenant its slug, id, root path, case count, a county
    petition officer (username and county path) and row counts; the supervisor's
    username; totals and the seconds each phase took.
    """
    with track("bench-data", total=cases, unit="cases") as bar:
        return await _generate(
            raw_url, cases, tenants, seed, province, workers, progress or bar.note, bar
        )


async def _generate(
    raw_url: str,
    cases: int,
    tenants: int,
    seed: int,
    province: str,
    workers: int | None,
    say: Callable[[str], None],
    bar: Progress,
) -> dict[str, Any]:
    started = time.perf_counter()
    specs, supervisor = await _create_tenants(raw_url, province, tenants, cases, seed)
    bulk = cases >= BULK_FROM and await _is_superuser(raw_url)
    specs = [replace(s, bulk=bulk) for s in specs]
    deferred = await _drop_indexes(raw_url, DEFERRED_INDEXES) if bulk else []
    say(f"{tenants} tenants created through the services ({time.perf_counter() - started:.1f}s)")
    n_workers = workers or (min(2, os.cpu_count() or 1) if cases >= PARALLEL_FROM else 1)
    loaded = time.perf_counter()
    try:
        if n_workers == 1:
            results = [await _load_tenant(raw_url, s, say, bar.advance) for s in specs]
        else:
            results = await _in_workers(raw_url, specs, n_workers, say, bar.advance)
    finally:  # the schema stays whole even when a load fails
        bulk_s = time.perf_counter() - loaded
        indexed = time.perf_counter()
        await _create_indexes(raw_url, deferred)
        indexes_s = time.perf_counter() - indexed
    if deferred:
        say(f"deferred indexes rebuilt ({indexes_s:.1f}s)")
    await _analyze(raw_url)
    totals = {
        k: sum(r[k] for r in results)
        for k in ("cases", "events", "deadlines", "units", "users", "roleAssignments")
    }
    return {
        "province": province,
        "seed": seed,
        "supervisor": supervisor,
        "tenants": sorted(results, key=lambda r: r["rank"]),
        **totals,
        "workers": n_workers,
        "bulkMode": bulk,
        "seconds": {
            "total": round(time.perf_counter() - started, 1),
            "bulk": round(bulk_s, 1),
            "indexes": round(indexes_s, 1),
        },
    }


async def _create_tenants(
    raw_url: str, province: str, tenants: int, cases: int, seed: int
) -> tuple[list[TenantSpec], str]:
    """Tenants, root units and categories through the services; one supervisor."""
    from backend.authz.principal import SYSTEM
    from backend.core.db import Database
    from backend.tenants import service
    from backend.tenants.flows import onboard_tenant

    shares = case_shares(cases, tenants)
    db = Database(url=sa_url(raw_url))
    specs = []
    try:
        async with db.transaction() as session:
            for rank in range(tenants):
                city, name = (
                    CITIES[rank] if rank < len(CITIES) else (f"city{rank + 1}", f"{rank + 1}市")
                )
                tenant, root = await onboard_tenant(
                    session,
                    SYSTEM,
                    slug=f"{province}-{city}",
                    name=name,
                    province=province,
                    province_name="基准省",
                    case_prefix=f"{city[:2].upper()}{rank:02d}",
                )
                specs.append(
                    TenantSpec(
                        rank=rank,
                        tenant_id=tenant.id,
                        province_id=tenant.province_id,
                        root_id=root.id,
                        slug=tenant.slug,
                        name=name,
                        prefix=tenant.case_prefix,
                        cases=shares[rank],
                        seed=seed,
                        tenants=tenants,
                    )
                )
            supervisor = f"{province}.supervisor"
            await service.create_provincial_supervisor(
                session,
                SYSTEM,
                username=supervisor,
                display_name="省信访局督查员",
                province=province,
            )
    finally:
        await db.dispose()
    return specs, supervisor


async def _in_workers(
    raw_url: str,
    specs: list[TenantSpec],
    n: int,
    say: Callable[[str], None],
    advance: Callable[[int], None],
) -> list[dict[str, Any]]:
    """Largest tenants first over ``n`` spawned processes (fresh interpreters, no fork): each
    free worker takes the next largest, and each city counts as done when it is."""
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        futures = [
            loop.run_in_executor(pool, _worker, raw_url, asdict(spec))
            for spec in sorted(specs, key=lambda s: -s.cases)
        ]
        results = []
        for done in asyncio.as_completed(futures):
            result = await done
            say(f"{result['slug']}: {result['cases']} cases")
            advance(result["cases"])
            results.append(result)
    return results


def _worker(raw_url: str, spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_load_tenant(raw_url, TenantSpec(**spec), None))


async def _load_tenant(
    raw_url: str,
    spec: TenantSpec,
    say: Callable[[str], None] | None,
    advance: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One city: tree, officials, roles, then its cases in time order, all by COPY."""
    import asyncpg

    rng = random.Random(f"{spec.seed}:{spec.rank}")
    now = datetime.now(UTC)
    started = time.perf_counter()
    conn = await asyncpg.connect(raw_url)
    try:
        # the owner is subject to FORCE'd row-level security unless it is a superuser
        await conn.execute("SELECT set_config('app.tenant_ids', $1, false)", str(spec.tenant_id))
        if spec.bulk:
            # rows are consistent by construction: skip the per-row foreign-key triggers
            # (superusers only, as pg_restore --disable-triggers does); small runs keep them
            await conn.execute("SET session_replication_role = replica")
        city = tree.build_city(
            rng,
            tree.CitySpec(
                tenant_id=spec.tenant_id,
                province_id=spec.province_id,
                slug=spec.slug,
                name=spec.name,
                root_id=spec.root_id,
                shape=tree.shape_for(spec.rank, spec.tenants),
                at=now,
            ),
        )
        await conn.copy_records_to_table("org_units", records=city.units, columns=tree.UNIT_COLUMNS)
        await conn.copy_records_to_table(
            "accounts", records=city.accounts, columns=tree.ACCOUNT_COLUMNS
        )
        await conn.copy_records_to_table("users", records=city.users, columns=tree.USER_COLUMNS)
        await conn.copy_records_to_table(
            "role_assignments", records=city.roles, columns=tree.ROLE_COLUMNS
        )
        categories = [
            (r["code"], r["name"])
            for r in await conn.fetch(
                "SELECT code, name FROM case_categories WHERE tenant_id = $1 AND active "
                "ORDER BY code",
                spec.tenant_id,
            )
        ]
        sim = CitySimulation(rng, city, prefix=spec.prefix, categories=categories, now=now)
        # every status at least once (when the tenant has that many cases), then traffic
        forced = list(CaseStatus)[: spec.cases] if spec.cases >= 2 * len(CaseStatus) else []
        skeletons = [sim.skeleton(status) for status in forced]
        skeletons += [sim.skeleton() for _ in range(spec.cases - len(forced))]
        skeletons.sort(key=lambda s: s.received_at)
        totals = {"cases": 0, "events": 0, "deadlines": 0}
        copying = 0.0
        for start in range(0, len(skeletons), CHUNK):
            rows = Rows()
            for sk in skeletons[start : start + CHUNK]:
                sim.replay(sk, rows)
            copy_started = time.perf_counter()
            await conn.copy_records_to_table("cases", records=rows.cases, columns=CASE_COLUMNS)
            await conn.copy_records_to_table(
                "case_deadlines", records=rows.deadlines, columns=DEADLINE_COLUMNS
            )
            await conn.copy_records_to_table(
                "case_events", records=rows.events, columns=EVENT_COLUMNS
            )
            copying += time.perf_counter() - copy_started
            totals["cases"] += len(rows.cases)
            totals["events"] += len(rows.events)
            totals["deadlines"] += len(rows.deadlines)
            if advance is not None:
                advance(len(rows.cases))
        await conn.executemany(
            "INSERT INTO case_counters (tenant_id, id, year, last, created_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            [
                (spec.tenant_id, uuid.UUID(int=rng.getrandbits(128), version=4), y, last, now)
                for y, last in sorted(sim.counters.items())
            ],
        )
    finally:
        await conn.close()
    county = city.counties[0] if city.counties else city.root
    result = {
        "rank": spec.rank,
        "slug": spec.slug,
        "id": str(spec.tenant_id),
        "root": city.root.path,
        "countyPath": county.path,
        "countyOfficer": county.officers[0][1],
        "units": len(city.units) + 1,
        "users": len(city.users),
        "roleAssignments": len(city.roles),
        **totals,
        "seconds": round(time.perf_counter() - started, 1),
        "copySeconds": round(copying, 1),
    }
    if say:
        say(f"{spec.slug}: {totals['cases']} cases, {result['roleAssignments']} role assignments "
            f"({result['seconds']}s, COPY of cases {result['copySeconds']}s)")  # fmt: skip
    return result


async def _is_superuser(raw_url: str) -> bool:
    import asyncpg

    conn = await asyncpg.connect(raw_url)
    try:
        return bool(
            await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        )
    finally:
        await conn.close()


async def _drop_indexes(raw_url: str, names: tuple[str, ...]) -> list[str]:
    """Drop ``names`` (when present); their definitions, to create them again."""
    import asyncpg

    conn = await asyncpg.connect(raw_url)
    try:
        rows = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE schemaname = 'public' AND indexname = ANY($1::text[])",
            list(names),
        )
        for row in rows:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        return [row["indexdef"] for row in rows]
    finally:
        await conn.close()


async def _create_indexes(raw_url: str, definitions: list[str]) -> None:
    import asyncpg

    if not definitions:
        return
    conn = await asyncpg.connect(raw_url)
    try:
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for definition in definitions:
            await conn.execute(definition)
    finally:
        await conn.close()


async def _analyze(raw_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(raw_url)
    try:
        for table in ("org_units", "users", "role_assignments", "cases", "case_deadlines",
                      "case_events", "accounts"):  # fmt: skip
            await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()
