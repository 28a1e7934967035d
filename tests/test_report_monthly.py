"""The monthly report: numbers against a hand-computed month, storage, XLSX/HTML, downloads, GraphQL.

November 2026 in a fresh city (Asia/Shanghai; no holidays in November):

| case | received | where | channel / type / category | then |
|---|---|---|---|---|
| A | 11-02 | c1/t1 → c1 | VISIT CLAIM land (petitioner 1) | accepted 11-10 (due 11-17: on time) |
| B | 11-03 | c1/t1 → c1 | LETTER SUGGESTION wages | never accepted (due 11-18: backlog, red) |
| C | 11-04 | c1/t1 → c1 | PHONE CLAIM land (petitioner 1: a repeat) | accepted 11-25 (due 11-19: late) |
| D | 10-20 | c2/t1 → c2 | ONLINE CLAIM housing | accepted 11-03 (due 11-04: on time) |
| E | 11-20 | c2/t1, with the city | QR_CODE ACCUSATION other, skip-level | routing due 12-07 |

Every routing was on the day of receipt, so every ROUTING step due in November
(A, B, C due 11-17..19; D due 11-04) was on time.
"""

from __future__ import annotations

import io
from datetime import date

from openpyxl import load_workbook

from backend.cases.models import CaseType, Channel, SkipLevel
from backend.jobs.reports import monthly_due, monthly_report
from backend.jobs.runs import tenants_for
from backend.stats.report import Period, list_reports
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import accept, register, route, sent, tenant_id, who

LIST = "query($p: String) { monthlyReports(first: 50, period: $p) { id period unitPath received backlog redCases onTimeAcceptanceRate xlsxUrl htmlUrl data } }"
ONE = "query($id: ID!) { monthlyReport(id: $id) { id unitPath unitLevel } }"


async def _november(db):
    city = await build_city(db, unique("rp"), unique("p"))
    with frozen(sh(2026, 10, 20)):
        d = await register(
            db, city, location="c2/t1", channel=Channel.ONLINE, category="housing", petitioner=3
        )
        await route(db, city, d, "c2")
    with frozen(sh(2026, 11, 2)):
        a = await register(db, city, channel=Channel.VISIT, petitioner=1)
        await route(db, city, a, "c1")
    with frozen(sh(2026, 11, 3)):
        b = await register(
            db,
            city,
            channel=Channel.LETTER,
            type=CaseType.SUGGESTION,
            category="wages",
            petitioner=2,
        )
        await route(db, city, b, "c1")
        await accept(db, city, d, "c2_officer")
    with frozen(sh(2026, 11, 4)):
        c = await register(db, city, channel=Channel.PHONE, petitioner=1)
        await route(db, city, c, "c1")
    with frozen(sh(2026, 11, 10)):
        await accept(db, city, a, "c1_officer")
    with frozen(sh(2026, 11, 20)):
        await register(
            db,
            city,
            location="c2/t1",
            channel=Channel.QR_CODE,
            type=CaseType.ACCUSATION,
            category="other",
            petitioner=4,
            skip_level=SkipLevel.PROVINCE,
        )
    with frozen(sh(2026, 11, 25)):
        await accept(db, city, c, "c1_officer")
    return city


async def _run(db, city, **ctx):
    return await monthly_report({"db": db, "runner": "test", "tenant": city.slug, **ctx})


async def test_monthly_report_numbers_storage_and_announcement(db, gql):
    city = await _november(db)
    tid = await tenant_id(db, city)
    (tenant,) = await tenants_for(db, city.slug)
    with frozen(sh(2026, 11, 30, 23)):  # November is not over: October's report is owed
        assert await monthly_due(db, tenant, False) == "2026-10"
    with frozen(sh(2026, 12, 1, 6)):  # Tue 12-01, the first working day of December
        assert await monthly_due(db, tenant, False) == "2026-11"
        result = await _run(db, city)
        assert await monthly_due(db, tenant, False) is None  # stored: not due again
        again = await _run(db, city, force=True)
    assert (result["units"], result["reports"], result["notifications"]) == (3, 3, 2)
    assert (again["reports"], again["notifications"]) == (0, 0)

    admin = await who(db, city, "admin")
    async with db.transaction(admin.scope()) as session:
        reports = {r.unit_path: r for r in await list_reports(session, admin, period="2026-11")}
    assert set(reports) == {city.path(), city.path("c1"), city.path("c2")}
    whole, c1, c2 = (reports[p].data for p in (city.path(), city.path("c1"), city.path("c2")))

    assert whole["intake"] == {
        "total": 4,
        "repeat": 1,
        "skipLevel": 1,
        "byChannel": {"VISIT": 1, "LETTER": 1, "PHONE": 1, "ONLINE": 0, "QR_CODE": 1},
        "byType": {"SUGGESTION": 1, "ACCUSATION": 1, "CLAIM": 2},
        "byCategory": {"land": 2, "other": 1, "wages": 1},
        "categoryNames": {"land": "土地征收与使用", "other": "其他", "wages": "拖欠农民工工资"},
    }
    assert whole["onTime"]["ROUTING"] == {"due": 4, "onTime": 4, "late": 0, "open": 0, "rate": 1.0}
    assert whole["onTime"]["ACCEPTANCE"] == {
        "due": 4,
        "onTime": 2,
        "late": 1,
        "open": 1,
        "rate": 0.5,
    }
    assert whole["onTime"]["HANDLING"]["due"] == 0 and whole["onTimeHandlingRate"] is None
    assert (whole["onTimeAcceptanceRate"], whole["backlog"], whole["redCases"]) == (0.5, 1, 1)
    assert whole["closed"] == 0 and whole["satisfaction"]["rated"] == 0
    assert whole["evaluations"]["submitted"] == 0 and whole["evaluations"]["note"]

    assert (c1["intake"]["total"], c1["intake"]["repeat"], c1["intake"]["skipLevel"]) == (3, 1, 0)
    assert c1["onTime"]["ACCEPTANCE"] == {
        "due": 3,
        "onTime": 1,
        "late": 1,
        "open": 1,
        "rate": 0.3333,
    }
    assert (c1["backlog"], c1["redCases"]) == (1, 1)
    assert c2["intake"]["byType"] == {"SUGGESTION": 0, "ACCUSATION": 1, "CLAIM": 0}
    assert c2["onTime"]["ACCEPTANCE"]["rate"] == 1.0 and c2["onTime"]["ROUTING"]["due"] == 1
    assert (c2["backlog"], c2["redCases"]) == (0, 0)

    announced = await sent(db, tid, "monthly_report")
    assert {u.removeprefix(f"{city.slug}_") for u in announced} == {"admin", "leader"}
    message = announced[f"{city.slug}_admin"][0]
    assert message.data["reportId"] == str(reports[city.path()].id)
    assert f"/reports/{reports[city.path()].id}.html" in message.body

    # GraphQL: each official sees the reports of its units and below
    listed = (await gql(LIST, {"p": "2026-11"}, token=city.token("admin"))).ok()["monthlyReports"]
    assert sorted(r["unitPath"] for r in listed) == sorted(reports)
    mine = (await gql(LIST, {"p": "2026-11"}, token=city.token("c1_officer"))).ok()
    (only,) = mine["monthlyReports"]
    assert (only["unitPath"], only["received"], only["onTimeAcceptanceRate"]) == (
        city.path("c1"),
        3,
        0.3333,
    )
    city_id = str(reports[city.path()].id)
    assert (await gql(ONE, {"id": city_id}, token=city.token("c1_officer"))).code == "NOT_FOUND"
    # a role that reads no report: NOT_FOUND too, as monthlyReport(id) promises (outside
    # probe of issue 21; it was FORBIDDEN, the same for every id)
    assert (await gql(ONE, {"id": city_id}, token=city.token("grid"))).code == "NOT_FOUND"
    supervisor = (await create_supervisors(db, {"sup": city.province}))["sup"]
    seen = (await gql(LIST, {"p": "2026-11"}, token=supervisor)).ok()["monthlyReports"]
    assert len(seen) == 3


async def test_report_downloads_need_the_token_and_hide_other_tenants(db, http):
    city = await _november(db)
    other = await build_city(db, unique("ro"), unique("p"))
    with frozen(sh(2026, 12, 1, 9)):
        await _run(db, city)
    admin = await who(db, city, "admin")
    async with db.transaction(admin.scope()) as session:
        reports = {r.unit_path: r for r in await list_reports(session, admin, period="2026-11")}
    city_id, c1_id = reports[city.path()].id, reports[city.path("c1")].id

    def auth(token):
        return {"Authorization": f"Bearer {token}"}

    xlsx = await http.get(f"/reports/{city_id}.xlsx", headers=auth(city.token("admin")))
    assert xlsx.status_code == 200, xlsx.text
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(xlsx.content))
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert summary["受理登记总量 Cases received"] == 4
    assert summary["积案（月末超期未办结）Backlog"] == 1
    on_time = {row[0]: row[1:] for row in book["OnTime"].iter_rows(values_only=True)}
    assert on_time["受理告知 ACCEPTANCE"] == (4, 2, 1, 1, 0.5)
    channels = {row[0]: row[1] for row in book["Channel"].iter_rows(values_only=True)}
    assert channels["扫码 QR_CODE"] == 1

    page = await http.get(f"/reports/{city_id}.html", headers=auth(city.token("leader")))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "2026-11" in page.text and "<script" not in page.text

    assert (await http.get(f"/reports/{city_id}.xlsx")).status_code == 401
    assert (
        await http.get(f"/reports/{city_id}.html", headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    assert (
        await http.get(f"/reports/{city_id}.xlsx", headers=auth(other.token("admin")))
    ).status_code == 404  # another tenant's report does not exist for it
    assert (
        await http.get(f"/reports/{city_id}.xlsx", headers=auth(city.token("c1_officer")))
    ).status_code == 404  # the county does not see the city's report
    assert (
        await http.get(f"/reports/{c1_id}.xlsx", headers=auth(city.token("c1_officer")))
    ).status_code == 200
    assert (
        await http.get("/reports/not-a-uuid.html", headers=auth(city.token("admin")))
    ).status_code == 400  # no id at all: BAD_USER_INPUT, as for every id argument
    assert (
        await http.get(f"/reports/{city_id}.html", headers=auth(city.token("grid")))
    ).status_code == 404  # a role that reads no report: as an id it cannot see


async def test_report_is_due_from_the_first_working_day_only(db):
    city = await build_city(db, unique("rw"), unique("p"))
    (tenant,) = await tenants_for(db, city.slug)
    with frozen(sh(2026, 10, 7, 12)):  # National Day holiday: October's first working day is 10-08
        assert await monthly_due(db, tenant, False) is None
        assert await monthly_due(db, tenant, True) == "2026-09"  # by hand: any day
    with frozen(sh(2026, 10, 8, 0, 30)):
        assert await monthly_due(db, tenant, False) == "2026-09"


def test_period_bounds_are_local_midnights():
    p = Period(date(2026, 11, 1), "Asia/Shanghai")
    assert (p.key, p.start, p.end, p.last) == (
        "2026-11",
        sh(2026, 11, 1, 0),
        sh(2026, 12, 1, 0),
        date(2026, 11, 30),
    )
    assert Period.previous(date(2027, 1, 4), "Asia/Shanghai").key == "2026-12"
