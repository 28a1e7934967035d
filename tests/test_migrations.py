"""The migrations build exactly the tables the models describe (no drift either way)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.core.db import build_engine
from backend.domains import metadata

# Created by hand in migrations, on purpose not in the models (expression/operator classes).
HAND_MADE_INDEXES = {"ix_cases_search_trgm"}


def _ignore_hand_made(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in HAND_MADE_INDEXES)


async def test_models_and_migrations_agree(migrated):
    engine = build_engine()  # the owner, like `xinfang migrate`
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(
                        sync,
                        opts={"compare_type": True, "include_object": _ignore_hand_made},
                    ),
                    metadata,
                )
            )
    finally:
        await engine.dispose()
    assert diff == []
