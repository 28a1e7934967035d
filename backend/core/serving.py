"""``xinfang serve`` around uvicorn: a port check before anything starts, one line when the
server is ready, and a clean exit (status 0) on SIGINT/SIGTERM.

uvicorn re-raises the signal that stopped it once it has shut down, so a server stopped
with Ctrl-C or ``kill`` dies *of* that signal (status 130/143: ``make: *** Error 143``).
A stop asked for is a normal end here: the re-raised signal meets a handler that does
nothing, and the command returns normally.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn

APP = "backend.app:create_app"
TOKEN_HINT = "uv run xinfang token sq_officer"
DUPLICATE_SIGNAL_SECONDS = 1.0
# uvicorn's supervisor pings each worker and kills (and restarts) one that does not answer
# within this; its 5 s default killed workers still importing the app on a busy machine
# (~40 s at load 12 on 2 cores), over and over
WORKER_HEALTHCHECK_SECONDS = 60


def cpu_cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _bindable(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_in_use_message(host: str, port: int) -> str | None:
    """``None`` when ``host:port`` can be bound, else what to do instead (a free port)."""
    if _bindable(host, port):
        return None
    free = next((p for p in range(port + 1, min(port + 100, 65536)) if _bindable(host, p)), None)
    other = free or port + 1
    return (
        f"port {port} on {host} is already in use: "
        f"make run PORT={other} (or xinfang serve --port {other})"
    )


def ready_line(host: str, port: int, *, graphiql: bool) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    url = f"http://{shown}:{port}/graphql"
    what = f"GraphiQL at {url}" if graphiql else f"GraphQL at {url}"
    return f"xinfang ready: {what} · a token: {TOKEN_HINT}"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that prints one line once its socket listens."""

    def __init__(self, config: uvicorn.Config, line: str) -> None:
        super().__init__(config)
        self.line = line
        self._stop_asked_at = 0.0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A second signal within a second is the same stop delivered twice (``uv run``
        forwards SIGINT when it has no terminal, and the process group got it already),
        not the "force exit" uvicorn makes of a second Ctrl-C: that one cancels the
        shutdown and prints a traceback."""
        at = time.monotonic()
        if self.should_exit and at - self._stop_asked_at < DUPLICATE_SIGNAL_SECONDS:
            return
        self._stop_asked_at = self._stop_asked_at or at
        super().handle_exit(sig, frame)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.line, flush=True)


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    """uvicorn has shut down gracefully already when it re-raises the signal."""


def run_server(host: str, port: int, workers: int, line: str) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped)  # uvicorn re-raises the signal after its graceful stop
    options = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": "warning",
        "access_log": False,
    }
    if workers > 1:  # a supervisor process: the workers cannot announce for it
        print(f"{line} ({workers} workers starting)", flush=True)
        uvicorn.run(
            APP,
            workers=workers,
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
            **options,
        )
        return
    server = _AnnouncingServer(uvicorn.Config(APP, **options), line)
    server.run()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # stopped: a late copy of the signal (``uv run`` forwards SIGINT 200 ms after it
        # got it) must not kill the interpreter while it exits — Python resets its own
        # handlers to the default at shutdown, an ignored signal stays ignored
        signal.signal(sig, signal.SIG_IGN)
    if not server.started:
        sys.exit(3)  # startup failed (uvicorn logged why)
