"""GraphQL for notifications: the caller's in-app inbox, dead letters and outbox settings.

Thin: each resolver is one service call in the request's read session or a
mutation transaction (backend/notifications/service.py has the rules).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry

from backend.core.pagination import PageArgs, encode
from backend.notifications import models, service
from backend.schema.context import Ctx, RequestContext
from backend.schema.loaders import load
from backend.schema.relay import After, Before, Connection, First, Last, Node, connection_of

NotificationStatus = strawberry.enum(models.NotificationStatus, name="NotificationStatus")
# GraphQL shows the names (DIGEST); rows store the lower-case values (digest)
NotificationKind = strawberry.enum(models.NotificationKind, name="NotificationKind")


@strawberry.type(name="Notification")
class NotificationNode(Node):
    """One outbox row. Its content (subject, body, data) is shown to its recipient only:
    a city admin looking at dead letters sees who, what kind, which case and why it
    failed, but not a message that may quote case content the admin may not read."""

    _m: strawberry.Private[models.Notification]
    _viewer: strawberry.Private[uuid.UUID | None] = None
    _recipient: strawberry.Private[str | None] = None  # known already (a subscription's own)
    channel: str = strawberry.field(description="The channel: inapp, webhook, sms or email.")
    kind: NotificationKind = strawberry.field(description="What it is about.")
    attempts: int
    last_error: str | None = strawberry.field(
        description="Why the last attempt failed (FAILED, DEAD)."
    )
    created_at: datetime
    sent_at: datetime | None
    read_at: datetime | None

    @classmethod
    def of(cls, m: models.Notification, **private: Any) -> NotificationNode:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(
            _m=m,
            **private,
            channel=m.channel,
            kind=models.NotificationKind(m.kind),
            attempts=m.attempts,
            last_error=m.last_error,
            created_at=m.created_at,
            sent_at=m.sent_at,
            read_at=m.read_at,
        )

    def _shown(self) -> bool:
        return self._m.recipient_id is None or self._m.recipient_id == self._viewer

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field(description="Null unless the caller is the recipient (see contentHidden).")
    def subject(self) -> str | None:
        return self._m.subject if self._shown() else None

    @strawberry.field(description="Null unless the caller is the recipient.")
    def body(self) -> str | None:
        return self._m.body if self._shown() else None

    @strawberry.field(description="Null unless the caller is the recipient.")
    def data(self) -> strawberry.scalars.JSON | None:
        return (self._m.data or {}) if self._shown() else None

    @strawberry.field(description="True when subject, body and data are someone else's.")
    def content_hidden(self) -> bool:
        return not self._shown()

    @strawberry.field
    def case_id(self) -> strawberry.ID | None:
        return strawberry.ID(str(self._m.case_id)) if self._m.case_id else None

    @strawberry.field
    def status(self) -> NotificationStatus:
        return models.NotificationStatus(self._m.status)

    @strawberry.field(description="Stable across retries; receivers drop duplicates by it.")
    def delivery_id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.delivery_id))

    @strawberry.field
    def next_attempt_at(self) -> datetime | None:
        if self._m.status in (models.NotificationStatus.SENT, models.NotificationStatus.DEAD):
            return None
        return self._m.next_attempt_at

    @strawberry.field(description="Username of the recipient (null: a tenant-wide message).")
    async def recipient(self, info: Ctx) -> str | None:
        if self._m.recipient_id is None:
            return None
        if self._recipient is not None:
            return self._recipient
        user = await load(info.context, "user_by_id", self._m.recipient_id)
        return user.username if user else None


def _nodes(rows: list[models.Notification], ctx: RequestContext) -> list[NotificationNode]:
    viewer = ctx.principal.account_id
    return [NotificationNode.of(r, _viewer=viewer) for r in rows]


@strawberry.type(name="NotificationSettings")
class NotificationSettingsNode:
    webhook_url: str | None
    webhook_configured: bool = strawberry.field(
        description="URL and secret are set (the secret is never shown)."
    )
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, row: models.NotificationSettings | None) -> NotificationSettingsNode:
        if row is None:
            return cls(webhook_url=None, webhook_configured=False, updated_by=None, updated_at=None)
        return cls(
            webhook_url=row.webhook_url,
            webhook_configured=bool(row.webhook_url and row.webhook_secret),
            updated_by=row.updated_by,
            updated_at=row.updated_at,
        )


@strawberry.type(name="NotificationContact")
class NotificationContactNode:
    username: str
    email: str | None


@strawberry.input
class MarkNotificationReadInput:
    id: strawberry.ID


@strawberry.input
class RetryNotificationInput:
    id: strawberry.ID


@strawberry.input
class SetNotificationWebhookInput:
    url: str
    secret: str = strawberry.field(description="16-256 characters; signs every request (HMAC).")


@strawberry.input
class SetNotificationEmailInput:
    email: str | None = strawberry.field(description="Null removes the address.")
    username: str | None = strawberry.field(
        default=None, description="Someone else's address (city admin); default: the caller"
    )


@strawberry.type
class NotificationQueries:
    @strawberry.field(
        description="The caller's in-app notifications, newest first.",
        deprecation_reason="Use notificationsConnection: Relay cursors in both directions (first/after, last/before).",
    )
    async def notifications(
        self, info: Ctx, unread_only: bool = False, first: int = 50
    ) -> list[NotificationNode]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await service.inbox(session, ctx.principal, unread_only=unread_only, first=first)
        return _nodes(rows, ctx)

    @strawberry.field(
        description=(
            "The caller's in-app notifications, newest first, as a Relay connection. What "
            "arrived since a page was read: before: <its pageInfo.startCursor> (with first "
            "or last); pageInfo.hasPreviousPage then says whether still newer ones exist."
        )
    )
    async def notifications_connection(
        self,
        info: Ctx,
        unread_only: bool = False,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[NotificationNode]:
        ctx = info.context
        args = PageArgs(first, after, last, before)
        async with ctx.read() as session:
            window = await service.inbox_page(session, ctx.principal, args, unread_only=unread_only)
        viewer = ctx.principal.account_id
        return connection_of(
            window,
            lambda row: NotificationNode.of(row, _viewer=viewer),
            lambda row: encode(service.INBOX_KEYS, row),
        )

    @strawberry.field(description="Notifications that gave up, with the reason (city admin).")
    async def dead_letter_notifications(self, info: Ctx, first: int = 50) -> list[NotificationNode]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await service.dead_letters(session, ctx.principal, first=first)
        return _nodes(rows, ctx)

    @strawberry.field(description="The city's webhook (city admin; the secret is never shown).")
    async def notification_settings(self, info: Ctx) -> NotificationSettingsNode:
        ctx = info.context
        async with ctx.read() as session:
            row = await service.get_settings_row(session, ctx.principal)
        return NotificationSettingsNode.of(row)


@strawberry.type
class NotificationMutations:
    @strawberry.mutation(description="Mark one of the caller's notifications read.")
    async def mark_notification_read(
        self, info: Ctx, input: MarkNotificationReadInput
    ) -> NotificationNode:
        ctx = info.context
        return _nodes([await ctx.mutate(service.mark_read, id=input.id)], ctx)[0]

    @strawberry.mutation(description="Queue a dead (or failed) notification again (city admin).")
    async def retry_notification(
        self, info: Ctx, input: RetryNotificationInput
    ) -> NotificationNode:
        ctx = info.context
        return _nodes([await ctx.mutate(service.retry, id=input.id)], ctx)[0]

    @strawberry.mutation(description="Set the city's webhook URL and HMAC secret (city admin).")
    async def set_notification_webhook(
        self, info: Ctx, input: SetNotificationWebhookInput
    ) -> NotificationSettingsNode:
        ctx = info.context
        row = await ctx.mutate(
            service.set_webhook, url=input.url, secret=input.secret, settings=ctx.db.settings
        )
        return NotificationSettingsNode.of(row)

    @strawberry.mutation(description="Set or remove the e-mail address notifications go to.")
    async def set_notification_email(
        self, info: Ctx, input: SetNotificationEmailInput
    ) -> NotificationContactNode:
        user, email = await info.context.mutate(
            service.set_email, email=input.email, username=input.username
        )
        return NotificationContactNode(username=user.username, email=email)
