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

ADMIN_URL = os.environ.get("XF_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
COUNTIES, TOWNSHIPS = 5, 4
CHANNELS = ("VISIT", "LETTER", "PHONE", "ONLINE", "QR_CODE")
TYPES = ("SUGGESTION", "ACCUSATION", "CLAIM")
CATEGORIES = ("land", "wages", "housing", "labor", "medical", "education", "environment", "other")


def _urls(db_name: str) -> tuple[str, str]:
    base = ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{db_name}", f"{base}/{db_name}".replace(
        "postgresql://", "postgresql+asyncpg://"
    )


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# --- seeding ---------------------------------------------------------------------------------


async def _build_tenants(n: int, run: str) -> list[dict[str, Any]]:
    """Cities through the services; returns per tenant its id and units with their officials."""
    from backend.authz.principal import SYSTEM
    from backend.core.db import Database
    from backend.tenants import service
    from backend.tenants.flows import onboard_tenant
    from backend.tenants.models import OrgUnitLevel, Role

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
        await conn.execute("ANALYZE cases; ANALYZE case_deadlines; ANALYZE case_events")
    finally:
        await conn.close()


# --- the measured part (child process) ----------------------------------------------------


async def _measure() -> dict[str, Any]:
    from sqlalchemy import event

    from backend.core.db import Database
    from backend.jobs.deadlines import deadline_scan
    from backend.jobs.digest import red_digest

    db = Database()
    statements = {"n": 0}

    def count(*_: Any) -> None:
        statements["n"] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    out: dict[str, Any] = {}
    try:
        for phase, job, ctx in (
            ("scan", deadline_scan, {}),
            ("scan again", deadline_scan, {}),
            ("digest", red_digest, {"force": True}),
        ):
            statements["n"] = 0
            started = time.perf_counter()
            result = await job({"db": db, "runner": "bench", **ctx})
            out[phase] = {
                "seconds": round(time.perf_counter() - started, 3),
                "statements": statements["n"],
                "result": result,
            }
    finally:
        await db.dispose()
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _table(n: int, tenants: int, seed_s: float, m: dict[str, Any]) -> str:
    rows = [f"deadline scan benchmark: {n} open cases, {tenants} tenants", ""]
    rows.append(f"{'phase':<12} {'seconds':>9} {'SQL stmts':>10}  rows")
    rows.append(f"{'seed (COPY)':<12} {seed_s:>9.2f} {'':>10}")
    for phase in ("scan", "scan again", "digest"):
        r = m[phase]["result"]
        keys = (
            "cases",
            "steps",
            "overdue",
            "redSinceFixed",
            "digests",
            "escalations",
            "supervisionOverdue",
            "notifications",
        )
        detail = " ".join(f"{k}={r[k]}" for k in keys if k in r)
        rows.append(
            f"{phase:<12} {m[phase]['seconds']:>9.2f} {m[phase]['statements']:>10}  {detail}"
        )
    rows.append("")
    rows.append(f"peak RSS of the measuring process: {m['peak_rss_mb']} MB")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--drift-days", type=int, default=1, help="age of the stored colours")
    parser.add_argument("--db", default=f"xf_bench_scan_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:  # the child: XF_DATABASE_URL points at the seeded database
        print(json.dumps(asyncio.run(_measure()), default=str))
        return 0

    raw_url, url = _urls(args.db)
    os.environ["XF_DATABASE_URL"] = url
    os.environ.setdefault("XF_ENV", "test")
    os.environ.setdefault("XF_LOG_LEVEL", "WARNING")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{args.db}"'))
    asyncio.run(_admin(f'CREATE DATABASE "{args.db}"'))
    try:
        from backend.cli import run_migrations

        run_migrations(url)
        started = time.perf_counter()
        tenants = asyncio.run(_build_tenants(args.tenants, uuid.uuid4().hex[:4]))
        asyncio.run(_copy_cases(raw_url, tenants, args.cases, args.seed, args.drift_days))
        seed_s = time.perf_counter() - started
        child = subprocess.run(
            [sys.executable, "-m", "tests.bench.bench_deadline_scan", "--measure"],
            capture_output=True,
            text=True,
            env={**os.environ, "XF_DATABASE_URL": url},
            check=False,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return child.returncode
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        print(_table(args.cases, args.tenants, seed_s, measured))
    finally:
        if not args.keep:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
