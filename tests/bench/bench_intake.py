"""Benchmark: ``registerCase`` throughput over HTTP through a real uvicorn server.

    uv run python -m tests.bench.bench_intake [--cases 4000] [--tenants 4] [--concurrency 32]

Creates a throwaway PostgreSQL database, builds ``--tenants`` cities through the
services (a county with a township, one petition officer at the city root), then
for each row of the table registers ``--cases`` new petitions at ``--concurrency``:

* ``raw asyncpg`` — the limit: per case one transaction of the same rows written
  by hand (counter UPDATE … RETURNING, case, event, deadline INSERTs) on a pool of
  the server's size, no ORM, no GraphQL, no RLS;
* ``HTTP, N worker(s)`` — ``xinfang serve --workers N`` on a free port, the
  mutation posted as JSON with a bearer token, the load spread over the tenants;
* ``HTTP, 1 tenant`` — the same with every case in one city: its counter row
  (``case_counters``) serialises numbering, so this shows what that lock costs;
* ``HTTP bulk ×B`` — bulk intake (``registerCases``, a hotline's or the online
  portal's import): the same petitions posted ``--bulk-size`` to a request, each
  request one tenant's batch in one transaction (``--bulk-size 0`` leaves the row out).

Besides cases/s and latency (wall clock, so whatever else runs on the machine
shows in them) the table gives the CPU time per case of the app (the server's
process tree) and of PostgreSQL (the database's backends), read from /proc, and
the rate two otherwise idle cores could sustain at that CPU cost — the number
to hold against the target on a shared or noisy machine.

The load generator is a few lines of HTTP/1.1 keep-alive over asyncio streams
(one connection per concurrent client) so it takes as little of the two cores
as possible away from the server. After each row the numbers are checked in
SQL: per tenant ``1..n`` without gap or duplicate, one REGISTERED event and one
open ROUTING deadline per case. Every row counts its errors (non-200 or a
GraphQL error). Intake runs ``repeat`` detection, so petitioners recur.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.common import fresh_database, percentiles, write_results

NAME = "intake"
TARGET = 500.0  # cases/s on 2 cores
REGISTER = "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id number status dueAt } }"
BULK = (
    "mutation($i: [RegisterCaseInput!]!) { registerCases(inputs: $i) { id number status dueAt } }"
)
CATEGORIES = ("land", "wages", "housing", "labor", "medical", "education", "environment")
CHANNELS = ("VISIT", "LETTER", "PHONE", "ONLINE")


# --- seeding ---------------------------------------------------------------------------


async def build_tenants(n: int, run: str) -> list[dict[str, Any]]:
    """Cities with a county and township and one petition officer at the root (services)."""
    from backend.authz.principal import SYSTEM
    from backend.authz.roles import Role
    from backend.authz.tokens import issue_token
    from backend.core.db import Database
    from backend.tenants import service
    from backend.tenants.flows import onboard_tenant
    from backend.tenants.models import OrgUnitLevel

    db = Database()
    tenants = []
    try:
        for t in range(n):
            slug = f"i{run}{t:02d}"
            async with db.transaction() as session:
                tenant, root = await onboard_tenant(
                    session, SYSTEM, slug=slug, name=f"Intake {t}", province=f"ip{run}"
                )
                county = await service.create_org_unit(
                    session,
                    SYSTEM,
                    parent_path=root.path,
                    slug="c1",
                    name="c1",
                    level=OrgUnitLevel.COUNTY,
                )
                town = await service.create_org_unit(
                    session,
                    SYSTEM,
                    parent_path=county.path,
                    slug="t1",
                    name="t1",
                    level=OrgUnitLevel.TOWNSHIP,
                )
                username = f"{slug}_officer"
                user = await service.create_user(
                    session, SYSTEM, tenant=slug, username=username, display_name=username
                )
                await service.assign_role(
                    session,
                    SYSTEM,
                    username=username,
                    role=Role.PETITION_OFFICER,
                    org_unit_path=root.path,
                )
            tenants.append(
                {
                    "id": tenant.id,
                    "slug": slug,
                    "prefix": tenant.case_prefix,
                    "units": [(root.id, root.path), (county.id, county.path), (town.id, town.path)],
                    "user_id": user.id,
                    "username": username,
                    "token": issue_token(username, ttl_seconds=3600),
                }
            )
    finally:
        await db.dispose()
    return tenants


def id_number(rng: random.Random) -> str:
    from backend.cases.pii import check_character

    first17 = f"411403{1950 + rng.randrange(50)}{rng.randrange(1, 13):02d}"
    first17 += f"{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}"
    return first17 + check_character(first17)


def inputs(tenants: list[dict[str, Any]], n: int, seed: int, run: str) -> list[dict[str, Any]]:
    """``n`` RegisterCaseInputs round-robin over ``tenants``; one petitioner in five recurs."""
    rng = random.Random(seed)
    received = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    people = [(id_number(rng), f"138{rng.randrange(10**8):08d}") for _ in range(max(1, n // 5))]
    out = []
    for i in range(n):
        t = tenants[i % len(tenants)]
        idno, phone = rng.choice(people) if rng.random() < 0.2 else (id_number(rng), None)
        out.append(
            {
                "tenant": t,
                "input": {
                    "clientKey": f"bench-{run}-{i}",
                    "channel": rng.choice(CHANNELS),
                    "type": "CLAIM",
                    "category": rng.choice(CATEGORIES),
                    "subject": f"intake benchmark {i}",
                    "content": "村民反映征地补偿款至今未发放到位，请求依法处理。" * 3,
                    "petitioner": {"name": "张三", "phone": phone, "idNumber": idno},
                    "locationPath": t["units"][1 + i % 2][1],
                    "receivedAt": received,
                },
            }
        )
    return out


# --- HTTP load -------------------------------------------------------------------------


class Connection:
    """One HTTP/1.1 keep-alive connection: as cheap a client as asyncio allows."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, token: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def single_bodies(work: list[dict[str, Any]]) -> list[tuple[bytes, str]]:
    """One ``registerCase`` request per petition."""
    return [
        (
            json.dumps({"query": REGISTER, "variables": {"i": w["input"]}}).encode(),
            w["tenant"]["token"],
        )
        for w in work
    ]


def bulk_bodies(work: list[dict[str, Any]], size: int) -> list[tuple[bytes, str]]:
    """``registerCases`` requests of ``size`` petitions, each of one tenant (its officer's
    batch), interleaved over the tenants as the single requests are."""
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for w in work:
        by_tenant.setdefault(w["tenant"]["token"], []).append(w["input"])
    chunks = [
        [(token, items[k : k + size]) for k in range(0, len(items), size)]
        for token, items in by_tenant.items()
    ]
    batches = [b for row in itertools.zip_longest(*chunks) for b in row if b is not None]
    return [
        (json.dumps({"query": BULK, "variables": {"i": items}}).encode(), token)
        for token, items in batches
    ]


async def http_load(
    port: int, bodies: list[tuple[bytes, str]], concurrency: int, server_pid: int, db_name: str
) -> dict[str, Any]:
    """Post every body at ``concurrency``; latencies (per request), errors, wall and CPU."""
    queue = iter(bodies)
    latencies: list[float] = []
    errors: list[str] = []

    async def client() -> None:
        conn = Connection("127.0.0.1", port)
        try:
            for body, token in queue:
                started = time.perf_counter()
                try:
                    status, raw = await conn.post("/graphql", body, token)
                    reply = json.loads(raw)
                except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                    errors.append(repr(exc))
                    conn = Connection("127.0.0.1", port)
                    continue
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200 or reply.get("errors"):
                    errors.append(f"{status} {str(reply.get('errors'))[:200]}")
        finally:
            await conn.close()

    cpu = Cpu(db_name, server_pid)
    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "latencies": latencies, "errors": errors, **cpu.used()}


def _ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def cpu_seconds(root: int | None = None, db_name: str | None = None) -> float:
    """CPU time so far of process ``root`` and its children, or of the PostgreSQL backends
    serving ``db_name`` (their process title names the database). Linux /proc only."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            if root is not None:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if pid != root and int(stat[1]) != root:
                    continue
            elif db_name is None or db_name.encode() not in (entry / "cmdline").read_bytes():
                continue
        except OSError:
            continue
        total += _ticks(pid)
    return total / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds spent during a run by the app (server tree, or this process for the raw
    baseline), by PostgreSQL's backends of the database, and by this load generator."""

    def __init__(self, db_name: str, server_pid: int | None) -> None:
        self.db_name, self.server_pid = db_name, server_pid
        self.start = self._now()

    def _now(self) -> tuple[float, float, float]:
        me = time.process_time()
        app = cpu_seconds(root=self.server_pid) if self.server_pid else me
        return app, cpu_seconds(db_name=self.db_name), me

    def used(self) -> dict[str, float]:
        end = self._now()
        app, pg, me = (b - a for a, b in zip(self.start, end, strict=True))
        return {"app_cpu": app, "pg_cpu": pg, "client_cpu": me if self.server_pid else 0.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workers: int, pool_size: int) -> tuple[subprocess.Popen[bytes], int]:
    """``xinfang serve`` on a free port (jobs off: no scheduler competing for the cores)."""
    port = free_port()
    env = {
        **os.environ,
        "XF_RUN_JOBS_IN_PROCESS": "false",
        "XF_LOG_LEVEL": "WARNING",
        "XF_DB_POOL_SIZE": str(pool_size),
    }
    env.pop("XF_REDIS_URL", None)
    xinfang = Path(sys.executable).with_name("xinfang")
    server = subprocess.Popen(
        [str(xinfang), "serve", "--port", str(port), "--workers", str(workers)], env=env
    )
    deadline = time.monotonic() + 180  # two workers importing the app on a busy machine
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"GET /readyz?require=database HTTP/1.1\r\nHost: x\r\n\r\n")
                if b"200" in s.recv(64):
                    return server, port
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("server did not become ready")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


async def warm_up(port: int, tenants: list[dict[str, Any]], workers: int) -> None:
    """A few requests per worker and tenant so imports, pools and caches are warm."""
    conn = Connection("127.0.0.1", port)
    try:
        for t in tenants:
            body = json.dumps({"query": "{ me { username } }"}).encode()
            for _ in range(4 * workers):
                await conn.post("/graphql", body, t["token"])
    finally:
        await conn.close()


# --- raw asyncpg: the limit ------------------------------------------------------------


async def raw_load(
    url: str, work: list[dict[str, Any]], concurrency: int, pool_size: int, db_name: str
) -> dict[str, Any]:
    """The same rows per case in one hand-written transaction each, as the owner."""
    import asyncpg

    from backend.core.ids import new_id

    year = datetime.now(UTC).year
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
    try:
        async with pool.acquire() as conn:
            for t in {id(w["tenant"]): w["tenant"] for w in work}.values():
                await conn.execute(
                    "INSERT INTO case_counters (tenant_id, id, year, last, created_at)"
                    " VALUES ($1, $2, $3, 0, now()) ON CONFLICT DO NOTHING",
                    t["id"],
                    new_id(),
                    year,
                )
        queue = iter(work)
        latencies: list[float] = []

        async def client() -> None:
            for w in queue:
                started = time.perf_counter()
                t, data = w["tenant"], w["input"]
                case_id, at = new_id(), datetime.now(UTC)
                received = datetime.fromisoformat(data["receivedAt"])
                unit_id, path = next(u for u in t["units"] if u[1] == data["locationPath"])
                async with pool.acquire() as conn, conn.transaction():
                    last = await conn.fetchval(
                        "UPDATE case_counters SET last = last + 1"
                        " WHERE tenant_id = $1 AND year = $2 RETURNING last",
                        t["id"],
                        year,
                    )
                    number = f"{t['prefix']}-{year}-{last:06d}"
                    await conn.execute(
                        "INSERT INTO cases (tenant_id, id, number, client_key, payload_hash,"
                        " channel, type, category, subject, content, priority, tags, head_count,"
                        " petitioner_name, petitioner_phone, petitioner_id_number,"
                        " location_unit_id, location_path, holder_unit_id, holder_path,"
                        " registered_by_id, first_receiver_id, status, version, received_at,"
                        " due_at, warning_color, repeat_count, skip_level, extension_approved,"
                        " updated_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                        " $10, 'NORMAL', '[]', 1, $11, $12, $13, $14, $15, $16, $17, $18, $18,"
                        " 'REGISTERED', 1, $19, $20, 'BLUE', 0, 'NONE', false, $21, $21)",
                        t["id"],
                        case_id,
                        number,
                        data["clientKey"],
                        "0" * 64,
                        data["channel"],
                        data["type"],
                        data["category"],
                        data["subject"],
                        data["content"],
                        data["petitioner"]["name"],
                        data["petitioner"]["phone"],
                        data["petitioner"]["idNumber"],
                        unit_id,
                        path,
                        t["units"][0][0],
                        t["units"][0][1],
                        t["user_id"],
                        received,
                        received + timedelta(days=15),
                        at,
                    )
                    await conn.execute(
                        "INSERT INTO case_events (tenant_id, id, case_id, seq, kind, at,"
                        " actor_id, actor_username, to_status, data, prev_hash, hash, created_at)"
                        " VALUES ($1, $2, $3, 1, 'REGISTERED', $4, $5, $6, 'REGISTERED', $7, $8,"
                        " $9, $4)",
                        t["id"],
                        new_id(),
                        case_id,
                        at,
                        t["user_id"],
                        t["username"],
                        json.dumps({"number": number}),
                        "0" * 64,
                        hashlib.sha256(number.encode()).hexdigest(),
                    )
                    await conn.execute(
                        "INSERT INTO case_deadlines (tenant_id, id, case_id, step, status,"
                        " started_at, due_date, due_at, rule, warning_color, held_days,"
                        " created_at) VALUES ($1, $2, $3, 'ROUTING', 'OPEN', $4, $5, $6, '{}',"
                        " 'BLUE', 0, $7)",
                        t["id"],
                        new_id(),
                        case_id,
                        received,
                        (received + timedelta(days=15)).date(),
                        received + timedelta(days=15),
                        at,
                    )
                latencies.append((time.perf_counter() - started) * 1000)

        cpu = Cpu(db_name, None)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "latencies": latencies, "errors": [], **cpu.used()}
    finally:
        await pool.close()


# --- checks ----------------------------------------------------------------------------


async def check_numbers(url: str, tenants: list[dict[str, Any]]) -> dict[str, Any]:
    """Per tenant: numbers exactly 1..n (no gap, no duplicate), one event and step per case."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """
            SELECT c.tenant_id,
                   count(*) AS cases,
                   count(DISTINCT c.number) AS numbers,
                   min(split_part(c.number, '-', 3)::int) AS lo,
                   max(split_part(c.number, '-', 3)::int) AS hi,
                   (SELECT count(*) FROM case_events e
                     WHERE e.tenant_id = c.tenant_id AND e.kind = 'REGISTERED') AS events,
                   (SELECT count(*) FROM case_deadlines d
                     WHERE d.tenant_id = c.tenant_id AND d.step = 'ROUTING') AS steps
              FROM cases c WHERE c.tenant_id = ANY($1::uuid[]) GROUP BY c.tenant_id
            """,
            [t["id"] for t in tenants],
        )
    finally:
        await conn.close()
    gap_free = all(
        r["cases"] == r["numbers"] == r["hi"] == r["events"] == r["steps"] and r["lo"] == 1
        for r in rows
    )
    return {"gap_free": gap_free, "cases": sum(r["cases"] for r in rows)}


# --- the run ---------------------------------------------------------------------------


def summarise(label: str, out: dict[str, Any], n: int, tenants: int, check: dict[str, Any]):
    p = percentiles(out["latencies"])
    rate = n / out["seconds"] if out["seconds"] else 0.0
    return {
        "run": label,
        "tenants": tenants,
        "cases": n,
        "seconds": round(out["seconds"], 2),
        "cases_per_s": round(rate, 1),
        **p,
        "app_cpu_ms": round(out["app_cpu"] * 1000 / n, 2),
        "pg_cpu_ms": round(out["pg_cpu"] * 1000 / n, 2),
        "client_cpu_ms": round(out["client_cpu"] * 1000 / n, 2),
        # what two otherwise idle cores could sustain when app and PostgreSQL CPU is the limit
        "ceiling_2_cores": round(2000 / max(0.01, (out["app_cpu"] + out["pg_cpu"]) * 1000 / n)),
        "errors": len(out["errors"]),
        "gap_free": check["gap_free"] and check["cases"] == n,
        "sample_errors": out["errors"][:3],
    }


def table(rows: list[dict[str, Any]], concurrency: int, base: float) -> str:
    from tests.bench.common import format_table

    return format_table(
        f"registerCase intake at concurrency {concurrency} (target ≥ {TARGET:.0f} cases/s)",
        [
            "run",
            "tenants",
            "cases",
            "cases/s",
            "× raw",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "app CPU ms/case",
            "PG CPU ms/case",
            "CPU ceiling, 2 cores",
            "errors",
            "gap-free",
        ],
        [
            [
                r["run"],
                r["tenants"],
                r["cases"],
                r["cases_per_s"],
                f"{r['cases_per_s'] / base:.2f}" if base else "-",
                r["p50"],
                r["p95"],
                r["p99"],
                r["app_cpu_ms"],
                r["pg_cpu_ms"],
                r["ceiling_2_cores"],
                r["errors"],
                "yes" if r["gap_free"] else "NO",
            ]
            for r in rows
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=4000, help="cases per row of the table")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to measure")
    parser.add_argument("--pool-size", type=int, default=10, help="XF_DB_POOL_SIZE per worker")
    parser.add_argument(
        "--bulk-size", type=int, default=100, help="petitions per registerCases request (0: no row)"
    )
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--db", default=f"xf_h2_bench_intake_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w]

    with fresh_database(args.db, keep=args.keep) as (raw_url, _):
        run = uuid.uuid4().hex[:4]
        # one fresh set of tenants per row: every row starts numbering at 1
        labels = ["raw asyncpg", *[f"HTTP, {w} worker{'s' if w > 1 else ''}" for w in workers]]
        sets = {
            label: asyncio.run(build_tenants(args.tenants, f"{run}{k}"))
            for k, label in enumerate(labels)
        }
        best = max(workers)
        single = f"HTTP, {best} worker{'s' if best > 1 else ''}, 1 tenant"
        sets[single] = asyncio.run(build_tenants(1, f"{run}s"))
        bulk = f"HTTP bulk ×{args.bulk_size}, {best} worker{'s' if best > 1 else ''}"
        if args.bulk_size > 0:
            sets[bulk] = asyncio.run(build_tenants(args.tenants, f"{run}b"))
        rows = []
        for k, (label, tenants) in enumerate(sets.items()):
            work = inputs(tenants, args.cases, args.seed + k, f"{run}{k}")
            if label == "raw asyncpg":
                out = asyncio.run(
                    raw_load(raw_url, work, args.concurrency, args.pool_size * 2, args.db)
                )
            else:
                w = best if label in (single, bulk) else int(label.split()[1])
                bodies = bulk_bodies(work, args.bulk_size) if label == bulk else single_bodies(work)
                # a batch carries bulk-size petitions: fewer clients keep as many in flight
                clients = (
                    max(1, min(args.concurrency, len(bodies), 2 * w))
                    if label == bulk
                    else args.concurrency
                )
                server, port = start_server(w, args.pool_size)
                try:
                    asyncio.run(warm_up(port, tenants, w))
                    out = asyncio.run(http_load(port, bodies, clients, server.pid, args.db))
                finally:
                    stop_server(server)
            check = asyncio.run(check_numbers(raw_url, tenants))
            rows.append(summarise(label, out, args.cases, len(tenants), check))
        base = rows[0]["cases_per_s"]
        print(table(rows, args.concurrency, base))
        write_results(
            NAME,
            {
                "cases": args.cases,
                "tenants": args.tenants,
                "concurrency": args.concurrency,
                "pool_size": args.pool_size,
                "target_cases_per_s": TARGET,
                "rows": rows,
            },
        )
    bad = [r for r in rows if r["errors"] or not r["gap_free"]]
    for r in bad:
        print(f"{r['run']}: {r['errors']} errors, e.g. {r['sample_errors']}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
