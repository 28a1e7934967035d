"""The console script end to end, as an operator runs it: `xinfang migrate`, `seed-demo`,
`serve` on a free port and `token`, then real HTTP against the running process."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest

from tests.live_server import ROOT, STARTUP_TIMEOUT, Server, free_port, xinfang

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


def test_it_says_where_it_listens_once_ready(server):
    line = f"xinfang ready: GraphiQL at {server.base_url}/graphql · a token: uv run xinfang token"
    assert server.stdout.read_text().splitlines() == [f"{line} sq_officer"]


def test_a_busy_port_is_refused_before_anything_starts(server, tmp_path):
    busy = xinfang("serve", "--port", str(server.port))
    done = subprocess.run(busy, cwd=ROOT, env=server.env, capture_output=True, text=True)
    assert done.returncode == 1
    assert f"port {server.port} on 127.0.0.1 is already in use: make run PORT=" in done.stderr
    if not shutil.which("make"):
        return
    db = tmp_path / "never.db"  # make run: the check comes before migrating and seeding
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "run",
            f"PORT={server.port}",
            f"RUN_DATABASE_URL=sqlite+aiosqlite:///{db}",  # make run's opt-in, not the env
        ],
        cwd=ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "make run PORT=" in done.stderr
    assert not db.exists()


def test_logs_are_json_without_a_casbin_dump(server):
    graphql(server, "{ me { username } }", token=server.token).raise_for_status()
    lines = server.stderr.read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines), lines[:3]
    assert not any("Policy:" in line or "Model:" in line for line in lines)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_a_server_cleanly(server, tmp_path, signum):
    """SIGINT to the process group, as a terminal's Ctrl-C sends it (and ``uv run``, with no
    terminal, forwards it once more), or SIGTERM as an orchestrator sends it: status 0, no
    traceback (`make: *** Error 143`). A server of its own: the session's one stays up."""
    port = free_port()
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            xinfang("serve", "--port", str(port)),
            cwd=ROOT,
            env=server.env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "xinfang ready" not in out.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        os.killpg(proc.pid, signum)
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in err.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
