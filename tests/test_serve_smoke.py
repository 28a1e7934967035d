"""The console script end to end, as an operator runs it: `xinfang migrate`, `seed-demo`,
`serve` on a free port and `token`, then real HTTP against the running process."""

from __future__ import annotations

import httpx
import pytest

from tests.live_server import Server

pytestmark = pytest.mark.slow  # the session's real server (tests/live_server.py)


@pytest.fixture
def server(live_server: Server) -> Server:
    return live_server


def graphql(server: Server, query: str, *, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{server.base_url}/graphql", json={"query": query}, headers=headers)


def test_token_from_the_cli_authenticates_over_real_http(server):
    resp = graphql(server, "{ me { username } }", token=server.token)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"data": {"me": {"username": "sq_officer"}}}
    assert resp.headers.get("x-request-id")


def test_missing_token_is_401_over_real_http(server):
    resp = graphql(server, "{ me { username } }")
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_healthz_and_readyz(server):
    assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"database": "ok"}}


def test_metrics_count_graphql_operations(server):
    graphql(server, "query SmokeMe { me { username } }", token=server.token).raise_for_status()
    resp = httpx.get(f"{server.base_url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert "xinfang_graphql_requests_total" in resp.text
    assert 'xinfang_graphql_requests_total{operation="SmokeMe",outcome="ok"} 1.0' in resp.text


def test_graphiql_is_served_on_get_in_dev(server):
    resp = httpx.get(f"{server.base_url}/graphql", headers={"Accept": "text/html"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "graphiql" in resp.text.lower()
