"""N+1 guard for every main query: a page costs the same SQL statements at 2 rows as at 12.

The queries, the data and the counting are those of ``tests/bench/bench_statements.py``
(which prints the table at 5, 50 and 200 rows); here the pages are small so the suite
stays quick. Nested fields must be batched through ``backend/schema/loaders.py``: a
count that grows with the page size is a statement per row. No timing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.bench.bench_statements import QUERIES, build, count, fewest

SMALL, LARGE = 2, 12


@pytest.fixture(scope="module")
async def world(db) -> dict[str, Any]:
    """A city with LARGE + 2 cases: the newest routed or given a leader, each with an
    in-app notification, and a provincial supervisor (see bench_statements.build)."""
    return await build(db, LARGE + 2)


@pytest.mark.parametrize("name", list(QUERIES))
async def test_statements_do_not_grow_with_the_page_size(app, http, world, name):
    await count(app, http, world, name, LARGE)  # per-process caches (holiday calendar) warm
    small = await fewest(app, http, world, name, SMALL)
    large = await fewest(app, http, world, name, LARGE)
    assert small == large, f"{name}: {small} statements for {SMALL} rows, {large} for {LARGE}"
