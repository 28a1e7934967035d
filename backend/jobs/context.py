"""What a job receives: the database, whichever runner started it."""

from __future__ import annotations

from typing import Any

from backend.core.db import Database


async def startup(ctx: dict[str, Any]) -> None:
    ctx.setdefault("db", Database())
    warm_up()


def warm_up() -> None:
    """What every job would otherwise compute on its first run: the working-day calendar
    of the years around today (the digest's escalation cut-off, deadline rules)."""
    from backend.cases import calendar
    from backend.core.clock import now

    calendar.warm(now().date())


async def shutdown(ctx: dict[str, Any]) -> None:
    db = ctx.get("db")
    if isinstance(db, Database):
        await db.dispose()
