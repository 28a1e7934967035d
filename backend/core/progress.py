"""Progress of long work (bench data, audit verification, key rotation, big exports).

One helper for all: a rich progress bar when a person watches a terminal (the CLI turns
bars on with :func:`show_bars` when stderr is one), otherwise — the server, the worker,
a CI log, a pipe — one JSON log line every ``XF_PROGRESS_LOG_SECONDS`` (10 s by default)
while the work lasts, and a last line when it ends if any was written. Work that ends
sooner says nothing, so short runs stay quiet.

    with track("audit verify shangqiu", total=events, unit="events") as progress:
        for event in events:
            ...
            progress.advance()
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from backend.core.logging import get_logger

log = get_logger("progress")
DEFAULT_LOG_SECONDS = 10.0
_bars = False


def show_bars(on: bool) -> None:
    """Draw bars (a terminal is watching) instead of writing log lines."""
    global _bars
    _bars = on


def log_every() -> float:
    return float(os.environ.get("XF_PROGRESS_LOG_SECONDS", DEFAULT_LOG_SECONDS))


class Progress:
    """Counts done units of one task; reports them as a bar or as periodic log lines."""

    def __init__(self, task: str, total: int | None, unit: str, every: float) -> None:
        self.task, self.total, self.unit, self.every = task, total, unit, every
        self.done = 0
        self.started = self._last = time.monotonic()
        self.logged = 0
        self._bar: Any = None
        self._bar_task: Any = None

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(self._bar_task, completed=self.done)
        elif time.monotonic() - self._last >= self.every:
            self._log("progress")

    def note(self, message: str) -> None:
        """A line about the work (a phase ended): above the bar, or in the log."""
        if self._bar is not None:
            self._bar.console.print(message)
        else:
            log.info("progress.note", task=self.task, note=message)

    def _log(self, event: str) -> None:
        self._last = time.monotonic()
        self.logged += 1
        elapsed = self._last - self.started
        fields: dict[str, Any] = {
            "task": self.task,
            "done": self.done,
            "unit": self.unit,
            "elapsed_s": round(elapsed, 1),
        }
        if self.total:
            fields["total"] = self.total
            fields["percent"] = round(100 * self.done / self.total, 1)
            if self.done and self.done < self.total:
                fields["eta_s"] = round(elapsed * (self.total - self.done) / self.done, 1)
        log.info(event, **fields)

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self._bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(self.unit),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
        )
        self._bar.start()
        self._bar_task = self._bar.add_task(self.task, total=self.total)

    def _finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.logged:
            self._log("progress.done")


@contextmanager
def track(
    task: str,
    *,
    total: int | None = None,
    unit: str = "rows",
    bar_from: int = 0,
    every: float | None = None,
) -> Iterator[Progress]:
    """Report the progress of ``task`` while the block runs.

    ``bar_from``: draw a bar only for at least that many units (a 40-row export needs
    none); ``every``: seconds between log lines (default ``XF_PROGRESS_LOG_SECONDS``).
    """
    progress = Progress(task, total, unit, log_every() if every is None else every)
    if _bars and (total is None or total >= bar_from):
        progress._start_bar()
    try:
        yield progress
    finally:
        progress._finish()
