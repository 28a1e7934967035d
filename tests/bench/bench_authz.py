"""Benchmark: authorization per request — casbin decision and org-unit scope, µs per check.

    uv run python -m tests.bench.bench_authz [--assignments 10000] [--checks 20000]

Creates a throwaway database with one city built through the services, then
loads with COPY an org tree (counties → townships → villages) and
``--assignments`` role assignments of as many officials, so the tenant looks
like a real city. What a request does to authorise itself is timed, each part
on its own and in a tight loop (CPU time of the thread, so a busy shared machine
does not inflate it), for three callers:
a county petition officer (1 grant), a city leader with grants at ten units
(Art. 30 exclusions grow with them) and a grid worker (``read_own``).

* **decision** — :func:`backend.authz.enforcer.may` for the request's
  (object, action). Every request loads a new Principal, so *per request* times a
  fresh copy each call with the process-wide ``role_may`` memo warm (what every
  request after the first pays); *same request again* reuses the principal;
  *cold process* clears the memo first, so it is casbin's own ``enforce`` on the
  real policy (the enforcer itself is built once per process, its own row).
* **scope** — :func:`allowed_grants` + :func:`minimal_paths`: which units the
  allowed grants reach (what every list turns into SQL).
* **decision + scope** — the per-request total the 20 µs target is about.
* **SQL predicate** — :func:`backend.cases.visibility.read_predicate`, the
  SQLAlchemy expression the case list filters on (built, not compiled): *per
  request* for a fresh principal with the process-wide memo warm, *cold* with that
  memo cleared (what building it costs; casbin's ``role_may`` memo stays warm).

The derived results (allowed grants, minimal paths, read predicate) are memoised
process-wide on value keys (role names, unit paths, account), so *per request* builds
each fresh principal from fresh strings too: nothing rides on a hash cached on a
string that a real request would read anew from the database.
* **principal load** — :func:`backend.tenants.principals.load_principal`: the
  account and its grants read from PostgreSQL (one transaction, under RLS) —
  milliseconds of wall time, shown for scale: it is a round trip, not a check.

Baselines in the same run: a bare ``dict`` lookup (the floor of any memo) and a
casbin ``Enforcer.enforce`` on a two-line policy (casbin's fixed cost).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.bench.common import fresh_database, write_results

NAME = "authz"
TARGET_US = 20.0
COUNTIES, TOWNSHIPS, VILLAGES = 10, 10, 10
ROLES = ("PETITION_OFFICER", "LEADER", "DEPARTMENT_HANDLER", "GRID_WORKER", "EVALUATOR")


# --- seeding ---------------------------------------------------------------------------


async def seed(raw_url: str, assignments: int, seed: int) -> dict[str, Any]:
    """One city through the services, then its tree and officials by COPY (as the owner)."""
    import asyncpg

    from backend.authz.principal import SYSTEM
    from backend.core.db import Database
    from backend.tenants.flows import onboard_tenant

    slug = f"az{uuid.uuid4().hex[:6]}"
    db = Database()
    try:
        async with db.transaction() as session:
            tenant, root = await onboard_tenant(
                session, SYSTEM, slug=slug, name="Authz bench", province=f"{slug}p"
            )
            tenant_id, root_id, root_path = tenant.id, root.id, root.path
            province_id = tenant.province_id
    finally:
        await db.dispose()

    rng = random.Random(seed)
    at = datetime.now(UTC)
    units: list[tuple[Any, ...]] = []
    counties, villages = [], []
    for c in range(COUNTIES):
        cid, cpath = uuid.uuid4(), f"{root_path}/c{c}"
        units.append((tenant_id, cid, root_id, cpath, f"c{c}", f"c{c}", "COUNTY", 1, at))
        counties.append((cid, cpath))
        for t in range(TOWNSHIPS):
            tid, tpath = uuid.uuid4(), f"{cpath}/t{t}"
            units.append((tenant_id, tid, cid, tpath, f"t{t}", f"t{t}", "TOWNSHIP", 2, at))
            for v in range(VILLAGES):
                vid, vpath = uuid.uuid4(), f"{tpath}/v{v}"
                units.append((tenant_id, vid, tid, vpath, f"v{v}", f"v{v}", "VILLAGE", 3, at))
                villages.append((vid, vpath))
    every = [(root_id, root_path), *[(u[1], u[3]) for u in units]]

    accounts, users, grants = [], [], []

    def official(username: str, held: list[tuple[str, Any]]) -> None:
        uid = uuid.uuid4()
        accounts.append((uid, username, "TENANT_USER", username, tenant_id, province_id, at))
        users.append((tenant_id, uid, username, username, at))
        for role, unit_id in held:
            grants.append((tenant_id, uuid.uuid4(), uid, role, unit_id, at))

    official(f"{slug}_officer", [("PETITION_OFFICER", counties[3][0])])
    official(f"{slug}_leader", [("LEADER", root_id)] + [("LEADER", c[0]) for c in counties[:9]])
    official(f"{slug}_grid", [("GRID_WORKER", villages[42][0])])
    for i in range(assignments - len(grants)):
        official(f"{slug}_u{i}", [(rng.choice(ROLES), rng.choice(every)[0])])

    conn = await asyncpg.connect(raw_url)
    try:
        await conn.copy_records_to_table(
            "org_units",
            records=units,
            columns=[
                "tenant_id",
                "id",
                "parent_id",
                "path",
                "slug",
                "name",
                "level",
                "depth",
                "created_at",
            ],
        )
        await conn.copy_records_to_table(
            "accounts",
            records=accounts,
            columns=[
                "id",
                "username",
                "kind",
                "display_name",
                "tenant_id",
                "province_id",
                "created_at",
            ],
        )
        await conn.copy_records_to_table(
            "users",
            records=users,
            columns=["tenant_id", "id", "username", "display_name", "created_at"],
        )
        await conn.copy_records_to_table(
            "role_assignments",
            records=grants,
            columns=["tenant_id", "id", "user_id", "role", "org_unit_id", "created_at"],
        )
        await conn.execute("ANALYZE accounts; ANALYZE role_assignments; ANALYZE org_units")
        in_tenant = await conn.fetchval(
            "SELECT count(*) FROM role_assignments WHERE tenant_id = $1", tenant_id
        )
    finally:
        await conn.close()
    return {
        "slug": slug,
        "assignments": in_tenant,
        "units": len(every),
        "callers": {
            "county officer (1 grant)": (f"{slug}_officer", "case", "read"),
            "city leader (10 grants)": (f"{slug}_leader", "case", "read"),
            "grid worker (read_own)": (f"{slug}_grid", "case", "read_own"),
        },
    }


# --- timing ----------------------------------------------------------------------------


def per_call_us(fn: Callable[[], Any], n: int, before: Callable[[], Any] | None = None) -> float:
    """Median over 5 rounds of the mean µs per call of ``fn`` (``before`` runs untimed).

    CPU time of this thread (``thread_time_ns``), not wall time: on a shared machine the
    process is descheduled for milliseconds at a time, which says nothing about the check.
    """
    clock = time.thread_time_ns
    rounds = []
    for _ in range(5):
        if before is None:
            started = clock()
            for _ in range(n):
                fn()
            rounds.append((clock() - started) / n / 1000)
        else:
            spent = 0
            for _ in range(n):
                before()
                started = clock()
                fn()
                spent += clock() - started
            rounds.append(spent / n / 1000)
    return sorted(rounds)[2]


async def principal_load_us(username: str, n: int) -> float:
    from backend.core.db import Database
    from backend.tenants.principals import load_principal

    db = Database()
    try:
        for _ in range(20):
            await load_principal(db, username)
        started = time.perf_counter_ns()
        for _ in range(n):
            await load_principal(db, username)
        return (time.perf_counter_ns() - started) / n / 1000
    finally:
        await db.dispose()


async def load(username: str) -> Any:
    from backend.core.db import Database
    from backend.tenants.principals import load_principal

    db = Database()
    try:
        return await load_principal(db, username)
    finally:
        await db.dispose()


def _copy(text: str) -> str:
    """An equal string that is a new object (its hash not yet computed), as a DB read gives."""
    return "".join(list(text))


def fresh(principal: Any) -> Any:
    """The principal as the next request loads it: new objects, new strings, equal values."""
    return dataclasses.replace(
        principal,
        username=_copy(principal.username),
        grants=tuple(
            dataclasses.replace(g, unit_path=_copy(g.unit_path)) for g in principal.grants
        ),
    )


def measure(world: dict[str, Any], checks: int, loads: int) -> list[dict[str, Any]]:
    import casbin

    from backend.authz import enforcer as authz
    from backend.authz import scope as authz_scope
    from backend.authz.scope import minimal_paths
    from backend.cases import visibility
    from backend.cases.visibility import read_predicate

    def clear_memos() -> None:
        """A cold process: every process-wide memo of authz and visibility emptied."""
        authz.role_may.cache_clear()
        authz.allowed_indices.cache_clear()
        authz_scope._minimal_paths.cache_clear()
        visibility._tenant_read_predicate.cache_clear()

    rows: list[dict[str, Any]] = []
    started = time.thread_time_ns()
    authz.enforcer.cache_clear()
    authz.enforcer()
    rows.append(
        {
            "caller": "-",
            "what": "build the casbin enforcer (once per process)",
            "us": (time.thread_time_ns() - started) / 1000,
        }
    )
    memo = {("petition_officer", "tenant", "case", "read"): True}
    key = ("petition_officer", "tenant", "case", "read")
    rows.append(
        {
            "caller": "-",
            "what": "baseline: bare dict lookup",
            "us": per_call_us(lambda: memo[key], checks),
        }
    )
    tiny = casbin.Enforcer(str(authz.MODEL_PATH))
    tiny.add_policy("petition_officer", "tenant", "case", "read")
    tiny.add_grouping_policy("leader", "petition_officer", "tenant")
    rows.append(
        {
            "caller": "-",
            "what": "baseline: casbin enforce, 2-line policy",
            "us": per_call_us(
                lambda: tiny.enforce("leader", "tenant", "case", "read"), checks // 4
            ),
        }
    )

    for caller, (username, obj, act) in world["callers"].items():
        principal = asyncio.run(load(username))

        # every request loads its own Principal: "per request" times a fresh copy each call
        current = [principal]

        def new_request(p: Any = principal, c: list[Any] = current) -> None:
            c[0] = fresh(p)

        def process_cold(p: Any = principal, c: list[Any] = current) -> None:
            clear_memos()
            c[0] = fresh(p)

        def predicate_cold(p: Any = principal, c: list[Any] = current) -> None:
            visibility._tenant_read_predicate.cache_clear()
            c[0] = fresh(p)

        def predicate(c: list[Any] = current) -> Any:
            return read_predicate(c[0])

        def decide(o: str = obj, a: str = act, c: list[Any] = current) -> bool:
            return authz.may(c[0], o, a)

        def scope(o: str = obj, a: str = act, c: list[Any] = current) -> list[str]:
            return minimal_paths(g.unit_path for g in authz.allowed_grants(c[0], o, a))

        def both(o: str = obj, a: str = act, c: list[Any] = current) -> list[str]:
            authz.require(c[0], o, a)
            return minimal_paths(g.unit_path for g in authz.allowed_grants(c[0], o, a))

        decide()
        rows += [
            {
                "caller": caller,
                "what": "decision, same request again (memoised)",
                "us": per_call_us(decide, checks),
            },
            {
                "caller": caller,
                "what": "decision, cold process (casbin enforce)",
                "us": per_call_us(decide, checks // 10, before=process_cold),
            },
            {
                "caller": caller,
                "what": "scope (allowed grants → unit paths)",
                "us": per_call_us(scope, checks // 4, before=new_request),
            },
            {
                "caller": caller,
                "what": "decision + scope, per request",
                "us": per_call_us(both, checks // 4, before=new_request),
                "target": True,
            },
            {
                "caller": caller,
                "what": "decision + scope, cold process",
                "us": per_call_us(both, checks // 10, before=process_cold),
            },
            {
                "caller": caller,
                "what": "SQL predicate (read_predicate), per request",
                "us": per_call_us(predicate, checks // 4, before=new_request),
            },
            {
                "caller": caller,
                "what": "SQL predicate (read_predicate), cold (built)",
                "us": per_call_us(predicate, checks // 20, before=predicate_cold),
            },
            {
                "caller": caller,
                "what": "principal load from PostgreSQL (round trip)",
                "us": asyncio.run(principal_load_us(username, loads)),
            },
        ]
    return rows


def table(rows: list[dict[str, Any]], world: dict[str, Any]) -> str:
    from tests.bench.common import format_table

    def verdict(r: dict[str, Any]) -> str:
        if not r.get("target"):
            return ""
        return "met" if r["us"] <= TARGET_US else "MISSED"

    return format_table(
        f"authorization per request: µs/check with {world['assignments']:,} role assignments "
        f"and {world['units']:,} units in the tenant (target ≤ {TARGET_US:.0f} µs)",
        ["caller", "what", "µs/check", "target"],
        [[r["caller"], r["what"], round(r["us"], 2), verdict(r)] for r in rows],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, default=10_000)
    parser.add_argument("--checks", type=int, default=20_000, help="timed calls per round")
    parser.add_argument("--loads", type=int, default=200, help="timed principal loads")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--db", default=f"xf_h2_bench_authz_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with fresh_database(args.db, keep=args.keep) as (raw_url, _):
        world = asyncio.run(seed(raw_url, args.assignments, args.seed))
        rows = measure(world, args.checks, args.loads)
    print(table(rows, world))
    write_results(
        NAME,
        {
            "assignments": world["assignments"],
            "units": world["units"],
            "target_us": TARGET_US,
            "rows": [{**r, "us": round(r["us"], 3)} for r in rows],
        },
    )
    return 0  # a missed target shows in the table; only a crash fails the run


if __name__ == "__main__":
    sys.exit(main())
