"""What a transaction publishes for subscribers (backend/core/live.py) leaves only when it
commits: on PostgreSQL through pg_notify and this process's LISTEN connection, on
SQLite in-process. A rolled-back change tells nobody."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from backend.core import live
from backend.core.db import TenantScope


class Rollback(Exception):
    pass


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
