"""Where a compiled read's time goes: the case list, detail and board in process.

    uv run python -m tests.bench.profile_reads --db xf_bench_province_10000 [--n 300]
        [--query list,detail,board] [--pyinstrument list]

The benchmark (bench_case_list) times whole HTTP requests against PostGraphile and a
raw asyncpg limit; this script explains the app's side of the gap. It runs the same
documents as the same officer through the ASGI app in this process (no socket, no
uvicorn) on an existing benchmark province, concurrency 1, and splits each request's
wall time into:

- **SQL**: from sending each statement to its rows being back (``before_cursor_execute``
  to ``after_cursor_execute``), per statement kind: the principal (account, grants and
  the transaction's settings in one statement), the compiled read, the rest;
- **Python**: everything else — the HTTP/ASGI layer, parsing and validating the
  document (cached), the middleware, authentication, building the SQL parameters,
  serialising the response, committing and closing the session.

It prints one table (medians per request) and, with ``--pyinstrument READ``, the Python
profile of that read over all its requests on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from typing import Any

from tests.bench.bench_case_list import READS, bodies, province_target
from tests.bench.common import bench_env, format_table, urls, write_results


def _kind(statement: str) -> str:
    """Which part of the request a statement serves (its first words say it)."""
    text = " ".join(statement.split()).lower()
    if " as plans" in text:  # the principal's statement sets the plan mode (principals.py)
        return "principal"
    if "json" in text[:400]:
        return "compiled read"
    return "other"


async def measure(db: str, n: int, reads: tuple[str, ...], profile: str | None) -> list[dict]:
    import httpx
    from sqlalchemy import event

    from backend.app import create_app
    from backend.authz.tokens import issue_token

    raw, _ = urls(db)
    t = await province_target(raw, cases=0, tenants=0, seed=0)
    body = bodies(t, "ACCEPTED", "RED")
    headers = {
        "Authorization": f"Bearer {issue_token(t['officer'])}",
        "Content-Type": "application/json",
    }
    app = create_app(run_jobs=False)
    engine = app.state.db.engine.sync_engine
    sql: dict[str, float] = {}
    counts: dict[str, int] = {}

    def before(conn: Any, _cursor: Any, _statement: str, *_: Any) -> None:
        conn.info["xf_t0"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        kind = _kind(statement)
        sql[kind] = sql.get(kind, 0.0) + time.perf_counter() - conn.info.pop("xf_t0")
        counts[kind] = counts.get(kind, 0) + 1

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    rows = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for read in reads:

                async def once(read: str = read) -> None:
                    resp = await client.post("/graphql", content=body[read][0], headers=headers)
                    assert resp.status_code == 200 and "errors" not in resp.json(), resp.text

                for _ in range(20):  # caches filled, plans warm
                    await once()
                samples: dict[str, list[float]] = {"wall": [], "cpu": []}
                per: dict[str, list[float]] = {}
                profiler = None
                if profile == read:
                    from pyinstrument import Profiler

                    profiler = Profiler(async_mode="enabled")
                    profiler.start()
                for _ in range(n):
                    sql.clear()
                    counts.clear()
                    wall, cpu = time.perf_counter(), time.process_time()
                    await once()
                    samples["wall"].append((time.perf_counter() - wall) * 1000)
                    samples["cpu"].append((time.process_time() - cpu) * 1000)
                    for kind in ("principal", "compiled read", "other"):
                        per.setdefault(kind, []).append(sql.get(kind, 0.0) * 1000)
                    per.setdefault("statements", []).append(sum(counts.values()))
                if profiler:
                    profiler.stop()
                    print(profiler.output_text(unicode=True, show_all=False), file=sys.stderr)
                med = {k: statistics.median(v) for k, v in {**samples, **per}.items()}
                in_sql = med["principal"] + med["compiled read"] + med["other"]
                rows.append(
                    {
                        "read": read,
                        "wall ms": round(med["wall"], 2),
                        "process CPU ms": round(med["cpu"], 2),
                        "SQL: principal ms": round(med["principal"], 2),
                        "SQL: compiled read ms": round(med["compiled read"], 2),
                        "SQL: other ms": round(med["other"], 2),
                        "Python ms": round(med["wall"] - in_sql, 2),
                        "statements": int(med["statements"]),
                    }
                )
    finally:
        await app.state.db.dispose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="xf_bench_province_10000", help="a benchmark province")
    parser.add_argument("--n", type=int, default=300, help="requests per read")
    parser.add_argument("--query", default=",".join(READS))
    parser.add_argument("--pyinstrument", metavar="READ", help="profile one read on stderr")
    args = parser.parse_args()
    os.environ.setdefault("XF_RATE_LIMIT_ENABLED", "false")
    bench_env(urls(args.db)[1])
    reads = tuple(r for r in args.query.split(",") if r)
    rows = asyncio.run(measure(args.db, args.n, reads, args.pyinstrument))
    title = f"compiled reads in process, concurrency 1, {args.n} requests each, medians ({args.db})"
    print(format_table(title, list(rows[0]), [list(r.values()) for r in rows]))
    write_results(f"profile_reads_{args.db}", {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
