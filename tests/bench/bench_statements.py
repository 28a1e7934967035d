"""Benchmark: SQL statements per GraphQL request for the main queries, by page size.

    uv run python -m tests.bench.bench_statements [--sizes 5,50,100]

Creates a throwaway PostgreSQL database, builds a city through the services
(the test suite's ``build_city``), registers ``max(sizes) + 2`` cases through
the intake service (one petitioner, so repeats make them evaluation-eligible),
routes some and gives some a 包案 leader, and queues an in-app notification
per case for the city officer. Then every query of :data:`QUERIES` is sent
through the ASGI app (in process, the same path as over HTTP) at each page
size while an engine listener counts the statements sent to PostgreSQL
(per-transaction settings — ``SET LOCAL ROLE``, ``set_config`` — excluded:
they are the tenant wall, not the query's work).

A count that grows with the page size is an N+1 bug: nested fields must be
batched through ``backend/schema/loaders.py``. ``tests/test_statement_counts.py``
asserts the same on small pages in the suite (no timing). Exit status 1 when a
count grows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from tests.bench.common import fresh_database, write_results

NAME = "statements"
# per-transaction settings on PostgreSQL (role and tenant scope), not work of the query
SETUP = ("SET LOCAL ROLE", "SET TRANSACTION", "SELECT set_config(")

_CASE_NODE = """
    number status warningColor
    holderUnit { path name } locationUnit { path } leader { username }
    deadlines { step dueAt } events { seq kind actor { username } }
    petitioner { name phone masked }"""

# name: (who asks, query, variables; "$n" is the page size, "$id" a case id, "$ids" the
# newest n case ids, "$from"/"$to"
# the last 30 days, "$province" the city's province)
QUERIES: dict[str, tuple[str, str]] = {
    "cases (nested)": (
        "officer",
        "query($n: Int!) { cases(first: $n) { totalCount edges { node {" + _CASE_NODE + " } } } }",
    ),
    "cases (supervisor)": (
        "sup",
        "query($n: Int!) { cases(first: $n) { totalCount edges { node {" + _CASE_NODE + " } } } }",
    ),
    "cases (backward)": (
        "officer",
        "query($n: Int!) { cases(last: $n) { totalCount edges { node {" + _CASE_NODE + " } }"
        " pageInfo { hasPreviousPage startCursor } } }",
    ),
    "nodes (cases)": (
        "officer",
        "query($ids: [ID!]!) { nodes(ids: $ids) { id ... on Case {" + _CASE_NODE + " } } }",
    ),
    "node (case)": (
        "officer",
        "query($id: ID!) { node(id: $id) { id ... on Case {" + _CASE_NODE + " } } }",
    ),
    "case detail": (
        "officer",
        "query($id: ID!) { case(id: $id) {" + _CASE_NODE + " firstReceiver { username } } }",
    ),
    "warningBoard": (
        "officer",
        """query($n: Int!) { warningBoard { red yellow blue
          r: cases(color: RED, first: $n) { edges { node { number holderUnit { path }
             leader { username } deadlines { step dueAt } } } }
          y: cases(color: YELLOW, first: $n) { edges { node { number holderUnit { path }
             leader { username } deadlines { step dueAt } } } }
          b: cases(color: BLUE, first: $n) { edges { node { number holderUnit { path }
             leader { username } deadlines { step dueAt } } } } } }""",
    ),
    "evaluationEligibleCases": (
        "officer",
        """query($n: Int!) { evaluationEligibleCases(first: $n) { totalCount edges { node {
           number repeatCount holderUnit { path } leader { username } deadlines { step } } } } }""",
    ),
    "caseStatistics": (
        "officer",
        """query($from: Date!, $to: Date!) { caseStatistics(from: $from, to: $to) {
           received backlog repeatRate onTimeAcceptanceRate byChannel { key count }
           byCategory { key count } byType { key count } byRating { key count } } }""",
    ),
    "provinceOverview": (
        "sup",
        """query($province: String!, $from: Date!, $to: Date!) {
           provinceOverview(province: $province, from: $from, to: $to) {
             tenants { slug name received backlog byCategory { key count } }
             total { received backlog } } }""",
    ),
    "notificationsConnection": (
        "officer",
        """query($n: Int!) { notificationsConnection(last: $n) { edges { cursor node {
           id kind subject caseId status recipient createdAt } } pageInfo { hasPreviousPage } } }""",
    ),
    "notifications": (
        "officer",
        """query($n: Int!) { notifications(first: $n) {
           id kind subject caseId status recipient createdAt } }""",
    ),
}


@contextmanager
def statements(engine: Any) -> Iterator[list[str]]:
    """Every SQL statement ``engine`` sends while the block runs (setup ones left out)."""
    from sqlalchemy import event

    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().startswith(SETUP):
            seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# --- data ------------------------------------------------------------------------------


async def build(db: Any, n_cases: int) -> dict[str, Any]:
    """A city with ``n_cases`` cases (some routed, some with a leader: the newest ten and the
    oldest two), one in-app
    notification per case for the officer, and a provincial supervisor."""
    from backend.authz.principal import SYSTEM
    from backend.authz.tokens import issue_token
    from backend.cases import service
    from backend.cases.models import CaseType, Channel
    from backend.core.clock import now
    from backend.notifications.service import enqueue
    from backend.tenants import service as tenants
    from backend.tenants.principals import load_principal
    from tests.helpers import build_city, unique

    city = await build_city(db, unique("st"), unique("sp"))
    sup = unique("sup")
    async with db.transaction() as session:
        await tenants.create_provincial_supervisor(
            session, SYSTEM, username=sup, display_name="sup", province=city.province
        )
    city.tokens["sup"] = issue_token(sup)
    officer = await load_principal(db, f"{city.slug}_officer")
    leader = await load_principal(db, f"{city.slug}_leader")
    units = ["c1/t1", "c1", "c2/t1", "dept", "c2"]
    ids = []
    for i in range(n_cases):
        data = service.RegisterCaseInput(
            client_key=unique("st"),
            channel=(Channel.LETTER, Channel.PHONE, Channel.ONLINE)[i % 3],
            type=CaseType.CLAIM,
            category=("land", "wages")[i % 2],
            subject=f"statement count {i}",
            content="村民反映征地补偿款至今未发放到位。",
            petitioner=service.PetitionerInput("张三", "13800001234", None),
            location_path=city.path(units[i % len(units)]),
            # later = newer, so the newest page holds the routed and leader cases below
            received_at=now() - timedelta(hours=n_cases - i),
        )
        async with db.transaction(officer.scope()) as session:
            case = await service.register_case(session, officer, data)
            ids.append((case.id, case.version))
            await enqueue(
                session,
                tenant_id=case.tenant_id,
                recipient_id=officer.account_id,
                kind="reminder",
                subject=f"case {case.number}",
                body="statement count",
                dedupe_key=f"bench-{case.id}",
                case_id=case.id,
                channels=["inapp"],
            )
    # the oldest two as well: a page read backward (last: n) holds them
    chosen = list(dict.fromkeys(ids[:2] + ids[-min(10, n_cases) :]))
    for k, (case_id, version) in enumerate(chosen):
        ref = service.CaseRef(str(case_id), version)
        async with db.transaction(officer.scope()) as session:
            if k % 2:
                await service.route_case(
                    session, officer, ref, to_unit_path=city.path("c2"), mode="TRANSFER"
                )
            else:
                await service.assign_case_leader(
                    session, leader, ref, username=f"{city.slug}_leader"
                )
    return {"city": city, "case_id": str(ids[0][0]), "case_ids": [str(i) for i, _ in ids]}


# --- counting --------------------------------------------------------------------------


async def count(app: Any, client: Any, world: dict[str, Any], name: str, n: int) -> int:
    """Statements of one request of query ``name`` at page size ``n`` (fails on errors)."""
    from backend.core.clock import now

    who, query = QUERIES[name]
    city = world["city"]
    today = now().date()
    variables = {
        "n": n,
        "id": world["case_id"],
        "ids": world["case_ids"][-n:],  # the newest n: routed and leader cases among them
        "from": (today - timedelta(days=30)).isoformat(),
        "to": today.isoformat(),
        "province": city.province,
    }
    used = {k: v for k, v in variables.items() if f"${k}" in query}
    headers = {"Authorization": f"Bearer {city.token(who)}"}
    with statements(app.state.db.engine.sync_engine) as seen:
        resp = await client.post(
            "/graphql", json={"query": query, "variables": used}, headers=headers
        )
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), (name, body)
    return len(seen)


async def fewest(app: Any, client: Any, world: dict[str, Any], name: str, n: int) -> int:
    """The fewest statements over three requests: per-process caches that expire on a timer
    (the holiday calendar, a tenant's persisted-query mode) add a statement now and then,
    an N+1 adds them every time."""
    return min([await count(app, client, world, name, n) for _ in range(3)])


async def measure(sizes: list[int]) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    import httpx

    from backend.app import create_app

    app = create_app(run_jobs=False)
    try:
        world = await build(app.state.db, max(sizes) + 2)
        rows, samples = [], {}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for name in QUERIES:
                await count(app, client, world, name, max(sizes))  # per-process caches filled
                counts = [await fewest(app, client, world, name, n) for n in sizes]
                rows.append({"query": name, "counts": dict(zip(sizes, counts, strict=True))})
                for n in sizes:
                    with statements(app.state.db.engine.sync_engine) as seen:
                        await count(app, client, world, name, n)
                    samples[f"{name} @ {n}"] = [s[:120] for s in seen]
        return rows, samples
    finally:
        await app.state.db.dispose()


def main() -> int:
    from tests.bench.common import format_table

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5,50,100", help="page sizes")
    parser.add_argument("--db", default=f"xf_h2_bench_statements_{os.getpid()}")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--show", action="store_true", help="print the statements too")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s})

    with fresh_database(args.db, keep=args.keep):
        rows, samples = asyncio.run(measure(sizes))
    grows = [r["query"] for r in rows if len(set(r["counts"].values())) > 1]
    print(
        format_table(
            "SQL statements per GraphQL request by page size "
            "(tenant-wall settings excluded; must not grow)",
            ["query", *[f"first: {n}" for n in sizes], "grows?"],
            [
                [r["query"], *r["counts"].values(), "YES" if r["query"] in grows else "no"]
                for r in rows
            ],
        )
    )
    if args.show:
        for name, seen in samples.items():
            print(f"\n{name}:")
            print("\n".join(f"  {s}" for s in seen))
    write_results(NAME, {"sizes": sizes, "rows": rows, "grows": grows, "statements": samples})
    return 1 if grows else 0


if __name__ == "__main__":
    sys.exit(main())
