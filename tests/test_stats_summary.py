"""Participation, per-city definitions, and the daily summary against the live computation.

A fresh city in its own province (Asia/Shanghai, 2025); every query below runs
with the clock frozen at 2025-04-10 12:00 (the "now" of the rating windows).

| case | received | unit | then |
|---|---|---|---|
| A | 03-03 | c1 | accepted 03-04, extension asked 03-05 and approved, replied 03-10, rated BASICALLY_SATISFIED 03-12 |
| B | 03-03 | c1 | accepted 03-04, replied 03-15, rated SATISFIED 03-16 |
| C | 03-05 | c2 | accepted 03-06, replied 03-20, rated DISSATISFIED 03-21 |
| D | 03-06 | c2 | accepted 03-07, replied 04-05 — unrated, window open on 04-10 |
| E | 03-06 | c2 | accepted 03-07, replied 03-08 — unrated, 30-day window closed 04-07 |
| F | 04-10 09:00 | c1 | received today (only the live tail sees it) |

Hand-computed, year 2025, province standard: acceptance 5/5 = 1.0; closure: 5
handling steps due, all replied on time → 1.0 (A on time thanks to its
approved extension); participation: replied 5, rated 3, base = rated 3 + E
(window closed) = 4 → 0.75 (D is out: its window is still open); satisfaction
(S 1 + B 1) / rated 3 → 0.6667.

The city's own definition (BASICALLY_HALF, EXTENSION_LATE, window 45 days):
satisfaction (1 + ½) / 3 = 0.5; closure without A = 4/5 = 0.8; participation:
E's window (45 days from 03-08) is open too → base 3 → 1.0.
"""

from __future__ import annotations

import pytest

from backend.authz.tokens import verify_token
from backend.cases import service
from backend.cases.models import Satisfaction
from backend.core.db import TenantScope
from backend.jobs.registry import CRON_JOBS
from backend.jobs.statistics import stats_refresh
from backend.stats import summary
from backend.stats.definitions import Definition
from backend.stats.indicators import Range
from backend.stats.models import StatsDaily, StatsRefresh
from backend.stats.province import province_overview
from backend.tenants.principals import load_principal
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import accept, act, register, route, tenant_id

NOW = sh(2025, 4, 10, 12)
YEAR = {"from": "2025-01-01", "to": "2025-12-31"}
RATES = "onTimeAcceptanceRate onTimeClosureRate participationRate satisfactionRate"
DEFINITION = "definition { satisfaction onTimeClosure participationWindowDays isStandard }"
STATS = f"""query($from: Date!, $to: Date!) {{
  caseStatistics(from: $from, to: $to) {{
    {RATES} replied rated participationBase {DEFINITION}
    standard {{ {RATES} participationBase }}
  }}
}}"""
OVERVIEW = f"""query($p: String!, $from: Date!, $to: Date!) {{
  provinceOverview(province: $p, from: $from, to: $to) {{
    refreshedAt
    tenants {{ slug received {RATES} {DEFINITION} standard {{ {RATES} }} }}
    total {{ received {RATES} {DEFINITION} }}
  }}
}}"""
POLICY = """mutation($i: UpdateTenantPolicyInput!) {
  updateTenantPolicy(input: $i) { redDays indicators { satisfaction onTimeClosure
    participationWindowDays isStandard } }
}"""
STANDARD_RATES = {
    "onTimeAcceptanceRate": 1.0,
    "onTimeClosureRate": 1.0,
    "participationRate": 0.75,
    "satisfactionRate": 0.6667,
}
CITY_RATES = {
    "onTimeAcceptanceRate": 1.0,
    "onTimeClosureRate": 0.8,
    "participationRate": 1.0,
    "satisfactionRate": 0.5,
}


async def _reply(db, c, case_id, by):
    return await act(db, c, by, case_id, service.reply_case, opinion="已答复")


async def _rate(db, c, case_id, by, rating):
    return await act(db, c, by, case_id, service.rate_satisfaction, rating=rating)


@pytest.fixture(scope="module")
async def city(db):
    province = unique("sq")
    c = await build_city(db, unique("su"), province)
    cases = {}
    with frozen(sh(2025, 3, 3)):
        for name in "AB":
            cases[name] = await register(db, c, petitioner=ord(name))
            await route(db, c, cases[name], "c1")
    with frozen(sh(2025, 3, 4)):
        await accept(db, c, cases["A"], "c1_officer")
        await accept(db, c, cases["B"], "c1_officer")
    with frozen(sh(2025, 3, 5)):
        await act(
            db, c, "c1_officer", cases["A"], service.request_extension, days=10, reason="复杂"
        )
        await act(db, c, "c1_leader", cases["A"], service.approve_extension)
        cases["C"] = await register(db, c, location="c2/t1", petitioner=3)
        await route(db, c, cases["C"], "c2")
    with frozen(sh(2025, 3, 6)):
        await accept(db, c, cases["C"], "c2_officer")
        for name in "DE":
            cases[name] = await register(db, c, location="c2/t1", petitioner=ord(name))
            await route(db, c, cases[name], "c2")
    with frozen(sh(2025, 3, 7)):
        await accept(db, c, cases["D"], "c2_officer")
        await accept(db, c, cases["E"], "c2_officer")
    with frozen(sh(2025, 3, 8)):
        await _reply(db, c, cases["E"], "c2_officer")
    with frozen(sh(2025, 3, 10)):
        await _reply(db, c, cases["A"], "c1_officer")
    with frozen(sh(2025, 3, 12)):
        await _rate(db, c, cases["A"], "c1_officer", Satisfaction.BASICALLY_SATISFIED)
    with frozen(sh(2025, 3, 15)):
        await _reply(db, c, cases["B"], "c1_officer")
    with frozen(sh(2025, 3, 16)):
        await _rate(db, c, cases["B"], "c1_officer", Satisfaction.SATISFIED)
    with frozen(sh(2025, 3, 20)):
        await _reply(db, c, cases["C"], "c2_officer")
    with frozen(sh(2025, 3, 21)):
        await _rate(db, c, cases["C"], "c2_officer", Satisfaction.DISSATISFIED)
    with frozen(sh(2025, 4, 5)):
        await _reply(db, c, cases["D"], "c2_officer")
    with frozen(sh(2025, 4, 10, 9)):
        cases["F"] = await register(db, c, petitioner=6)
    c.tokens.update(await create_supervisors(db, {"sup": province}))
    c.cases = cases
    return c


async def _set_definition(gql, city, indicators):
    return await gql(POLICY, {"i": {"indicators": indicators}}, token=city.token("admin"))


async def test_participation_counts_only_closed_windows(gql, city):
    with frozen(NOW):
        s = (await gql(STATS, YEAR, token=city.token("officer"))).ok()["caseStatistics"]
    assert (s["replied"], s["rated"], s["participationBase"]) == (5, 3, 4)
    assert {k: s[k] for k in STANDARD_RATES} == STANDARD_RATES
    assert s["definition"]["isStandard"] is True
    # a month later D's window has closed as well: 3 / 5
    with frozen(sh(2025, 5, 10, 12)):
        later = (await gql(STATS, YEAR, token=city.token("officer"))).ok()["caseStatistics"]
    assert (later["participationBase"], later["participationRate"]) == (5, 0.6)


async def test_city_definition_is_validated_and_applied(gql, city):
    bad = await _set_definition(gql, city, {"participationWindowDays": 400})
    assert bad.code == "BAD_USER_INPUT"
    assert (await gql(POLICY, {"i": {"indicators": {}}}, token=city.token("officer"))).code == (
        "FORBIDDEN"
    )
    done = (
        await _set_definition(
            gql,
            city,
            {
                "satisfaction": "BASICALLY_HALF",
                "onTimeClosure": "EXTENSION_LATE",
                "participationWindowDays": 45,
            },
        )
    ).ok()["updateTenantPolicy"]
    assert done["indicators"] == {
        "satisfaction": "BASICALLY_HALF",
        "onTimeClosure": "EXTENSION_LATE",
        "participationWindowDays": 45,
        "isStandard": False,
    }
    try:
        with frozen(NOW):
            s = (await gql(STATS, YEAR, token=city.token("officer"))).ok()["caseStatistics"]
            ov = (await gql(OVERVIEW, {"p": city.province, **YEAR}, token=city.token("sup"))).ok()[
                "provinceOverview"
            ]
        assert {k: s[k] for k in CITY_RATES} == CITY_RATES
        assert s["participationBase"] == 3
        assert {k: s["standard"][k] for k in STANDARD_RATES} == STANDARD_RATES
        assert s["standard"]["participationBase"] == 4
        # the province overview says which definition each city used, and gives the standard
        (row,) = ov["tenants"]
        assert row["definition"]["isStandard"] is False
        assert {k: row[k] for k in CITY_RATES} == CITY_RATES
        assert row["standard"] == STANDARD_RATES
        assert {k: ov["total"][k] for k in STANDARD_RATES} == STANDARD_RATES
        assert ov["total"]["definition"]["isStandard"] is True
    finally:  # back to the standard for the other tests of the module
        await _set_definition(gql, city, {})


def test_definition_options_are_closed():
    assert Definition.of(None).is_standard
    for bad in ({"sql": "1"}, {"satisfaction": "ANY"}, {"participationWindowDays": True}):
        with pytest.raises(Exception) as exc:
            Definition.of(bad)
        assert getattr(exc.value, "code", None) == "BAD_USER_INPUT"


def _numbers(ov):
    return {
        t.tenant.slug: (t.indicators.counts(), t.indicators.by_channel, t.indicators.by_rating)
        for t in ov.tenants
    } | {"*": (ov.total.counts(), ov.total.by_category, ov.total.by_rating)}


@pytest.mark.parametrize(
    ("first", "last"),
    [("2025-01-01", "2025-12-31"), ("2025-03-01", "2025-03-31"), ("2025-04-01", "2025-04-10")],
)
async def test_summary_and_live_give_the_same_numbers(db, city, first, last):
    from datetime import date

    tid = await tenant_id(db, city)
    sup = await load_principal(db, verify_token(city.token("sup")))
    with frozen(NOW):
        async with db.transaction(TenantScope.of([tid])) as session:
            counts = await summary.refresh_tenant(session, tid)
        assert counts["summaryRows"] > 0
        async with db.transaction(sup.scope()) as session:
            state = await session.scalar(
                StatsRefresh.__table__.select().where(StatsRefresh.tenant_id == tid)
            )
            rows = await session.scalar(
                StatsDaily.__table__.select()
                .with_only_columns(StatsDaily.id)
                .where(StatsDaily.tenant_id == tid)
                .limit(1)
            )
            assert state is not None and rows is not None
            args = (city.province, date.fromisoformat(first), date.fromisoformat(last))
            summed = await province_overview(session, sup, *args)
            live = await province_overview(session, sup, *args, live=True)
            # a county drill-down reads the summary too (paths are kept at county depth)
            rng = Range.of(*args[1:])
            unit = city.path("c2")
            county, at = await summary.figures(session, [tid], rng, unit_path=unit)
            county_live, _ = await summary.figures(
                session, [tid], rng, unit_path=unit, live_only=True
            )
    assert at is not None and county[tid].counts() == county_live[tid].counts()
    assert summed.refreshed_at is not None and live.refreshed_at is None
    assert _numbers(summed) == _numbers(live)
    assert summed.total.received == live.total.received > 0


async def test_refresh_is_idempotent_and_scheduled(db, city):
    tid = await tenant_id(db, city)
    with frozen(NOW):
        first = await stats_refresh({"db": db, "runner": "test", "tenant": city.slug})
        again = await stats_refresh({"db": db, "runner": "test", "tenant": city.slug})
    assert first["status"] == again["status"] == "OK"
    assert first["summaryRows"] == again["summaryRows"] > 0
    async with db.transaction(TenantScope.of([tid])) as session:
        rows = (
            await session.execute(StatsDaily.__table__.select().where(StatsDaily.tenant_id == tid))
        ).all()
    assert len(rows) == first["summaryRows"]
    assert {r.holder_path.count("/") for r in rows} <= {1, 2}  # cut to the county level
    assert sum(r.received for r in rows) == 5  # F (today) is left to the live tail
    job = next(j for j in CRON_JOBS if j.name == "stats_refresh")
    assert job.run_at_startup and job.minute == {7, 37}
