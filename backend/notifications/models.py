"""The notification outbox, the tenant's webhook settings and users' e-mail addresses.

Redis keeps nothing on disk, so a notification owed is a row here first,
written in the business transaction that decides it (outbox); the
dispatcher job only carries the work. Every table is tenant data: behind
both tenant walls, ``tenant_id`` leading every key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.clock import now
from backend.core.crypto import EncryptedText
from backend.core.db import Base, TenantScoped, UtcDateTime, tenant_fk
from backend.core.ids import new_id


class NotificationChannel(StrEnum):
    INAPP = "inapp"
    WEBHOOK = "webhook"
    SMS = "sms"
    EMAIL = "email"


class NotificationKind(StrEnum):
    """What a notification is about. Stored lower-case (the value); the GraphQL enum
    ``NotificationKind`` shows the names (``DIGEST``). The outbox refuses any other kind."""

    DIGEST = "digest"  # the morning digest of an official's red cases (jobs/digest.py)
    ESCALATION = "escalation"  # a case stayed red: to the next level up
    SUPERVISION_OVERDUE = "supervision_overdue"  # a 督办 order passed its due date
    PROVINCE_SUPERVISION = "province_supervision"  # 省级督办 (stats/province.py)
    MONTHLY_REPORT = "monthly_report"  # the monthly bulletin is ready (jobs/reports.py)
    EVALUATION_PANEL = "evaluation_panel"  # drawn onto an evaluation panel
    EVALUATION_VERDICT = "evaluation_verdict"  # a panel's verdict and its follow-up
    SHIFT_REMINDER = "shift_reminder"  # the day before a duty shift (rosters/planning.py)
    REMINDER = "reminder"  # a reminder scheduled by a module (jobs/reminders.py)


class NotificationStatus(StrEnum):
    PENDING = "PENDING"  # waiting for its first attempt (or for not_before)
    SENDING = "SENDING"  # claimed by a dispatcher; next_attempt_at is the lease's end
    SENT = "SENT"
    FAILED = "FAILED"  # an attempt failed; retried at next_attempt_at
    DEAD = "DEAD"  # gave up (permanent error or max attempts): dead letter for admins


# Statuses the dispatcher may claim once ``next_attempt_at`` has passed.
CLAIMABLE = (NotificationStatus.PENDING, NotificationStatus.FAILED, NotificationStatus.SENDING)


class Notification(TenantScoped, Base):
    """One message to one recipient over one channel (an outbox row).

    ``next_attempt_at`` is "when may a dispatcher take this row": the first
    attempt (``not_before`` or the enqueue time), the backoff after a
    failure, or the end of the lease while ``SENDING`` — so one index on
    ``(tenant_id, status, next_attempt_at)`` answers every "what is due".
    ``delivery_id`` never changes across retries: receivers dedupe by it.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", "channel", name="uq_notifications_dedupe"),
        tenant_fk("recipient_id", "users", "fk_notifications_recipient"),
        tenant_fk("case_id", "cases", "fk_notifications_case"),
        Index("ix_notifications_due", "tenant_id", "status", "next_attempt_at"),
        Index("ix_notifications_inbox", "tenant_id", "recipient_id", "channel", "sent_at"),
    )

    recipient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dedupe_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
    not_before: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid, default=new_id)
    # The dispatcher run holding the lease; its result is recorded only if it still holds it.
    claimed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class NotificationSettings(TenantScoped, Base):
    """A tenant's webhook: every ``webhook`` notification of the city is POSTed here.

    The secret must be recoverable (it signs), so it is encrypted, not hashed; never returned.
    """

    __tablename__ = "notification_settings"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_notification_settings_tenant"),)

    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(
        EncryptedText("notification_settings.webhook_secret")  # at rest: AES-GCM
    )
    updated_by: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class NotificationContact(TenantScoped, Base):
    """A user's e-mail address for notifications (users carry only a phone)."""

    __tablename__ = "notification_contacts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", name="uq_notification_contacts_user"),
        tenant_fk("user_id", "users", "fk_contacts_user"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)


class NotificationAccusation(TenantScoped, Base):
    """An accusation a notification is about (Art. 30, backend/cases/need_to_know.py).

    Written with the notification when it passes the need-to-know gate; read again
    when the dispatcher delivers it and when the recipient (or an administrator, for
    dead letters) lists it, since roles change in between: a recipient who meanwhile
    took a role inside the accused unit gets nothing. One row per accusation named, so
    that both checks are a join in SQL; other cases need no row.
    """

    __tablename__ = "notification_accusations"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "notification_id", "case_id", name="uq_notification_accusations"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "notification_id"],
            ["notifications.tenant_id", "notifications.id"],
            name="fk_notification_accusations_notification",
            ondelete="CASCADE",
        ),
        tenant_fk("case_id", "cases", "fk_notification_accusations_case"),
    )

    notification_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
