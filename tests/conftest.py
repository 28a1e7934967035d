"""Test fixtures: a migrated database, the ASGI app over HTTP, and a two-province world.

The database is ``XF_DATABASE_URL`` (PostgreSQL in CI) or, when unset, a
fresh SQLite file. Tests never share mutable fixtures across tenants: the
session-scoped :func:`world` builds uniquely named tenants once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_tmp = Path(tempfile.mkdtemp(prefix="xf-test-"))
if not os.environ.get("XF_DATABASE_URL"):
    os.environ["XF_DATABASE_URL"] = f"sqlite+aiosqlite:///{_tmp / 'test.db'}"
os.environ["XF_ENV"] = "test"
os.environ.setdefault("XF_JWT_SECRET", "test-secret-0123456789-0123456789-abcdef")
# Real-shaped (non-dev) PII keys, so Settings(env="prod") in tests passes the PII guard.
os.environ.setdefault("XF_PII_KEYS", "t1:dGVzdC1waWkta2V5LTAxMjM0NTY3ODktMDEyMzQ1Njc=")
os.environ.setdefault("XF_PII_HASH_KEY", "dGVzdC1waWktaGFzaC1rZXktMDEyMzQ1Njc4OS0wMTIzNA==")
os.environ.setdefault("XF_LOG_LEVEL", "WARNING")
# the tests' webhook receivers listen on 127.0.0.1, which production refuses (SSRF guard)
os.environ.setdefault("XF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")

import httpx  # noqa: E402
import pytest  # noqa: E402

from backend.app import create_app  # noqa: E402
from backend.cli import run_migrations  # noqa: E402
from backend.core.db import Database  # noqa: E402
from backend.core.settings import get_settings  # noqa: E402
from tests.helpers import GraphQLClient, World, build_world  # noqa: E402
from tests.live_server import live_server  # noqa: E402, F401  (a real `xinfang serve`)

IS_POSTGRES = os.environ["XF_DATABASE_URL"].startswith("postgresql")


def _is_citus(url: str) -> bool:
    """Whether the test database is a Citus coordinator (``make test-citus``)."""
    if not url.startswith("postgresql"):
        return False
    import asyncio

    import asyncpg

    async def probe() -> bool:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))
        finally:
            await conn.close()

    try:
        return asyncio.run(probe())
    except (OSError, asyncpg.PostgresError):
        return False


IS_CITUS = _is_citus(os.environ["XF_DATABASE_URL"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = {
        "postgres": None if IS_POSTGRES else "needs PostgreSQL (XF_DATABASE_URL)",
        "citus": None if IS_CITUS else "needs a Citus coordinator (make test-citus)",
    }
    for item in items:
        for name, reason in skips.items():
            if reason and item.get_closest_marker(name):
                item.add_marker(pytest.mark.skip(reason=reason))
        marker = item.get_closest_marker("citus_incompatible")
        if IS_CITUS and marker:
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            item.add_marker(pytest.mark.skip(reason=f"not on Citus: {why}"))


@pytest.fixture(scope="session")
def migrated() -> str:
    url = get_settings().database_url
    run_migrations(url)
    return url


@pytest.fixture(scope="session")
async def db(migrated: str) -> Database:
    database = Database()
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def app(migrated: str):
    application = create_app(run_jobs=False)
    yield application
    await application.state.db.dispose()


@pytest.fixture(scope="session")
async def http(app) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture(scope="session")
def gql(http: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(http)


@pytest.fixture(scope="session")
async def world(db: Database) -> World:
    return await build_world(db)
