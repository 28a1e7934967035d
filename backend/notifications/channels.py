"""Delivery over each channel: in-app, HMAC-signed webhook, HTTP SMS gateway, SMTP e-mail.

A channel either returns (delivered), raises :class:`PermanentFailure`
(retrying cannot help: missing phone, bad URL, unknown channel — the row
goes to the dead letters at once, with the reason) or raises anything else
(transient: the row is retried with backoff). Every request carries the
row's ``delivery_id``, stable across retries, so receivers can drop the
duplicates that at-least-once delivery implies.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import smtplib
import socket
import ssl
import string
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any
from urllib.parse import urlsplit

import httpx

from backend.core.clock import now
from backend.core.settings import Settings
from backend.notifications.models import NotificationChannel

SIGNATURE_HEADER = "X-Xinfang-Signature"
DELIVERY_HEADER = "X-Xinfang-Delivery"
SMS_TEXT_MAX = 500

# httpx logs every request URL at INFO; webhook and gateway URLs may carry tokens.
logging.getLogger("httpx").setLevel(logging.WARNING)


class PermanentFailure(Exception):
    """Retrying cannot help (configuration or data is wrong): dead letter at once."""


class TransientFailure(Exception):
    """The receiver did not take it this time (HTTP status, connection): retry later."""


@dataclass(frozen=True)
class Outgoing:
    """A claimed row plus what its channel needs, read in the claim transaction."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    tenant_slug: str
    delivery_id: uuid.UUID
    channel: str
    kind: str
    subject: str
    body: str
    data: dict[str, Any]
    case_id: uuid.UUID | None
    recipient_id: uuid.UUID | None
    recipient_username: str | None
    phone: str | None
    email: str | None
    attempt: int
    created_at: datetime
    webhook_url: str | None
    webhook_secret: str | None
    withheld: str | None = None  # the need-to-know gate refused it (never delivered)


def check_webhook_url(url: str, *, env: str, allowed: str = "") -> str | None:
    """Why ``url`` cannot be a webhook target, or ``None`` when it can.

    Shared by the mutation (refused up front) and the dispatcher (a URL
    stored before the deployment switched to production is refused too).
    A city administrator sets the URL, so it must not point the server at
    itself or the internal network (SSRF): a literal address or a local name
    must be public unless ``allowed`` (``XF_WEBHOOK_ALLOWED_NETWORKS``) lists
    it. A name is resolved, and every address checked, when a message is sent
    (:func:`webhook_address`): what it resolves to today is no promise.
    """
    if not url or len(url) > 2000 or any(c.isspace() for c in url):
        return "webhook URL must be a non-empty URL without spaces (at most 2000 characters)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a malformed port
    except ValueError:
        return "webhook URL is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook URL must be an absolute http(s) URL with a host"
    if parts.username or parts.password:
        return "webhook URL must not carry credentials (the secret signs the requests)"
    if env == "prod" and parts.scheme != "https":
        return "webhook URL must use HTTPS in production"
    host = parts.hostname.rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return _NOT_PUBLIC.format(host)
    if _zoned(host):
        return _ZONED.format(host)
    address = _numeric(host)
    if address is None:
        return None  # a name: checked against what it resolves to when sending
    return None if _reachable(address, allowed) else _NOT_PUBLIC.format(host)


def _zoned(host: str) -> bool:
    """Whether ``host`` carries an IPv6 zone id (``[fe80::1%25eth0]``, ``[::1%lo]``,
    ``[::1%251]``) — or any ``%``, which no DNS name holds. A zone names an interface of
    the server itself: a webhook has no business choosing one, and the resolver does not
    parse every spelling (a named zone used to read as a host *name* and pass the check)."""
    return "%" in host


def _numeric(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an address if it is one in any form the resolver accepts — ``127.1``,
    ``2130706433``, ``0x7f000001``, ``0177.0.0.1`` are all 127.0.0.1 to a connect.

    A host with a zone id is refused before this (:func:`_zoned`); should one arrive, it
    is a :class:`ValueError`, never taken for a name."""
    if _zoned(host):
        raise ValueError(_ZONED.format(host))
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (OSError, UnicodeError):
        return None
    return ipaddress.ip_address(infos[0][4][0].split("%")[0]) if infos else None


_NOT_PUBLIC = (
    "webhook URL must point to a public address ({} is loopback, private, link-local or "
    "reserved; an operator may allow a network with XF_WEBHOOK_ALLOWED_NETWORKS)"
)


_ZONED = (
    "webhook URL must not carry an IPv6 zone id or a percent-encoded host ({}): name a "
    "public host or address"
)


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to its destination (mapped, 6to4, Teredo,
    NAT64): ``[64:ff9b::7f00:1]`` reaches 127.0.0.1."""
    if address.ipv4_mapped or address.sixtofour:
        return address.ipv4_mapped or address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _reachable(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: str) -> bool:
    """A global address, or one inside a network the operator allowed."""
    if isinstance(address, ipaddress.IPv6Address):
        address = _embedded_ipv4(address) or address
    for cidr in filter(None, (c.strip() for c in allowed.split(","))):
        if address in ipaddress.ip_network(cidr, strict=False):
            return True
    return address.is_global and not address.is_multicast


async def webhook_address(url: str, allowed: str) -> str:
    """The address to send to: ``url``'s host resolved now, every answer checked.

    The connection then goes to this very address (:meth:`Channels.webhook`), so a name
    that resolves to a public address for the check and to 127.0.0.1 a moment later
    (DNS rebinding) cannot turn the webhook inward.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _zoned(host):  # a zone id picks an interface of this server: never sent
        raise PermanentFailure(_ZONED.format(host))
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
        )
    except OSError as exc:
        raise TransientFailure(f"webhook host {host} does not resolve: {exc}") from exc
    addresses = sorted({ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}, key=str)
    for address in addresses:
        if not _reachable(address, allowed):
            raise PermanentFailure(_NOT_PUBLIC.format(f"{host} ({address})"))
    if not addresses:
        raise TransientFailure(f"webhook host {host} has no address")
    return str(addresses[0])


def _pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by ``address``, the Host header and TLS name kept."""
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = f"{host}:{parts.port}" if parts.port else host
    pinned = parts._replace(netloc=netloc).geturl()
    header = parts.hostname + (f":{parts.port}" if parts.port else "")
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return pinned, {"Host": header}, extensions


def sign(secret: str, body: bytes) -> str:
    """The ``X-Xinfang-Signature`` value: ``sha256=`` + hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_payload(item: Outgoing) -> bytes:
    """The exact bytes that are signed and sent (compact, sorted JSON)."""
    payload = {
        "deliveryId": str(item.delivery_id),
        "notificationId": str(item.id),
        "tenant": item.tenant_slug,
        "kind": item.kind,
        "subject": item.subject,
        "body": item.body,
        "data": item.data,
        "caseId": str(item.case_id) if item.case_id else None,
        "recipient": item.recipient_username,
        "createdAt": item.created_at.isoformat(),
        "sentAt": now().isoformat(),
        "attempt": item.attempt,
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def _check_response(what: str, response: httpx.Response) -> None:
    if not 200 <= response.status_code < 300:
        raise TransientFailure(f"{what} answered HTTP {response.status_code}")


def _fill(template: Any, values: dict[str, str]) -> Any:
    """Substitute ``${name}`` in every string of a parsed JSON template (never in raw JSON)."""
    if isinstance(template, str):
        return string.Template(template).safe_substitute(values)
    if isinstance(template, list):
        return [_fill(v, values) for v in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


class Channels:
    """The channel implementations, sharing one HTTP client per dispatch run."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.settings = settings
        self.http = http
        self._by_name: dict[str, Callable[[Outgoing], Awaitable[None]]] = {
            NotificationChannel.INAPP: self.inapp,
            NotificationChannel.WEBHOOK: self.webhook,
            NotificationChannel.SMS: self.sms,
            NotificationChannel.EMAIL: self.email,
        }

    def max_attempts(self, channel: str) -> int:
        return {
            NotificationChannel.WEBHOOK: self.settings.notify_max_attempts_webhook,
            NotificationChannel.SMS: self.settings.notify_max_attempts_sms,
            NotificationChannel.EMAIL: self.settings.notify_max_attempts_email,
        }.get(channel, 1)

    async def deliver(self, item: Outgoing) -> None:
        if item.withheld:
            raise PermanentFailure(item.withheld)
        send = self._by_name.get(item.channel)
        if send is None:
            raise PermanentFailure(f"unknown channel {item.channel!r}")
        await send(item)

    async def inapp(self, item: Outgoing) -> None:
        """Nothing to send: the row is the inbox entry, visible once SENT."""
        if item.recipient_id is None:
            raise PermanentFailure("in-app notification without a recipient")

    async def webhook(self, item: Outgoing) -> None:
        if not item.webhook_url or not item.webhook_secret:
            raise PermanentFailure("no webhook configured for this tenant")
        allowed = self.settings.webhook_allowed_networks
        problem = check_webhook_url(item.webhook_url, env=self.settings.env, allowed=allowed)
        if problem:
            raise PermanentFailure(problem)
        url, host, extensions = _pinned(
            item.webhook_url, await webhook_address(item.webhook_url, allowed)
        )
        body = webhook_payload(item)
        headers = {
            **host,
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(item.webhook_secret, body),
            DELIVERY_HEADER: str(item.delivery_id),
            "X-Xinfang-Event": item.kind,
        }
        try:
            response = await self.http.post(
                url, content=body, headers=headers, extensions=extensions
            )
        except httpx.InvalidURL as exc:
            raise PermanentFailure(f"webhook URL is not valid: {exc}") from exc
        _check_response("webhook", response)

    async def sms(self, item: Outgoing) -> None:
        settings = self.settings
        if item.recipient_id is None:
            raise PermanentFailure("SMS without a recipient")
        if not item.phone:
            raise PermanentFailure("recipient has no phone")
        if not settings.sms_url:
            raise PermanentFailure("no SMS gateway configured (XF_SMS_URL)")
        try:
            template = json.loads(settings.sms_template)
        except ValueError as exc:
            raise PermanentFailure("XF_SMS_TEMPLATE is not valid JSON") from exc
        text = f"{item.subject}：{item.body}" if item.body else item.subject
        values = {
            "phone": item.phone,
            "text": text[:SMS_TEXT_MAX],
            "subject": item.subject,
            "body": item.body,
            "kind": item.kind,
            "delivery_id": str(item.delivery_id),
            "tenant": item.tenant_slug,
        }
        auth = (
            httpx.BasicAuth(settings.sms_username, settings.sms_password or "")
            if settings.sms_username
            else None
        )
        response = await self.http.post(
            settings.sms_url,
            json=_fill(template, values),
            headers={DELIVERY_HEADER: str(item.delivery_id)},
            auth=auth,
        )
        _check_response("SMS gateway", response)

    async def email(self, item: Outgoing) -> None:
        settings = self.settings
        if item.recipient_id is None:
            raise PermanentFailure("e-mail without a recipient")
        if not item.email:
            raise PermanentFailure("recipient has no e-mail address")
        if not settings.smtp_host:
            raise PermanentFailure("no SMTP server configured (XF_SMTP_HOST)")
        message = EmailMessage()
        message["From"] = settings.smtp_from
        message["To"] = item.email
        message["Subject"] = item.subject
        message["Date"] = formatdate(localtime=False)
        # Stable across retries: mail clients and archives drop duplicates by Message-ID.
        message["Message-ID"] = f"<{item.delivery_id}@xinfang>"
        message[DELIVERY_HEADER] = str(item.delivery_id)
        message.set_content(item.body or item.subject)
        await asyncio.to_thread(self._smtp_send, message)

    def _smtp_send(self, message: EmailMessage) -> None:
        """Blocking smtplib, run in a thread (one short connection per message)."""
        s = self.settings
        timeout = s.notify_http_timeout_seconds
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.smtp_ssl:
            smtp = smtplib.SMTP_SSL(
                s.smtp_host or "", s.smtp_port, timeout=timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host or "", s.smtp_port, timeout=timeout)
        with smtp:
            if s.smtp_starttls and not s.smtp_ssl:
                smtp.starttls(context=context)
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
            smtp.send_message(message)
