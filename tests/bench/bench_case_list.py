"""Benchmark: a county officer's case list over HTTP — the app vs raw asyncpg vs PostGraphile.

    uv run python -m tests.bench.bench_case_list --cases 10000 [--db NAME --reuse] [--seconds 5]

The page is ``cases(first: 50, filter: {unitPath, status})`` with the holder unit, the
包案 leader and the deadlines of each case, asked by a petition officer of the busiest
county of the largest city. Four servers answer it, each a separate process on a free
port, all driven by the same small keep-alive HTTP client at concurrency 1, 8 and 32:

- **app**: ``xinfang serve`` (uvicorn, XF_ENV=test, no in-process jobs), bearer token,
  ``XF_COMPILED_READS=false``: the resolvers, graphql-core completing every object;
- **app-compiled**: the same server as PostgreSQL deployments run it by default — the
  page compiled from the selection into one SQL statement building its JSON
  (``backend/cases/compiled.py``);
- **raw asyncpg**: the limit — one hand-written SQL statement that builds the whole JSON
  page (count, page, nested unit, leader, deadlines) under the same RLS as the app
  (``SET LOCAL ROLE`` + ``set_config('app.tenant_ids')`` in a transaction), served by a
  bare ASGI callable on the same uvicorn;
- **PostGraphile 4**: installed with npm into ``tests/bench/.node/`` when missing, pointed
  at the same database with ``pgSettings`` giving the same role and tenant claim, serving
  ``bench_pg.case_list`` (tests/bench/postgraphile/cases.sql, applied here).

The four answers are compared first (same total, same page in the same order). The
province comes from ``backend.benchdata``: a fresh database unless ``--db NAME --reuse``
names one that already holds it (generated when empty). Prints one table and writes
``tests/bench/results/case_list.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.bench.common import format_table, fresh_database, percentiles, write_results

HERE = Path(__file__).parent
NODE_DIR = HERE / ".node"
PROVINCE = "benchprov"
LEVELS = (1, 8, 32)

QUERY = """query($f: CaseFilter) { cases(first: 50, filter: $f) { totalCount edges { node {
  id number status receivedAt dueAt warningColor
  holderUnit { path name } leader { username displayName }
  deadlines { step status dueAt } } } } }"""

PG_QUERY = """query($p: String!, $s: String!, $u: String!) {
  caseList(unitPath: $p, status: $s, username: $u, first: 50) { totalCount nodes {
    id number status receivedAt dueAt warningColor
    holderUnit: orgUnitByTenantIdAndHolderUnitId { path name }
    leader: userByTenantIdAndLeaderId { username displayName }
    deadlines: caseDeadlinesByTenantIdAndCaseId(orderBy: DUE_AT_ASC) {
      nodes { step status dueAt } } } } }"""

# What the app's statements select for a petition officer with one grant at $1, filtered
# to the subtree of $1 and status $2 (backend/cases/queries.py, visibility.py), in the
# same range form the app compiles for PostgreSQL (backend/authz/scope.py).
_WHERE = """
  (c.holder_path = $1 OR (c.holder_path ~>=~ ($1 || '/') AND c.holder_path ~<~ ($1 || '0'))
   OR c.location_path = $1
   OR (c.location_path ~>=~ ($1 || '/') AND c.location_path ~<~ ($1 || '0')))
  AND NOT (c.type = 'ACCUSATION' AND c.accused_path IS NOT NULL
           AND ($1 = c.accused_path OR $1 LIKE c.accused_path || '/%'))
  AND (c.accused_username IS NULL OR c.accused_username <> $3)
  AND c.status = $2
"""
RAW_SQL = f"""
SELECT json_build_object('data', json_build_object('cases', json_build_object(
  'totalCount', (SELECT count(*) FROM cases c WHERE {_WHERE}),
  'edges', COALESCE((
    SELECT json_agg(json_build_object('node', json_build_object(
      'id', p.id, 'number', p.number, 'status', p.status, 'receivedAt', p.received_at,
      'dueAt', p.due_at, 'warningColor', p.warning_color,
      'holderUnit', (SELECT json_build_object('path', u.path, 'name', u.name) FROM org_units u
                     WHERE u.tenant_id = p.tenant_id AND u.id = p.holder_unit_id),
      'leader', (SELECT json_build_object('username', x.username, 'displayName', x.display_name)
                 FROM users x WHERE x.tenant_id = p.tenant_id AND x.id = p.leader_id),
      'deadlines', COALESCE((
        SELECT json_agg(json_build_object('step', d.step, 'status', d.status, 'dueAt', d.due_at)
                        ORDER BY d.due_at)
        FROM case_deadlines d WHERE d.tenant_id = p.tenant_id AND d.case_id = p.id), '[]')
    )) ORDER BY p.received_at DESC, p.id DESC)
    FROM (SELECT * FROM cases c WHERE {_WHERE}
          ORDER BY c.received_at DESC, c.id DESC LIMIT 50) p), '[]')
)))::text
"""


# --- the raw asyncpg server (run by uvicorn in its own process) -----------------------------


class RawServer:
    """A bare ASGI callable: one transaction per request with the app's two settings."""

    def __init__(self) -> None:
        self.pool: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    import asyncpg

                    size = int(os.environ["BENCH_POOL_SIZE"])
                    self.pool = await asyncpg.create_pool(
                        os.environ["BENCH_RAW_URL"], min_size=size, max_size=size
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        f = json.loads(body)["variables"]["f"]
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{os.environ["BENCH_ROLE"]}"')
            await conn.execute(
                "SELECT set_config('app.tenant_ids', $1, true)", os.environ["BENCH_TENANT"]
            )
            page = await conn.fetchval(
                RAW_SQL, f["unitPath"], f["status"], os.environ["BENCH_USER"]
            )
        data = page.encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


raw_app = RawServer()


# --- a small keep-alive HTTP client (cheap, so it steals little CPU from the servers) ------


class Client:
    def __init__(self, port: int, path: str, body: bytes, headers: dict[str, str]) -> None:
        head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(self.request)
        status_line = await self.reader.readline()
        if not status_line:  # the server closed an idle keep-alive connection: once more
            await self.close()
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.writer.write(self.request)
            status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode().partition(":")
            key, value = key.strip().lower(), value.strip().lower()
            if key == "content-length":
                length = int(value)
            elif key == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif key == "connection" and value == "close":
                close = True
        if chunked:
            body = b""
            while size := int((await self.reader.readline()).strip(), 16):
                body += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            body = await self.reader.readexactly(length or 0)
        if close:
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def drive(make: Any, concurrency: int, seconds: float, warmup: int = 5) -> dict[str, Any]:
    """``concurrency`` clients in closed loops for ``seconds``; latencies and throughput."""
    clients = [make() for _ in range(concurrency)]
    for c in clients:
        for _ in range(warmup):
            await c.call()
    samples: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def loop(c: Client) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status, body = await c.call()
            samples.append((time.perf_counter() - t0) * 1000)
            if status != 200 or b'"errors"' in body[:200]:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(c) for c in clients))
    wall = time.perf_counter() - started
    for c in clients:
        await c.close()
    return {**percentiles(samples), "rps": round(len(samples) / wall, 1), "n": len(samples),
            "errors": errors}  # fmt: skip


# --- servers ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(cmd: list[str], env: dict[str, str], port: int, name: str) -> Iterator[int]:
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def ensure_postgraphile() -> Path:
    """``tests/bench/.node/node_modules/postgraphile`` (npm install on first use)."""
    if not (NODE_DIR / "node_modules" / "postgraphile").exists():
        if shutil.which("npm") is None:
            raise RuntimeError("npm is needed for the PostGraphile comparison")
        NODE_DIR.mkdir(exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "postgraphile@4"],
            cwd=NODE_DIR, check=True,
        )  # fmt: skip
    return NODE_DIR


# --- the province and the officer -------------------------------------------------------------


async def province_target(raw_url: str, *, cases: int, tenants: int, seed: int) -> dict[str, Any]:
    """Generate the province when the database has none; the officer and page to ask for."""
    import asyncpg

    from backend.benchdata import generate

    conn = await asyncpg.connect(raw_url)
    try:
        exists = await conn.fetchval("SELECT count(*) FROM provinces WHERE slug = $1", PROVINCE)
    finally:
        await conn.close()
    generated = None
    if not exists:
        print(f"generating {cases:,} cases in {tenants} tenants …", flush=True)
        generated = await generate(raw_url, cases=cases, tenants=tenants, seed=seed,
                                   province=PROVINCE)  # fmt: skip
    conn = await asyncpg.connect(raw_url)
    try:
        tenant = await conn.fetchrow(
            """SELECT t.id, t.slug, count(c.id) AS n FROM tenants t
               JOIN provinces p ON p.id = t.province_id AND p.slug = $1
               LEFT JOIN cases c ON c.tenant_id = t.id GROUP BY t.id, t.slug
               ORDER BY n DESC LIMIT 1""",
            PROVINCE,
        )
        total = await conn.fetchval("SELECT count(*) FROM cases")
    finally:
        await conn.close()
    slug = tenant["slug"]
    return {
        "tenant_id": str(tenant["id"]),
        "tenant": slug,
        "tenant_cases": tenant["n"],
        "cases": total,
        "unit_path": f"/{slug}/c01",
        "officer": f"{slug}.c01.off1",
        "generation": generated and {k: generated[k] for k in ("seconds", "workers", "bulkMode")},
    }


async def apply_postgraphile_sql(raw_url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(raw_url)
    try:
        await conn.execute((HERE / "postgraphile" / "cases.sql").read_text())
    finally:
        await conn.close()


# --- the run ----------------------------------------------------------------------------------


def normalise(target: str, body: bytes) -> tuple[int, list[str]]:
    data = json.loads(body)
    assert not data.get("errors"), (target, data.get("errors"))
    if target == "postgraphile":
        page = data["data"]["caseList"]
        return page["totalCount"], [n["number"] for n in page["nodes"]]
    page = data["data"]["cases"]
    return page["totalCount"], [e["node"]["number"] for e in page["edges"]]


async def measure(
    raw_url: str, sa_url: str, t: dict[str, Any], *, status: str, seconds: float,
    levels: tuple[int, ...] = LEVELS,
    targets: tuple[str, ...] = ("app", "app-compiled", "raw", "postgraphile"),
) -> dict[str, Any]:  # fmt: skip
    """Start the servers, check they answer the same page, drive each at each level."""
    from backend.authz.tokens import issue_token
    from backend.core.settings import get_settings

    settings = get_settings()
    variables = {"f": {"unitPath": t["unit_path"], "status": status}}
    app_body = json.dumps({"query": QUERY, "variables": variables}).encode()
    pg_vars = {"p": t["unit_path"], "s": status, "u": t["officer"]}
    pg_body = json.dumps({"query": PG_QUERY, "variables": pg_vars}).encode()
    token = {"Authorization": f"Bearer {issue_token(t['officer'])}"}
    pool = str(settings.db_pool_size)
    base_env = {"XF_DATABASE_URL": sa_url, "XF_ENV": "test", "XF_LOG_LEVEL": "WARNING",
                "XF_RUN_JOBS_IN_PROCESS": "false", "XF_RATE_LIMIT_ENABLED": "false"}  # fmt: skip
    base_env.pop("XF_REDIS_URL", None)
    uvicorn = [sys.executable, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
    ports = {k: free_port() for k in ("app", "app-compiled", "raw", "postgraphile")}
    xinfang = str(Path(sys.executable).with_name("xinfang"))
    specs = {
        # the resolvers (graphql-core completing every object), as in the earlier runs
        "app": (
            [xinfang, "serve", "--port", str(ports["app"])],
            {**base_env, "XF_COMPILED_READS": "false"},
            lambda: Client(ports["app"], "/graphql", app_body, token),
        ),
        # as served by default on PostgreSQL: the page compiled to one JSON statement
        # (backend/cases/compiled.py), the same document and token
        "app-compiled": (
            [xinfang, "serve", "--port", str(ports["app-compiled"])],
            {**base_env, "XF_COMPILED_READS": "true"},
            lambda: Client(ports["app-compiled"], "/graphql", app_body, token),
        ),
        "raw": (
            [*uvicorn, "--port", str(ports["raw"]), "tests.bench.bench_case_list:raw_app"],
            {
                "BENCH_RAW_URL": raw_url,
                "BENCH_POOL_SIZE": pool,
                "BENCH_ROLE": settings.db_app_role,
                "BENCH_TENANT": t["tenant_id"],
                "BENCH_USER": t["officer"],
            },
            lambda: Client(ports["raw"], "/", app_body, {}),
        ),
        "postgraphile": (
            ["node", str(HERE / "postgraphile" / "server.js")],
            {
                "DATABASE_URL": raw_url,
                "PORT": str(ports["postgraphile"]),
                "POOL_SIZE": pool,
                "PG_ROLE": settings.db_app_role,
                "TENANT_IDS": t["tenant_id"],
                "NODE_PATH": str(NODE_DIR / "node_modules"),
            },
            lambda: Client(ports["postgraphile"], "/graphql", pg_body, {}),
        ),
    }
    if "postgraphile" in targets:
        ensure_postgraphile()
        await apply_postgraphile_sql(raw_url)
    out: dict[str, Any] = {"page": {}, "runs": []}
    with _all_serving({k: specs[k] for k in targets}, ports):
        answers = {}
        for k in targets:
            client = specs[k][2]()
            status_code, body = await client.call()
            await client.close()
            assert status_code == 200, (k, body[:500])
            answers[k] = normalise(k, body)
        first = answers[targets[0]]
        for k, answer in answers.items():
            assert answer == first, f"{k} answers a different page: {answer[0]} vs {first[0]}"
        out["page"] = {"totalCount": first[0], "rows": len(first[1])}
        for level in levels:  # interleaved, so a noisy neighbour hits all alike
            for k in targets:
                r = await drive(specs[k][2], level, seconds)
                out["runs"].append({"server": k, "concurrency": level, **r})
                print(f"  {k:<13} c={level:<3} p50 {r['p50']:>8.2f} ms  {r['rps']:>8.1f} req/s",
                      flush=True)  # fmt: skip
    return out


@contextmanager
def _all_serving(specs: dict[str, Any], ports: dict[str, int]) -> Iterator[None]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        for k, (cmd, env, _) in specs.items():
            stack.enter_context(serving(cmd, env, ports[k], k))
        yield


def table(result: dict[str, Any], t: dict[str, Any], status: str) -> str:
    runs = result["runs"]
    p50 = {(r["server"], r["concurrency"]): r["p50"] for r in runs}
    rows = []
    for r in runs:
        c = r["concurrency"]
        raw, pg = p50.get(("raw", c)), p50.get(("postgraphile", c))
        rows.append([
            r["server"], c, r["p50"], r["p95"], r["p99"], r["rps"], r["errors"],
            f"{r['p50'] / raw:.2f}×" if raw else "-", f"{r['p50'] / pg:.2f}×" if pg else "-",
        ])  # fmt: skip
    title = (
        f"case list: {t['cases']:,} cases in the database, {t['tenant']} "
        f"({t['tenant_cases']:,}); officer at {t['unit_path']}, status {status}: "
        f"{result['page']['totalCount']:,} visible, page of {result['page']['rows']}"
    )
    headers = ["server", "conc", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "p50÷raw",
               "p50÷PostGraphile"]  # fmt: skip
    return format_table(title, headers, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--status", default="ACCEPTED")
    parser.add_argument("--seconds", type=float, default=5.0, help="per server and level")
    parser.add_argument("--db", default=f"xf_bench_caselist_{os.getpid()}")
    parser.add_argument(
        "--reuse", action="store_true", help="use --db as it is (generate if empty)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrencies")
    args = parser.parse_args()
    levels = tuple(int(n) for n in args.levels.split(","))
    with fresh_database(args.db, keep=args.keep, reuse=args.reuse) as (raw_url, sa_url):
        t = asyncio.run(province_target(raw_url, cases=args.cases, tenants=args.tenants,
                                        seed=args.seed))  # fmt: skip
        result = asyncio.run(
            measure(raw_url, sa_url, t, status=args.status, seconds=args.seconds, levels=levels)
        )
    print(table(result, t, args.status))
    path = write_results("case_list", {"target": t, "status": args.status, **result})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
