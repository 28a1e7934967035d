"""Extension points: a lower domain calls a hook, a higher one registers on it.

The domains form layers (README, "Layout"): tenants below cases, cases below rosters,
evaluations and notifications. When a lower domain must let a higher one take part —
a new city gets its case categories (cases), a visit names its duty leader first
receiver (rosters), an evaluator reads the cases of its panels (evaluations) — it
calls a hook instead of importing the higher domain, and the import graph stays a
tree (tests/test_layers.py). ``backend/domains.py`` imports every domain once, so a
process has every registration in place before it serves a request or runs a job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Hook(Generic[F]):
    """A named list of callbacks, in registration order (registering twice is once)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._callbacks: list[F] = []

    def register(self, callback: F) -> F:
        """Add ``callback``; usable as a decorator."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)
        return callback

    def __iter__(self) -> Iterator[F]:
        return iter(tuple(self._callbacks))

    def __repr__(self) -> str:
        return f"Hook({self.name!r}, {len(self._callbacks)} callbacks)"
