"""Benchmark: the province overview for a month, from the daily summary vs live.

    uv run python -m tests.bench.bench_province_overview --cases 1000000 [--tenants 20]
        [--db NAME] [--reuse] [--keep] [--repeat 5]

Builds (or, with ``--reuse``, keeps) a database with a benchmark province
(``backend.benchdata.generate``: 2 years of history), then as the province's
supervisor — through the service, in the supervisor's read-only RLS
transaction as the app role — measures:

- ``refresh``: the ``stats_refresh`` job over every tenant (the summary's cost);
- ``overview``: ``province_overview`` for the last full month and for the 30
  days up to today (summary + live tail), ``--repeat`` times each;
- the live computation (``live=True``, the indexes of migration 0007 only) as
  the in-run baseline, same ranges.

The two paths must return the same numbers (checked). Prints a table and
writes ``tests/bench/results/bench_province_overview.json``. Goal (issue 8):
under 1 s for a month at 1,000,000 cases / 20 tenants.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.bench.common import format_table, fresh_database, percentiles, write_results

PROVINCE = "benchprov"


async def _has_province(sa_url: str) -> bool:
    from sqlalchemy import select

    from backend.core.db import Database
    from backend.tenants.models import Province, Tenant

    db = Database()
    try:
        async with db.transaction() as session:
            pid = await session.scalar(select(Province.id).where(Province.slug == PROVINCE))
            if pid is None:
                return False
            return (
                await session.scalar(select(Tenant.id).where(Tenant.province_id == pid).limit(1))
            ) is not None
    finally:
        await db.dispose()


async def _supervisor() -> str:
    from sqlalchemy import select

    from backend.authz.roles import AccountKind
    from backend.core.db import Database
    from backend.tenants.models import Account

    db = Database()
    try:
        async with db.transaction() as session:
            return await session.scalar(
                select(Account.username)
                .where(Account.kind == AccountKind.PROVINCIAL_SUPERVISOR.value)
                .order_by(Account.created_at)
                .limit(1)
            )
    finally:
        await db.dispose()


# Participation's "window closed" counts move between the refresh and the query (a reply's
# window closes every minute): documented staleness, compared apart.
DRIFTING = ("replied_eligible", "replied_eligible_std")


def _numbers(ov: Any) -> dict[str, Any]:
    rows = {t.tenant.slug: t.indicators.counts() for t in ov.tenants} | {"*": ov.total.counts()}
    return {k: {n: v for n, v in c.items() if n not in DRIFTING} for k, c in rows.items()}


def _drift(a: Any, b: Any) -> int:
    return abs(a.total.replied_eligible_std - b.total.replied_eligible_std)


async def _measure(repeat: int, username: str) -> dict[str, Any]:
    from sqlalchemy import event

    from backend.core.clock import now
    from backend.core.db import Database
    from backend.jobs.statistics import stats_refresh
    from backend.stats.province import province_overview
    from backend.tenants.principals import load_principal

    db = Database()
    statements = {"n": 0}

    def count(*_: Any) -> None:
        statements["n"] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    today = now().astimezone(ZoneInfo("Asia/Shanghai")).date()
    month_last = today.replace(day=1) - timedelta(days=1)
    ranges = {
        "last full month": (month_last.replace(day=1), month_last),
        "30 days to today": (today - timedelta(days=29), today),
    }
    out: dict[str, Any] = {"ranges": {k: [str(a), str(b)] for k, (a, b) in ranges.items()}}
    try:
        started = time.perf_counter()
        refreshed = await stats_refresh({"db": db, "runner": "bench"})
        out["refresh"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "rows": refreshed.get("summaryRows"),
            "status": refreshed.get("status"),
        }
        sup = await load_principal(db, username)
        rows = []
        for label, (first, last) in ranges.items():
            answers, overviews = {}, {}
            for path, live in (("summary", False), ("live", True)):
                samples, stmts = [], 0
                for _ in range(repeat):
                    statements["n"] = 0
                    t0 = time.perf_counter()
                    async with db.transaction(sup.scope()) as session:
                        ov = await province_overview(session, sup, PROVINCE, first, last, live=live)
                    samples.append((time.perf_counter() - t0) * 1000)
                    stmts = statements["n"]
                answers[path], overviews[path] = _numbers(ov), ov
                rows.append(
                    {
                        "range": label,
                        "path": path,
                        "tenants": len(ov.tenants),
                        "received": ov.total.received,
                        "statements": stmts,
                        "first_ms": round(samples[0], 1),
                        **percentiles(samples),
                        "max": round(max(samples), 1),
                    }
                )
            if answers["summary"] != answers["live"]:
                raise SystemExit(f"summary and live disagree for {label}")
            out.setdefault("participation_window_drift", {})[label] = _drift(
                overviews["summary"], overviews["live"]
            )
        out["rows"] = rows
    finally:
        await db.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", default="xf_bench_overview")
    parser.add_argument("--reuse", action="store_true", help="keep and reuse an existing database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with fresh_database(args.db, keep=args.keep, reuse=args.reuse) as (raw_url, sa_url):
        seeded = None
        if not asyncio.run(_has_province(sa_url)):
            from backend.benchdata import generate

            t0 = time.perf_counter()
            asyncio.run(
                generate(
                    raw_url,
                    cases=args.cases,
                    tenants=args.tenants,
                    seed=args.seed,
                    province=PROVINCE,
                    progress=lambda m: print(m, file=sys.stderr, flush=True),
                )
            )
            seeded = round(time.perf_counter() - t0, 1)
        username = asyncio.run(_supervisor())
        m = asyncio.run(_measure(args.repeat, username))
    table = format_table(
        f"province overview: {args.cases:,} cases, {args.tenants} tenants "
        f"(refresh of every tenant {m['refresh']['seconds']} s, {m['refresh']['rows']} rows)",
        ["range", "path", "received", "SQL stmts", "first ms", "p50 ms", "p95 ms", "max ms"],
        [
            [
                r["range"],
                r["path"],
                r["received"],
                r["statements"],
                r["first_ms"],
                r["p50"],
                r["p95"],
                r["max"],
            ]
            for r in m["rows"]
        ],
    )
    print(table)
    path = write_results(
        "bench_province_overview",
        {
            "cases": args.cases,
            "tenants": args.tenants,
            "seed": args.seed,
            "seeded_seconds": seeded,
            "today": str(date.today()),
            **m,
        },
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
