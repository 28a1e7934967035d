"""Round trips to PostgreSQL per authenticated request (issue 21), counted at the driver
adapter — not only the statements ``tests/test_statement_counts.py`` sees, but BEGIN,
the pool's pre-ping, commit and rollback too. No timing.

An officer's request reads its principal in one statement (the account, the
transaction's role and tenant scope set from it, and the grants read under those
settings) and sends no ``pool_pre_ping``; a pooled connection the server dropped is
recovered by one retry of the principal's read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as sa_asyncpg

from backend.app import create_app
from tests.helpers import build_city, unique

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.citus_incompatible(
        reason="Citus keeps the SET LOCAL path (only it reaches the workers): more round trips"
    ),
]

QUERY = "query { cases(first: 2) { totalCount } }"


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Counter[str], list[str]]]:
    """Count what the asyncpg adapter sends: BEGIN, pings, statements, COMMIT/ROLLBACK."""
    kinds: Counter[str] = Counter()
    sent: list[str] = []
    conn_cls = sa_asyncpg.AsyncAdapt_asyncpg_connection
    cursor_cls = sa_asyncpg.AsyncAdapt_asyncpg_cursor
    start, ping, run = (
        conn_cls._start_transaction,
        conn_cls._async_ping,
        cursor_cls._prepare_and_execute,
    )
    commit, rollback = conn_cls.commit, conn_cls.rollback

    async def _start(self: Any) -> None:
        kinds["begin"] += 1
        await start(self)

    async def _ping(self: Any) -> None:
        kinds["ping"] += 1
        await ping(self)

    async def _run(self: Any, operation: str, parameters: Any) -> None:
        kinds["statement"] += 1
        sent.append(" ".join(operation.split()))
        await run(self, operation, parameters)

    def _end(original: Any, name: str) -> Any:
        def end(self: Any) -> None:
            if self._transaction is not None:
                kinds[name] += 1
            original(self)

        return end

    monkeypatch.setattr(conn_cls, "_start_transaction", _start)
    monkeypatch.setattr(conn_cls, "_async_ping", _ping)
    monkeypatch.setattr(cursor_cls, "_prepare_and_execute", _run)
    monkeypatch.setattr(conn_cls, "commit", _end(commit, "commit"))
    monkeypatch.setattr(conn_cls, "rollback", _end(rollback, "rollback"))
    try:
        yield kinds, sent
    finally:
        monkeypatch.undo()


async def _ask(http: Any, token: str) -> None:
    resp = await http.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": f"Bearer {token}"}
    )
    body = resp.json()
    assert resp.status_code == 200 and not body.get("errors"), body


def _principal_statements(sent: list[str]) -> list[str]:
    """The statements that read the account or the grants, or set role/scope."""
    return [
        s
        for s in sent
        if "FROM accounts" in s or s.startswith("SELECT role_assignments.") or "set_config" in s
    ]


async def test_an_officers_request_reads_principal_scope_and_grants_in_one_statement(
    db, app, http, monkeypatch
):
    city = await build_city(db, unique("rt"), unique("rp"))
    await _ask(http, city.token("officer"))  # per-process caches and the pool warm
    runs = []
    for _ in range(3):  # a timer-driven cache may add a statement now and then: the fewest
        with round_trips(monkeypatch) as (kinds, sent):
            await _ask(http, city.token("officer"))
        runs.append((sum(kinds.values()), dict(kinds), list(sent)))
    total, kinds, sent = min(runs, key=lambda r: r[0])
    assert kinds.get("ping", 0) == 0, "pool_pre_ping costs a round trip per checkout"
    assert kinds["begin"] == 1
    principal = _principal_statements(sent)
    # account + role + tenant scope + grants in one statement
    assert len(principal) == 1, principal
    assert "set_config" in principal[0] and "accounts" in principal[0]
    assert "role_assignments" in principal[0]
    assert sent[:1] == principal, "the principal is the request's first work"
    # BEGIN, the principal's statement, the page (with its totalCount), the end
    assert total == 4, (kinds, sent)


async def test_the_grants_are_read_under_row_level_security_after_the_settings(db):
    """The test database logs in as a superuser, which bypasses row-level security, so
    the statement runs here as the serving role from the start: the policies apply to
    every table it reads, and the grants are found only because the settings the same
    statement makes are in place before the grants' rows are read. Another city's
    account reads its own grants, never this one's."""
    from backend.core.settings import get_settings
    from backend.tenants.principals import _INLINE_ACCOUNT

    city = await build_city(db, unique("rt"), unique("rl"))
    other = await build_city(db, unique("rt"), unique("rl"))
    role = get_settings().db_app_role
    for c in (city, other):
        async with db.engine.connect() as conn, conn.begin():
            await conn.execute(text(f'SET LOCAL ROLE "{role}"'))
            await conn.execute(text("SELECT set_config('app.tenant_ids', '', true)"))
            hidden = await conn.scalar(text("SELECT count(*) FROM role_assignments"))
            assert hidden == 0, "row-level security applies to this connection"
            assert await conn.scalar(text("SHOW plan_cache_mode")) == "auto"
            params = {"username": f"{c.slug}_officer", "role": role}
            params["plan_cache_mode"] = "force_custom_plan"
            row = (await conn.execute(_INLINE_ACCOUNT, params)).one()
            assert row.tenant_ids == str(row.tenant_id)
            # the statements after it plan for their values (core/db.py)
            assert await conn.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
            grants = [tuple(g) for g in json.loads(row.grants)]
            assert [(r, p) for r, _, p in grants] == [("PETITION_OFFICER", c.path())]


async def test_a_connection_dropped_by_the_server_is_retried_once_not_answered_503(db, monkeypatch):
    """The pooled connection is killed between two requests (a restart, an idle timeout):
    without a pre-ping the next request finds it dead on its first statement, and the
    principal's read is retried on a fresh connection — the caller sees nothing."""
    import httpx

    city = await build_city(db, unique("rt"), unique("rp"))
    own = create_app(run_jobs=False)
    try:
        transport = httpx.ASGITransport(app=own)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            await _ask(http, city.token("officer"))
            async with own.state.db.engine.connect() as conn:  # the one pooled connection
                pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            async with db.engine.connect() as conn:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with round_trips(monkeypatch) as (kinds, _sent):
                await _ask(http, city.token("officer"))
            assert kinds["begin"] == 2, "the request retried on a new connection"
            assert kinds.get("ping", 0) == 0
            await _ask(http, city.token("officer"))
    finally:
        await own.state.db.dispose()
