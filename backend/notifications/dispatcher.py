"""The outbox dispatcher: claim due rows, deliver them, record the outcome.

Runs as an arq cron job every minute and at worker start, or in-process
under ``xinfang serve`` without Redis, or by hand (``xinfang notifications
dispatch``). Everything it knows comes from the rows, so a run may be
killed, skipped or doubled at any moment:

* **claim** (one short transaction per batch): due rows become ``SENDING``
  with a lease (``next_attempt_at`` = now + lease) and a fresh claim token;
  PostgreSQL takes them ``FOR UPDATE SKIP LOCKED`` so concurrent workers
  split the work instead of queueing on locks. A worker that dies leaves
  its rows ``SENDING``; they are due again when the lease ends.
* **deliver** outside any transaction (no lock is held during HTTP/SMTP),
  a batch concurrently; every failure is caught per row.
* **record** (one transaction per batch): ``SENT``, ``FAILED`` with
  exponential backoff, or ``DEAD`` with the reason — only while the run
  still holds the claim token, so a run whose lease was taken over cannot
  overwrite the newer attempt.

At-least-once: a worker killed between delivering and recording makes the
next run deliver again, with the same ``delivery_id`` for the receiver to
dedupe. Tenants are processed each inside its own :class:`TenantScope`
(row-level security applies to the dispatcher too), a few concurrently, so
one slow webhook does not hold the other cities back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from backend.cases import need_to_know
from backend.core import live
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.ids import new_id
from backend.core.logging import get_logger
from backend.core.settings import Settings
from backend.notifications.channels import (
    Channels,
    Outgoing,
    PermanentFailure,
    TransientFailure,
)
from backend.notifications.metrics import count_outcome
from backend.notifications.models import (
    CLAIMABLE,
    Notification,
    NotificationAccusation,
    NotificationChannel,
    NotificationContact,
    NotificationSettings,
    NotificationStatus,
)
from backend.notifications.service import OUTSIDE, neutralise
from backend.tenants.models import Tenant, User

log = get_logger(__name__)
ERROR_MAX = 2000


@dataclass
class Totals:
    tenants: int = 0
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    lost: int = 0  # results not recorded: the lease had been taken over
    errors: int = 0  # tenants whose run raised

    def add(self, other: Totals) -> None:
        for name in ("tenants", "claimed", "sent", "failed", "dead", "lost", "errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {
            "tenants": self.tenants,
            "claimed": self.claimed,
            "sent": self.sent,
            "failed": self.failed,
            "dead": self.dead,
            "lost": self.lost,
            "errors": self.errors,
        }


@dataclass
class Result:
    item: Outgoing
    error: str | None = None
    permanent: bool = False


def backoff(settings: Settings, attempts: int) -> timedelta:
    """Delay after the ``attempts``-th failed attempt: base × 2^(attempts-1), capped."""
    seconds = settings.notify_backoff_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.notify_backoff_max_seconds))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, (PermanentFailure, TransientFailure)) and type(exc).__name__ not in text:
        text = f"{type(exc).__name__}: {text}"
    return text[:ERROR_MAX]


class Dispatcher:
    """One dispatch run's shared state: settings, the HTTP client, the channels."""

    def __init__(self, db: Database, settings: Settings, http: httpx.AsyncClient) -> None:
        self.db = db
        self.settings = settings
        self.channels = Channels(settings, http)

    async def run_tenant(self, tenant_id: uuid.UUID, deadline: float) -> Totals:
        """Batches until nothing is due or the run's time budget is spent."""
        totals = Totals(tenants=1)
        while time.monotonic() < deadline:
            token = new_id()
            items, dead = await self._claim(tenant_id, token)
            totals.claimed += len(items) + dead
            totals.dead += dead
            if items:
                results = await asyncio.gather(*(self._attempt(i) for i in items))
                await self._record(tenant_id, token, results, totals)
            if len(items) + dead < self.settings.notify_batch_size:
                break
        return totals

    async def _claim(self, tenant_id: uuid.UUID, token: uuid.UUID) -> tuple[list[Outgoing], int]:
        settings = self.settings
        t = now()
        # A MATERIALIZED CTE, not ``id IN (subquery)``: PostgreSQL may plan the IN as a
        # nested-loop semi-join that rescans the locking subquery per outer row, locking far
        # more than one batch and starving concurrent dispatchers (seen in the tests).
        due = (
            select(Notification.tenant_id, Notification.id)
            .where(
                Notification.tenant_id == tenant_id,
                Notification.status.in_(CLAIMABLE),
                Notification.next_attempt_at <= t,
            )
            .order_by(Notification.next_attempt_at)
            .limit(settings.notify_batch_size)
            .with_for_update(skip_locked=True)
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        claim = (
            update(Notification)
            .where(Notification.tenant_id == due.c.tenant_id, Notification.id == due.c.id)
            .values(
                status=NotificationStatus.SENDING,
                claimed_by=token,
                attempts=Notification.attempts + 1,
                next_attempt_at=t + timedelta(seconds=settings.notify_lease_seconds),
                updated_at=t,
            )
            .returning(Notification)
            .execution_options(synchronize_session=False)
        )
        async with self.db.transaction(TenantScope.of([tenant_id])) as session:
            rows = list(await session.scalars(claim))
            if not rows:
                return [], 0
            # A row re-claimed more often than its channel allows keeps killing (or
            # outliving) its workers: stop here instead of trying it forever.
            poisoned = [r for r in rows if r.attempts > self.channels.max_attempts(r.channel)]
            for row in poisoned:
                reason = (
                    f"gave up after {row.attempts - 1} attempt(s): the dispatcher lost the row"
                    " (lease expired) on its last attempt"
                )
                row.status, row.last_error, row.claimed_by = NotificationStatus.DEAD, reason, None
                count_outcome(row.channel, "dead")
            live = [r for r in rows if r not in poisoned]
            items = await self._outgoing(session, tenant_id, live)
        return items, len(poisoned)

    async def _outgoing(
        self, session: Any, tenant_id: uuid.UUID, rows: list[Notification]
    ) -> list[Outgoing]:
        """Snapshot the rows with their recipients' phone/e-mail and the tenant's webhook."""
        if not rows:
            return []
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
        hook = await session.scalar(
            select(NotificationSettings).where(NotificationSettings.tenant_id == tenant_id)
        )
        ids = {r.recipient_id for r in rows if r.recipient_id}
        users: dict[uuid.UUID, User] = {}
        emails: dict[uuid.UUID, str] = {}
        if ids:
            users = {u.id: u for u in await session.scalars(select(User).where(User.id.in_(ids)))}
            contacts = await session.execute(
                select(NotificationContact.user_id, NotificationContact.email).where(
                    NotificationContact.user_id.in_(ids)
                )
            )
            emails = {user_id: address for user_id, address in contacts}
        withheld, named = await _need_to_know(session, tenant_id, rows)
        items = []
        for n, r in enumerate(rows):
            user = users.get(r.recipient_id) if r.recipient_id else None
            content = {"subject": r.subject, "body": r.body, "data": dict(r.data or {}),
                       "case_id": r.case_id}  # fmt: skip
            if r.id in named and r.channel in OUTSIDE:
                neutralise(content)  # a row written before the gate, or by hand
            items.append(
                Outgoing(
                    id=r.id,
                    tenant_id=tenant_id,
                    tenant_slug=slug or "",
                    delivery_id=r.delivery_id,
                    channel=r.channel,
                    kind=r.kind,
                    subject=content["subject"],
                    body=content["body"],
                    data=content["data"],
                    case_id=content["case_id"],
                    recipient_id=r.recipient_id,
                    recipient_username=user.username if user else None,
                    phone=user.phone if user else None,
                    email=emails.get(r.recipient_id) if r.recipient_id else None,
                    attempt=r.attempts,
                    created_at=r.created_at,
                    webhook_url=hook.webhook_url if hook else None,
                    webhook_secret=hook.webhook_secret if hook else None,
                    withheld=WITHHELD if n in withheld else None,
                )
            )
        return items

    async def _attempt(self, item: Outgoing) -> Result:
        """Deliver one row; every failure becomes a result, never an exception."""
        try:
            await self.channels.deliver(item)
        except PermanentFailure as exc:
            return Result(item, _describe(exc), permanent=True)
        except Exception as exc:  # one bad row must not stop the batch
            return Result(item, _describe(exc))
        return Result(item)

    async def _record(
        self, tenant_id: uuid.UUID, token: uuid.UUID, results: list[Result], totals: Totals
    ) -> None:
        t = now()
        async with self.db.transaction(TenantScope.of([tenant_id])) as session:
            for res in results:
                item = res.item
                values: dict[str, Any] = {"claimed_by": None, "updated_at": t}
                if res.error is None:
                    outcome = "sent"
                    values |= {"status": NotificationStatus.SENT, "sent_at": t, "last_error": None}
                    values["next_attempt_at"] = t
                elif res.permanent or item.attempt >= self.channels.max_attempts(item.channel):
                    outcome = "dead"
                    reason = (
                        res.error
                        if res.permanent
                        else f"gave up after {item.attempt} attempt(s): {res.error}"
                    )
                    values |= {"status": NotificationStatus.DEAD, "last_error": reason[:ERROR_MAX]}
                    values["next_attempt_at"] = t
                else:
                    outcome = "failed"
                    values |= {"status": NotificationStatus.FAILED, "last_error": res.error}
                    values["next_attempt_at"] = t + backoff(self.settings, item.attempt)
                done = await session.execute(
                    update(Notification)
                    .where(
                        Notification.tenant_id == tenant_id,
                        Notification.id == item.id,
                        Notification.claimed_by == token,
                        Notification.status == NotificationStatus.SENDING,
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if done.rowcount != 1:
                    totals.lost += 1
                    log.warning(
                        "notifications.lease_lost", notification_id=str(item.id), outcome=outcome
                    )
                    continue
                setattr(totals, outcome, getattr(totals, outcome) + 1)
                count_outcome(item.channel, outcome)
                inapp = item.channel == NotificationChannel.INAPP
                if outcome == "sent" and inapp and item.recipient_id:
                    # a deferred in-app row reaches the inbox now: notificationReceived
                    live.publish(
                        session,
                        live.NOTIFICATION,
                        tenant_id,
                        [item.id],
                        recipient=item.recipient_id,
                    )
                if outcome != "sent":
                    log.info(
                        "notifications.delivery_failed",
                        notification_id=str(item.id),
                        channel=item.channel,
                        outcome=outcome,
                        attempt=item.attempt,
                        error=res.error,
                    )


WITHHELD = "withheld (Art. 30): the recipient may no longer know a case this message is about"


async def _need_to_know(
    session: Any, tenant_id: uuid.UUID, rows: list[Notification]
) -> tuple[set[int], set[uuid.UUID]]:
    """The gate again at delivery (roles change after a message is written): indices of
    rows whose recipient may not know an accusation they name, and the ids of the rows
    naming one (their channels outside the system carry a neutral text)."""
    na = NotificationAccusation
    links = await session.execute(
        select(na.notification_id, na.case_id).where(
            na.tenant_id == tenant_id, na.notification_id.in_([r.id for r in rows])
        )
    )
    named: dict[uuid.UUID, list[uuid.UUID]] = {}
    for nid, case_id in links:
        named.setdefault(nid, []).append(case_id)
    if not named:
        return set(), set()
    pairs = [(r.recipient_id, named.get(r.id, ())) for r in rows]
    barred, _ = await need_to_know.barred_pairs(session, tenant_id, pairs)
    return barred, set(named)


async def dispatch(
    db: Database,
    settings: Settings | None = None,
    *,
    tenant_ids: list[uuid.UUID] | None = None,
    http: httpx.AsyncClient | None = None,
) -> dict[str, int]:
    """One run over ``tenant_ids`` (default: every tenant), a few tenants at a time."""
    settings = settings or db.settings
    if tenant_ids is None:
        async with db.transaction() as session:
            tenant_ids = list(await session.scalars(select(Tenant.id).order_by(Tenant.id)))
    deadline = time.monotonic() + settings.notify_run_budget_seconds
    gate = asyncio.Semaphore(settings.notify_tenant_concurrency)
    client = http or httpx.AsyncClient(
        timeout=settings.notify_http_timeout_seconds, follow_redirects=False
    )
    dispatcher = Dispatcher(db, settings, client)

    async def one(tenant_id: uuid.UUID) -> Totals:
        async with gate:
            try:
                return await dispatcher.run_tenant(tenant_id, deadline)
            except Exception:  # one tenant's failure (its DB rows, say) must not stop others
                log.exception("notifications.tenant_failed", tenant_id=str(tenant_id))
                return Totals(tenants=1, errors=1)

    try:
        results = await asyncio.gather(*(one(t) for t in tenant_ids))
    finally:
        if http is None:
            await client.aclose()
    totals = Totals()
    for r in results:
        totals.add(r)
    summary = totals.as_dict()
    if totals.claimed or totals.errors:
        log.info("notifications.dispatch", **summary)
    return summary
