"""Private PostgreSQL and Redis servers that a fault test may stop, kill and restart.

The shared servers on 5432/6379 serve everyone's tests and must never be
touched, so the fault tests start their own: a throwaway PostgreSQL cluster
(``initdb`` + ``pg_ctl`` from the installed server binaries, in a temporary
directory, on a free port, tuned for start-up speed rather than durability)
and a ``redis-server`` child process without persistence.

PostgreSQL refuses to run as root: when the tests run as root the cluster
belongs to the ``postgres`` account and every ``initdb``/``pg_ctl`` call goes
through ``runuser -u postgres --``. :func:`postgres_unavailable` and
:func:`redis_unavailable` say why a server cannot be started here (the tests
skip with that reason).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    # fsync off survives a server crash (the kernel still has the pages), not an OS crash;
    # synchronous_commit must stay on: off, a crash loses commits already acknowledged
    # (the restart test caught exactly that: a routeCase answered OK, then gone)
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
    "log_min_messages": "warning",
}


def server_env() -> dict[str, str]:
    """The environment of a server child: without libfaketime (``make test-dates``).

    The private servers stand in for real PostgreSQL and Redis, which keep real time
    whatever clock the app under test runs on (and redis-server refuses to start with
    a preloaded fake clock).
    """
    faked = ("LD_PRELOAD", "FAKETIME", "FAKETIME_NO_CACHE", "DONT_FAKE_MONOTONIC")
    return {k: v for k, v in os.environ.items() if k not in faked}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if found:
        return Path(found[0]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _run_as() -> list[str]:
    """The command prefix that runs a server binary as a non-root account."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def postgres_unavailable() -> str | None:
    """Why a private cluster cannot be started here, or None."""
    if _pg_bindir() is None:
        return "no PostgreSQL server binaries (initdb/pg_ctl) installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' account to own a cluster"
        if not shutil.which("runuser"):
            return "running as root without runuser to drop privileges for initdb"
    return None


def redis_unavailable() -> str | None:
    return None if shutil.which("redis-server") else "redis-server is not installed"


class PrivatePostgres:
    """A throwaway cluster: ``start``, ``restart`` (``pg_ctl -m fast``), ``stop``/``kill``."""

    def __init__(self) -> None:
        bindir = _pg_bindir()
        assert bindir is not None, postgres_unavailable()
        self.bindir = bindir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="xf-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._as(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as(self, binary: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [*_run_as(), str(self.bindir / binary), *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
            env=server_env(),
        )

    def _options(self) -> str:
        opts = [f"-p {self.port}", f"-k {self.root}"]
        opts += [f"-c {k}={v}" for k, v in PG_OPTIONS.items()]
        return " ".join(opts)

    def start(self) -> None:
        self._as(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            self._options(),
            "start",
        )

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart``: every connection is terminated, the server is back on return."""
        self._as(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-m",
            mode,
            "-o",
            self._options(),
            "restart",
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash: no checkpoint, recovery on the next start."""
        self._as("pg_ctl", "-D", str(self.data), "-w", "-m", mode, "stop", check=False)

    def running(self) -> bool:
        return self._as("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """``redis-server`` without persistence, as a child process: a restart comes back empty."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=server_env(),
        )
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: what an out-of-memory kill or a lost node does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.kill()
