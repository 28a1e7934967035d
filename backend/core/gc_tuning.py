"""Garbage-collector settings for a long-running server process.

A request allocates tens of thousands of short-lived objects (ORM rows, GraphQL
results), so with CPython's default thresholds (700, 10, 10) the collector runs
gen-0 passes hundreds of times per request and regularly walks the whole heap
— the schema, the casbin policy, SQLAlchemy's mappers and caches, which never
die. Measured in process on the case-list page: 15–25% of the CPU (A/B runs,
docs/performance.md). Once startup is done the long-lived objects are frozen
(``gc.freeze``: moved out of every future collection) and the young generation
is collected every 50,000 net allocations instead of 700; reference counting
still frees everything acyclic at once, so memory only waits longer for cycles.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def tune_for_server() -> None:
    """Freeze what startup built and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
