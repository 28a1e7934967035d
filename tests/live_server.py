"""A real `xinfang serve` process, as an operator runs it: `xinfang migrate`, `seed-demo`,
`serve` on a free port and `token`, each its own process, on a fresh SQLite file.

Used by the tests that need a real server (``test_serve_smoke.py``, the browser test of
GraphiQL) through the session fixture :func:`live_server` (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Four interpreter start-ups (migrate, seed-demo, token, serve): ~13 s on an idle machine,
# well over 15 s on a busy one.
STARTUP_TIMEOUT = 60.0


def xinfang(*args: str) -> list[str]:
    """The console script, as `uv run xinfang` (or the venv's own script without uv)."""
    uv = shutil.which("uv")
    if uv:
        return [uv, "run", "--no-sync", "xinfang", *args]
    return [str(Path(sys.executable).with_name("xinfang")), *args]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        xinfang(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


@dataclass
class Server:
    base_url: str
    token: str  # sq_officer's, minted by `xinfang token`
    env: dict[str, str]  # the server's environment (its database), for more CLI calls
    port: int
    proc: subprocess.Popen
    stdout: Path  # what the process printed (files: a pipe could fill up)
    stderr: Path


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("serve")) as server:
        yield server


@contextmanager
def serving(folder: Path) -> Iterator[Server]:
    """A migrated, seeded server on a free port, its database in ``folder``; ended on exit
    (``scripts/frontend_check.py`` uses it too)."""
    db_file = folder / "smoke.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XF_")}
    env.update(
        XF_ENV="dev",  # GraphiQL on, the dev JWT secret shared by `token` and `serve`
        XF_DATABASE_URL=f"sqlite+aiosqlite:///{db_file}",
        XF_LOG_LEVEL="INFO",  # casbin's model dump would show at INFO
    )
    run(env, "migrate")
    with process(env, folder, before_ready=lambda: run(env, "seed-demo")) as (port, proc):
        token = run(env, "token", "sq_officer").strip()
        base_url = f"http://127.0.0.1:{port}"
        yield Server(base_url, token, env, port, proc, folder / "stdout", folder / "stderr")


@contextmanager
def process(
    env: dict[str, str], folder: Path, before_ready: Callable[[], object] | None = None
) -> Iterator[tuple[int, subprocess.Popen]]:
    """`xinfang serve` on a free port with ``env`` (a migrated database), its output in
    ``folder``; ``before_ready`` runs while it starts. Ended on exit (its process group)."""
    port = free_port()
    stdout, stderr = folder / "stdout", folder / "stderr"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            # one process: the tests count on its own metrics and subscribers
            xinfang("serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group, so the test ends exactly it
        )
    try:
        if before_ready is not None:
            before_ready()  # e.g. seed-demo while the server starts (SQLite WAL allows both)
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert proc.poll() is None, stderr.read_text()
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "xinfang serve did not come up"
            time.sleep(0.1)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
