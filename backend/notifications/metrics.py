"""Prometheus counters of the outbox: rows written, and each attempt's outcome per channel."""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from prometheus_client import Counter
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from backend.notifications.models import NotificationChannel

ENQUEUED = Counter(
    "xinfang_notifications_enqueued_total", "Outbox rows written (after commit)", ["channel"]
)
OUTCOMES = Counter(
    "xinfang_notifications_total",
    "Notification delivery attempts by outcome (sent, failed = will retry, dead)",
    ["channel", "outcome"],
)
_KNOWN = {c.value for c in NotificationChannel}
_PENDING_KEY = "notifications_pending_metrics"


def channel_label(channel: str) -> str:
    """Unknown channel names share one label, so a bad caller cannot explode the series."""
    return channel if channel in _KNOWN else "unknown"


def count_outcome(channel: str, outcome: str, n: int = 1) -> None:
    OUTCOMES.labels(channel_label(channel), outcome).inc(n)


def count_after_commit(session: AsyncSession, enqueued: list[str], sent: list[str]) -> None:
    """Count rows written in the caller's transaction only once it commits (it may roll back)."""
    sync = session.sync_session
    pending: dict[str, Tally[str]] | None = sync.info.get(_PENDING_KEY)
    if pending is None:
        pending = {"enqueued": Tally(), "sent": Tally()}
        sync.info[_PENDING_KEY] = pending
        event.listen(sync, "after_commit", _flush)
        event.listen(sync, "after_rollback", _discard)
    pending["enqueued"].update(channel_label(c) for c in enqueued)
    pending["sent"].update(channel_label(c) for c in sent)


def _flush(sync: Any) -> None:
    pending = sync.info.get(_PENDING_KEY)
    if not pending:
        return
    for channel, n in pending["enqueued"].items():
        ENQUEUED.labels(channel).inc(n)
    for channel, n in pending["sent"].items():
        OUTCOMES.labels(channel, "sent").inc(n)
    pending["enqueued"].clear()
    pending["sent"].clear()


def _discard(sync: Any) -> None:
    pending = sync.info.get(_PENDING_KEY)
    if pending:
        pending["enqueued"].clear()
        pending["sent"].clear()
