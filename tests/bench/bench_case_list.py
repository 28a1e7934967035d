"""Benchmark: a county officer's case reads over HTTP — the app vs raw asyncpg vs PostGraphile.

    uv run python -m tests.bench.bench_case_list --cases 10000 [--db NAME --reuse] [--seconds 5]
        [--query list|detail|board|all (default) or a comma-separated mix]

Three reads, asked by the first petition officer of the busiest county of the largest
city (one grant, at the county):

- **list**: ``cases(first: 50, filter: {unitPath, status})`` with the holder unit, the
  包案 leader and the deadlines of each case;
- **detail**: ``case(id)`` with its units, leader, deadlines and events (each with its
  actor), for the officer's visible case with the longest history;
- **board**: ``warningBoard(unitPath) { red yellow blue cases(color, first: 50) }``, the
  红黄蓝 counts and the page of one colour (``--color``, RED) with the list's node.

Four servers answer each read, each a separate process on a free port, started once
and all driven by the same small keep-alive HTTP client at concurrency 1, 8 and 32:

- **app**: ``xinfang serve`` (uvicorn, XF_ENV=test, no in-process jobs), bearer token,
  ``XF_COMPILED_READS=false``: the resolvers, graphql-core completing every object;
- **app-compiled**: the same server as PostgreSQL deployments run it by default — each
  root field compiled from the selection into one SQL statement building its JSON
  (``backend/cases/compiled.py``);
- **raw asyncpg**: the limit — one hand-written SQL statement per read that builds the
  whole JSON response under the same RLS as the app (``SET LOCAL ROLE`` +
  ``set_config('app.tenant_ids')`` in a transaction) and the officer's read rule with
  Art. 30, served by a bare ASGI callable on the same uvicorn (``/list``, ``/detail``,
  ``/board``);
- **PostGraphile 4**: installed with npm into ``tests/bench/.node/`` when missing, pointed
  at the same database with ``pgSettings`` giving the same role and tenant claim, serving
  ``bench_pg.case_list``, ``case_detail``, ``warning_counts`` and ``board_cases``
  (tests/bench/postgraphile/cases.sql, applied here).

All four run with ``jit = off`` on their connections, as the app always does
(backend/core/db.py): with it on, PostgreSQL compiles the board's statements with LLVM on
every execution (seconds at 1M), which would measure the compiler, not the server.

Before timing a read, the four answers are compared whole (:func:`canonical`: every value
and null, the same pages in the same order, instants to the second). The province comes
from ``backend.benchdata``: a fresh database unless ``--db NAME --reuse`` names one that
already holds it (generated when empty). Prints one table per read and writes
``tests/bench/results/case_list_<cases>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from backend.cases.need_to_know import STAFF_ROLES
from tests.bench.common import format_table, fresh_database, percentiles, write_results

HERE = Path(__file__).parent
NODE_DIR = HERE / ".node"
PROVINCE = "benchprov"
LEVELS = (1, 8, 32)

READS = ("list", "detail", "board")

# The node of a list or board page, for the app (and the raw statement, which builds
# the app's JSON) and for PostGraphile (aliases give the app's keys; nested lists come
# as ``{nodes}`` and are unwrapped when answers are compared).
NODE = """id number status receivedAt dueAt warningColor
  holderUnit { path name } leader { username displayName }
  deadlines { step status dueAt }"""
PG_NODE = """id number status receivedAt dueAt warningColor
  holderUnit: orgUnitByTenantIdAndHolderUnitId { path name }
  leader: userByTenantIdAndLeaderId { username displayName }
  deadlines: caseDeadlinesByTenantIdAndCaseId(orderBy: [DUE_AT_ASC, ID_ASC]) {
    nodes { step status dueAt } }"""

# The three reads: the app's document, PostGraphile's (tests/bench/postgraphile/cases.sql)
QUERIES = {
    "list": (
        "query($f: CaseFilter) { cases(first: 50, filter: $f) { totalCount edges { node { "
        + NODE
        + " } } } }",
        "query($p: String!, $s: String!, $u: String!) { cases: caseList(unitPath: $p, "
        "status: $s, username: $u, first: 50) { totalCount edges { node { " + PG_NODE + " } } } }",
    ),
    # 案件详情: the case with its clocks, its history and who did each step
    "detail": (
        """query($id: ID!) { case(id: $id) { id number status type channel category subject
  content version receivedAt dueAt warningColor repeatCount
  holderUnit { path name } locationUnit { path name } leader { username displayName }
  deadlines { step status startedAt dueAt }
  events { seq kind at actor { username } fromStatus toStatus reason hash } } }""",
        """query($id: UUID!, $p: String!, $u: String!) {
  case: caseDetail(caseId: $id, unitPath: $p, username: $u) { id number status type channel
  category subject content version receivedAt dueAt warningColor repeatCount
  holderUnit: orgUnitByTenantIdAndHolderUnitId { path name }
  locationUnit: orgUnitByTenantIdAndLocationUnitId { path name }
  leader: userByTenantIdAndLeaderId { username displayName }
  deadlines: caseDeadlinesByTenantIdAndCaseId(orderBy: [DUE_AT_ASC, ID_ASC]) {
    nodes { step status startedAt dueAt } }
  events: caseEventsByTenantIdAndCaseId(orderBy: SEQ_ASC) {
    nodes { seq kind at actorUsername fromStatus toStatus reason hash } } } }""",
    ),
    # 红黄蓝 board: the three counts and the first page of one colour
    "board": (
        "query($p: String, $c: WarningColor!) { warningBoard(unitPath: $p) { red yellow blue "
        "cases(color: $c, first: 50) { totalCount edges { node { " + NODE + " } } } } }",
        "query($p: String!, $c: String!, $u: String!) { "
        "counts: warningCounts(unitPath: $p, username: $u) { red yellow blue } "
        "cases: boardCases(unitPath: $p, color: $c, username: $u, first: 50) { "
        "totalCount edges { node { " + PG_NODE + " } } } }",
    ),
}

# What the app's statements select for a petition officer with one grant at $1 named $2
# (backend/cases/visibility.py: the reach of the grant, then Art. 30 — need_to_know.py's
# barred_clause: the accused person, a grant inside the accused unit, a grant inside a
# unit where the accused person holds a staff role), in the range form the app compiles
# for PostgreSQL (backend/authz/scope.py). The pages ask for the officer's own unit, so
# the reach is also the unitPath filter.
_STAFF = ", ".join(f"'{r}'" for r in STAFF_ROLES)
_VISIBLE = f"""
  (c.holder_path = $1 OR (c.holder_path ~>=~ ($1 || '/') AND c.holder_path ~<~ ($1 || '0'))
   OR c.location_path = $1
   OR (c.location_path ~>=~ ($1 || '/') AND c.location_path ~<~ ($1 || '0')))
  AND NOT (c.type = 'ACCUSATION' AND (
    (c.accused_username IS NOT NULL AND c.accused_username = $2)
    OR (c.accused_path IS NOT NULL AND ($1 = c.accused_path OR $1 LIKE c.accused_path || '/%'))
    OR (c.accused_username IS NOT NULL AND EXISTS (
      SELECT 1 FROM role_assignments ra
      JOIN users x ON x.tenant_id = ra.tenant_id AND x.id = ra.user_id
      JOIN org_units ou ON ou.tenant_id = ra.tenant_id AND ou.id = ra.org_unit_id
      WHERE x.tenant_id = c.tenant_id AND x.username = c.accused_username
        AND ra.role IN ({_STAFF}) AND ($1 = ou.path OR $1 LIKE ou.path || '/%')))))
"""


def _unit(column: str) -> str:
    return f"""(SELECT json_build_object('path', u.path, 'name', u.name) FROM org_units u
               WHERE u.tenant_id = p.tenant_id AND u.id = p.{column})"""


def _deadlines(*fields: str) -> str:
    return f"""COALESCE((SELECT json_agg(json_build_object({", ".join(fields)})
                                 ORDER BY d.due_at, d.id)
        FROM case_deadlines d WHERE d.tenant_id = p.tenant_id AND d.case_id = p.id), '[]')"""


_LEADER = """(SELECT json_build_object('username', x.username, 'displayName', x.display_name)
                 FROM users x WHERE x.tenant_id = p.tenant_id AND x.id = p.leader_id)"""
_NODE_JSON = f"""json_build_object(
      'id', p.id, 'number', p.number, 'status', p.status, 'receivedAt', p.received_at,
      'dueAt', p.due_at, 'warningColor', p.warning_color,
      'holderUnit', {_unit("holder_unit_id")}, 'leader', {_LEADER},
      'deadlines', {_deadlines("'step', d.step", "'status', d.status", "'dueAt', d.due_at")})"""


def _connection(where: str) -> str:
    """``{totalCount, edges {node}}`` of the visible cases matching ``where``, 50 newest."""
    return f"""json_build_object(
  'totalCount', (SELECT count(*) FROM cases c WHERE {where}),
  'edges', COALESCE((
    SELECT json_agg(json_build_object('node', {_NODE_JSON})
                    ORDER BY p.received_at DESC, p.id DESC)
    FROM (SELECT * FROM cases c WHERE {where}
          ORDER BY c.received_at DESC, c.id DESC LIMIT 50) p), '[]'))"""


# One statement per read building the whole response; $1 the officer's unit, $2 its
# username, $3 the read's own argument (status, case id, colour).
RAW_SQL = {
    "list": f"""SELECT json_build_object('data', json_build_object(
  'cases', {_connection(_VISIBLE + " AND c.status = $3")}))::text""",
    "detail": f"""SELECT json_build_object('data', json_build_object('case', (
  SELECT json_build_object(
    'id', p.id, 'number', p.number, 'status', p.status, 'type', p.type,
    'channel', p.channel, 'category', p.category, 'subject', p.subject,
    'content', p.content, 'version', p.version, 'receivedAt', p.received_at,
    'dueAt', p.due_at, 'warningColor', p.warning_color, 'repeatCount', p.repeat_count,
    'holderUnit', {_unit("holder_unit_id")}, 'locationUnit', {_unit("location_unit_id")},
    'leader', {_LEADER},
    'deadlines', {
        _deadlines(
            *(
                f"'{k}', d.{c}"
                for k, c in [
                    ("step", "step"),
                    ("status", "status"),
                    ("startedAt", "started_at"),
                    ("dueAt", "due_at"),
                ]
            )
        )
    },
    'events', COALESCE((SELECT json_agg(json_build_object(
        'seq', e.seq, 'kind', e.kind, 'at', e.at,
        'actor', json_build_object('username', e.actor_username),
        'fromStatus', e.from_status, 'toStatus', e.to_status, 'reason', e.reason,
        'hash', e.hash) ORDER BY e.seq)
      FROM case_events e WHERE e.tenant_id = p.tenant_id AND e.case_id = p.id), '[]'))
  FROM (SELECT * FROM cases c WHERE c.id = $3 AND {_VISIBLE}) p)))::text""",
    # open = not closed, or closed with a follow-up duty still running (queries.warning_counts)
    "board": f"""SELECT json_build_object('data', json_build_object('warningBoard', (
  SELECT json_build_object(
    'red', count(*) FILTER (WHERE c.warning_color = 'RED'),
    'yellow', count(*) FILTER (WHERE c.warning_color = 'YELLOW'),
    'blue', count(*) FILTER (WHERE c.warning_color = 'BLUE'),
    'cases', {_connection(_VISIBLE + " AND c.warning_color = $3")})
  FROM cases c WHERE {_VISIBLE} AND (c.status <> 'CLOSED' OR c.due_at IS NOT NULL))))::text""",
}


# the read's own argument ($3), from the app's variables
RAW_ARGUMENT = {
    "list": lambda v: v["f"]["status"],
    "detail": lambda v: v["id"],
    "board": lambda v: v["c"],
}


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
                    # JIT off, as the app's and PostGraphile's connections run here: a
                    # baseline that compiles each statement with LLVM would flatter the app
                    self.pool = await asyncpg.create_pool(
                        os.environ["BENCH_RAW_URL"],
                        min_size=size,
                        max_size=size,
                        server_settings={"jit": "off"},
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
        read = scope["path"].strip("/")  # /list, /detail, /board
        variables = json.loads(body)["variables"]
        argument = RAW_ARGUMENT[read](variables)
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(f'SET LOCAL ROLE "{os.environ["BENCH_ROLE"]}"')
            await conn.execute(
                "SELECT set_config('app.tenant_ids', $1, true)", os.environ["BENCH_TENANT"]
            )
            page = await conn.fetchval(
                RAW_SQL[read], os.environ["BENCH_UNIT"], os.environ["BENCH_USER"], argument
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
    # warm the server (caches, plans) on one connection, then open the others at once:
    # sequential warm-ups on every client cost seconds at 32 for nothing measured
    for _ in range(warmup):
        await clients[0].call()
    await asyncio.gather(*(c.call() for c in clients[1:]))
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
        slug = tenant["slug"]
        unit, officer = f"/{slug}/c01", f"{slug}.c01.off1"
        # the detail: the officer's visible case with the longest history
        detail = await conn.fetchrow(
            f"""SELECT c.id, c.number, c.version FROM cases c WHERE c.tenant_id = $3 AND
                {_VISIBLE} ORDER BY c.version DESC, c.received_at DESC, c.id LIMIT 1""",
            unit, officer, tenant["id"],
        )  # fmt: skip
    finally:
        await conn.close()
    return {
        "tenant_id": str(tenant["id"]),
        "tenant": slug,
        "tenant_cases": tenant["n"],
        "cases": total,
        "unit_path": unit,
        "officer": officer,
        "case_id": str(detail["id"]),
        "case_number": detail["number"],
        "case_events": detail["version"],
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


_INSTANT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


def canonical(value: Any) -> Any:
    """An answer without the servers' differences of form: instants as UTC to the second
    (the app writes the reader's zone, whole seconds; PostgreSQL's JSON the session's zone
    and microseconds), PostGraphile's ``{nodes}`` lists unwrapped and its ``actorUsername``
    as the app's ``actor {username}``. Everything else — values, nulls, order — must match."""
    if isinstance(value, dict):
        if set(value) == {"nodes"}:
            return canonical(value["nodes"])
        out = {k: canonical(v) for k, v in value.items() if k != "actorUsername"}
        if "actorUsername" in value:
            out["actor"] = {"username": value["actorUsername"]}
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    if isinstance(value, str) and _INSTANT.match(value):
        return datetime.fromisoformat(value).astimezone(UTC).replace(microsecond=0).isoformat()
    return value


def normalise(target: str, read: str, body: bytes) -> Any:
    data = json.loads(body)
    assert not data.get("errors"), (target, read, data.get("errors"))
    data = data["data"]
    if read == "board" and target == "postgraphile":  # two root fields there
        data = {"warningBoard": {**data["counts"], "cases": data["cases"]}}
    return canonical(data)


def summary(read: str, answer: dict[str, Any]) -> dict[str, Any]:
    """What the compared answer holds, for the table's title."""
    if read == "detail":
        case = answer["case"]
        return {"case": case["number"], "events": len(case["events"]),
                "deadlines": len(case["deadlines"])}  # fmt: skip
    page = answer["warningBoard"] if read == "board" else answer
    out = {"totalCount": page["cases"]["totalCount"], "rows": len(page["cases"]["edges"])}
    if read == "board":
        out.update({k: page[k] for k in ("red", "yellow", "blue")})
    return out


def bodies(t: dict[str, Any], status: str, color: str) -> dict[str, tuple[bytes, bytes]]:
    """Each read's request body for the app (and raw) and for PostGraphile."""
    unit, user = t["unit_path"], t["officer"]
    variables = {
        "list": ({"f": {"unitPath": unit, "status": status}}, {"p": unit, "s": status, "u": user}),
        "detail": ({"id": t["case_id"]}, {"id": t["case_id"], "p": unit, "u": user}),
        "board": ({"p": unit, "c": color}, {"p": unit, "c": color, "u": user}),
    }
    return {
        read: tuple(
            json.dumps({"query": q, "variables": v}).encode()
            for q, v in zip(QUERIES[read], variables[read], strict=True)
        )
        for read in READS
    }


async def measure(
    raw_url: str, sa_url: str, t: dict[str, Any], *, status: str, seconds: float,
    levels: tuple[int, ...] = LEVELS,
    targets: tuple[str, ...] = ("app", "app-compiled", "raw", "postgraphile"),
    reads: tuple[str, ...] = ("list",), color: str = "RED",
) -> dict[str, Any]:  # fmt: skip
    """Start the servers once, then for each read check they answer the same and drive
    each server at each level."""
    from backend.authz.tokens import issue_token
    from backend.core.settings import get_settings

    settings = get_settings()
    body = bodies(t, status, color)
    token = {"Authorization": f"Bearer {issue_token(t['officer'])}"}
    pool = str(settings.db_pool_size)
    base_env = {"XF_DATABASE_URL": sa_url, "XF_ENV": "test", "XF_LOG_LEVEL": "WARNING",
                "XF_RUN_JOBS_IN_PROCESS": "false", "XF_RATE_LIMIT_ENABLED": "false"}  # fmt: skip
    base_env.pop("XF_REDIS_URL", None)
    uvicorn = [sys.executable, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
    ports = {k: free_port() for k in ("app", "app-compiled", "raw", "postgraphile")}
    xinfang = str(Path(sys.executable).with_name("xinfang"))
    # server: (command, environment, client for a read)
    specs = {
        # the resolvers (graphql-core completing every object), as in the earlier runs
        "app": (
            [xinfang, "serve", "--port", str(ports["app"])],
            {**base_env, "XF_COMPILED_READS": "false"},
            lambda read: Client(ports["app"], "/graphql", body[read][0], token),
        ),
        # as served by default on PostgreSQL: each root field compiled to one JSON
        # statement (backend/cases/compiled.py), the same document and token
        "app-compiled": (
            [xinfang, "serve", "--port", str(ports["app-compiled"])],
            {**base_env, "XF_COMPILED_READS": "true"},
            lambda read: Client(ports["app-compiled"], "/graphql", body[read][0], token),
        ),
        "raw": (
            [*uvicorn, "--port", str(ports["raw"]), "tests.bench.bench_case_list:raw_app"],
            {
                "BENCH_RAW_URL": raw_url,
                "BENCH_POOL_SIZE": pool,
                "BENCH_ROLE": settings.db_app_role,
                "BENCH_TENANT": t["tenant_id"],
                "BENCH_UNIT": t["unit_path"],
                "BENCH_USER": t["officer"],
            },
            lambda read: Client(ports["raw"], f"/{read}", body[read][0], {}),
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
            lambda read: Client(ports["postgraphile"], "/graphql", body[read][1], {}),
        ),
    }
    if "postgraphile" in targets:
        ensure_postgraphile()
        await apply_postgraphile_sql(raw_url)
    out: dict[str, Any] = {"answers": {}, "runs": []}
    with _all_serving({k: specs[k] for k in targets}, ports):
        for read in reads:
            answers = {}
            for k in targets:
                client = specs[k][2](read)
                status_code, answer = await client.call()
                await client.close()
                assert status_code == 200, (k, read, answer[:500])
                answers[k] = normalise(k, read, answer)
            first = answers[targets[0]]
            for k, answer in answers.items():
                assert answer == first, f"{read}: {k} answers differently from {targets[0]}"
            out["answers"][read] = summary(read, first)
            for level in levels:  # interleaved, so a noisy neighbour hits all alike
                for k in targets:
                    r = await drive(partial(specs[k][2], read), level, seconds)
                    out["runs"].append({"read": read, "server": k, "concurrency": level, **r})
                    print(f"  {read:<6} {k:<13} c={level:<3} p50 {r['p50']:>8.2f} ms  "
                          f"{r['rps']:>8.1f} req/s", flush=True)  # fmt: skip
    out["page"] = out["answers"].get("list", {})  # as before (bench_scaling)
    return out


@contextmanager
def _all_serving(specs: dict[str, Any], ports: dict[str, int]) -> Iterator[None]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        for k, (cmd, env, _) in specs.items():
            stack.enter_context(serving(cmd, env, ports[k], k))
        yield


def table(result: dict[str, Any], t: dict[str, Any], status: str, read: str = "list") -> str:
    """One read's table: every server at every level, p50 as a ratio of raw and PostGraphile."""
    runs = [r for r in result["runs"] if r.get("read", "list") == read]
    p50 = {(r["server"], r["concurrency"]): r["p50"] for r in runs}
    rows = []
    for r in runs:
        c = r["concurrency"]
        raw, pg = p50.get(("raw", c)), p50.get(("postgraphile", c))
        rows.append([
            r["server"], c, r["p50"], r["p95"], r["p99"], r["rps"], r["errors"],
            f"{r['p50'] / raw:.2f}×" if raw else "-", f"{r['p50'] / pg:.2f}×" if pg else "-",
        ])  # fmt: skip
    a = result["answers"][read]
    where = (
        f"{t['cases']:,} cases in the database, {t['tenant']} ({t['tenant_cases']:,}); "
        f"officer at {t['unit_path']}"
    )
    title = {
        "list": f"case list: {where}, status {status}: {a.get('totalCount', 0):,} visible, "
        f"page of {a.get('rows', 0)}",
        "detail": f"case detail: {where}; case {a.get('case')} with {a.get('events')} events "
        f"and {a.get('deadlines')} deadlines",
        "board": f"warning board: {where}; red/yellow/blue {a.get('red')}/{a.get('yellow')}/"
        f"{a.get('blue')}, page of {a.get('rows')} of {t.get('color', 'RED')}",
    }[read]
    headers = ["server", "conc", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "p50÷raw",
               "p50÷PostGraphile"]  # fmt: skip
    return format_table(title, headers, rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--status", default="ACCEPTED", help="the list's status filter")
    parser.add_argument("--color", default="RED", help="the board's page")
    parser.add_argument(
        "--query", default="all", help="list, detail, board, a comma-separated mix, or all"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per server and level")
    parser.add_argument("--db", default=f"xf_bench_caselist_{os.getpid()}")
    parser.add_argument(
        "--reuse", action="store_true", help="use --db as it is (generate if empty)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="concurrencies")
    args = parser.parse_args()
    levels = tuple(int(n) for n in args.levels.split(","))
    reads = READS if args.query == "all" else tuple(args.query.split(","))
    if set(reads) - set(READS):
        parser.error(f"--query: one of {', '.join(READS)} or all")
    with fresh_database(args.db, keep=args.keep, reuse=args.reuse) as (raw_url, sa_url):
        t = asyncio.run(province_target(raw_url, cases=args.cases, tenants=args.tenants,
                                        seed=args.seed))  # fmt: skip
        t["color"] = args.color
        result = asyncio.run(measure(raw_url, sa_url, t, status=args.status,
                                     seconds=args.seconds, levels=levels, reads=reads,
                                     color=args.color))  # fmt: skip
    for read in reads:
        print(table(result, t, args.status, read), end="\n\n")
    name = f"case_list_{args.cases}"  # one file per size: make bench runs three
    path = write_results(name, {"target": t, "status": args.status, **result})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
