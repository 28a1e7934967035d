"""Generic reminders — "remind X at time T about Y" — as outbox rows that wait for their time.

No job of its own: :func:`schedule_reminder` writes the notification now, in
the caller's transaction, with ``not_before=T``; the dispatcher (which runs
every minute and at start) skips a row until its ``not_before`` has passed,
then delivers it like any other. So a reminder survives restarts of Redis
and the worker (it is a PostgreSQL row), is sent once (the dedupe key comes
from the caller's ``key``), and a reminder for a time already past goes out
on the next dispatch. Rosters use it for "your shift is tomorrow".

To move a reminder, schedule it again under a new key (e.g. include the
shift's version); to cancel, the caller's own data must say so — the
reminder text should not be the only record of the duty.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

REMINDER_KIND = "reminder"
MAX_KEY = 160


def reminder_key(recipient_id: uuid.UUID, key: str, at: datetime) -> str:
    """The outbox dedupe key: one reminder per recipient, caller key and instant."""
    return f"{REMINDER_KIND}:{recipient_id}:{key}:{int(at.timestamp())}"


async def schedule_reminder(  # noqa: PLR0913 — the outbox's keywords (enqueue) plus the reminder's key
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    recipient_id: uuid.UUID,
    at: datetime,
    subject: str,
    body: str,
    key: str,
    case_id: uuid.UUID | None = None,
    channels: Sequence[str] | None = None,
    data: dict[str, Any] | None = None,
    kind: str = REMINDER_KIND,
) -> list[Any]:
    """Remind ``recipient_id`` at ``at`` (timezone-aware); idempotent per ``key`` and ``at``.

    ``key`` names what the reminder is about, e.g. ``"shift:<id>:eve"``. Returns
    the outbox rows created (empty when the same reminder was already scheduled).
    Never commits: the caller's transaction does.
    """
    from backend.notifications.service import enqueue

    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"key must be 1-{MAX_KEY} characters")
    return await enqueue(
        session,
        tenant_id=tenant_id,
        recipient_id=recipient_id,
        kind=kind,
        subject=subject,
        body=body,
        dedupe_key=reminder_key(recipient_id, key, at),
        case_id=case_id,
        channels=channels,
        not_before=at,
        data={**(data or {}), "remindAt": at.isoformat(), "key": key},
    )
