"""Rate limits over HTTP: per user and per city, mutations cost more, 429 + Retry-After,
on the real local Redis and in-process, and fail-open when Redis is down."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client import REGISTRY

from backend.app import create_app
from backend.core.settings import Settings
from tests.helpers import build_city, unique

REDIS_URL = os.environ.get("XF_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")
CLOSED_PORT_URL = "redis://127.0.0.1:1/5"  # nothing listens on port 1
ME = "{ me { username } }"
# A mutation the caller may not run: refused by the resolver, yet charged like any other.
MUTATION = (
    'mutation { createOrgUnit(input: {parentPath: "/nowhere", slug: "x", name: "x",'
    " level: COUNTY}) { path } }"
)


def redis_reachable() -> bool:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


BACKENDS = [
    pytest.param(
        REDIS_URL,
        id="redis",
        marks=pytest.mark.skipif(not redis_reachable(), reason="no local Redis"),
    ),
    pytest.param(None, id="in-process"),
]


@asynccontextmanager
async def client(redis_url: str | None, **limits: int) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(rate_limit_enabled=True, redis_url=redis_url, **limits)
    app = create_app(settings, run_jobs=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http
    finally:
        await app.state.limiter.close()
        await app.state.db.dispose()


async def post(http: httpx.AsyncClient, token: str, query: str = ME) -> httpx.Response:
    return await http.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture
async def city(db):
    """A fresh city per test, so buckets on Redis never carry over between tests or runs."""
    return await build_city(db, unique("rl"), unique("rlp"))


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_user_over_the_limit_gets_429_with_retry_after(city, redis_url):
    async with client(redis_url, rate_limit_user=3, rate_limit_window_seconds=60) as http:
        for _ in range(3):
            assert (await post(http, city.token("officer"))).status_code == 200
        resp = await post(http, city.token("officer"))
        assert resp.status_code == 429
        retry_after = int(resp.headers["retry-after"])
        assert 1 <= retry_after <= 60
        error = resp.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == retry_after
        assert error["extensions"]["bucket"] == "user"
        assert resp.json()["data"] is None
        # another user of the same city still has its own bucket
        assert (await post(http, city.token("leader"))).status_code == 200


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_city_bucket_is_shared_by_its_users(city, db, redis_url):
    other = await build_city(db, unique("rlo"), unique("rlp"))
    async with client(redis_url, rate_limit_user=100, rate_limit_tenant=4) as http:
        for who in ("officer", "officer", "leader", "admin"):
            assert (await post(http, city.token(who))).status_code == 200
        resp = await post(http, city.token("handler"))
        assert resp.status_code == 429
        assert resp.json()["errors"][0]["extensions"]["bucket"] == "tenant"
        assert (await post(http, other.token("officer"))).status_code == 200


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_mutations_cost_more_than_queries(city, redis_url):
    async with client(redis_url, rate_limit_user=5, rate_limit_mutation_cost=3) as http:
        token = city.token("officer")
        first = await post(http, token, MUTATION)
        assert first.status_code == 200 and first.json()["errors"][0]["extensions"]["code"] != (
            "RATE_LIMITED"
        )
        assert (await post(http, token)).status_code == 200  # 4 points used
        assert (await post(http, token, MUTATION)).status_code == 429  # 4 + 3 > 5
        assert (await post(http, token)).status_code == 200  # a refused request charges nothing
        assert (await post(http, token)).status_code == 429


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_anonymous_callers_are_limited_by_address(redis_url):
    async with client(redis_url, rate_limit_user=2) as http:
        await http.post("/graphql", json={"query": "{ __typename }"})
        statuses = [
            (await http.post("/graphql", json={"query": "{ __typename }"})).status_code
            for _ in range(3)
        ]
    assert 429 in statuses


async def test_redis_down_fails_open_and_counts(city):
    before = REGISTRY.get_sample_value("xinfang_ratelimit_errors_total") or 0
    async with client(CLOSED_PORT_URL, rate_limit_user=1) as http:
        for _ in range(3):
            resp = await post(http, city.token("officer"))
            assert resp.status_code == 200, resp.text
            assert resp.json()["data"]["me"]["username"]
        write = await post(http, city.token("officer"), MUTATION)
        assert write.status_code == 200  # answered by the resolver, not the limiter
    after = REGISTRY.get_sample_value("xinfang_ratelimit_errors_total") or 0
    assert after >= before + 1


async def test_limits_are_off_under_the_test_environment_by_default(city):
    """XF_ENV=test (the shared suite) leaves limits off unless XF_RATE_LIMIT_ENABLED is set."""
    settings = Settings(rate_limit_user=1, redis_url=None)
    assert settings.env == "test" and settings.rate_limit_enabled is None
    app = create_app(settings, run_jobs=False)
    try:
        assert app.state.limiter.enabled is False
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            for _ in range(3):
                assert (await post(http, city.token("officer"))).status_code == 200
    finally:
        await app.state.db.dispose()
