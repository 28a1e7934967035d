"""Intake (registerCase): every channel and type, numbering, the routing clock, idempotency,
repeat detection, and validation that rejects bad input without writing anything."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import pytest

from backend.cases.pii import valid_id_number
from backend.core import clock
from tests.case_helpers import (
    SHANGHAI,
    bad_checksum,
    case_prefix,
    check_character,
    iso,
    make_id_number,
    number_seq,
    open_step,
    register,
    register_input,
    register_resp,
    total,
    unique_key,
)
from tests.helpers import unique

CHANNELS = ["VISIT", "LETTER", "PHONE", "ONLINE", "QR_CODE"]
TYPES = ["SUGGESTION", "ACCUSATION", "CLAIM"]


def test_id_number_helper_makes_valid_numbers():
    # the example of GB 11643 itself, and generated ones, pass the backend's own check
    assert check_character("11010519491231002") == "X"
    assert valid_id_number("11010519491231002X")
    for _ in range(50):
        number = make_id_number()
        assert len(number) == 18 and valid_id_number(number)
        assert not valid_id_number(bad_checksum(number))


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize("channel", CHANNELS)
async def test_register_from_every_channel_and_type(gql, world, channel, type_):
    token = world.a.token("officer")
    prefix = await case_prefix(gql, token)
    case = await register(gql, token, world.a, channel=channel, type=type_)
    year = clock.now().astimezone(SHANGHAI).year
    assert re.fullmatch(rf"{re.escape(prefix)}-{year}-\d{{6}}", case["number"]), case["number"]
    assert (case["status"], case["version"]) == ("REGISTERED", 1)
    assert (case["channel"], case["type"]) == (channel, type_)
    assert case["holderUnit"]["path"] == world.a.path()
    assert case["locationUnit"]["path"] == world.a.path("c1/t1")

    routing = open_step(case, "ROUTING")
    assert routing is not None
    assert "第二十二条" in routing["rule"]["article"]
    assert routing["rule"]["days"] == 15
    assert case["dueAt"] == routing["dueAt"]
    received_local = datetime.fromisoformat(case["receivedAt"]).astimezone(SHANGHAI).date()
    assert routing["rule"]["startDate"] == received_local.isoformat()
    assert routing["dueDate"] >= (received_local + timedelta(days=15)).isoformat()
    # received yesterday with 15 days to route: more than 10 days left
    assert case["warningColor"] == routing["warningColor"] == "BLUE"

    [event] = case["events"]
    assert (event["seq"], event["kind"], event["toStatus"]) == (1, "REGISTERED", "REGISTERED")
    assert event["fromStatus"] is None
    assert re.fullmatch(r"[0-9a-f]{64}", event["hash"])


async def test_numbers_are_consecutive_per_tenant(gql, world):
    token = world.b.token("officer")
    first = await register(gql, token, world.b, locationPath=world.b.path("c2"))
    second = await register(gql, token, world.b, locationPath=world.b.path("c2"))
    assert number_seq(second["number"]) == number_seq(first["number"]) + 1


async def test_grid_worker_registers_in_its_grid(gql, world):
    case = await register(
        gql, world.a.token("grid"), world.a, locationPath=world.a.path("c1/t1/v1/g1")
    )
    assert case["status"] == "REGISTERED"
    assert case["holderUnit"]["path"] == world.a.path("c1/t1/v1/g1")


# --- idempotency ---------------------------------------------------------------------------


async def test_same_client_key_and_payload_returns_the_same_case(gql, world):
    token = world.a.token("officer")
    data = register_input(world.a)
    before = await total(gql, token)
    first = (await register_resp(gql, token, world.a, **data)).ok()["registerCase"]
    again = (await register_resp(gql, token, world.a, **data)).ok()["registerCase"]
    assert (again["id"], again["number"], again["version"]) == (
        first["id"],
        first["number"],
        1,
    )
    assert len(again["events"]) == 1
    assert await total(gql, token) == before + 1


async def test_same_client_key_with_a_different_payload_is_conflict(gql, world):
    token = world.a.token("officer")
    data = register_input(world.a)
    first = (await register_resp(gql, token, world.a, **data)).ok()["registerCase"]
    before = await total(gql, token)
    resp = await register_resp(gql, token, world.a, **{**data, "subject": "另一件事"})
    assert (resp.code, resp.field) == ("CONFLICT", "clientKey")
    assert await total(gql, token) == before
    # the original is untouched
    again = (await register_resp(gql, token, world.a, **data)).ok()["registerCase"]
    assert again["number"] == first["number"]


async def test_same_client_key_from_another_registrar_is_conflict(gql, world):
    data = register_input(world.a)
    (await register_resp(gql, world.a.token("officer"), world.a, **data)).ok()
    resp = await register_resp(gql, world.a.token("c1_officer"), world.a, **data)
    assert (resp.code, resp.field) == ("CONFLICT", "clientKey")
    # the same petition from another official: the message says whose key it is, not
    # that the petition differs (it does not)
    message = resp.errors[0]["message"]
    assert "another official" in message and "different" not in message


async def test_client_keys_are_per_tenant(gql, world):
    key = unique_key("shared")
    a = await register(gql, world.a.token("officer"), world.a, clientKey=key)
    b = await register(
        gql, world.b.token("officer"), world.b, clientKey=key, locationPath=world.b.path("c1")
    )
    assert a["id"] != b["id"]


# --- repeat detection ------------------------------------------------------------------------


async def test_same_id_number_and_category_is_a_repeat(gql, world):
    token = world.a.token("officer")
    id_no = make_id_number()
    petitioner = {"name": "李四", "idNumber": id_no}
    first = await register(gql, token, world.a, petitioner=petitioner, category="wages")
    second = await register(gql, token, world.a, petitioner=petitioner, category="wages")
    assert (first["repeatCount"], second["repeatCount"]) == (0, 1)
    assert second["events"][0]["data"]["repeatCount"] == 1
    third = await register(gql, token, world.a, petitioner=petitioner, category="wages")
    assert third["repeatCount"] == 2


async def test_same_id_number_in_another_category_is_not_a_repeat(gql, world):
    token = world.a.token("officer")
    petitioner = {"name": "王五", "idNumber": make_id_number()}
    await register(gql, token, world.a, petitioner=petitioner, category="wages")
    other = await register(gql, token, world.a, petitioner=petitioner, category="housing")
    assert other["repeatCount"] == 0


async def test_phone_identifies_a_petitioner_without_an_id_number(gql, world):
    token = world.a.token("officer")
    phone = "139" + str(uuid.uuid4().int)[:8]
    petitioner = {"name": "钱七", "phone": phone}
    first = await register(gql, token, world.a, petitioner=petitioner, category="pension")
    second = await register(gql, token, world.a, petitioner=petitioner, category="pension")
    assert (first["repeatCount"], second["repeatCount"]) == (0, 1)


async def test_lowercase_x_id_number_matches_the_uppercase_one(gql, world):
    token = world.a.token("officer")
    id_no = make_id_number()
    while not id_no.endswith("X"):
        id_no = make_id_number()
    await register(gql, token, world.a, petitioner={"name": "赵六", "idNumber": id_no})
    again = await register(
        gql, token, world.a, petitioner={"name": "赵六", "idNumber": id_no.lower()}
    )
    assert again["repeatCount"] == 1
    assert again["petitioner"]["idNumber"] == id_no


# --- validation: the right field, and nothing written ------------------------------------------


def _bad_inputs(world):
    a = world.a
    return {
        "unknown category": ("officer", {"category": "no-such-category"}, "category"),
        "location outside scope": (
            "c1_officer",
            {"locationPath": a.path("c2/t1")},
            "locationPath",
        ),
        "another tenant's path": (
            "officer",
            {"locationPath": world.b.path("c1")},
            "locationPath",
        ),
        "unknown path": ("officer", {"locationPath": a.path("c9")}, "locationPath"),
        "empty subject": ("officer", {"subject": "   "}, "subject"),
        "content too long": ("officer", {"content": "字" * 20_001}, "content"),
        "malformed phone": (
            "officer",
            {"petitioner": {"name": "张三", "phone": "1380000"}},
            "petitioner.phone",
        ),
        "bad id checksum": (
            "officer",
            {"petitioner": {"name": "张三", "idNumber": bad_checksum(make_id_number())}},
            "petitioner.idNumber",
        ),
        "received in the future": (
            "officer",
            {"receivedAt": iso(clock.now() + timedelta(hours=1))},
            "receivedAt",
        ),
        "accused unit on a claim": (
            "officer",
            {"type": "CLAIM", "accusedUnitPath": a.path("c1")},
            "accusedUnitPath",
        ),
        "accused unit of another tenant": (
            "officer",
            {"type": "ACCUSATION", "accusedUnitPath": world.b.path("c1")},
            "accusedUnitPath",
        ),
        "receivedAt without a zone": (
            "officer",
            {"receivedAt": (clock.now() - timedelta(days=1)).replace(tzinfo=None).isoformat()},
            "receivedAt",
        ),
        "empty petitioner name": ("officer", {"petitioner": {"name": ""}}, "petitioner.name"),
        "empty client key": ("officer", {"clientKey": ""}, "clientKey"),
        "client key too long": ("officer", {"clientKey": "k" * 129}, "clientKey"),
        "head count zero": ("officer", {"headCount": 0}, "headCount"),
    }


BAD_INPUT_NAMES = [
    "unknown category",
    "location outside scope",
    "another tenant's path",
    "unknown path",
    "empty subject",
    "content too long",
    "malformed phone",
    "bad id checksum",
    "received in the future",
    "accused unit on a claim",
    "accused unit of another tenant",
    "receivedAt without a zone",
    "empty petitioner name",
    "empty client key",
    "client key too long",
    "head count zero",
]


async def test_a_location_out_of_reach_reads_the_same_whether_it_exists_or_not(gql, world):
    """A real unit of the city outside the registrar's grants, an absent one and one of
    another city get one message, which says both (not "unknown": the unit may exist and
    be readable through orgUnit; outside probe of issue 21)."""
    messages = set()
    for name in ("location outside scope", "unknown path", "another tenant's path"):
        who, overrides, _ = _bad_inputs(world)[name]
        resp = await register_resp(gql, world.a.token(who), world.a, **overrides)
        message = resp.errors[0]["message"]
        messages.add(message.replace(overrides["locationPath"], "<path>"))
    assert messages == {"no org unit <path> within your scope for this"}


@pytest.mark.parametrize("name", BAD_INPUT_NAMES)
async def test_bad_input_is_rejected_with_its_field_and_writes_nothing(gql, world, name):
    who, overrides, field = _bad_inputs(world)[name]
    officer = world.a.token("officer")
    before_case = await register(gql, officer, world.a)
    before_total = await total(gql, officer)

    resp = await register_resp(gql, world.a.token(who), world.a, **overrides)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), resp.body
    assert resp.data is None

    assert await total(gql, officer) == before_total
    after_case = await register(gql, officer, world.a)
    assert number_seq(after_case["number"]) == number_seq(before_case["number"]) + 1


async def test_content_of_exactly_the_limit_is_accepted(gql, world):
    case = await register(gql, world.a.token("officer"), world.a, content="字" * 20_000)
    assert case["status"] == "REGISTERED"


async def test_accused_unit_on_an_accusation_is_accepted(gql, world):
    case = await register(
        gql,
        world.a.token("officer"),
        world.a,
        type="ACCUSATION",
        category="discipline",
        accusedUnitPath=world.a.path("c2"),
    )
    assert case["type"] == "ACCUSATION"


@pytest.mark.parametrize("who", ["evaluator", "handler", "admin"])
async def test_roles_without_intake_cannot_register(gql, world, who):
    officer = world.a.token("officer")
    before = await total(gql, officer)
    location = world.a.path("dept") if who == "handler" else world.a.path("c1/t1")
    resp = await register_resp(gql, world.a.token(who), world.a, locationPath=location)
    assert resp.code == "FORBIDDEN", resp.body
    assert await total(gql, officer) == before


@pytest.mark.parametrize("who", ["sup1", "platform"])
async def test_supervisors_and_platform_staff_cannot_register(gql, world, who):
    resp = await register_resp(gql, world.tokens[who], world.a)
    assert resp.code == "FORBIDDEN", resp.body


async def test_unknown_username_cannot_register(gql, world):
    from backend.authz.tokens import issue_token

    resp = await register_resp(gql, issue_token(unique("ghost")), world.a)
    assert resp.code == "UNAUTHENTICATED"
