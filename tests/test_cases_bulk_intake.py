"""Bulk intake (``registerCases``, issue 21) over HTTP: each item as registerCase takes it,
the batch all or nothing, numbers gap-free in the batch's order."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from backend.cases.audit import verify_tenant_chain
from backend.cases.models import Case, CaseDeadline
from backend.cases.service import MAX_BULK_INTAKE
from backend.core.db import TenantScope
from backend.tenants.models import Tenant
from tests.case_helpers import (
    CASE,
    CASE_FIELDS,
    REGISTER,
    iso,
    make_id_number,
    number_seq,
    register,
    register_input,
    total,
    unique_key,
)
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique

BULK = (
    "mutation($i: [RegisterCaseInput!]!) { registerCases(inputs: $i) { ...CaseFields } }"
    + CASE_FIELDS
)
LIST = "query { cases(first: 200) { edges { node { id } } } }"


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


# --- set-based intake: the same rows n single intakes write (issue 21) ----------------

T0 = sh(2026, 9, 16, 10)


def _batch(city, people: dict[str, str]) -> list[dict]:
    """A batch exercising what a batch shares between its items: repeats of a petitioner
    already in the city and earlier in the batch (one received before the case already
    registered, so the last item links to it, not to the older case), another petition of the same
    petitioner (other category; an accusation naming another accused: no repeat), and a
    clientKey repeated in the batch (a replay)."""

    def item(key: str, who: str, days: float, **extra):
        return register_input(
            city,
            clientKey=f"{city.slug}-{key}",
            petitioner={"name": who, "phone": "13800001234", "idNumber": people[who]},
            receivedAt=iso(T0 - timedelta(days=days)),
            **extra,
        )

    again = item("q1", "李四", 2, channel="PHONE")
    return [
        item("p1", "张三", 3),
        again,
        item("p2", "张三", 40, channel="LETTER"),  # received before the earlier case
        item("p3", "张三", 1, category="wages"),
        item("p4", "张三", 0.5, type="ACCUSATION", accusedUnitPath=city.path("c2")),
        again,  # the same key again: the second item's case, not a new one
        item("p5", "张三", 0.2, type="ACCUSATION", accusedUnitPath=city.path("c2")),
        item("q2", "李四", 0.1, content="第二次来信，要求尽快答复。"),
        item("p6", "张三", 0.3),  # repeats the prior case, p1 and p2: p2 came first
    ]


def _comparable(city, case: dict) -> dict:
    """A case as two cities can compare it: the city's own names, ids and hashes out."""
    text = json.dumps(case, ensure_ascii=False).replace(city.slug, "CITY")
    out = json.loads(text)
    out.pop("id")
    out["number"] = number_seq(out["number"])
    for event in out["events"]:
        event.pop("hash")
        event["data"]["number"] = number_seq(event["data"]["number"])
    return out


async def _rows(db, slug: str) -> list[tuple]:
    """Every case of the city as written: number, the number it repeats, and the columns
    intake sets (PII as stored: encrypted, so compared decrypted by the ORM)."""
    async with db.transaction() as session:
        tid = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    async with db.transaction(TenantScope.of([tid])) as session:
        cases = list(await session.scalars(select(Case).order_by(Case.number)))
        by_id = {c.id: number_seq(c.number) for c in cases}
        clocks = {
            d.case_id: (d.step, d.status, d.started_at, d.due_date, d.due_at, d.rule)
            for d in await session.scalars(select(CaseDeadline))
        }
        counted, broken = await verify_tenant_chain(session)  # xinfang audit verify
    assert broken is None and counted == len(cases)
    return [
        (
            number_seq(c.number),
            by_id.get(c.repeat_of_id),
            c.repeat_count,
            c.received_at,
            c.due_at,
            c.warning_color,
            c.red_since,
            c.petitioner_phone,
            c.petitioner_id_number,
            c.petitioner_key is not None,
            c.holder_path.replace(slug, "CITY"),
            c.first_receiver_id is not None,
            clocks[c.id],
        )
        for c in cases
    ]


async def test_issue21_a_batch_writes_what_the_same_petitions_one_by_one_write(gql, db):
    """Cases, numbers, first events (their hash chain verifies), clocks, due dates and
    repeat counts and links: one registerCases equals n registerCase calls."""
    one_by_one = await build_city(db, unique("bs"), unique("bp"))
    batched = await build_city(db, unique("bb"), unique("bp"))
    people = {"张三": make_id_number(), "李四": make_id_number()}
    with frozen(T0):
        singles, answers = [], []
        for city, out in ((one_by_one, singles), (batched, answers)):
            officer = city.token("officer")
            prior = register_input(
                city,
                petitioner={"name": "张三", "phone": None, "idNumber": people["张三"]},
                receivedAt=iso(T0 - timedelta(days=10)),
            )
            await gql(REGISTER, {"i": prior}, token=officer)
            inputs = _batch(city, people)
            if city is one_by_one:
                for i in inputs:
                    out.append((await gql(REGISTER, {"i": i}, token=officer)).ok()["registerCase"])
            else:
                out.extend((await gql(BULK, {"i": inputs}, token=officer)).ok()["registerCases"])
    assert answers[1]["id"] == answers[5]["id"]  # the replay inside the batch
    assert [c["repeatCount"] for c in answers] == [1, 0, 2, 0, 0, 0, 1, 1, 3]
    assert [number_seq(c["number"]) for c in answers] == [2, 3, 4, 5, 6, 3, 7, 8, 9]
    assert [_comparable(batched, c) for c in answers] == [
        _comparable(one_by_one, c) for c in singles
    ]
    rows = await _rows(db, batched.slug)
    assert rows == await _rows(db, one_by_one.slug)
    # which earlier case each repeats: the LETTER received 40 days ago (no. 4) is the
    # first of 张三's land petitions by the time no. 9 arrives, as it is singly
    assert [r[1] for r in rows] == [None, 1, None, 1, None, None, 6, 3, 4]


async def test_issue21_a_key_reused_inside_a_batch_for_another_petition_refuses_it(gql, city):
    officer = city.token("officer")
    before = await register(gql, officer, city)
    x = register_input(city)
    resp = await gql(
        BULK, {"i": [x, register_input(city), {**x, "subject": "另一诉求"}]}, token=officer
    )
    assert resp.code == "CONFLICT" and resp.field == "clientKey", resp.body
    assert resp.errors[0]["extensions"]["index"] == 2
    after = await register(gql, officer, city)  # nothing written, no number burnt
    assert number_seq(after["number"]) == number_seq(before["number"]) + 1


async def test_issue21_the_first_refused_item_is_named_whatever_check_refuses_it(gql, city):
    """Items are checked in order: an early item refused by a check against the city
    (unknown category) wins over a later one refused on its shape (headCount)."""
    officer = city.token("officer")
    inputs = [register_input(city) for _ in range(4)]
    inputs[1]["category"] = "no-such-category"
    inputs[3]["headCount"] = 0
    resp = await gql(BULK, {"i": inputs}, token=officer)
    assert (resp.code, resp.field, resp.errors[0]["extensions"]["index"]) == (
        "BAD_USER_INPUT",
        "category",
        1,
    ), resp.body
    inputs[1]["category"] = "land"
    resp = await gql(BULK, {"i": inputs}, token=officer)
    assert (resp.field, resp.errors[0]["extensions"]["index"]) == ("headCount", 3), resp.body


async def test_issue21_art30_a_batch_of_accusations_never_reaches_the_accused_unit(gql, city):
    """Art. 30 on the bulk path: the accused county's officer and leader see neither the
    batch's accusations nor their count; the city officer sees them all."""
    officer = city.token("officer")
    inputs = [
        register_input(city, type="ACCUSATION", accusedUnitPath=city.path("c1")) for _ in range(3)
    ]
    inputs.append(register_input(city))  # an ordinary claim in c1/t1: c1 may see it
    cases = (await gql(BULK, {"i": inputs}, token=officer)).ok()["registerCases"]
    assert all(c["holderUnit"]["path"] == city.path() for c in cases[:3])
    for who in ("c1_officer", "c1_leader", "t1_officer"):
        token = city.token(who)
        for case in cases[:3]:
            resp = await gql(CASE, {"id": case["id"]}, token=token)
            assert resp.code == "NOT_FOUND" and resp.data["case"] is None, (who, resp.body)
        assert (await gql(CASE, {"id": cases[3]["id"]}, token=token)).ok()["case"]
    seen = {c["id"] for c in cases}
    edges = (await gql(LIST, token=officer)).ok()["cases"]["edges"]
    assert seen <= {e["node"]["id"] for e in edges}
    edges = (await gql(LIST, token=city.token("c1_officer"))).ok()["cases"]["edges"]
    assert seen & {e["node"]["id"] for e in edges} == {cases[3]["id"]}


async def test_issue21_a_batch_cannot_write_into_another_city(gql, db, city):
    """The batch's city is the caller's: another city's unit is unknown (nothing written
    anywhere), and a clientKey already used in another city is a new petition here."""
    other = await build_city(db, unique("bo"), unique("bp"))
    key = unique_key("shared")
    theirs = await register(gql, other.token("officer"), other, clientKey=key)
    officer = city.token("officer")
    before, their_total = await total(gql, officer), await total(gql, other.token("officer"))
    inputs = [register_input(city), register_input(city, locationPath=other.path("c1/t1"))]
    resp = await gql(BULK, {"i": inputs}, token=officer)
    assert (resp.code, resp.field, resp.errors[0]["extensions"]["index"]) == (
        "BAD_USER_INPUT",
        "locationPath",
        1,
    )
    assert await total(gql, officer) == before
    assert await total(gql, other.token("officer")) == their_total
    same_key = register_input(city, clientKey=key)
    mine = (await gql(BULK, {"i": [same_key]}, token=officer)).ok()["registerCases"][0]
    assert mine["id"] != theirs["id"] and mine["locationUnit"]["path"] == city.path("c1/t1")
    assert await total(gql, other.token("officer")) == their_total


@pytest.mark.postgres
async def test_issue21_concurrent_batches_sharing_a_key_write_it_once_and_skip_no_number(gql, city):
    """Two imports racing with one petition in common: the one whose check ran before
    the other committed finds the key taken at its INSERT, gives its numbers back and
    plans again, where that petition is a replay — one case, numbers still gap-free."""
    officer = city.token("officer")
    before = await register(gql, officer, city)
    for _ in range(3):  # a few rounds: the race is not always run the same way
        shared = register_input(city)
        left = [register_input(city), shared, register_input(city)]
        right = [register_input(city), register_input(city), shared]
        results = await asyncio.gather(
            gql(BULK, {"i": left}, token=officer), gql(BULK, {"i": right}, token=officer)
        )
        a, b = (r.ok()["registerCases"] for r in results)
        assert a[1]["id"] == b[2]["id"]
    after = await register(gql, officer, city)
    # 3 rounds × 5 distinct petitions, then the last intake: no gap, no duplicate
    assert number_seq(after["number"]) == number_seq(before["number"]) + 16
    assert await total(gql, officer) == number_seq(after["number"])
