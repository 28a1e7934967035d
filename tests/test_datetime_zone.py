"""Every DateTime of a response is in the caller's city's time zone, to the second.

One place decides it (the DateTime scalar, ``backend/schema/scalars.py``): a due time
is the end of the due day as the city reads it (``…T23:59:59+08:00``, not the stored
``…T15:59:59.999999+00:00``), and a receipt or an event time carries the same offset.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import update

from backend.tenants.models import Tenant
from tests.case_helpers import CASE, iso, register
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique

ISO_TO_THE_SECOND = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"


def datetimes(case: dict) -> list[str]:
    """Every DateTime of a case answer (receipt, due, deadline and event times)."""
    values = [case["receivedAt"], case["dueAt"]]
    for deadline in case["deadlines"]:
        values += [deadline["startedAt"], deadline["dueAt"]]
    return values + [event["at"] for event in case["events"]]


async def test_due_time_is_the_end_of_the_due_day_in_the_city_zone(gql, world):
    token = world.a.token("officer")
    with frozen(sh(2026, 11, 2, 10, 30).replace(second=7, microsecond=123456)):
        case = await register(gql, token, world.a, receivedAt=iso(sh(2026, 11, 2, 9, 15)))
    # routing: 15 days from the day after receipt, 2026-11-17 (a Tuesday), end of that day
    assert case["dueAt"] == "2026-11-17T23:59:59+08:00"
    assert case["deadlines"][0]["dueAt"] == case["dueAt"]
    assert case["receivedAt"] == "2026-11-02T09:15:00+08:00"
    assert case["events"][0]["at"] == "2026-11-02T10:30:07+08:00"  # the fraction dropped
    assert case["deadlines"][0]["rule"]["start"] == "2026-11-02T09:15:00+08:00"
    for value in datetimes(case):
        assert re.fullmatch(ISO_TO_THE_SECOND + r"\+08:00", value), value


async def test_a_city_in_another_zone_reads_its_own_offset(gql, db):
    west = await build_city(db, unique("w"), unique("p"))
    async with db.transaction() as session:  # a city on Xinjiang time (UTC+6)
        await session.execute(
            update(Tenant).where(Tenant.slug == west.slug).values(timezone="Asia/Urumqi")
        )
    received = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)
    with frozen(received + timedelta(hours=1)):
        case = await register(gql, west.token("officer"), west, receivedAt=received.isoformat())
    assert case["receivedAt"] == "2026-11-02T09:00:00+06:00"
    assert case["dueAt"] == "2026-11-17T23:59:59+06:00"  # the end of the day in Urumqi
    for value in datetimes(case):
        assert value.endswith("+06:00"), value


async def test_supervisor_reads_times_in_the_deployment_zone(gql, world):
    with frozen(sh(2026, 11, 2, 10)):
        case = await register(gql, world.a.token("officer"), world.a)
        seen = (await gql(CASE, {"id": case["id"]}, token=world.tokens["sup1"])).ok()["case"]
    assert seen["dueAt"] == case["dueAt"]
    for value in datetimes(seen):
        assert re.fullmatch(ISO_TO_THE_SECOND + r"\+08:00", value), value


async def test_exports_show_times_as_the_api_does(gql, http, db):
    """Every instant of an export (CSV and XLSX) reads like the API's: the caller's city's
    zone, to the second — not the stored UTC with microseconds."""
    west = await build_city(db, unique("w"), unique("p"))
    async with db.transaction() as session:
        await session.execute(
            update(Tenant).where(Tenant.slug == west.slug).values(timezone="Asia/Urumqi")
        )
    token = west.token("officer")
    with frozen(datetime(2026, 11, 2, 3, 0, 7, 123456, tzinfo=UTC)):  # received a day before
        case = await register(gql, token, west)
    assert case["receivedAt"] == "2026-11-01T09:00:07+06:00"
    auth = {"Authorization": f"Bearer {token}"}
    resp = await http.get("/exports/cases.csv", headers=auth)
    assert resp.status_code == 200, resp.text
    rows = list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    assert rows[0][1].startswith("登记时间") and rows[1][1] == case["receivedAt"]
    resp = await http.get("/exports/cases.xlsx", headers=auth)
    sheet = load_workbook(io.BytesIO(resp.content), read_only=True).active
    assert list(sheet.iter_rows(values_only=True))[1][1] == case["receivedAt"]
