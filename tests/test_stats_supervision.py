"""省级督办 opens a SUPERVISION step on the case; the city's reply closes it."""

from __future__ import annotations

from datetime import timedelta

from backend.cases import service
from backend.cases.rules import Step
from backend.stats.province import DEFAULT_SUPERVISION_DAYS
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import (
    accept,
    act,
    open_steps,
    register,
    route,
    tenant_id,
)

SUPERVISE = """mutation($i: SuperviseCityInput!) {
  superviseCity(input: $i) { caseId tenant eventSeq notified }
}"""


async def test_supervision_order_opens_and_the_reply_closes_its_step(gql, db):
    province = unique("vp")
    city = await build_city(db, unique("vs"), province)
    city.tokens.update(await create_supervisors(db, {"sup": province}))
    with frozen(sh(2025, 6, 2)):
        case_id = await register(db, city)
        await route(db, city, case_id, "c1")
        await accept(db, city, case_id, "c1_officer")
        ok = (
            await gql(
                SUPERVISE,
                {"i": {"caseId": str(case_id), "note": "请尽快办理"}},
                token=city.token("sup"),
            )
        ).ok()["superviseCity"]
    assert ok["notified"] == 1
    tid = await tenant_id(db, city)
    (order,) = [s for s in await open_steps(db, tid, case_id) if s.step == Step.SUPERVISION]
    # no due date in the order: the documented default term, from the order's day
    assert order.due_date >= sh(2025, 6, 2).date() + timedelta(days=DEFAULT_SUPERVISION_DAYS)
    assert order.rule["level"] == "province" and order.note == "请尽快办理"
    # an explicit due date is kept (rolled off holidays only)
    with frozen(sh(2025, 6, 3)):
        (
            await gql(
                SUPERVISE,
                {"i": {"caseId": str(case_id), "note": "再督", "dueDate": "2025-06-10"}},
                token=city.token("sup"),
            )
        ).ok()
    dues = sorted(
        s.due_date.isoformat()
        for s in await open_steps(db, tid, case_id)
        if s.step == Step.SUPERVISION
    )
    assert "2025-06-10" in dues and len(dues) == 2
    # the city's reply answers the orders: no SUPERVISION step stays open
    with frozen(sh(2025, 6, 5)):
        await act(db, city, "c1_officer", case_id, service.reply_case, opinion="已答复")
    assert [s for s in await open_steps(db, tid, case_id) if s.step == Step.SUPERVISION] == []
