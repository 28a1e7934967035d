"""What a transaction publishes for subscribers (backend/core/live.py) leaves only when it
commits: on PostgreSQL through pg_notify and this process's LISTEN connection, on
SQLite in-process. A rolled-back change tells nobody."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from backend.core import clock, live
from backend.core.db import TenantScope
from backend.notifications.dispatcher import dispatch
from tests.test_notifications import moved_clock, new_town, put, settings_for


class Rollback(Exception):
    pass


@pytest.fixture(scope="module", autouse=True)
async def listener_closed():
    """The test process's hub listens (PostgreSQL) once these tests subscribe: stop it."""
    yield
    await live.HUB.close()


async def test_only_a_committed_change_reaches_subscribers(app, db):
    del app  # configures the process's hub (LISTEN on PostgreSQL)
    tenant = uuid.uuid4()
    rolled_back, committed = uuid.uuid4(), uuid.uuid4()
    async with live.HUB.subscribe() as subscriber:
        with pytest.raises(Rollback):
            async with db.transaction(TenantScope.of([tenant])) as session:
                live.publish(session, live.CASE, tenant, [rolled_back])
                raise Rollback
        async with db.transaction(TenantScope.of([tenant])) as session:
            live.publish(session, live.CASE, tenant, [committed])
            assert subscriber.queue.empty()  # not before the commit
        message = await asyncio.wait_for(subscriber.next(), 20)
    assert message == live.Message(live.CASE, str(tenant), (str(committed),))


async def test_many_ids_go_in_messages_under_the_payload_limit(app, db):
    del app
    tenant = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(live.IDS_PER_MESSAGE * 2 + 1)]
    async with live.HUB.subscribe() as subscriber:
        async with db.transaction(TenantScope.of([tenant])) as session:
            live.publish(session, live.CASE, tenant, ids)
        got = [await asyncio.wait_for(subscriber.next(), 20) for _ in range(3)]
    assert [i for m in got for i in m.ids] == [str(i) for i in ids]
    assert all(len(m.encode()) < 8000 for m in got)


async def test_in_app_messages_are_published_as_they_reach_the_inbox(app, db):
    """Written due now: at its commit; deferred: when the dispatcher sends it (never while
    it waits), each for its recipient only."""
    del app
    town = await new_town(db)
    officer = str(town.users["officer"])
    async with live.HUB.subscribe() as subscriber:
        (now,) = await put(db, town, "officer", "now", channels=["inapp"])
        got = await asyncio.wait_for(subscriber.next(), 20)
        assert got == live.Message(live.NOTIFICATION, str(town.tenant_id), (str(now.id),), officer)
        later = clock.now() + timedelta(hours=1)
        (deferred,) = await put(db, town, "officer", "later", channels=["inapp"], not_before=later)
        assert subscriber.queue.empty()  # pending: not in the inbox yet
        with moved_clock() as c:
            c.advance(hours=1, seconds=1)
            assert (await dispatch(db, settings_for(), tenant_ids=[town.tenant_id]))["sent"] == 1
        got = await asyncio.wait_for(subscriber.next(), 20)
    assert (got.kind, got.ids, got.recipient) == (live.NOTIFICATION, (str(deferred.id),), officer)
