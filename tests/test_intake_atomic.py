"""A registration is part of its caller's transaction: a rollback leaves nothing of it.

On SQLite the driver sends ``BEGIN`` only before a write, so the intake's SAVEPOINT (the
counter and the case) used to open the transaction itself and its RELEASE committed the
case and its number: a failure later in the same transaction left a half-written case
(no event, no clock). The rule "nothing half-written" holds on both databases.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from backend.cases import service
from backend.cases.models import Case, CaseType, Channel
from backend.core import clock
from tests.clocks import frozen, sh
from tests.helpers import build_city, id_number, unique
from tests.test_jobs_support import who


class Abort(Exception):
    """Whatever fails after the registration inside the same transaction."""


async def test_a_rolled_back_registration_leaves_no_case(db):
    city = await build_city(db, unique("ia"), unique("iap"))
    officer = await who(db, city, "officer")
    key = uuid.uuid4().hex
    with frozen(sh(2026, 12, 2, 10)), pytest.raises(Abort):
        async with db.transaction(officer.scope()) as session:
            await service.register_case(
                session,
                officer,
                service.RegisterCaseInput(
                    client_key=key,
                    channel=Channel.LETTER,
                    type=CaseType.CLAIM,
                    category="land",
                    subject="atomic intake",
                    content="content",
                    petitioner=service.PetitionerInput("张三", "13800001234", id_number(7)),
                    location_path=city.path("c1/t1"),
                    received_at=clock.now(),
                ),
            )
            raise Abort
    async with db.transaction(officer.scope()) as session:
        left = await session.scalar(
            select(func.count()).select_from(Case).where(Case.client_key == key)
        )
    assert left == 0
