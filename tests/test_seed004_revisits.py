"""Seed 004, 三不限"回头看": each month a job lists last month's closed cases whose petitioner
was dissatisfied; officials in scope list them and record the re-visit with an event;
accusations stay hidden from the accused (Art. 30); the job is safe to run twice.

A fresh city per test (the list shows every listed case of a city). Cases are located in
c1/t1, routed to county c1, replied on Monday 2026-10-12 and closed on 2026-11-12, the
day after the 30-day review window (Art. 35).
"""

from __future__ import annotations

from typing import Any

from backend.jobs.revisits import revisit_list
from tests.case_helpers import register, step, step_resp
from tests.clocks import frozen, sh, ticking
from tests.helpers import City, build_city, unique

REPLIED = sh(2026, 10, 12, 10, 0)
CLOSED = sh(2026, 11, 12, 10, 0)
LISTED = sh(2026, 12, 1, 9, 0)
LIST = """query($p: String, $pending: Boolean, $u: String) {
  revisits(period: $p, pendingOnly: $pending, unitPath: $u) {
    id period visitedOn visitedBy outcome note case { id status rating }
  }
}"""


async def replied(gql, city: City, rating: str, **overrides: Any) -> dict:
    tok = city.token("c1_officer")
    with ticking(REPLIED):
        case = await register(gql, city.token("officer"), city, **overrides)
        case = await step(
            gql, city.token("officer"), "routeCase", case, toUnitPath=city.path("c1"), mode="ASSIGN"
        )
        case = await step(gql, tok, "acceptCase", case)
        case = await step(gql, tok, "replyCase", case, opinion="答复意见")
        return await step(gql, tok, "rateSatisfaction", case, rating=rating)


async def closed(gql, city: City, rating: str, **overrides: Any) -> dict:
    case = await replied(gql, city, rating, **overrides)
    with ticking(CLOSED):
        return await step(gql, city.token("c1_officer"), "closeCase", case, resolution="办结")


async def listed(gql, token: str, **variables: Any) -> list[dict]:
    return (await gql(LIST, variables, token=token)).ok()["revisits"]


async def run(db, city: City, **ctx: Any) -> dict:
    return await revisit_list({"db": db, "runner": "test", "tenant": city.slug, **ctx})


async def test_seed004_the_monthly_job_lists_last_months_dissatisfied_closed_cases_once(gql, db):
    city = await build_city(db, unique("rv"), unique("p"))
    dissatisfied = await closed(gql, city, "DISSATISFIED")
    await closed(gql, city, "SATISFIED")  # satisfied: not re-visited
    await replied(gql, city, "DISSATISFIED")  # not closed: still in the petitioner's hands
    with frozen(LISTED):
        first = await run(db, city)
        again = await run(db, city)  # this month's run is done
        forced = await run(db, city, force=True)  # redelivered by hand: nothing twice
    assert first["listed"] == 1 and again["notDue"] == 1 and forced.get("listed", 0) == 0
    rows = await listed(gql, city.token("officer"), p="2026-11")
    assert [(r["case"]["id"], r["period"], r["outcome"]) for r in rows] == [
        (dissatisfied["id"], "2026-11", None)
    ]
    assert rows[0]["case"]["rating"] == "DISSATISFIED"
    assert await listed(gql, city.token("officer"), p="2026-10") == []


async def test_seed004_an_official_records_the_revisit_with_an_event(gql, db):
    city = await build_city(db, unique("rv"), unique("p"))
    case = await closed(gql, city, "DISSATISFIED")
    tok = city.token("c1_officer")
    with frozen(LISTED):
        await run(db, city)
    with ticking(sh(2026, 12, 3, 15, 0)):
        early = await step_resp(
            gql, tok, "recordRevisit", case, visitedOn="2026-12-04", outcome="RESOLVED", note="x"
        )
        assert early.code == "BAD_USER_INPUT" and early.field == "visitedOn"  # the future
        grid = await step_resp(
            gql,
            city.token("grid"),
            "recordRevisit",
            case,
            visitedOn="2026-12-03",
            outcome="RESOLVED",
            note="x",
        )
        assert grid.code == "FORBIDDEN"
        case = await step(
            gql,
            tok,
            "recordRevisit",
            case,
            visitedOn="2026-12-03",
            outcome="STILL_DISSATISFIED",
            note="信访人仍不满意，按三不限原则重新办理",
        )
        twice = await step_resp(
            gql, tok, "recordRevisit", case, visitedOn="2026-12-03", outcome="RESOLVED", note="x"
        )
    assert twice.code == "INVALID_TRANSITION"
    event = case["events"][-1]
    assert (
        event["kind"] == "RECORD_REVISIT"
        and event["actor"]["username"] == f"{city.slug}_c1_officer"
    )
    assert event["data"] == {
        "period": "2026-11",
        "visitedOn": "2026-12-03",
        "outcome": "STILL_DISSATISFIED",
    }
    assert case["status"] == "CLOSED"
    assert await listed(gql, tok) == []  # pending only, by default
    (row,) = await listed(gql, tok, pending=False)
    assert (row["visitedOn"], row["visitedBy"], row["outcome"]) == (
        "2026-12-03",
        f"{city.slug}_c1_officer",
        "STILL_DISSATISFIED",
    )


async def test_seed004_art30_the_revisit_list_is_filtered_by_scope_and_the_accused(gql, db):
    city = await build_city(db, unique("rv"), unique("p"))
    other = await build_city(db, unique("rv"), unique("p"))
    plain = await closed(gql, city, "DISSATISFIED")
    accusation = await closed(
        gql, city, "DISSATISFIED", type="ACCUSATION", accusedUnitPath=city.path("c1/t1")
    )
    with frozen(LISTED):
        await run(db, city)

    async def ids(token: str, **variables: Any) -> set[str]:
        return {r["case"]["id"] for r in await listed(gql, token, **variables)}

    assert await ids(city.token("officer")) == {plain["id"], accusation["id"]}
    assert await ids(city.token("t1_officer")) == {plain["id"]}  # inside the accused unit
    assert await ids(city.token("c2_officer")) == set()  # another county
    assert await ids(city.token("officer"), u=city.path("c2")) == set()
    assert await ids(other.token("officer")) == set()  # another city
    with ticking(sh(2026, 12, 3, 15, 0)):
        hidden = await step_resp(
            gql,
            city.token("t1_officer"),
            "recordRevisit",
            accusation,
            visitedOn="2026-12-03",
            outcome="RESOLVED",
            note="x",
        )
    assert hidden.code == "NOT_FOUND"
    bad = await gql(LIST, {"p": "2026-13x"}, token=city.token("officer"))
    assert bad.code == "BAD_USER_INPUT" and bad.field == "period"
