"""Indicators, drill-down, ranking and the province overview against a hand-computed city.

A fresh city in its own province (Asia/Shanghai, 2025). Limits: acceptance 15
days, handling 60 days — the actions below are either a day or two after the
clock started (on time) or months later (late), so no holiday arithmetic
matters.

| case | received | unit | petitioner | then |
|---|---|---|---|---|
| A | 03-03 | c1/t1 → c1 | 1 | accepted 03-04, replied 03-10, rated SATISFIED 03-12 |
| B | 03-03 | c1/t1 → c1 | 2 | accepted 05-30 (late); never replied (handling past due: backlog) |
| C | 03-05 | c2/t1 → c2 | 1 (repeat of A) | accepted 03-06, replied 03-20, rated DISSATISFIED 03-21 |
| D | 03-06 | c2/t1 → c2 | 3, skip-level | accepted 03-07, replied 09-30 (late), never rated |

Year 2025, whole city: received 4; acceptance due 4, on time 3 → 0.75; handling
due 4, on time 2 (A, C) → 0.5; replied 3 (A, C, D), rated 2 → 0.6667;
satisfied 1 of 2 rated → 0.5; repeat 1/4 → 0.25; skip-level 1; backlog 1 (B).
"""

from __future__ import annotations

import pytest

from backend.cases import service
from backend.cases.models import CaseType, Satisfaction, SkipLevel
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import accept, act, register, route, sent, tenant_id

STATS = """query($from: Date!, $to: Date!, $unit: String, $tenant: String) {
  caseStatistics(from: $from, to: $to, unitPath: $unit, tenant: $tenant) {
    received onTimeAcceptanceRate onTimeClosureRate participationRate satisfactionRate
    repeatRate skipLevelCount backlog acceptanceDue closureDue replied rated
    byChannel { key count } byType { key count } byCategory { key count }
    evaluations { evaluated pending }
  }
}"""
UNITS = """query($from: Date!, $to: Date!, $tenant: String) {
  caseStatistics(from: $from, to: $to, tenant: $tenant) {
    units { unit { path } received onTimeAcceptanceRate onTimeClosureRate participationRate
            satisfactionRate repeatRate skipLevelCount backlog }
  }
}"""
SERIES = """query($from: Date!, $to: Date!) {
  caseStatistics(from: $from, to: $to) { series(granularity: MONTH) { from to received } }
}"""
RANKING = """query($week: Date, $tenant: String, $w: RankingWeightsInput) {
  unitRanking(week: $week, tenant: $tenant, weights: $w) {
    weekFrom weekTo
    units { unit { path } rank score previousRank previousScore rankChange scoreChange }
  }
}"""
OVERVIEW = """query($p: String!, $from: Date!, $to: Date!) {
  provinceOverview(province: $p, from: $from, to: $to) {
    province tenants { slug received onTimeAcceptanceRate backlog } total { received backlog }
  }
}"""
SUPERVISE = """mutation($i: SuperviseCityInput!) {
  superviseCity(input: $i) { caseId tenant eventSeq notified }
}"""
YEAR = {"from": "2025-01-01", "to": "2025-12-31"}
NULLS = {
    "onTimeAcceptanceRate": None,
    "onTimeClosureRate": None,
    "participationRate": None,
    "satisfactionRate": None,
    "repeatRate": None,
}


async def reply(db, city, case_id, by):
    return await act(db, city, by, case_id, service.reply_case, opinion="已答复")


async def rate(db, city, case_id, by, rating):
    return await act(db, city, by, case_id, service.rate_satisfaction, rating=rating)


@pytest.fixture(scope="module")
async def city(db):
    province = unique("sp")
    c = await build_city(db, unique("st"), province)
    with frozen(sh(2025, 3, 3)):
        a = await register(db, c, petitioner=1)
        await route(db, c, a, "c1")
        b = await register(db, c, petitioner=2)
        await route(db, c, b, "c1")
    with frozen(sh(2025, 3, 4)):
        await accept(db, c, a, "c1_officer")
    with frozen(sh(2025, 3, 5)):
        cc = await register(db, c, location="c2/t1", petitioner=1)
        await route(db, c, cc, "c2")
    with frozen(sh(2025, 3, 6)):
        await accept(db, c, cc, "c2_officer")
        d = await register(db, c, location="c2/t1", petitioner=3, skip_level=SkipLevel.PROVINCE)
        await route(db, c, d, "c2")
    with frozen(sh(2025, 3, 7)):
        await accept(db, c, d, "c2_officer")
    with frozen(sh(2025, 3, 10)):
        await reply(db, c, a, "c1_officer")
    with frozen(sh(2025, 3, 12)):
        await rate(db, c, a, "c1_officer", Satisfaction.SATISFIED)
    with frozen(sh(2025, 3, 20)):
        await reply(db, c, cc, "c2_officer")
    with frozen(sh(2025, 3, 21)):
        await rate(db, c, cc, "c2_officer", Satisfaction.DISSATISFIED)
    with frozen(sh(2025, 5, 30)):
        await accept(db, c, b, "c1_officer")
    with frozen(sh(2025, 9, 30)):
        await reply(db, c, d, "c2_officer")
    c.tokens.update(await create_supervisors(db, {"sup": province}))
    c.cases = {"A": a, "B": b, "C": cc, "D": d}
    return c


async def test_city_indicators_match_the_hand_computed_year(gql, city):
    s = (await gql(STATS, YEAR, token=city.token("officer"))).ok()["caseStatistics"]
    assert {
        k: s[k] for k in s if k not in ("byChannel", "byType", "byCategory", "evaluations")
    } == {
        "received": 4,
        "onTimeAcceptanceRate": 0.75,
        "onTimeClosureRate": 0.5,
        "participationRate": 0.6667,
        "satisfactionRate": 0.5,
        "repeatRate": 0.25,
        "skipLevelCount": 1,
        "backlog": 1,
        "acceptanceDue": 4,
        "closureDue": 4,
        "replied": 3,
        "rated": 2,
    }
    assert s["byChannel"] == [{"key": "LETTER", "count": 4}]
    assert s["byType"] == [{"key": CaseType.CLAIM.value, "count": 4}]
    assert s["byCategory"] == [{"key": "land", "count": 4}]
    assert s["evaluations"] == {"evaluated": 0, "pending": 0}


async def test_zero_denominators_are_null(gql, city):
    s = (
        await gql(STATS, {"from": "2024-01-01", "to": "2024-01-31"}, token=city.token("officer"))
    ).ok()["caseStatistics"]
    assert {k: s[k] for k in NULLS} == NULLS
    assert (s["received"], s["skipLevelCount"], s["backlog"]) == (0, 0, 0)


async def test_unit_subtree_and_drill_down(gql, city):
    c2 = (await gql(STATS, {**YEAR, "unit": city.path("c2")}, token=city.token("officer"))).ok()[
        "caseStatistics"
    ]
    assert (c2["received"], c2["repeatRate"], c2["satisfactionRate"], c2["backlog"]) == (
        2,
        0.5,
        0.0,
        0,
    )
    units = (await gql(UNITS, YEAR, token=city.token("officer"))).ok()["caseStatistics"]["units"]
    by = {u["unit"]["path"]: u for u in units}
    assert by[city.path("c1")] | {"unit": None} == {
        "unit": None,
        "received": 2,
        "onTimeAcceptanceRate": 0.5,
        "onTimeClosureRate": 0.5,
        "participationRate": 1.0,
        "satisfactionRate": 1.0,
        "repeatRate": 0.0,
        "skipLevelCount": 0,
        "backlog": 1,
    }
    assert by[city.path("c2")]["onTimeAcceptanceRate"] == 1.0
    assert by[city.path("c2")]["participationRate"] == 0.5
    dept = by[city.path("dept")]
    assert {k: dept[k] for k in NULLS} == NULLS and dept["received"] == 0


async def test_a_county_officer_counts_only_its_subtree(gql, city):
    s = (await gql(STATS, YEAR, token=city.token("c1_officer"))).ok()["caseStatistics"]
    assert (s["received"], s["backlog"], s["onTimeAcceptanceRate"]) == (2, 1, 0.5)


async def test_monthly_series(gql, city):
    rows = (
        await gql(SERIES, {"from": "2025-02-15", "to": "2025-04-10"}, token=city.token("officer"))
    ).ok()["caseStatistics"]["series"]
    assert rows == [
        {"from": "2025-02-15", "to": "2025-02-28", "received": 0},
        {"from": "2025-03-01", "to": "2025-03-31", "received": 4},
        {"from": "2025-04-01", "to": "2025-04-10", "received": 0},
    ]


async def test_weekly_ranking_with_change_and_weights(gql, city):
    # week of 03-03: only the repeat rate is defined — c1 1 − 0 = 1.0, c2 1 − 0.5 = 0.5
    r = (await gql(RANKING, {"week": "2025-03-05"}, token=city.token("officer"))).ok()[
        "unitRanking"
    ]
    assert (r["weekFrom"], r["weekTo"]) == ("2025-03-03", "2025-03-09")
    by = {u["unit"]["path"]: u for u in r["units"]}
    assert (by[city.path("c1")]["rank"], by[city.path("c1")]["score"]) == (1, 1.0)
    assert (by[city.path("c2")]["rank"], by[city.path("c2")]["score"]) == (2, 0.5)
    assert by[city.path("dept")]["rank"] is None and by[city.path("c1")]["rankChange"] is None
    # week of 03-10: c1 replied and rated A (participation 1, satisfaction 1); c2 nothing
    r = (await gql(RANKING, {"week": "2025-03-12"}, token=city.token("officer"))).ok()[
        "unitRanking"
    ]
    by = {u["unit"]["path"]: u for u in r["units"]}
    assert by[city.path("c1")] | {"unit": None} == {
        "unit": None,
        "rank": 1,
        "score": 1.0,
        "previousRank": 1,
        "previousScore": 1.0,
        "rankChange": 0,
        "scoreChange": 0.0,
    }
    assert by[city.path("c2")]["rank"] is None and by[city.path("c2")]["previousRank"] == 2
    # weights are configurable: without the repeat rate nothing is defined in week 03-03
    r = (
        await gql(RANKING, {"week": "2025-03-05", "w": {"repeat": 0}}, token=city.token("officer"))
    ).ok()["unitRanking"]
    assert all(u["score"] is None for u in r["units"])
    bad = await gql(RANKING, {"w": {"repeat": -1}}, token=city.token("officer"))
    assert bad.code == "BAD_USER_INPUT"


async def test_province_overview_side_by_side(gql, db, city, world):
    sup = city.token("sup")
    ov = (await gql(OVERVIEW, {"p": city.province, **YEAR}, token=sup)).ok()["provinceOverview"]
    assert ov["province"] == city.province
    assert ov["tenants"] == [
        {"slug": city.slug, "received": 4, "onTimeAcceptanceRate": 0.75, "backlog": 1}
    ]
    assert ov["total"] == {"received": 4, "backlog": 1}
    # drill down to the tenant and a unit: the same figures, read-only
    s = (await gql(STATS, {**YEAR, "tenant": city.slug}, token=sup)).ok()["caseStatistics"]
    assert (s["received"], s["onTimeClosureRate"]) == (4, 0.5)
    units = (await gql(UNITS, {**YEAR, "tenant": city.slug}, token=sup)).ok()
    assert len(units["caseStatistics"]["units"]) == 3


async def test_province_boundary(gql, city, world):
    # a supervisor of another province sees nothing
    other = world.tokens["sup1"]
    ov = (await gql(OVERVIEW, {"p": city.province, **YEAR}, token=other)).ok()["provinceOverview"]
    assert ov == {"province": None, "tenants": [], "total": {"received": 0, "backlog": 0}}
    refused = await gql(STATS, {**YEAR, "tenant": city.slug}, token=other)
    assert refused.code == "FORBIDDEN"
    # its own province's overview holds its own cities only
    mine = (await gql(OVERVIEW, {"p": world.a.province, **YEAR}, token=other)).ok()
    slugs = {t["slug"] for t in mine["provinceOverview"]["tenants"]}
    assert slugs == {world.a.slug, world.b.slug}
    # city officials: no province overview, no other city's statistics
    official = city.token("officer")
    assert (await gql(OVERVIEW, {"p": city.province, **YEAR}, token=official)).code == "FORBIDDEN"
    assert (await gql(STATS, {**YEAR, "tenant": world.a.slug}, token=official)).code == "FORBIDDEN"
    own = await gql(STATS, {**YEAR, "tenant": city.slug}, token=official)
    assert own.ok()["caseStatistics"]["received"] == 4
    # evaluators and grid workers hold no stats right
    assert (await gql(STATS, YEAR, token=city.token("grid"))).code == "FORBIDDEN"


async def test_supervision_order_is_recorded_and_delivered(gql, db, city, world):
    case_id = str(city.cases["B"])
    variables = {"i": {"caseId": case_id, "note": "请于本月底前办结并报告"}}
    # not a supervisor, or another province's: refused / not found
    assert (await gql(SUPERVISE, variables, token=city.token("leader"))).code == "FORBIDDEN"
    assert (await gql(SUPERVISE, variables, token=world.tokens["sup1"])).code == "NOT_FOUND"
    done = (await gql(SUPERVISE, variables, token=city.token("sup"))).ok()["superviseCity"]
    assert done["tenant"] == city.slug and done["notified"] == 1
    events = (
        await gql(
            "query($id: ID!) { case(id: $id) { events { seq kind reason actor { username } } } }",
            {"id": case_id},
            token=city.token("officer"),
        )
    ).ok()["case"]["events"]
    last = events[-1]
    assert (last["seq"], last["kind"], last["reason"]) == (
        done["eventSeq"],
        "PROVINCE_SUPERVISION",
        "请于本月底前办结并报告",
    )
    tid = await tenant_id(db, city)
    delivered = await sent(db, tid, "province_supervision")
    assert set(delivered) == {f"{city.slug}_officer"}
