"""What a job receives: the database, whichever runner started it."""

from __future__ import annotations

from typing import Any

from backend.core.db import Database


async def startup(ctx: dict[str, Any]) -> None:
    ctx.setdefault("db", Database())


async def shutdown(ctx: dict[str, Any]) -> None:
    db = ctx.get("db")
    if isinstance(db, Database):
        await db.dispose()
