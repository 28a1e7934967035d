"""The settings the app's PostgreSQL connections ask for (backend/core/db.py says why)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backend.core.db import Database

pytestmark = pytest.mark.postgres


async def test_app_connections_plan_for_their_values_and_never_jit_compile(db: Database) -> None:
    """JIT compiling took 2.3 s for a warning board that runs in 0.1 s at 100k cases
    (docs/performance.md): the app's connections turn it off, and plan every prepared
    statement for its values."""
    async with db.transaction() as session:
        jit = (await session.execute(text("SHOW jit"))).scalar_one()
        mode = (await session.execute(text("SHOW plan_cache_mode"))).scalar_one()
    assert (jit, mode) == ("off", "force_custom_plan")
    # the connection plans in auto: the transaction's first statement, which set the mode
    # for the rest, keeps a generic plan
    async with db.engine.connect() as conn:
        assert await conn.scalar(text("SHOW plan_cache_mode")) == "auto"
