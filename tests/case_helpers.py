"""Helpers for the case tests: GraphQL fragments, intake and lifecycle shortcuts, valid ids.

``register`` and ``step`` return the case dict of a successful mutation (and fail the
test with the response body otherwise); the ``*_resp`` variants return the raw
:class:`~tests.helpers.Response` so error tests can look at codes and fields.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from backend.cases.pii import check_character
from backend.core import clock
from tests.helpers import City, GraphQLClient, Response

CASE_FIELDS = """
fragment CaseFields on Case {
  id number status type channel category subject version receivedAt dueAt warningColor
  repeatCount onHold rating extensionDays extensionApproved replyOpinion resolution
  locationUnit { path } holderUnit { path } leader { username }
  petitioner { name phone idNumber masked }
  deadlines { step status startedAt dueDate dueAt warningColor rule note }
  events { seq kind at actor { username } fromStatus toStatus reason data hash }
}
"""

REGISTER = (
    "mutation($i: RegisterCaseInput!) { registerCase(input: $i) { ...CaseFields } }" + CASE_FIELDS
)
CASE = "query($id: ID!) { case(id: $id) { ...CaseFields } }" + CASE_FIELDS
COUNT = "query($f: CaseFilter) { cases(filter: $f, first: 0) { totalCount } }"
PREFIX = "{ me { tenant { slug casePrefix } } }"

SHANGHAI = ZoneInfo("Asia/Shanghai")

# --- GB 11643 resident id numbers ------------------------------------------------------

_CHECK = "10X98765432"  # every possible check character


def make_id_number(
    region: str = "411403", birth: date | None = None, seq: int | None = None
) -> str:
    """A valid 18-digit id number; random birth date and sequence unless given."""
    rng = random.Random(uuid.uuid4().int)
    birth = birth or date(1950, 1, 1) + timedelta(days=rng.randrange(365 * 50))
    seq = rng.randrange(1000) if seq is None else seq
    first17 = f"{region}{birth:%Y%m%d}{seq:03d}"
    return first17 + check_character(first17)


def bad_checksum(id_number: str) -> str:
    """The same id number with a wrong check character."""
    wrong = next(c for c in _CHECK if c != id_number[17])
    return id_number[:17] + wrong


# --- time ------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """An ISO timestamp in Shanghai time (what a front-end would send)."""
    return moment.astimezone(SHANGHAI).isoformat()


def days_ago(n: float = 1) -> str:
    return iso(clock.now() - timedelta(days=n))


# --- intake ----------------------------------------------------------------------------


def unique_key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def register_input(city: City, **overrides: Any) -> dict[str, Any]:
    """A valid RegisterCaseInput located in ``c1/t1`` of ``city``; keys override (camelCase)."""
    data: dict[str, Any] = {
        "clientKey": unique_key("intake"),
        "channel": "VISIT",
        "type": "CLAIM",
        "category": "land",
        "subject": "土地补偿款未发放",
        "content": "村民反映征地补偿款至今未发放到位，请求依法处理。",
        "petitioner": {
            "name": "张三",
            "phone": "13800001234",
            "idNumber": make_id_number(),
        },
        "locationPath": city.path("c1/t1"),
        "receivedAt": days_ago(1),
    }
    data.update(overrides)
    return data


async def register_resp(gql: GraphQLClient, token: str, city: City, **overrides: Any) -> Response:
    return await gql(REGISTER, {"i": register_input(city, **overrides)}, token=token)


async def register(gql: GraphQLClient, token: str, city: City, **overrides: Any) -> dict[str, Any]:
    """Register a case (valid defaults, ``overrides`` applied) and return the case dict."""
    return (await register_resp(gql, token, city, **overrides)).ok()["registerCase"]


# --- lifecycle -------------------------------------------------------------------------


BRIEF_FIELDS = "fragment CaseFields on Case { id number status version }"


def mutation_doc(name: str, *, brief: bool = False) -> str:
    input_type = name[0].upper() + name[1:] + "Input"
    fragment = BRIEF_FIELDS if brief else CASE_FIELDS
    return f"mutation($i: {input_type}!) {{ {name}(input: $i) {{ ...CaseFields }} }}" + fragment


async def step_resp(
    gql: GraphQLClient, token: str, name: str, case: dict[str, Any], **fields: Any
) -> Response:
    variables = {"caseId": case["id"], "version": case["version"], **fields}
    return await gql(mutation_doc(name), {"i": variables}, token=token)


async def step(
    gql: GraphQLClient, token: str, name: str, case: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Run lifecycle mutation ``name`` on ``case`` at its version; the updated case dict."""
    return (await step_resp(gql, token, name, case, **fields)).ok()[name]


async def step_brief(
    gql: GraphQLClient, token: str, name: str, case: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Like :func:`step`, answering only ``id number status version`` (for quick set-ups)."""
    variables = {"caseId": case["id"], "version": case["version"], **fields}
    resp = await gql(mutation_doc(name, brief=True), {"i": variables}, token=token)
    return resp.ok()[name]


# --- reading ---------------------------------------------------------------------------


async def fetch(gql: GraphQLClient, token: str, case_id: str) -> dict[str, Any]:
    return (await gql(CASE, {"id": case_id}, token=token)).ok()["case"]


async def total(gql: GraphQLClient, token: str, **filter_: Any) -> int:
    return (await gql(COUNT, {"f": filter_ or None}, token=token)).ok()["cases"]["totalCount"]


async def case_prefix(gql: GraphQLClient, token: str) -> str:
    return (await gql(PREFIX, token=token)).ok()["me"]["tenant"]["casePrefix"]


def open_step(case: dict[str, Any], step_name: str) -> dict[str, Any] | None:
    """The open deadline of ``step_name`` on ``case`` (None when there is none)."""
    found = [d for d in case["deadlines"] if d["step"] == step_name and d["status"] == "OPEN"]
    assert len(found) <= 1, found
    return found[0] if found else None


def number_seq(number: str) -> int:
    """The running number of ``SQ-2026-000123`` (123)."""
    return int(number.rsplit("-", 1)[1])
