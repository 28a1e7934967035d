"""Unmasked case exports: only for officials who may see the case unmasked, and always logged.

``masked=false`` unmasks a case exactly when the per-case API would
(``sees_pii``: a handling official whose unit covers the holder); every
unmasked case gets one PII access log row (``request_id`` ``export:<uuid>``,
shared by the export). Supervisors, evaluators and the default request get
masked numbers and write no log row.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from backend.cases.models import PiiAccess
from backend.core.db import TenantScope
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import register, route, tenant_id

PHONE = "13800001234"


def _rows(resp) -> list[list[str]]:
    assert resp.status_code == 200, resp.text
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))[1:]


async def _get(http, token, **params):
    return await http.get(
        "/exports/cases.csv", params=params, headers={"Authorization": f"Bearer {token}"}
    )


async def _log(db, tid, username=None):
    async with db.transaction(TenantScope.of([tid])) as session:
        query = select(PiiAccess.case_id, PiiAccess.request_id, PiiAccess.fields)
        if username:
            query = query.where(PiiAccess.username == username)
        return (await session.execute(query.where(PiiAccess.request_id.like("export:%")))).all()


async def test_unmasked_export_for_handling_officials_is_logged(db, http):
    province = unique("xp")
    city = await build_city(db, unique("xu"), province)
    with frozen(sh(2025, 4, 1)):
        c1 = [await register(db, city) for _ in range(2)]
        for case_id in c1:
            await route(db, city, case_id, "c1")
        c2 = await register(db, city, location="c2/t1")
        await route(db, city, c2, "c2")
    city.tokens.update(await create_supervisors(db, {"sup": province}))
    tid = await tenant_id(db, city)

    # the default stays masked, and writes nothing
    rows = _rows(await _get(http, city.token("officer")))
    assert len(rows) == 3 and all(PHONE not in r for r in rows)
    assert await _log(db, tid) == []

    # a county officer asks for masked=false: its own county's cases unmasked, logged per case
    rows = _rows(await _get(http, city.token("c1_officer"), masked="false"))
    assert len(rows) == 2 and all(r[10] == PHONE and "*" not in r[11] for r in rows)
    logged = await _log(db, tid, f"{city.slug}_c1_officer")
    assert sorted(c for c, _, _ in logged) == sorted(c1)
    assert len({r for _, r, _ in logged}) == 1  # one export, one request id
    assert all(f == ["phone", "idNumber"] for _, _, f in logged)

    # the city's officer handles all three
    rows = _rows(await _get(http, city.token("officer"), masked="false"))
    assert len(rows) == 3 and all(r[10] == PHONE for r in rows)
    assert len(await _log(db, tid, f"{city.slug}_officer")) == 3

    # supervisors still get masked numbers, and no log row
    rows = _rows(await _get(http, city.token("sup"), masked="false", tenant=city.slug))
    assert len(rows) == 3 and all(PHONE not in r and "*" in r[10] for r in rows)
    async with db.transaction(TenantScope.of([tid])) as session:
        total = await session.scalar(
            select(func.count()).select_from(PiiAccess).where(PiiAccess.request_id.like("export:%"))
        )
    assert total == 5
