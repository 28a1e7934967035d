"""The notification outbox end to end with real receivers: an HTTP server on 127.0.0.1 (webhook
and SMS gateway) and aiosmtpd (SMTP). Enqueue dedupe, HMAC and delivery ids, backoff, dead
letters, leases, visible failures that do not stop the batch, metrics.

The receivers, :func:`new_town` and :func:`settings_for` are imported by the other
``test_notifications_*`` modules.
"""

from __future__ import annotations

import ast
import asyncio
import email
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from backend.authz.principal import SYSTEM
from backend.core import clock
from backend.core.db import Database, TenantScope
from backend.core.errors import BadUserInput
from backend.core.ids import new_id
from backend.core.settings import Settings
from backend.jobs.outbox import dispatch_notifications
from backend.jobs.registry import CRON_JOBS
from backend.notifications import service
from backend.notifications.dispatcher import backoff, dispatch
from backend.notifications.models import (
    Notification,
    NotificationContact,
    NotificationKind,
    NotificationSettings,
    NotificationStatus,
)
from backend.tenants import service as tenants
from backend.tenants.models import User
from backend.tenants.principals import load_principal
from tests.helpers import City, build_city, unique

SECRET = "s3cret-for-the-hooks-0123456789"

# --- real receivers --------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("x-xinfang-delivery", "")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 resets concurrent deliveries


class Receiver:
    """A real HTTP server on 127.0.0.1 (own thread); records each request as it arrives.

    ``statuses`` are answered in order, then 200. ``delay`` makes it slow; with
    ``hold_after`` set, requests beyond that count block until ``release`` is set
    (a delivery the receiver got but whose answer the sender never saw).
    """

    def __init__(self, *, delay: float = 0.0) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.delay = delay
        self.hold_after: int | None = None
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.requests.append(Received(self.path, headers, body))
                    n = len(receiver.requests)
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.hold_after is not None and n > receiver.hold_after:
                    receiver.release.wait(30)
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:  # the sender is gone (killed worker)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def delivery_ids(self) -> list[str]:
        with self._lock:
            return [r.delivery_id for r in self.requests]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailBox:
    """aiosmtpd handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def smtp():
    from aiosmtpd.controller import Controller

    box = MailBox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def settings_for(**overrides: Any) -> Settings:
    return Settings(**{"notify_http_timeout_seconds": 5, **overrides})


@dataclass
class Town:
    """A city of our own (its webhook is ours to set), its tenant id and user ids."""

    city: City
    tenant_id: uuid.UUID
    users: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def scope(self) -> TenantScope:
        return TenantScope.of([self.tenant_id])

    def token(self, who: str) -> str:
        return self.city.token(who)


async def new_town(db: Database, *, webhook: str | None = None) -> Town:
    city = await build_city(db, unique("nt"), unique("p"))
    async with db.transaction() as session:
        tenant_id = (await tenants.tenant_by_slug(session, city.slug)).id
        await tenants.create_user(
            session, SYSTEM, tenant=city.slug, username=f"{city.slug}_nophone", display_name="x"
        )
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        users = {
            u.username.removeprefix(city.slug + "_"): u.id
            for u in await session.scalars(select(User))
        }
        if webhook:
            session.add(
                NotificationSettings(
                    tenant_id=tenant_id, webhook_url=webhook, webhook_secret=SECRET
                )
            )
    return Town(city, tenant_id, users)


async def put(db: Database, town: Town, who: str | None, key: str, **kw: Any) -> list[Notification]:
    """Enqueue in a transaction of its own (as a job would)."""
    async with db.transaction(town.scope) as session:
        return await service.enqueue(
            session,
            tenant_id=town.tenant_id,
            recipient_id=town.users[who] if who else None,
            kind=kw.pop("kind", "reminder"),
            subject=kw.pop("subject", "红色预警"),
            body=kw.pop("body", "案件即将超期"),
            dedupe_key=key,
            **kw,
        )


async def rows_of(db: Database, town: Town) -> list[Notification]:
    async with db.session(town.scope) as session:
        return list(await session.scalars(select(Notification).order_by(Notification.created_at)))


async def row(db: Database, town: Town, nid: uuid.UUID) -> Notification:
    async with db.session(town.scope) as session:
        return await session.scalar(select(Notification).where(Notification.id == nid))


def verify_signature(req: Received) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(req.headers.get("x-xinfang-signature", ""), expected)


class moved_clock:
    """Move the injected clock by ``delta`` (cumulative) inside the block."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __enter__(self) -> moved_clock:
        real = clock.now
        base = real()
        started = time.monotonic()
        clock.set_clock(lambda: base + self.offset + timedelta(seconds=time.monotonic() - started))
        return self

    def advance(self, **kw: float) -> None:
        self.offset += timedelta(**kw)

    def __exit__(self, *exc: Any) -> None:
        clock.set_clock(None)


# --- enqueue: dedupe, channels, outbox semantics ----------------------------------------


def test_dedupe_key_is_one_per_recipient_kind_case_and_day():
    r, c = uuid.UUID(int=1), uuid.UUID(int=2)
    key = service.dedupe_key(r, "RED_DIGEST", c, date(2026, 11, 23))
    assert key == f"RED_DIGEST:{r}:{c}:2026-11-23"
    assert service.dedupe_key(None, "REPORT", None, date(2026, 12, 1)) == "REPORT:-:-:2026-12-01"
    assert key != service.dedupe_key(r, "RED_DIGEST", c, date(2026, 11, 24))


async def test_enqueue_twice_is_one_row_and_two_runs_deliver_once(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    settings = settings_for()
    first = await put(db, town, "officer", "k1", channels=["webhook", "inapp"])
    again = await put(db, town, "officer", "k1", channels=["webhook", "inapp"])
    assert {n.channel for n in first} == {"webhook", "inapp"} and again == []
    assert len(await rows_of(db, town)) == 2

    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["claimed"] == 0
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    hook = next(n for n in first if n.channel == "webhook")
    assert verify_signature(req)
    assert req.delivery_id == str(hook.delivery_id) == req.json["deliveryId"]
    assert req.json["tenant"] == town.city.slug
    assert (req.json["subject"], req.json["recipient"]) == ("红色预警", f"{town.city.slug}_officer")
    assert req.headers["content-type"].startswith("application/json")
    assert (await row(db, town, hook.id)).status == NotificationStatus.SENT


async def test_enqueue_refuses_a_kind_the_api_cannot_name(db):
    """Issue 20 item 8: the API's NotificationKind names every stored kind, so the outbox
    takes no other (the old documented DEADLINE_DIGEST, a typo, an upper-case name)."""
    town = await new_town(db)
    for kind in ("DEADLINE_DIGEST", "DIGEST", "digests", ""):
        with pytest.raises(ValueError, match="unknown notification kind"):
            await put(db, town, "officer", f"k-{kind}", kind=kind)
        with pytest.raises(ValueError, match="unknown notification kind"):
            async with db.transaction(town.scope) as session:
                await service.enqueue_many(
                    session,
                    tenant_id=town.tenant_id,
                    messages=[service.Message(None, kind, "s", "b", f"m-{kind}")],
                )
    assert await rows_of(db, town) == []
    assert [n.kind for n in await put(db, town, "officer", "ok", kind="digest")] == ["digest"]


ROOT = Path(__file__).resolve().parent.parent
SENDERS = {"enqueue", "Message", "schedule_reminder"}


def _kinds_sent_by_the_code() -> dict[str, str]:
    """Every literal kind the backend hands the outbox, with where: ``kind="digest"`` in a
    call of enqueue/Message/schedule_reminder, a module constant it names, or the default
    of a ``kind`` parameter of a function that passes it on."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "backend").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        consts = {
            t.id: n.value.value
            for n in tree.body
            if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            for t in n.targets
            if isinstance(t, ast.Name) and isinstance(n.value.value, str)
        }
        for node in ast.walk(tree):
            values = []
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in SENDERS:
                    values = [k.value for k in node.keywords if k.arg == "kind"]
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                pairs = zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True)
                values = [d for a, d in pairs if a.arg == "kind" and d]
            for v in values:
                kind = v.value if isinstance(v, ast.Constant) else consts.get(getattr(v, "id", ""))
                if isinstance(kind, str):
                    found[kind] = f"{path.relative_to(ROOT)}:{v.lineno}"
    return found


def test_every_kind_the_code_sends_is_a_notification_kind_and_every_kind_is_sent():
    """Issue 20 item 8: a producer's typo would be a ValueError at run time; caught here."""
    sent = _kinds_sent_by_the_code()
    unknown = {k: where for k, where in sent.items() if k not in set(NotificationKind)}
    assert unknown == {}
    assert set(sent) == {k.value for k in NotificationKind}, sent


async def test_a_rolled_back_caller_leaves_no_notification(db):
    town = await new_town(db)
    with pytest.raises(RuntimeError):
        async with db.transaction(town.scope) as session:
            await service.enqueue(
                session,
                tenant_id=town.tenant_id,
                recipient_id=town.users["officer"],
                kind="reminder",
                subject="s",
                body="b",
                dedupe_key="rolled-back",
            )
            raise RuntimeError("the business transaction failed")
    assert await rows_of(db, town) == []


async def test_enqueue_outside_the_session_scope_is_refused(db):
    town, other = await new_town(db), await new_town(db)
    for scope in (other.scope, TenantScope.of([town.tenant_id], read_only=True)):
        async with db.session(scope) as session:
            with pytest.raises(PermissionError):
                await service.enqueue(
                    session,
                    tenant_id=town.tenant_id,
                    recipient_id=None,
                    kind="reminder",
                    subject="s",
                    body="b",
                    dedupe_key="x",
                    channels=["webhook"],
                )


async def test_default_channels_follow_the_recipient_and_the_configuration(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    async with db.transaction(town.scope) as session:
        session.add(
            NotificationContact(
                tenant_id=town.tenant_id, user_id=town.users["officer"], email="o@example.org"
            )
        )
    everything = settings_for(sms_url=receiver.url("/sms"), smtp_host="127.0.0.1")

    def chans(rows: list[Notification]) -> set[str]:
        return {n.channel for n in rows}

    assert chans(await put(db, town, "officer", "d1", settings=everything)) == {
        "inapp",
        "sms",
        "webhook",
        "email",
    }
    # no phone, no e-mail address: in-app and the tenant's webhook only
    assert chans(await put(db, town, "nophone", "d2", settings=everything)) == {"inapp", "webhook"}
    # nothing configured on the platform side: no SMS, no e-mail rows
    assert chans(await put(db, town, "officer", "d3", settings=settings_for())) == {
        "inapp",
        "webhook",
    }
    # a tenant-wide message (no recipient) goes to the webhook only
    assert chans(await put(db, town, None, "d4", settings=everything)) == {"webhook"}
    plain = await new_town(db)
    assert chans(await put(db, plain, None, "d5", settings=everything)) == set()


async def test_in_app_is_in_the_inbox_at_once_and_a_delayed_one_after_not_before(db):
    town = await new_town(db)
    officer = await load_principal(db, f"{town.city.slug}_officer")
    later = clock.now() + timedelta(hours=1)
    await put(db, town, "officer", "now", channels=["inapp"], subject="now")
    await put(db, town, "officer", "later", channels=["inapp"], subject="later", not_before=later)

    async def inbox() -> list[str]:
        async with db.session(officer.scope()) as session:
            return [n.subject for n in await service.inbox(session, officer)]

    assert await inbox() == ["now"]
    settings = settings_for()
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["claimed"] == 0
    with moved_clock() as c:
        c.advance(hours=1, seconds=1)
        assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
        assert await inbox() == ["later", "now"]


# --- retries, backoff, dead letters, leases -------------------------------------------


async def test_failed_delivery_is_retried_with_backoff_then_succeeds(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    settings = settings_for()
    receiver.statuses = [500, 503]
    (n,) = await put(db, town, "officer", "retry", channels=["webhook"])
    run = lambda: dispatch(db, settings, tenant_ids=[town.tenant_id])  # noqa: E731
    with moved_clock() as c:
        assert (await run())["failed"] == 1
        first = await row(db, town, n.id)
        assert (first.status, first.attempts, first.last_error) == (
            NotificationStatus.FAILED,
            1,
            "webhook answered HTTP 500",
        )
        assert first.next_attempt_at - first.updated_at == timedelta(seconds=30)
        assert (await run())["claimed"] == 0  # not due before the backoff ends
        c.advance(seconds=31)
        assert (await run())["failed"] == 1
        second = await row(db, town, n.id)
        assert second.next_attempt_at - second.updated_at == timedelta(seconds=60)
        c.advance(seconds=61)
        assert (await run())["sent"] == 1
    done = await row(db, town, n.id)
    assert (done.status, done.attempts, done.last_error) == (NotificationStatus.SENT, 3, None)
    assert receiver.delivery_ids() == [str(n.delivery_id)] * 3
    assert all(verify_signature(r) for r in receiver.requests)
    assert [r.json["attempt"] for r in receiver.requests] == [1, 2, 3]


def test_backoff_doubles_and_is_capped():
    s = settings_for(notify_backoff_base_seconds=30, notify_backoff_max_seconds=100)
    assert [backoff(s, a).total_seconds() for a in (1, 2, 3, 4)] == [30, 60, 100, 100]


async def test_dead_after_max_attempts_then_an_admin_retry_delivers(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    settings = settings_for(notify_max_attempts_webhook=2, notify_backoff_base_seconds=1)
    receiver.statuses = [500, 500]
    (n,) = await put(db, town, "officer", "dead", channels=["webhook"])
    admin = await load_principal(db, f"{town.city.slug}_admin")
    with moved_clock() as c:
        await dispatch(db, settings, tenant_ids=[town.tenant_id])
        c.advance(seconds=2)
        assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["dead"] == 1
        c.advance(hours=1)
        assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["claimed"] == 0
    async with db.transaction(admin.scope()) as session:
        (dead,) = await service.dead_letters(session, admin)
        assert dead.id == n.id
        assert dead.last_error == "gave up after 2 attempt(s): webhook answered HTTP 500"
        await service.retry(session, admin, id=str(n.id))
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
    assert receiver.delivery_ids() == [str(n.delivery_id)] * 3
    async with db.session(admin.scope()) as session:
        assert await service.dead_letters(session, admin) == []


async def test_an_expired_lease_is_claimed_again_but_a_live_one_is_not(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    settings = settings_for(notify_lease_seconds=60)
    (n,) = await put(db, town, "officer", "lease", channels=["webhook"])
    crashed = new_id()
    async with db.transaction(town.scope) as session:  # a worker claimed it, then died
        await session.execute(
            update(Notification)
            .where(Notification.id == n.id)
            .values(
                status=NotificationStatus.SENDING,
                claimed_by=crashed,
                attempts=1,
                next_attempt_at=clock.now() + timedelta(seconds=60),
            )
        )
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["claimed"] == 0
    with moved_clock() as c:
        c.advance(seconds=61)
        assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
    done = await row(db, town, n.id)
    assert (done.status, done.attempts, done.claimed_by) == (NotificationStatus.SENT, 2, None)
    assert receiver.delivery_ids() == [str(n.delivery_id)]


async def test_a_row_that_keeps_losing_its_lease_goes_dead(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    settings = settings_for(notify_max_attempts_webhook=3)
    (n,) = await put(db, town, "officer", "poison", channels=["webhook"])
    async with db.transaction(town.scope) as session:
        await session.execute(
            update(Notification)
            .where(Notification.id == n.id)
            .values(status=NotificationStatus.SENDING, claimed_by=new_id(), attempts=3)
        )
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["dead"] == 1
    dead = await row(db, town, n.id)
    assert dead.status == NotificationStatus.DEAD and "lost the row" in dead.last_error
    assert receiver.requests == []


# --- bad input: visible failures, the batch goes on --------------------------------------


async def test_bad_rows_fail_visibly_while_the_rest_of_the_batch_is_delivered(db, receiver, smtp):
    box, port = smtp
    town = await new_town(db)
    async with db.transaction(town.scope) as session:
        session.add(  # stored before validation existed, or by hand: the dispatcher checks again
            NotificationSettings(
                tenant_id=town.tenant_id, webhook_url="http://exa mple/hook", webhook_secret=SECRET
            )
        )
        session.add(
            NotificationContact(
                tenant_id=town.tenant_id, user_id=town.users["leader"], email="l@example.org"
            )
        )
    settings = settings_for(sms_url=receiver.url("/sms"), smtp_host="127.0.0.1", smtp_port=port)
    bad_sms = await put(db, town, "nophone", "b1", channels=["sms"])
    fax = await put(db, town, "officer", "b2", channels=["fax"])
    bad_hook = await put(db, town, "officer", "b3", channels=["webhook"])
    good = [
        *await put(db, town, "officer", "g1", channels=["sms"]),
        *await put(db, town, "leader", "g2", channels=["email"]),
        *await put(db, town, None, "g3", channels=["inapp"]),  # no recipient: nobody's inbox
    ]
    totals = await dispatch(db, settings, tenant_ids=[town.tenant_id])
    assert (totals["sent"], totals["dead"], totals["failed"]) == (2, 4, 0)
    by_id = {n.id: n for n in await rows_of(db, town)}
    reasons = {n.channel: by_id[n.id].last_error for n in [*bad_sms, *fax, *bad_hook, good[2]]}
    assert reasons == {
        "sms": "recipient has no phone",
        "fax": "unknown channel 'fax'",
        "webhook": "webhook URL must be a non-empty URL without spaces (at most 2000 characters)",
        "inapp": "in-app notification without a recipient",
    }
    assert {by_id[n.id].status for n in [*bad_sms, *fax, *bad_hook, good[2]]} == {"DEAD"}
    assert {by_id[n.id].status for n in good[:2]} == {"SENT"}
    assert [r.path for r in receiver.requests] == ["/sms"]
    assert any(m.rcpt_tos == ["l@example.org"] for m in box.messages)


async def test_http_webhook_is_refused_in_production(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    admin = await load_principal(db, f"{town.city.slug}_admin")
    prod = settings_for(env="prod")
    async with db.transaction(admin.scope()) as session:
        with pytest.raises(BadUserInput) as refused:
            await service.set_webhook(
                session, admin, url=receiver.url(), secret=SECRET, settings=prod
            )
        assert refused.value.field == "url" and "HTTPS" in refused.value.message
        for bad, field_ in (("ftp://x/y", "url"), ("https://", "url"), ("https://h/x", "secret")):
            with pytest.raises(BadUserInput) as err:
                await service.set_webhook(
                    session, admin, url=bad, secret="short" if field_ == "secret" else SECRET
                )
            assert err.value.field == field_, bad
    # an http URL stored while in dev is refused by the dispatcher once in production
    (n,) = await put(db, town, "officer", "prod", channels=["webhook"])
    assert (await dispatch(db, prod, tenant_ids=[town.tenant_id]))["dead"] == 1
    assert (await row(db, town, n.id)).last_error == "webhook URL must use HTTPS in production"
    assert receiver.requests == []


async def test_unreachable_webhook_fails_and_retries_without_stopping_others(db):
    town = await new_town(db, webhook=f"http://127.0.0.1:{free_port()}/nobody-listens")
    settings = settings_for()
    (hook,) = await put(db, town, "officer", "u1", channels=["webhook"])
    await put(db, town, None, "u2", channels=["webhook"])
    totals = await dispatch(db, settings, tenant_ids=[town.tenant_id])
    assert totals["failed"] == 2
    failed = await row(db, town, hook.id)
    assert failed.status == NotificationStatus.FAILED and "ConnectError" in failed.last_error


# --- SMS gateway and SMTP -------------------------------------------------------------------


async def test_sms_gateway_gets_the_template_with_credentials(db, receiver):
    town = await new_town(db)
    template = '{"mobile": "${phone}", "msg": "${text}", "ref": "${delivery_id}", "sign": "信访"}'
    settings = settings_for(
        sms_url=receiver.url("/sms/send"),
        sms_template=template,
        sms_username="gw-user",
        sms_password="gw-pass",
    )
    (n,) = await put(db, town, "officer", "s1", channels=["sms"], subject='引号"测试', body="正文")
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
    (req,) = receiver.requests
    assert req.path == "/sms/send"
    assert req.json == {
        "mobile": "13800001234",
        "msg": '引号"测试：正文',
        "ref": str(n.delivery_id),
        "sign": "信访",
    }
    assert req.headers["authorization"] == "Basic Z3ctdXNlcjpndy1wYXNz"
    assert req.delivery_id == str(n.delivery_id)


async def test_email_goes_over_smtp_with_a_stable_message_id(db, smtp):
    box, port = smtp
    town = await new_town(db)
    async with db.transaction(town.scope) as session:
        session.add(
            NotificationContact(
                tenant_id=town.tenant_id, user_id=town.users["officer"], email="o@example.org"
            )
        )
    settings = settings_for(smtp_host="127.0.0.1", smtp_port=port, smtp_from="xf@example.org")
    (n,) = await put(db, town, "officer", "e1", channels=["email"], subject="周报", body="内容")
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["sent"] == 1
    (envelope,) = [m for m in box.messages if m.rcpt_tos == ["o@example.org"]]
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert envelope.mail_from == "xf@example.org"
    assert message["Message-ID"] == f"<{n.delivery_id}@xinfang>"
    assert message["X-Xinfang-Delivery"] == str(n.delivery_id)
    assert str(message["Subject"]) == "周报" and message.get_content().strip() == "内容"


async def test_unreachable_smtp_server_is_a_retryable_failure(db):
    town = await new_town(db)
    async with db.transaction(town.scope) as session:
        session.add(
            NotificationContact(
                tenant_id=town.tenant_id, user_id=town.users["officer"], email="o@example.org"
            )
        )
    settings = settings_for(smtp_host="127.0.0.1", smtp_port=free_port())
    (n,) = await put(db, town, "officer", "e2", channels=["email"])
    assert (await dispatch(db, settings, tenant_ids=[town.tenant_id]))["failed"] == 1
    assert "ConnectionRefusedError" in (await row(db, town, n.id)).last_error


# --- the job, metrics, concurrency ------------------------------------------------------------


def metric(channel: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "xinfang_notifications_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


async def test_prometheus_counts_sent_failed_and_dead_per_channel(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    before = {o: metric("webhook", o) for o in ("sent", "failed", "dead")}
    inapp_before = metric("inapp", "sent")
    receiver.statuses = [500]
    await put(db, town, "officer", "m1", channels=["webhook", "inapp"])
    await put(db, town, "nophone", "m2", channels=["sms"])
    sms_dead = metric("sms", "dead")
    await dispatch(db, settings_for(), tenant_ids=[town.tenant_id])
    assert metric("webhook", "failed") == before["failed"] + 1
    assert metric("inapp", "sent") == inapp_before + 1
    assert metric("sms", "dead") == sms_dead + 1
    with moved_clock() as c:
        c.advance(seconds=31)
        await dispatch(db, settings_for(), tenant_ids=[town.tenant_id])
    assert metric("webhook", "sent") == before["sent"] + 1


async def test_the_dispatcher_is_a_cron_job_run_at_start_and_covers_every_tenant(db, receiver):
    (job,) = [j for j in CRON_JOBS if j.name == "notifications_dispatch"]
    assert job.coroutine is dispatch_notifications and job.run_at_startup
    assert job.second == 0 and job.minute is None  # every minute
    one, two = (
        await new_town(db, webhook=receiver.url()),
        await new_town(db, webhook=receiver.url()),
    )
    a = await put(db, one, None, "all-1", channels=["webhook"])
    b = await put(db, two, None, "all-2", channels=["webhook"])
    await dispatch_notifications({"db": db, "settings": settings_for()})
    assert set(receiver.delivery_ids()) >= {str(a[0].delivery_id), str(b[0].delivery_id)}
    assert {r.json["tenant"] for r in receiver.requests} >= {one.city.slug, two.city.slug}
    # `xinfang jobs run notifications_dispatch --tenant SLUG`: that tenant only
    c = await put(db, one, None, "only-1", channels=["webhook"])
    d = await put(db, two, None, "only-2", channels=["webhook"])
    ctx = {"db": db, "settings": settings_for(), "tenant": one.city.slug}
    assert (await dispatch_notifications(ctx))["tenants"] == 1
    assert str(c[0].delivery_id) in receiver.delivery_ids()
    assert (await row(db, two, d[0].id)).status == NotificationStatus.PENDING


@pytest.mark.postgres
async def test_concurrent_dispatchers_skip_each_others_rows(db):
    """``FOR UPDATE SKIP LOCKED``: two runs at once deliver every row exactly once."""
    slow = Receiver(delay=0.05)
    try:
        town = await new_town(db, webhook=slow.url())
        for i in range(24):
            await put(db, town, None, f"c{i}", channels=["webhook"])
        settings = settings_for(notify_batch_size=4)
        runs = await asyncio.gather(
            *(dispatch(db, settings, tenant_ids=[town.tenant_id]) for _ in range(3))
        )
        assert sum(r["sent"] for r in runs) == 24
        assert sum(1 for r in runs if r["sent"]) >= 2  # they really shared the work
        ids = slow.delivery_ids()
        assert len(ids) == len(set(ids)) == 24
    finally:
        slow.close()
