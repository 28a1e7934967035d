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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_POSTGRES:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (XF_DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


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
