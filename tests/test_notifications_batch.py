"""``enqueue_many``: the batched outbox write the digest uses — same rows and dedupe as ``enqueue``."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from backend.notifications import service
from backend.notifications.models import Notification, NotificationContact, NotificationStatus
from tests.test_notifications import Town, new_town, put, receiver, rows_of, settings_for

__all__ = ["receiver"]  # the real HTTP receiver fixture


async def _many(db, town: Town, messages, **kw):
    async with db.transaction(town.scope) as session:
        return await service.enqueue_many(
            session, tenant_id=town.tenant_id, messages=messages, **kw
        )


def _msg(town: Town, who: str | None, key: str, **kw) -> service.Message:
    return service.Message(
        recipient_id=town.users[who] if who else None,
        kind=kw.pop("kind", "reminder"),
        subject=kw.pop("subject", "红色预警"),
        body=kw.pop("body", "案件即将超期"),
        dedupe_key=key,
        **kw,
    )


async def test_a_batch_writes_the_same_rows_as_one_enqueue_each(db, receiver):
    town = await new_town(db, webhook=receiver.url())
    async with db.transaction(town.scope) as session:
        session.add(
            NotificationContact(
                tenant_id=town.tenant_id, user_id=town.users["officer"], email="o@example.org"
            )
        )
    everything = settings_for(sms_url=receiver.url("/sms"), smtp_host="127.0.0.1")
    messages = [
        _msg(town, "officer", "b1", data={"n": 1}),
        _msg(town, "nophone", "b2"),
        _msg(town, None, "b3"),
        _msg(town, "officer", "b4", channels=["inapp", "fax"], subject="x" * 400),
    ]
    created = await _many(db, town, messages, settings=everything)
    single = [
        await put(db, town, "officer", "s1", settings=everything),
        await put(db, town, "nophone", "s2", settings=everything),
        await put(db, town, None, "s3", settings=everything),
    ]
    assert sorted(c for c, _ in created) == sorted(
        [n.channel for rows in single for n in rows] + ["inapp", "fax"]
    )
    rows = {(n.dedupe_key, n.channel): n for n in await rows_of(db, town)}
    for batch_key, single_key in (("b1", "s1"), ("b2", "s2"), ("b3", "s3")):
        mine = {c: (n.status, n.attempts) for (k, c), n in rows.items() if k == batch_key}
        theirs = {c: (n.status, n.attempts) for (k, c), n in rows.items() if k == single_key}
        assert mine == theirs
    assert rows[("b1", "inapp")].data == {"n": 1}
    assert rows[("b1", "inapp")].status == NotificationStatus.SENT
    assert rows[("b4", "fax")].status == NotificationStatus.PENDING  # dead-lettered on dispatch
    assert len(rows[("b4", "inapp")].subject) == service.SUBJECT_MAX


async def test_a_re_run_batch_writes_nothing_and_a_partly_new_one_only_the_new(db):
    town = await new_town(db)
    first = await _many(db, town, [_msg(town, "officer", "r1"), _msg(town, "leader", "r1b")])
    again = await _many(db, town, [_msg(town, "officer", "r1"), _msg(town, "leader", "r1b")])
    more = await _many(db, town, [_msg(town, "officer", "r1"), _msg(town, "officer", "r2")])
    assert (len(first), again, len(more)) == (2, [], 1)
    assert len(await rows_of(db, town)) == 3
    async with db.session(town.scope) as session:
        keys = set(await session.scalars(select(Notification.dedupe_key)))
    assert keys == {"r1", "r1b", "r2"}


async def test_an_unknown_recipient_or_a_foreign_scope_writes_nothing(db):
    town, other = await new_town(db), await new_town(db)
    stranger = service.Message(uuid.uuid4(), "reminder", "s", "b", "u1")
    with pytest.raises(ValueError):
        await _many(db, town, [_msg(town, "officer", "u0"), stranger])
    with pytest.raises(PermissionError):
        async with db.transaction(other.scope) as session:
            await service.enqueue_many(
                session, tenant_id=town.tenant_id, messages=[_msg(town, "officer", "u2")]
            )
    assert await rows_of(db, town) == []
