"""The outbox API (``enqueue``) and the inbox / dead-letter / settings services.

``enqueue`` is called by jobs and business services inside *their*
transaction, so a notification exists exactly when the decision that caused
it commits (outbox). The unique ``(tenant_id, dedupe_key, channel)`` plus
``INSERT ... ON CONFLICT DO NOTHING`` makes a re-run job a no-op instead of a
second message. Like every service here: (session, principal), never commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import may, require
from backend.authz.principal import Principal
from backend.cases import need_to_know
from backend.cases.models import Case
from backend.core import live, pagination
from backend.core import validation as v
from backend.core.clock import now
from backend.core.db import current_scope, insert_chunks, insert_values
from backend.core.errors import BadUserInput, Conflict, InvalidTransition, NotFound
from backend.core.ids import new_id, parse_id
from backend.core.logging import get_logger
from backend.core.settings import Settings, get_settings
from backend.notifications.channels import check_webhook_url
from backend.notifications.metrics import count_after_commit
from backend.notifications.models import (
    Notification,
    NotificationAccusation,
    NotificationChannel,
    NotificationContact,
    NotificationKind,
    NotificationSettings,
    NotificationStatus,
)
from backend.tenants.models import User

log = get_logger(__name__)

MAX_PAGE = 200
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
SUBJECT_MAX = 300


def dedupe_key(
    recipient_id: uuid.UUID | None, kind: str, case_id: uuid.UUID | None, day: date
) -> str:
    """The standard key: one message per (recipient, kind, case, day), whatever re-runs."""
    return f"{kind}:{recipient_id or '-'}:{case_id or '-'}:{day.isoformat()}"


# --- enqueue (the API other modules call) ----------------------------------------------


async def enqueue(  # noqa: PLR0913 — the outbox's entry point: a keyword per column a producer sets
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    recipient_id: uuid.UUID | None,
    kind: str,
    subject: str,
    body: str,
    dedupe_key: str,
    case_id: uuid.UUID | None = None,
    channels: Sequence[str] | None = None,
    not_before: datetime | None = None,
    data: dict[str, Any] | None = None,
    settings: Settings | None = None,
    about: Sequence[uuid.UUID] = (),
) -> list[Notification]:
    """Write one outbox row per channel in the caller's transaction; return the rows created.

    A row whose ``(tenant_id, dedupe_key, channel)`` exists is skipped, so a
    re-run job sends nothing twice. ``channels=None`` means the recipient's
    channels: ``inapp``, ``sms`` when the user has a phone and a gateway is
    configured, ``webhook`` when the tenant has one, ``email`` when the user
    has an address and SMTP is configured. Unknown channel names are stored
    and fail visibly (dead letter) rather than vanish. In-app rows due now
    are SENT at once: the inbox shows them as soon as the caller commits.

    ``about``: the cases the message speaks of besides ``case_id`` (a digest's list).
    The need-to-know gate (:func:`_screen`) refuses the rows of a recipient who may not
    know one of them and strips accusations from what leaves the system.
    """
    settings = settings or get_settings()
    scope = current_scope(session)
    if tenant_id not in scope.tenant_ids or scope.read_only:
        raise PermissionError(f"enqueue for tenant {tenant_id} outside the session scope")
    _check(kind, dedupe_key, not_before)
    recipient = None
    if recipient_id is not None:
        recipient = await session.scalar(
            select(User).where(User.tenant_id == tenant_id, User.id == recipient_id)
        )
        if recipient is None:
            raise ValueError(f"unknown recipient {recipient_id} in tenant {tenant_id}")
    if channels is None:
        chosen = await _default_channels(session, tenant_id, recipient, settings)
    else:
        chosen = _explicit(channels)
    if not chosen:
        return []

    t = now()
    due = max(t, not_before) if not_before else t
    message = Message(recipient_id, kind, subject, body, dedupe_key, case_id, data, about=about)
    concerns = _concerns(case_id, about)
    drafts = [_Draft(_row(tenant_id, c, message, t, due, not_before), concerns) for c in chosen]
    drafts = await _screen(session, tenant_id, drafts)
    created = await _write(session, tenant_id, drafts, Notification)
    count_after_commit(
        session,
        enqueued=[n.channel for n in created],
        sent=[n.channel for n in created if n.status == NotificationStatus.SENT],
    )
    return created


@dataclass(frozen=True)
class Message:
    """One message for :func:`enqueue_many` (the arguments of :func:`enqueue`)."""

    recipient_id: uuid.UUID | None
    kind: str
    subject: str
    body: str
    dedupe_key: str
    case_id: uuid.UUID | None = None
    data: dict[str, Any] | None = None
    channels: Sequence[str] | None = None
    about: Sequence[uuid.UUID] = ()  # the other cases it speaks of (a digest's list)


INSERT_ROWS = 500  # outbox rows per INSERT (about 20 parameters each; SQLite allows 32,766)


async def enqueue_many(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    messages: Sequence[Message],
    settings: Settings | None = None,
) -> list[tuple[str, str]]:
    """:func:`enqueue` for a batch of messages due now: same rows, same dedupe, fewer statements.

    The recipients, the tenant's webhook and the e-mail addresses are read once
    for the batch, and the rows go in with one ``INSERT … ON CONFLICT DO NOTHING``
    per :data:`INSERT_ROWS` — a job writing a thousand digests issues a handful
    of statements, not four per message. Returns ``(channel, status)`` of the
    rows created (no ORM objects).
    """
    settings = settings or get_settings()
    scope = current_scope(session)
    if tenant_id not in scope.tenant_ids or scope.read_only:
        raise PermissionError(f"enqueue for tenant {tenant_id} outside the session scope")
    for m in messages:
        _check(m.kind, m.dedupe_key, None)
    ids = {m.recipient_id for m in messages if m.recipient_id is not None}
    phones: dict[uuid.UUID, str | None] = {}
    emails: set[uuid.UUID] = set()
    if ids:
        found = await session.execute(
            select(User.id, User.phone).where(User.tenant_id == tenant_id, User.id.in_(ids))
        )
        phones = {uid: phone for uid, phone in found}
        if unknown := ids - phones.keys():
            raise ValueError(f"unknown recipient {min(unknown)} in tenant {tenant_id}")
        if settings.smtp_host:
            emails = set(
                await session.scalars(
                    select(NotificationContact.user_id).where(
                        NotificationContact.tenant_id == tenant_id,
                        NotificationContact.user_id.in_(ids),
                        NotificationContact.email.is_not(None),
                        NotificationContact.email != "",
                    )
                )
            )
    hook = await tenant_settings(session, tenant_id)
    webhook = hook is not None and bool(hook.webhook_url and hook.webhook_secret)

    t = now()
    drafts: list[_Draft] = []
    for m in messages:
        if m.channels is not None:
            chosen = _explicit(m.channels)
        else:
            chosen = []
            if m.recipient_id is not None:
                chosen.append(NotificationChannel.INAPP)
                if phones.get(m.recipient_id) and settings.sms_url:
                    chosen.append(NotificationChannel.SMS)
            if webhook:
                chosen.append(NotificationChannel.WEBHOOK)
            if m.recipient_id in emails:
                chosen.append(NotificationChannel.EMAIL)
        concerns = _concerns(m.case_id, m.about)
        drafts += (_Draft(_row(tenant_id, str(c), m, t, t), concerns) for c in chosen)
    created: list[tuple[str, str]] = []
    drafts = await _screen(session, tenant_id, drafts)
    for start in range(0, len(drafts), INSERT_ROWS):
        batch = drafts[start : start + INSERT_ROWS]
        created += await _write(
            session, tenant_id, batch, Notification.channel, Notification.status
        )
    count_after_commit(
        session,
        enqueued=[c for c, _ in created],
        sent=[c for c, st in created if st == NotificationStatus.SENT],
    )
    return created


# --- the need-to-know gate (Art. 30) at the outbox ------------------------------------------

# Channels whose messages leave the system: they never carry an accusation's content.
OUTSIDE = frozenset(
    {NotificationChannel.WEBHOOK, NotificationChannel.SMS, NotificationChannel.EMAIL}
)


@dataclass
class _Draft:
    """One outbox row to write and the cases it speaks of (after screening: the
    accusations among them, whose links are written with it)."""

    row: dict[str, Any]
    concerns: tuple[uuid.UUID, ...]


def _concerns(case_id: uuid.UUID | None, about: Sequence[uuid.UUID]) -> tuple[uuid.UUID, ...]:
    return tuple(dict.fromkeys([*([case_id] if case_id else []), *about]))


def neutralise(row: dict[str, Any]) -> None:
    """What a channel outside the system says about an accusation: that there is something."""
    row.update(
        subject=need_to_know.NEUTRAL_SUBJECT, body=need_to_know.NEUTRAL_BODY, data={}, case_id=None
    )


async def _screen(
    session: AsyncSession, tenant_id: uuid.UUID, drafts: list[_Draft]
) -> list[_Draft]:
    """Drop the rows of recipients who may not know a case they speak of; neutralise the
    rows leaving the system that speak of an accusation. Two statements per call at most
    (none when no draft speaks of a case)."""
    pairs = [(d.row["recipient_id"], d.concerns) for d in drafts]
    if not any(concerns for _, concerns in pairs):
        return drafts
    barred, accusations = await need_to_know.barred_pairs(session, tenant_id, pairs)
    kept = []
    for n, draft in enumerate(drafts):
        if n in barred:
            log.warning(
                "notifications.withheld",
                reason="Art. 30: the recipient may not know a case this message is about",
                kind=draft.row["kind"],
                channel=draft.row["channel"],
                recipient_id=str(draft.row["recipient_id"]),
            )
            continue
        named = tuple(c for c in draft.concerns if c in accusations)
        if named and draft.row["channel"] in OUTSIDE:
            neutralise(draft.row)
        kept.append(_Draft(draft.row, named))
    return kept


async def _write(
    session: AsyncSession, tenant_id: uuid.UUID, drafts: list[_Draft], *returning: Any
) -> list[Any]:
    """Insert screened drafts (``ON CONFLICT DO NOTHING``: a re-run writes nothing) and
    link the accusations they name; the rows created, as ``returning`` (one column or
    entity: its values; several: tuples)."""
    if not drafts:
        return []
    stmt = (
        _insert(session)(Notification)
        .on_conflict_do_nothing(index_elements=["tenant_id", "dedupe_key", "channel"])
        .returning(Notification.dedupe_key, Notification.channel, Notification.id, *returning)
    )
    rows = [d.row for d in drafts]
    if any(r is Notification for r in returning):  # one message's rows (enqueue), as ORM objects
        result = (await session.execute(stmt.values(rows))).all()
    else:  # a batch (enqueue_many): one compiled statement per chunk size
        result = await insert_chunks(session, stmt, rows)
    named = {(d.row["dedupe_key"], d.row["channel"]): d.concerns for d in drafts if d.concerns}
    t = now()
    links = [
        {"tenant_id": tenant_id, "id": new_id(), "notification_id": r[2], "case_id": case_id,
         "created_at": t}
        for r in result
        for case_id in named.get((r[0], r[1]), ())
    ]  # fmt: skip
    if links:  # VALUES, not INSERT … SELECT: routable on a distributed cluster too
        await insert_values(session, NotificationAccusation.__table__, links)
    sent = {(d.row["dedupe_key"], d.row["channel"]): d.row for d in drafts}
    for r in result:  # in-app rows in the inbox at once: notificationReceived, after commit
        row = sent[(r[0], r[1])]
        if row["status"] == NotificationStatus.SENT and row["channel"] == NotificationChannel.INAPP:
            live.publish(
                session, live.NOTIFICATION, tenant_id, [r[2]], recipient=row["recipient_id"]
            )
    return [r[3] if len(returning) == 1 else tuple(r[3:]) for r in result]


KINDS = frozenset(NotificationKind)


def _check(kind: str, dedupe_key: str, not_before: datetime | None) -> None:
    if kind not in KINDS:  # the API's enum has a name for every stored kind
        raise ValueError(f"unknown notification kind {kind!r}: add it to NotificationKind")
    if not dedupe_key or len(dedupe_key) > 255:
        raise ValueError("dedupe_key must be 1-255 characters")
    if not_before is not None and not_before.tzinfo is None:
        raise ValueError("not_before must be timezone-aware")


def _explicit(channels: Sequence[str]) -> list[str]:
    chosen = list(dict.fromkeys(channels))
    if any(not isinstance(c, str) or not c or len(c) > 32 for c in chosen):
        raise ValueError("channel names must be 1-32 characters")
    return chosen


def _insert(session: AsyncSession) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def _row(
    tenant_id: uuid.UUID,
    channel: str,
    m: Message,
    t: datetime,
    due: datetime,
    not_before: datetime | None = None,
) -> dict[str, Any]:
    """One outbox row; in-app rows due now are SENT at once (the inbox shows them on commit)."""
    subject = m.subject
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    immediate = channel == NotificationChannel.INAPP and m.recipient_id is not None and due <= t
    return {
        "tenant_id": tenant_id,
        "id": new_id(),
        "delivery_id": new_id(),
        "recipient_id": m.recipient_id,
        "channel": channel,
        "kind": m.kind,
        "subject": subject,
        "body": m.body,
        "data": m.data or {},
        "case_id": m.case_id,
        "dedupe_key": m.dedupe_key,
        "status": NotificationStatus.SENT if immediate else NotificationStatus.PENDING,
        "attempts": 1 if immediate else 0,
        "next_attempt_at": due,
        "not_before": not_before,
        "sent_at": t if immediate else None,
        "created_at": t,
        "updated_at": t,
    }


async def _default_channels(
    session: AsyncSession, tenant_id: uuid.UUID, recipient: User | None, settings: Settings
) -> list[str]:
    chosen: list[str] = []
    if recipient is not None:
        chosen.append(NotificationChannel.INAPP)
        if recipient.phone and settings.sms_url:
            chosen.append(NotificationChannel.SMS)
    hook = await tenant_settings(session, tenant_id)
    if hook is not None and hook.webhook_url and hook.webhook_secret:
        chosen.append(NotificationChannel.WEBHOOK)
    if recipient is not None and settings.smtp_host:
        email = await session.scalar(
            select(NotificationContact.email).where(
                NotificationContact.tenant_id == tenant_id,
                NotificationContact.user_id == recipient.id,
            )
        )
        if email:
            chosen.append(NotificationChannel.EMAIL)
    return [str(c) for c in chosen]


async def tenant_settings(
    session: AsyncSession, tenant_id: uuid.UUID
) -> NotificationSettings | None:
    return await session.scalar(
        select(NotificationSettings).where(NotificationSettings.tenant_id == tenant_id)
    )


# --- inbox ----------------------------------------------------------------------------


def _page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    return first


def knowable_by(principal: Principal) -> ColumnElement[bool]:
    """Notifications about no accusation ``principal`` may not know — *now*: a role taken
    inside the accused unit after the message was written hides it (need_to_know.py)."""
    na = NotificationAccusation
    barred = need_to_know.barred_clause(
        [g.unit_path for g in principal.grants], [principal.username]
    )
    return ~exists(
        select(na.id)
        .join(Case, and_(Case.tenant_id == na.tenant_id, Case.id == na.case_id))
        .where(
            na.tenant_id == Notification.tenant_id,
            na.notification_id == Notification.id,
            barred,
        )
    )


# newest first; a cursor of the inbox is ``sent_at|id``
INBOX_KEYS = (
    pagination.datetime_key(Notification.sent_at, "sent_at"),
    pagination.uuid_key(Notification.id),
)


async def inbox(
    session: AsyncSession, principal: Principal, *, unread_only: bool = False, first: int = 50
) -> list[Notification]:
    """The caller's own in-app notifications, newest first (never anyone else's)."""
    args = pagination.PageArgs(first=_page_size(first))
    return (await inbox_page(session, principal, args, unread_only=unread_only)).rows


async def inbox_page(
    session: AsyncSession,
    principal: Principal,
    args: pagination.PageArgs,
    *,
    unread_only: bool = False,
) -> pagination.Window:
    """A page of the caller's inbox, newest first, in either direction: ``before`` the
    newest cursor a client holds is what arrived since (Relay ``last``/``before``)."""
    require(principal, "notification", "inbox")
    stmt = select(Notification).where(
        Notification.recipient_id == principal.account_id,
        Notification.channel == NotificationChannel.INAPP,
        Notification.status == NotificationStatus.SENT,
        knowable_by(principal),
    )
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return await pagination.paginate(session, stmt, INBOX_KEYS, args, minimum=1)


async def own_notifications(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[Notification]:
    """Those of ``ids`` in the caller's own inbox (:func:`inbox_page`'s rule), in one
    statement: nobody opens another's message by its id."""
    if not ids or not may(principal, "notification", "inbox"):
        return []
    stmt = select(Notification).where(
        Notification.id.in_(list(set(ids))),
        Notification.recipient_id == principal.account_id,
        Notification.channel == NotificationChannel.INAPP,
        Notification.status == NotificationStatus.SENT,
        knowable_by(principal),
    )
    return list(await session.scalars(stmt))


async def inbox_items(
    session: AsyncSession, principal: Principal, notification_ids: Sequence[uuid.UUID]
) -> list[Notification]:
    """The rows among ``notification_ids`` that the caller's inbox shows (its own, in-app,
    sent, about nothing it may not know *now*): what ``notificationReceived`` sends it.
    FORBIDDEN without an inbox; no ids, no statement."""
    require(principal, "notification", "inbox")
    rows = await own_notifications(session, principal, notification_ids)
    return sorted(rows, key=lambda n: (n.sent_at or n.created_at, str(n.id)))


async def mark_read(session: AsyncSession, principal: Principal, *, id: str) -> Notification:
    """Mark one of the caller's in-app notifications read (idempotent: the first time stays)."""
    require(principal, "notification", "inbox")
    nid = parse_id(id, "Notification")
    row = None
    if nid is not None:
        row = await session.scalar(
            select(Notification).where(
                Notification.id == nid,
                Notification.recipient_id == principal.account_id,
                Notification.channel == NotificationChannel.INAPP,
                Notification.status == NotificationStatus.SENT,
                knowable_by(principal),
            )
        )
    if row is None:
        raise NotFound(f"notification {id} not found")
    if row.read_at is None:
        row.read_at = now()
        await session.flush()
    return row


# --- administration (city_admin) --------------------------------------------------------


async def dead_letters(
    session: AsyncSession, principal: Principal, *, first: int = 50
) -> list[Notification]:
    """The tenant's notifications that gave up, most recent first, with their reasons."""
    require(principal, "notification", "manage")
    stmt = (
        select(Notification)
        .where(Notification.status == NotificationStatus.DEAD, knowable_by(principal))
        .order_by(Notification.updated_at.desc(), Notification.id.desc())
        .limit(_page_size(first))
    )
    return list(await session.scalars(stmt))


async def retry(session: AsyncSession, principal: Principal, *, id: str) -> Notification:
    """Put a DEAD (or FAILED) row back in the queue now; its delivery id stays the same."""
    require(principal, "notification", "manage")
    nid = parse_id(id, "Notification")
    row = None
    if nid is not None:
        row = await session.scalar(
            select(Notification).where(Notification.id == nid, knowable_by(principal))
        )
    if row is None:
        raise NotFound(f"notification {id} not found")
    if row.status not in (NotificationStatus.DEAD, NotificationStatus.FAILED):
        raise InvalidTransition(f"a {row.status} notification cannot be retried")
    t = now()
    row.status = NotificationStatus.PENDING
    row.attempts = 0
    row.next_attempt_at = t
    row.claimed_by = None
    row.updated_at = t
    await session.flush()
    return row


async def set_webhook(
    session: AsyncSession,
    principal: Principal,
    *,
    url: str,
    secret: str,
    settings: Settings | None = None,
) -> NotificationSettings:
    """Set the tenant's webhook (URL checked now; HTTPS only in production)."""
    require(principal, "notification", "manage")
    settings = settings or get_settings()
    url = (url or "").strip()
    problem = check_webhook_url(url, env=settings.env, allowed=settings.webhook_allowed_networks)
    if problem:
        raise BadUserInput(problem, field="url")
    if not 16 <= len(secret or "") <= 256:
        raise BadUserInput("secret must be 16-256 characters", field="secret")
    tenant_id = _own_tenant(principal)
    row = await tenant_settings(session, tenant_id)
    if row is None:
        row = NotificationSettings(tenant_id=tenant_id)
        session.add(row)
    row.webhook_url = url
    row.webhook_secret = secret
    row.updated_by = principal.username
    row.updated_at = now()
    try:
        await session.flush()
    except IntegrityError as exc:  # two admins at once: the other one won
        raise Conflict("notification settings changed concurrently", field="url") from exc
    return row


async def get_settings_row(
    session: AsyncSession, principal: Principal
) -> NotificationSettings | None:
    require(principal, "notification", "manage")
    return await tenant_settings(session, _own_tenant(principal))


async def set_email(
    session: AsyncSession, principal: Principal, *, email: str | None, username: str | None = None
) -> tuple[User, str | None]:
    """Set (or with ``None`` remove) the e-mail address a user is notified at.

    One's own address needs only the inbox right; someone else's is the city
    administrator's business.
    """
    require(principal, "notification", "inbox")
    tenant_id = _own_tenant(principal)
    if username is None or username == principal.username:
        user = await session.scalar(select(User).where(User.id == principal.account_id))
    else:
        require(principal, "notification", "manage")
        user = await session.scalar(
            select(User).where(User.username == v.username(username, "username"))
        )
    if user is None:
        raise BadUserInput(f"unknown user {username} in this tenant", field="username")
    email = (email or "").strip() or None
    if email is not None and (len(email) > 254 or not EMAIL_RE.match(email)):
        raise BadUserInput("email is not a valid e-mail address", field="email")
    contact = await session.scalar(
        select(NotificationContact).where(NotificationContact.user_id == user.id)
    )
    if email is None:
        if contact is not None:
            await session.delete(contact)
    elif contact is None:
        session.add(NotificationContact(tenant_id=tenant_id, user_id=user.id, email=email))
    else:
        contact.email = email
        contact.updated_at = now()
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("e-mail address changed concurrently", field="email") from exc
    return user, email


def _own_tenant(principal: Principal) -> uuid.UUID:
    if principal.tenant_id is None:  # require() already refused staff; belt and braces
        raise NotFound("no tenant")
    return principal.tenant_id
