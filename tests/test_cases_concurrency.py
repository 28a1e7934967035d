"""Concurrent writers on PostgreSQL: optimistic versions, gap-free numbers, idempotent intake.

SQLite serialises writers, so these only mean something (and only run) on PostgreSQL.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.case_helpers import (
    REGISTER,
    fetch,
    number_seq,
    register,
    register_input,
    step,
    step_resp,
    total,
)
from tests.helpers import unique

pytestmark = pytest.mark.postgres


async def test_parallel_replies_on_one_version_one_wins_one_conflicts(gql, world):
    a = world.a
    officer = a.token("c1_officer")
    case = await register(gql, a.token("officer"), a)
    case = await step(
        gql, a.token("officer"), "routeCase", case, toUnitPath=a.path("c1"), mode="TRANSFER"
    )
    case = await step(gql, officer, "acceptCase", case)
    for _ in range(3):  # a few rounds: the race is not always won the same way
        results = await asyncio.gather(
            step_resp(gql, officer, "replyCase", case, opinion="甲的答复"),
            step_resp(gql, a.token("officer"), "replyCase", case, opinion="乙的答复"),
        )
        codes = sorted(str(r.code) for r in results)
        assert codes == ["CONFLICT", "None"], [r.body for r in results]
        loser = next(r for r in results if r.code)
        assert loser.field == "version", loser.body
        winner = next(r for r in results if not r.code).ok()["replyCase"]
        after = await fetch(gql, a.token("officer"), case["id"])
        assert (after["status"], after["version"]) == ("REPLIED", case["version"] + 1)
        assert after["replyOpinion"] == winner["replyOpinion"]
        assert [e["kind"] for e in after["events"]].count("REPLY") == 1
        # next round on a fresh case
        case = await register(gql, a.token("officer"), a)
        case = await step(gql, a.token("officer"), "acceptCase", case)
        officer = a.token("officer")


async def test_parallel_mutations_of_different_kinds_serialise(gql, world):
    a = world.a
    case = await register(gql, a.token("officer"), a)
    case = await step(gql, a.token("officer"), "acceptCase", case)
    results = await asyncio.gather(
        step_resp(gql, a.token("officer"), "replyCase", case, opinion="答复"),
        step_resp(gql, a.token("leader"), "holdCase", case, reason="听证"),
        step_resp(
            gql, a.token("leader"), "escalateCase", case, target="LEADERSHIP_GROUP", reason="r"
        ),
    )
    codes = [r.code for r in results]
    assert codes.count(None) == 1 and codes.count("CONFLICT") == 2, [r.body for r in results]
    after = await fetch(gql, a.token("officer"), case["id"])
    assert after["version"] == case["version"] + 1
    assert len(after["events"]) == len(case["events"]) + 1


async def test_parallel_intake_numbers_are_distinct_and_gap_free(gql, world):
    token = world.b.token("officer")
    marker = unique("burst")
    inputs = [
        register_input(world.b, subject=f"{marker} {i}", locationPath=world.b.path("c2"))
        for i in range(50)
    ]
    results = await asyncio.gather(*(gql(REGISTER, {"i": i}, token=token) for i in inputs))
    cases = [r.ok()["registerCase"] for r in results]
    numbers = sorted(number_seq(c["number"]) for c in cases)
    assert len({c["id"] for c in cases}) == 50
    assert numbers == list(range(numbers[0], numbers[0] + 50))
    assert await total(gql, token, search=marker) == 50
    # the counter carries on from there
    nxt = await register(gql, token, world.b, locationPath=world.b.path("c2"))
    assert number_seq(nxt["number"]) == numbers[-1] + 1


async def test_parallel_intake_with_one_client_key_makes_one_case(gql, world):
    token = world.a.token("officer")
    marker = unique("same-key")
    data = register_input(world.a, subject=marker)
    results = await asyncio.gather(*(gql(REGISTER, {"i": data}, token=token) for _ in range(10)))
    cases = [r.ok()["registerCase"] for r in results]
    assert len({c["id"] for c in cases}) == 1
    assert len({c["number"] for c in cases}) == 1
    assert await total(gql, token, search=marker) == 1
    # no number was burnt by the losers
    nxt = await register(gql, token, world.a)
    assert number_seq(nxt["number"]) == number_seq(cases[0]["number"]) + 1


async def test_parallel_intake_with_one_client_key_and_different_payloads(gql, world):
    token = world.a.token("officer")
    key, marker = unique("race"), unique("race-subject")
    inputs = [register_input(world.a, clientKey=key, subject=f"{marker} {i}") for i in range(5)]
    results = await asyncio.gather(*(gql(REGISTER, {"i": i}, token=token) for i in inputs))
    assert sorted(str(r.code) for r in results) == ["CONFLICT"] * 4 + ["None"]
    assert all(r.field == "clientKey" for r in results if r.code)
    assert await total(gql, token, search=marker) == 1
