"""Replaying the demo's past through the services, in time order.

Every part of the demo (case stories, rosters, evaluations) schedules what
happens when — "58 days ago at 10:00 the officer routes the case" — and the
timeline runs it all in order with the project's clock set to that moment
(:func:`backend.core.clock.replaying`). Events, due dates, check-ins and
notifications so carry the times they would have had, relative to today: the
demo loaded next month looks as alive as the one loaded today.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.core.clock import now, replaying
from backend.core.db import Database
from backend.tenants.principals import load_principal

Action = Callable[[], Awaitable[None]]


@dataclass(order=True)
class _Entry:
    at: datetime
    seq: int
    label: str = field(compare=False)
    run: Action = field(compare=False)


class Timeline:
    """Actions by moment; ``play`` runs them in order (actions may schedule later ones)."""

    def __init__(self, db: Database, tz: ZoneInfo) -> None:
        self.db = db
        self.tz = tz
        self.started = now()
        self.today = self.started.astimezone(tz).date()
        self._entries: list[_Entry] = []
        self._seq = itertools.count()
        self._principals: dict[str, Principal] = {}

    def moment(self, days_ago: int, at: time = time(10, 0), minutes: int = 0) -> datetime:
        """``days_ago`` days before today at ``at`` (tenant time), plus ``minutes``."""
        day = self.today - timedelta(days=days_ago)
        return datetime.combine(day, at, self.tz) + timedelta(minutes=minutes)

    def local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, self.tz)

    def schedule(self, at: datetime, label: str, run: Action) -> None:
        if at >= self.started:
            raise ValueError(f"demo step {label} at {at.isoformat()} is not in the past")
        heapq.heappush(self._entries, _Entry(at, next(self._seq), label, run))

    async def play(self) -> int:
        played = 0
        while self._entries:
            entry = heapq.heappop(self._entries)
            with replaying(entry.at):
                await entry.run()
            played += 1
        return played

    async def principal(self, username: str) -> Principal:
        """Roles read once: the demo grants none after its users are created, except the
        evaluator role that enrolment adds (``forget`` reads it again)."""
        if username not in self._principals:
            self._principals[username] = await load_principal(self.db, username)
        return self._principals[username]

    def forget(self, username: str) -> None:
        self._principals.pop(username, None)

    @asynccontextmanager
    async def acting(self, username: str) -> AsyncIterator[tuple[AsyncSession, Principal]]:
        """One transaction as ``username``, in its own tenant scope."""
        principal = await self.principal(username)
        async with self.db.transaction(principal.scope()) as session:
            yield session, principal
