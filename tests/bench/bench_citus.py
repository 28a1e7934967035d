"""Benchmark: the case list and the province overview on Citus beside plain PostgreSQL.

    scripts/citus_cluster.sh start          # a coordinator and two workers (private ports)
    uv run python -m tests.bench.bench_citus --cases 100000 [--tenants 10] [--repeat 30]

The same generated province (``backend.benchdata.generate``, same seed) is loaded into
a fresh database on the plain server (``XF_TEST_PG_ADMIN_URL``, 5432) and into one on
the Citus coordinator (``XF_CITUS_PORT``, 9700), migrated and — on Citus — distributed
with ``xinfang distribute`` before the load. Then, through the services, as the app role
under row-level security:

- ``case list``: a county officer's first page of 50 (``list_cases``: page + total);
- ``province overview``: the supervisor's last full month from the daily summary, and
  live over the cases (``live=True``: every tenant's shard in one distributed query).

On one machine the three Citus nodes share the same two cores and disks as the plain
server: the ratio shows Citus's overhead (planning on the coordinator, a hop to the
worker, two-phase commit), not the speed-up of more machines. Prints a table and writes
``tests/bench/results/bench_citus.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tests.bench.common import bench_env, format_table, fresh_database, percentiles, write_results

PROVINCE = "benchprov"
ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "scripts" / "citus_cluster.sh"


def citus_database(name: str) -> tuple[str, str]:
    """A fresh database on the running Citus cluster, migrated and distributed."""
    subprocess.run([str(CLUSTER), "dropdb", name], check=True, capture_output=True)
    subprocess.run([str(CLUSTER), "start", name], check=True)
    port = os.environ.get("XF_CITUS_PORT", "9700")
    raw = f"postgresql://postgres@127.0.0.1:{port}/{name}"
    sa_url = raw.replace("postgresql://", "postgresql+asyncpg://")
    bench_env(sa_url)
    env = {**os.environ, "XF_DATABASE_URL": sa_url}
    for step in ("migrate", "distribute"):
        subprocess.run(["uv", "run", "xinfang", step], check=True, env=env, cwd=ROOT)
    return raw, sa_url


async def _measure(summary: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    from backend.cases.queries import CaseFilter, list_cases
    from backend.core.clock import now
    from backend.core.db import Database
    from backend.stats.province import province_overview
    from backend.stats.summary import stats_refresh
    from backend.tenants.principals import load_principal

    db = Database()
    try:
        await stats_refresh({"db": db, "runner": "bench"})
        biggest = max(summary["tenants"], key=lambda t: t["cases"])
        officer = await load_principal(db, biggest["countyOfficer"])
        sup = await load_principal(db, summary["supervisor"])
        today = now().astimezone(ZoneInfo("Asia/Shanghai")).date()
        last = today.replace(day=1) - timedelta(days=1)
        first = last.replace(day=1)

        async def case_list() -> None:
            async with db.transaction(officer.scope()) as session:
                await list_cases(session, officer, CaseFilter(), first=50)

        async def overview(live: bool) -> None:
            async with db.transaction(sup.scope()) as session:
                await province_overview(session, sup, PROVINCE, first, last, live=live)

        probes = {
            "case list (county officer, 50)": case_list,
            "province overview (summary)": lambda: overview(False),
            "province overview (live)": lambda: overview(True),
        }
        out: dict[str, list[float]] = {}
        for name, probe in probes.items():
            await probe()  # warm the caches and the pool
            samples = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                await probe()
                samples.append((time.perf_counter() - t0) * 1000)
            out[name] = samples
        return out
    finally:
        await db.dispose()


def _load(raw_url: str, args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    from backend.benchdata import generate

    t0 = time.perf_counter()
    summary = asyncio.run(
        generate(
            raw_url,
            cases=args.cases,
            tenants=args.tenants,
            seed=args.seed,
            province=PROVINCE,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
    )
    return summary, round(time.perf_counter() - t0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with fresh_database("xf_bench_citus_plain") as (raw, _sa):
        summary, seconds = _load(raw, args)
        results["postgresql"] = {
            "load_s": seconds,
            "samples": asyncio.run(_measure(summary, args.repeat)),
        }
    raw, _sa = citus_database("xf_bench_citus")
    try:
        summary, seconds = _load(raw, args)
        results["citus"] = {
            "load_s": seconds,
            "samples": asyncio.run(_measure(summary, args.repeat)),
        }
    finally:
        subprocess.run([str(CLUSTER), "dropdb", "xf_bench_citus"], check=False)

    rows, payload = [], []
    for probe in results["postgresql"]["samples"]:
        pg = percentiles(results["postgresql"]["samples"][probe])
        ci = percentiles(results["citus"]["samples"][probe])
        ratio = round(ci["p50"] / pg["p50"], 2) if pg["p50"] else None
        rows.append([probe, pg["p50"], pg["p95"], ci["p50"], ci["p95"], ratio])
        payload.append({"probe": probe, "postgresql": pg, "citus": ci, "p50_ratio": ratio})
    print(
        format_table(
            f"Citus (1 coordinator + 2 workers, one machine) vs PostgreSQL: {args.cases:,} cases, "
            f"{args.tenants} tenants; load {results['postgresql']['load_s']} s vs "
            f"{results['citus']['load_s']} s",
            ["probe", "PG p50 ms", "PG p95 ms", "Citus p50 ms", "Citus p95 ms", "p50 ×"],
            rows,
        )
    )
    path = write_results(
        "bench_citus",
        {
            "cases": args.cases,
            "tenants": args.tenants,
            "seed": args.seed,
            "load_seconds": {k: v["load_s"] for k, v in results.items()},
            "rows": payload,
        },
    )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
