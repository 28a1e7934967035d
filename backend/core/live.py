"""Live updates: what a committed transaction changed, told to every process's subscribers.

A service that changes something a subscriber may want to hear of calls :func:`publish`
with the session of its transaction. Nothing leaves before the transaction commits, and
nothing at all if it rolls back:

- on PostgreSQL the messages go out with ``pg_notify`` from inside the transaction
  (one statement, just before the commit): PostgreSQL delivers a notification only
  when its transaction commits, to every process that ``LISTEN``\\s on
  :data:`CHANNEL` — each app process's :class:`Hub` does, over one connection of
  its own, opened when its first subscriber arrives;
- on SQLite (one process: tests, a laptop) the process's hub gets them right after
  the commit.

A message says only *what* changed (the kind, the city, ids): never content. Each
subscriber reads the object again through the same rules as a query before anything
is sent (``backend/schema/live.py``), so a message reaching a process whose
subscribers may not know of it discloses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.logging import get_logger

log = get_logger(__name__)

CHANNEL = "xf_live"
CASE, NOTIFICATION = "case", "notification"
_PENDING_KEY = "xf_live_pending"
IDS_PER_MESSAGE = 100  # ~4 KB of ids: PostgreSQL's payload limit is 8000 bytes
QUEUE_SIZE = 1000  # messages a subscriber may lag behind before it is dropped
SUBSCRIBERS = Gauge("xinfang_live_subscribers", "Open subscriptions in this process")
DROPPED = Counter("xinfang_live_dropped_total", "Subscriptions ended for falling too far behind")
_NOTIFY = text("SELECT pg_notify(:channel, p) FROM unnest(CAST(:payloads AS text[])) AS p")


@dataclass(frozen=True)
class Message:
    """``kind`` (:data:`CASE`, :data:`NOTIFICATION`) of objects ``ids`` of one city changed;
    ``recipient``: whom a notification is for."""

    kind: str
    tenant_id: str
    ids: tuple[str, ...]
    recipient: str | None = None

    def encode(self) -> str:
        return json.dumps(
            {"k": self.kind, "t": self.tenant_id, "i": list(self.ids), "r": self.recipient},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, payload: str) -> Message | None:
        try:
            raw = json.loads(payload)
            return cls(str(raw["k"]), str(raw["t"]), tuple(map(str, raw["i"])), raw.get("r"))
        except (ValueError, KeyError, TypeError):
            log.warning("live.bad_payload", payload=payload[:200])
            return None


def publish(
    session: AsyncSession,
    kind: str,
    tenant_id: uuid.UUID,
    ids: Iterable[uuid.UUID],
    *,
    recipient: uuid.UUID | None = None,
) -> None:
    """Tell the subscribers of every process once ``session``'s transaction commits."""
    ids = [str(i) for i in dict.fromkeys(ids)]
    if not ids:
        return
    sync = session.sync_session
    pending: list[Message] | None = sync.info.get(_PENDING_KEY)
    if pending is None:
        pending = sync.info[_PENDING_KEY] = []
        event.listen(sync, "before_commit", _before_commit)
        event.listen(sync, "after_commit", _after_commit)
        event.listen(sync, "after_rollback", _discard)
    who = str(recipient) if recipient else None
    for start in range(0, len(ids), IDS_PER_MESSAGE):
        chunk = tuple(ids[start : start + IDS_PER_MESSAGE])
        pending.append(Message(kind, str(tenant_id), chunk, who))


def _postgres(sync: Any) -> bool:
    return sync.get_bind().dialect.name == "postgresql"


def _before_commit(sync: Any) -> None:
    """PostgreSQL: the notifications, in the committing transaction (sent on commit)."""
    pending: list[Message] = sync.info.get(_PENDING_KEY) or []
    if pending and _postgres(sync):
        # runs inside SQLAlchemy's greenlet: the sync session may still emit SQL here
        sync.execute(_NOTIFY, {"channel": CHANNEL, "payloads": [m.encode() for m in pending]})
        pending.clear()


def _after_commit(sync: Any) -> None:
    """SQLite: this process's subscribers, now that the change is committed."""
    pending: list[Message] = sync.info.get(_PENDING_KEY) or []
    if pending:
        messages = list(pending)
        pending.clear()
        HUB.deliver(messages)


def _discard(sync: Any) -> None:
    pending = sync.info.get(_PENDING_KEY)
    if pending:
        pending.clear()


class Lagged(Exception):
    """A subscriber fell :data:`QUEUE_SIZE` messages behind and was dropped."""


class Subscriber:
    """One subscriber's queue of messages (filled by the hub, read by one stream)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.queue: asyncio.Queue[Message] = asyncio.Queue(QUEUE_SIZE)
        self.lagged = False

    def offer(self, message: Message) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            if not self.lagged:
                DROPPED.inc()
            self.lagged = True

    async def next(self) -> Message:
        if self.lagged:
            raise Lagged("too many updates not taken: subscribe again")
        return await self.queue.get()


class Hub:
    """This process's subscribers, and (PostgreSQL) its one listening connection."""

    def __init__(self) -> None:
        self.subscribers: set[Subscriber] = set()
        self.database_url: str | None = None
        self._listener: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    def configure(self, database_url: str) -> None:
        """Listen on ``database_url`` when it is PostgreSQL (the app calls this once)."""
        self.database_url = database_url

    @property
    def listens(self) -> bool:
        return bool(self.database_url and self.database_url.startswith("postgresql"))

    def deliver(self, messages: Sequence[Message]) -> None:
        for message in messages:
            for subscriber in list(self.subscribers):
                subscriber.offer(message)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[Subscriber]:
        """A new subscriber, registered (and, on PostgreSQL, listening) until exit."""
        await self._ensure_listening()
        subscriber = Subscriber(self)
        self.subscribers.add(subscriber)
        SUBSCRIBERS.inc()
        try:
            yield subscriber
        finally:
            self.subscribers.discard(subscriber)
            SUBSCRIBERS.dec()

    async def _ensure_listening(self) -> None:
        if not self.listens:
            return
        if self._listener is None or self._listener.done():
            self._ready = asyncio.Event()
            self._listener = asyncio.create_task(self._listen(self._ready))
        assert self._ready is not None
        await asyncio.wait_for(self._ready.wait(), timeout=30)

    async def _listen(self, ready: asyncio.Event) -> None:
        """Keep one ``LISTEN`` connection open; reconnect after a loss (a second later)."""
        import asyncpg  # only with PostgreSQL

        assert self.database_url is not None
        dsn = self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("live.listen_failed", error=str(exc))
                await asyncio.sleep(1)
                continue
            try:
                conn.add_termination_listener(functools.partial(_set, lost))
                await conn.add_listener(CHANNEL, self._on_notify)
                ready.set()
                await lost.wait()
                log.warning("live.listen_lost")
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()
            await asyncio.sleep(1)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        message = Message.decode(payload)
        if message is not None:
            self.deliver([message])

    async def close(self) -> None:
        task, self._listener = self._listener, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _set(flag: asyncio.Event, *_: Any) -> None:
    flag.set()


HUB = Hub()
"""The process's hub: the app configures it; services publish to it through the database."""
