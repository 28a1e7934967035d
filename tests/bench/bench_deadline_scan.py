"""Benchmark: the deadline scan and the red digest over N open cases in PostgreSQL.

    uv run python -m tests.bench.bench_deadline_scan --cases 20000 [--tenants 20] [--db NAME]

Creates a fresh database (``--db``, dropped afterwards unless ``--keep``),
migrates it, builds ``--tenants`` cities through the services (a county and
township tree with a petition officer and a leader at every unit), then loads
the open cases and their open steps with COPY (seeded, reproducible). Stored
colours are those of ``--drift-days`` ago, so the first scan does what the first
scan of a day does in production: recolour the cases that crossed a threshold,
mark the steps that fell overdue, record an event for each.

The measured part runs in a child process (so the seeding does not count in
its peak RSS): the scan of every tenant, the same scan again (must change
nothing), then the digest job (its own quick scan, then the messages). It
prints a table of wall time, SQL statements and rows, and the child's peak
RSS. Not part of the pytest run (no ``test_`` prefix); issue 9 runs it at 1M.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

COUNTIES, TOWNSHIPS = 5, 4
CHANNELS = ("VISIT", "LETTER", "PHONE", "ONLINE", "QR_CODE")
TYPES = ("SUGGESTION", "ACCUSATION", "CLAIM")
CATEGORIES = ("land", "wages", "housing", "labor", "medical", "education", "environment", "other")


# --- seeding ---------------------------------------------------------------------------------


async def _build_tenants(n: int, run: str) -> list[dict[str, Any]]:
    """Cities through the services; returns per tenant its id and units with their officials."""
    from backend.authz.principal import SYSTEM
    from backend.authz.roles import Role
    from backend.core.db import Database
    from backend.tenants import service
    from backend.tenants.flows import onboard_tenant
    from backend.tenants.models import OrgUnitLevel

    db = Database()
    tenants = []
    try:
        for t in range(n):
            slug = f"b{run}{t:02d}"
            async with db.transaction() as session:
                tenant, root = await onboard_tenant(
                    session, SYSTEM, slug=slug, name=f"Bench {t}", province=f"bp{run}"
                )
                units = [(root.id, root.path)]
                for c in range(COUNTIES):
                    county = await service.create_org_unit(
                        session,
                        SYSTEM,
                        parent_path=root.path,
                        slug=f"c{c}",
                        name=f"c{c}",
                        level=OrgUnitLevel.COUNTY,
                    )
                    units.append((county.id, county.path))
                    for w in range(TOWNSHIPS):
                        town = await service.create_org_unit(
                            session,
                            SYSTEM,
                            parent_path=county.path,
                            slug=f"t{w}",
                            name=f"t{w}",
                            level=OrgUnitLevel.TOWNSHIP,
                        )
                        units.append((town.id, town.path))
                leaders = []
                for i, (_, path) in enumerate(units):
                    for role in (Role.PETITION_OFFICER, Role.LEADER):
                        username = f"{slug}_{role.value.lower()[:3]}{i}"
                        user = await service.create_user(
                            session, SYSTEM, tenant=slug, username=username, display_name=username
                        )
                        await service.assign_role(
                            session, SYSTEM, username=username, role=role, org_unit_path=path
                        )
                        if role is Role.LEADER:
                            leaders.append(user.id)
            tenants.append(
                {
                    "id": tenant.id,
                    "slug": slug,
                    "units": units,
                    "leaders": leaders,
                    "by": leaders[0],
                }
            )
    finally:
        await db.dispose()
    return tenants


def _colour(due_at: datetime, at: datetime, tz: Any) -> str:
    days_left = (due_at.astimezone(tz).date() - at.astimezone(tz).date()).days
    if due_at < at or days_left <= 3:
        return "RED"
    return "YELLOW" if days_left <= 10 else "BLUE"


async def _copy_cases(
    url: str, tenants: list[dict[str, Any]], n: int, seed: int, drift: int
) -> None:
    """COPY n open cases and their open steps, spread over the tenants (owner: no RLS)."""
    import asyncpg

    from backend.cases.rules import DeadlinePolicy, end_of_day

    policy = DeadlinePolicy()
    tz = policy.tz
    rng = random.Random(seed)
    current = datetime.now(UTC)
    then = current - timedelta(days=drift)
    today = current.astimezone(tz).date()
    case_cols = [
        "tenant_id",
        "id",
        "number",
        "client_key",
        "payload_hash",
        "channel",
        "type",
        "category",
        "subject",
        "content",
        "priority",
        "tags",
        "head_count",
        "petitioner_name",
        "location_unit_id",
        "location_path",
        "holder_unit_id",
        "holder_path",
        "leader_id",
        "registered_by_id",
        "status",
        "version",
        "received_at",
        "due_at",
        "warning_color",
        "red_since",
        "repeat_count",
        "skip_level",
        "extension_approved",
        "updated_at",
        "created_at",
    ]
    step_cols = [
        "tenant_id",
        "id",
        "case_id",
        "step",
        "status",
        "started_at",
        "due_date",
        "due_at",
        "rule",
        "warning_color",
        "held_days",
        "created_at",
        "overdue_since",
    ]
    conn = await asyncpg.connect(url)
    try:
        batch = 20_000
        for start in range(0, n, batch):
            cases, steps = [], []
            for i in range(start, min(n, start + batch)):
                t = tenants[i % len(tenants)]
                unit_id, path = t["units"][1 + rng.randrange(len(t["units"]) - 1)]
                due_date = today + timedelta(days=rng.randint(-20, 60))
                due_at = end_of_day(due_date, policy)
                step = "ACCEPTANCE" if rng.random() < 0.4 else "HANDLING"
                started = due_at - timedelta(days=15 if step == "ACCEPTANCE" else 60)
                colour = _colour(due_at, then, tz)
                red_since = then if colour == "RED" else None
                cid = uuid.UUID(int=rng.getrandbits(128))
                cases.append(
                    (
                        t["id"],
                        cid,
                        f"BN-{i:09d}",
                        f"bench-{i}",
                        "0" * 64,
                        rng.choice(CHANNELS),
                        rng.choice(TYPES),
                        rng.choice(CATEGORIES),
                        f"bench case {i}",
                        "内容" * 20,
                        "NORMAL",
                        "[]",
                        1,
                        "张三",
                        unit_id,
                        path,
                        unit_id,
                        path,
                        rng.choice(t["leaders"]) if rng.random() < 0.1 else None,
                        t["by"],
                        "ACCEPTED" if step == "HANDLING" else "ROUTED",
                        3,
                        started - timedelta(days=1),
                        due_at,
                        colour,
                        red_since,
                        0,
                        "NONE",
                        False,
                        started,
                        started,
                    )
                )
                steps.append(
                    (
                        t["id"],
                        uuid.UUID(int=rng.getrandbits(128)),
                        cid,
                        step,
                        "OPEN",
                        started,
                        due_date,
                        due_at,
                        "{}",
                        colour,
                        0,
                        started,
                        then if due_at < then else None,
                    )
                )
            await conn.copy_records_to_table("cases", records=cases, columns=case_cols)
            await conn.copy_records_to_table("case_deadlines", records=steps, columns=step_cols)
        await conn.execute("ANALYZE")  # every table, as autovacuum would have by now
    finally:
        await conn.close()


# --- the measured part (child process) ----------------------------------------------------

# The limit a scan is compared with, on raw asyncpg as the owner (no RLS, no ORM, no events):
# the cases' colour changes as one bare UPDATE (rolled back), and a count of the open steps.
NEW_COLOUR = "CASE WHEN due_at <= $1 THEN 'RED' WHEN due_at <= $2 THEN 'YELLOW' ELSE 'BLUE' END"
BARE_RECOLOUR = f"""
UPDATE cases SET warning_color = {NEW_COLOUR}
WHERE due_at IS NOT NULL AND status <> 'CLOSED' AND warning_color <> {NEW_COLOUR}
"""
BARE = "bare UPDATE of the changed colours (rolled back)"
COUNT_OPEN = "SELECT count(*) FROM case_deadlines WHERE status = 'OPEN'"


async def _baselines(raw_url: str) -> dict[str, Any]:
    import asyncpg

    from backend.cases.rules import DeadlinePolicy
    from backend.jobs.deadlines import thresholds

    red_until, yellow_until = thresholds(datetime.now(UTC), DeadlinePolicy())
    conn = await asyncpg.connect(raw_url)
    out: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        n = await conn.fetchval(COUNT_OPEN)
        out["count(*) open steps"] = {"seconds": time.perf_counter() - started, "rows": n}
        started = time.perf_counter()
        async with conn.transaction():
            status = await conn.execute(BARE_RECOLOUR, red_until, yellow_until)
            seconds = time.perf_counter() - started
            raise _Rollback
    except _Rollback:
        out[BARE] = {"seconds": seconds, "rows": int(status.split()[-1])}
    finally:
        await conn.close()
    return out


class _Rollback(Exception):
    pass


async def _measure(raw_url: str, profile: str | None, digest: bool) -> dict[str, Any]:
    from sqlalchemy import event

    from backend.core.db import Database
    from backend.jobs.context import warm_up
    from backend.jobs.deadlines import deadline_scan
    from backend.jobs.digest import red_digest

    out: dict[str, Any] = {"baselines": await _baselines(raw_url), "phases": {}}
    warm_up()  # what the worker does at start (backend/jobs/context.py)
    db = Database()
    statements = {"n": 0}

    # per statement shape (its first words): how many, and the seconds until the driver
    # returned — where the database time of a phase goes, next to the Python profile
    by_kind: dict[str, list[float]] = {}

    def count(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        statements["n"] += 1
        conn.info["bench_started"] = time.perf_counter()

    def timed(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        kind = " ".join(sql.split()[:6])[:70]
        entry = by_kind.setdefault(kind, [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    event.listen(db.engine.sync_engine, "after_cursor_execute", timed)
    profiler = None
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="enabled")
    try:
        for phase, job, ctx in (
            ("scan", deadline_scan, {}),
            ("scan again (no-op)", deadline_scan, {}),
            ("digest", red_digest, {"force": True}),
        ):
            if phase == "digest" and not digest:
                continue
            statements["n"] = 0
            by_kind.clear()
            if profiler and phase == profile:
                profiler.start()
            started = time.perf_counter()
            result = await job({"db": db, "runner": "bench", **ctx})
            seconds = time.perf_counter() - started
            if profiler and phase == profile:
                profiler.stop()
                print(profiler.output_text(unicode=True, show_all=False), file=sys.stderr)
            out["phases"][phase] = {
                "seconds": seconds,
                "statements": statements["n"],
                "slowest": sorted(
                    ([k, n, round(t, 3)] for k, (n, t) in by_kind.items()), key=lambda e: -e[2]
                )[:8],
                "result": result,
            }
    finally:
        await db.dispose()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


DETAIL_KEYS = (
    "cases",
    "steps",
    "overdue",
    "overdueCleared",
    "redSinceFixed",
    "digests",
    "escalations",
    "supervisionOverdue",
    "notifications",
)


def _table(args: argparse.Namespace, seed_s: float | None, m: dict[str, Any]) -> str:
    from tests.bench.common import format_table

    bare = m["baselines"][BARE]["seconds"]
    rows: list[list[Any]] = []
    for name, b in m["baselines"].items():
        rows.append(
            [f"baseline: {name}", b["seconds"], 1, f"rows={b['rows']}", b["seconds"] / bare]
        )
    for phase, p in m["phases"].items():
        r = p["result"]
        detail = " ".join(f"{k}={r[k]}" for k in DETAIL_KEYS if k in r)
        rows.append([phase, p["seconds"], p["statements"], detail, p["seconds"] / bare])
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    title = f"deadline scan + red digest: {args.cases:,} open cases, {args.tenants} tenants"
    if seed_s is not None:
        title += f" (seeded in {seed_s:.0f} s)"
    table = format_table(title, ["phase", "seconds", "SQL stmts", "rows", "× bare UPDATE"], rows)
    slow = "\n".join(
        f"  {phase}: {n}× {t:.2f} s  {kind}"
        for phase, p in m["phases"].items()
        for kind, n, t in p.get("slowest", [])[:4]
    )
    return (
        f"{table}\n\npeak RSS of the measuring process (the worker): {m['peak_rss_mb']} MB;"
        f" load average {load}; targets: scan < 5 s, digest < 5 s, RSS < 300 MB"
        f"\n\nstatements by time until the driver returned (top 4 per phase):\n{slow}"
    )


# --- driver ---------------------------------------------------------------------------------


async def _exists(name: str) -> bool:
    import asyncpg

    from tests.bench.common import ADMIN_URL

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


async def _repack(raw_url: str) -> None:
    """Rewrite ``cases`` with its fillfactor (what ``VACUUM FULL``/pg_repack does once after
    migration 0011 in production): room on every page for HOT colour updates."""
    import asyncpg

    conn = await asyncpg.connect(raw_url)
    try:
        await conn.execute("VACUUM FULL cases")
        await conn.execute("ANALYZE cases")
    finally:
        await conn.close()


def _seed(args: argparse.Namespace, name: str, keep: bool) -> float:
    """Create, migrate and fill database ``name``; the seconds it took."""
    from tests.bench.common import fresh_database

    started = time.perf_counter()
    with fresh_database(name, keep=keep) as (raw_url, _):
        tenants = asyncio.run(_build_tenants(args.tenants, uuid.uuid4().hex[:4]))
        asyncio.run(_copy_cases(raw_url, tenants, args.cases, args.seed, args.drift_days))
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--drift-days", type=int, default=1, help="age of the stored colours")
    parser.add_argument("--db", default=f"xf_bench_scan_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--seed-cache",
        metavar="NAME",
        help="seed database NAME once (kept) and measure on a copy of it (CREATE … TEMPLATE);"
        " colours drift with the days since it was seeded",
    )
    parser.add_argument(
        "--profile",
        metavar="PHASE",
        help="pyinstrument profile of one phase ('scan', 'digest', …) on stderr",
    )
    parser.add_argument("--no-digest", action="store_true", help="measure the scans only")
    parser.add_argument(
        "--repack",
        action="store_true",
        help="VACUUM FULL cases before measuring: a --seed-cache database seeded before"
        " migration 0011 then has the free space (fillfactor 85) a fresh seed has",
    )
    parser.add_argument("--measure", metavar="RAW_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:  # the child: XF_DATABASE_URL points at the seeded database
        print(
            json.dumps(
                asyncio.run(_measure(args.measure, args.profile, not args.no_digest)), default=str
            )
        )
        return 0

    from tests.bench.common import admin, fresh_database, write_results

    seed_s: float | None = None
    if args.seed_cache:
        if not asyncio.run(_exists(args.seed_cache)):
            seed_s = _seed(args, args.seed_cache, keep=True)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
        asyncio.run(admin(f'CREATE DATABASE "{args.db}" TEMPLATE "{args.seed_cache}"'))
        database = fresh_database(args.db, reuse=True)
    else:
        seed_s = _seed(args, args.db, keep=True)
        database = fresh_database(args.db, reuse=True)
    try:
        with database as (raw_url, url):
            if args.repack:
                asyncio.run(_repack(raw_url))
            child = subprocess.run(
                [sys.executable, "-m", "tests.bench.bench_deadline_scan", "--measure", raw_url]
                + (["--profile", args.profile] if args.profile else [])
                + (["--no-digest"] if args.no_digest else []),
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "XF_DATABASE_URL": url},
                check=False,
            )
        if child.returncode != 0:
            print(child.stdout, file=sys.stderr)
            return child.returncode
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        print(_table(args, seed_s, measured))
        write_results(
            "deadline_scan",
            {
                "cases": args.cases,
                "tenants": args.tenants,
                "seed_seconds": seed_s,
                "load_average": os.getloadavg(),
                **measured,
            },
        )
    finally:
        if not args.keep:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
