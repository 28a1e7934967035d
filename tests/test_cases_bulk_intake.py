"""Bulk intake (``registerCases``, issue 21) over HTTP: each item as registerCase takes it,
the batch all or nothing, numbers gap-free in the batch's order."""

from __future__ import annotations

import pytest

from backend.cases.service import MAX_BULK_INTAKE
from tests.case_helpers import (
    CASE_FIELDS,
    REGISTER,
    number_seq,
    register,
    register_input,
    total,
)
from tests.helpers import build_city, unique

BULK = (
    "mutation($i: [RegisterCaseInput!]!) { registerCases(inputs: $i) { ...CaseFields } }"
    + CASE_FIELDS
)


@pytest.fixture
async def city(db):
    return await build_city(db, unique("bk"), unique("bp"))


async def test_a_hotline_batch_gets_consecutive_numbers_in_its_order(gql, city):
    officer = city.token("officer")
    before = await register(gql, officer, city)
    inputs = [register_input(city, channel="PHONE", subject=f"12345 热线 {n}") for n in range(5)]
    cases = (await gql(BULK, {"i": inputs}, token=officer)).ok()["registerCases"]
    assert [c["subject"] for c in cases] == [i["subject"] for i in inputs]
    seqs = [number_seq(c["number"]) for c in cases]
    assert seqs == list(range(number_seq(before["number"]) + 1, number_seq(before["number"]) + 6))
    for case in cases:  # each registered as registerCase registers one
        assert (case["status"], case["version"], case["channel"]) == ("REGISTERED", 1, "PHONE")
        assert [e["kind"] for e in case["events"]] == ["REGISTERED"]
        assert any(d["step"] == "ROUTING" and d["status"] == "OPEN" for d in case["deadlines"])


async def test_one_bad_item_rolls_back_the_whole_batch_and_names_its_index(gql, city):
    officer = city.token("officer")
    before = await register(gql, officer, city)
    before_total = await total(gql, officer)
    inputs = [register_input(city) for _ in range(4)]
    inputs[2]["locationPath"] = city.path("nowhere")
    resp = await gql(BULK, {"i": inputs}, token=officer)
    assert resp.code == "BAD_USER_INPUT" and resp.data is None, resp.body
    assert resp.errors[0]["extensions"]["index"] == 2
    assert resp.field == "locationPath"
    assert await total(gql, officer) == before_total  # items 0 and 1 are gone too
    # no number was burnt: the next intake follows the one before the batch
    after = await register(gql, officer, city)
    assert number_seq(after["number"]) == number_seq(before["number"]) + 1
    # the good items were not half-registered under their keys either
    again = (await gql(BULK, {"i": inputs[:2]}, token=officer)).ok()["registerCases"]
    assert [number_seq(c["number"]) for c in again] == [
        number_seq(after["number"]) + 1,
        number_seq(after["number"]) + 2,
    ]


async def test_client_keys_replay_per_item(gql, city):
    officer = city.token("officer")
    x, y = register_input(city), register_input(city)
    first = (await gql(REGISTER, {"i": x}, token=officer)).ok()["registerCase"]
    # x again: a replay of registerCase's case; y twice: the second replays the first
    cases = (await gql(BULK, {"i": [x, y, y]}, token=officer)).ok()["registerCases"]
    assert cases[0]["id"] == first["id"]
    assert cases[1]["id"] == cases[2]["id"]
    assert number_seq(cases[1]["number"]) == number_seq(first["number"]) + 1
    before = await total(gql, officer)
    again = (await gql(BULK, {"i": [y]}, token=officer)).ok()["registerCases"]
    assert again[0]["id"] == cases[1]["id"] and await total(gql, officer) == before
    # the same key with another payload is refused as registerCase refuses it
    changed = {**y, "subject": "另一内容"}
    resp = await gql(BULK, {"i": [register_input(city), changed]}, token=officer)
    assert resp.code == "CONFLICT" and resp.errors[0]["extensions"]["index"] == 1
    assert await total(gql, officer) == before


async def test_an_accusation_against_the_registrars_own_unit_is_answered_by_its_receipt(gql, city):
    """Art. 30 per item: the township officer's accusation against its county goes above
    and comes back as a receipt, its ordinary item as the full case."""
    t1 = city.token("t1_officer")
    inputs = [
        register_input(city),
        register_input(city, type="ACCUSATION", accusedUnitPath=city.path("c1")),
    ]
    plain, accusation = (await gql(BULK, {"i": inputs}, token=t1)).ok()["registerCases"]
    assert plain["holderUnit"]["path"] == city.path("c1/t1")
    assert accusation["number"] and accusation["holderUnit"] is None
    assert number_seq(accusation["number"]) == number_seq(plain["number"]) + 1


@pytest.mark.parametrize("who", ["handler", "evaluator"])
async def test_roles_without_intake_cannot_register_a_batch(gql, city, who):
    officer = city.token("officer")
    before = await total(gql, officer)
    resp = await gql(BULK, {"i": [register_input(city)]}, token=city.token(who))
    assert resp.code == "FORBIDDEN" and resp.errors[0]["extensions"]["index"] == 0
    assert await total(gql, officer) == before


@pytest.mark.parametrize("size", [0, MAX_BULK_INTAKE + 1])
async def test_a_batch_is_one_to_five_hundred_petitions(gql, city, size):
    officer = city.token("officer")
    inputs = [register_input(city) for _ in range(size)]
    resp = await gql(BULK, {"i": inputs}, token=officer)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "inputs"), resp.body
