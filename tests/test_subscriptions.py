"""Subscriptions over graphql-transport-ws, with a real WebSocket client from outside.

Two `xinfang serve` processes on the test database (PostgreSQL: A and B, the change made
on A reaches B through LISTEN/NOTIFY; SQLite: one process, in-process fan-out). A
mutation over HTTP on A; subscribers on B. Each event is filtered by the read rule of a
query, asked again per event: another city, the accused unit of an accusation (Art. 30),
a revoked role get nothing (docs/subscriptions.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.core import persisted
from backend.schema.live import MAX_SUBSCRIPTIONS_PER_CONNECTION
from backend.tenants import service as tenants
from backend.tenants.service import tenant_by_slug
from tests.case_helpers import register
from tests.conftest import IS_POSTGRES
from tests.helpers import GraphQLClient, build_city, unique
from tests.live_server import process

PROTOCOL = "graphql-transport-ws"
METRICS_TOKEN = "live-test-metrics-token-0123456789"
MAX_CONNECTIONS = 3
MAX_MESSAGE = 4096
WAIT = 20.0  # seconds an expected message may take on a busy machine
QUIET = 1.5  # how long "nothing arrives" is watched after the others got theirs

CASE_UPDATED = """subscription($unit: String) {
  caseUpdated(unitPath: $unit) { caseId number status warningColor holderPath version updatedAt }
}"""
NOTIFICATION_RECEIVED = """subscription {
  notificationReceived { id kind subject caseId recipient sentAt }
}"""
SUPERVISE = """mutation($i: SuperviseCityInput!) { superviseCity(input: $i) { notified } }"""


@pytest.fixture(scope="module")
def servers(migrated: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(A, B): two processes on PostgreSQL, the same one twice on SQLite."""
    env = dict(os.environ)
    env.update(
        XF_METRICS_TOKEN=METRICS_TOKEN,
        XF_WS_MAX_CONNECTIONS_PER_USER=str(MAX_CONNECTIONS),
        XF_WS_MAX_MESSAGE_BYTES=str(MAX_MESSAGE),
        XF_LOG_LEVEL="WARNING",
    )
    with process(env, tmp_path_factory.mktemp("live_a")) as (port_a, _):
        a = f"127.0.0.1:{port_a}"
        if not IS_POSTGRES:
            yield a, a
            return
        with process(env, tmp_path_factory.mktemp("live_b")) as (port_b, _):
            yield a, f"127.0.0.1:{port_b}"


@pytest.fixture
async def on_a(servers: tuple[str, str]) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=f"http://{servers[0]}", timeout=30) as client:
        yield GraphQLClient(client)


class Stream:
    """One subscription on a connection: its ``next`` payloads, then ``complete``."""

    def __init__(self, ws: ClientConnection, op: str) -> None:
        self.ws, self.op = ws, op

    async def message(self, within: float = WAIT) -> dict[str, Any]:
        while True:
            raw = json.loads(await asyncio.wait_for(self.ws.recv(), within))
            if raw["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            assert raw.get("id") == self.op, raw
            return raw

    async def next(self, within: float = WAIT) -> dict[str, Any]:
        raw = await self.message(within)
        assert raw["type"] == "next", raw
        return raw["payload"]

    async def nothing(self, within: float = QUIET) -> None:
        with pytest.raises(TimeoutError):
            raw = await self.message(within)
            pytest.fail(f"expected nothing, got {raw}")

    async def next_case(self, ids: set[str], within: float = WAIT) -> dict[str, Any]:
        """The next ``caseUpdated`` about one of ``ids``: the session's world is shared,
        so a job of the servers may change another case of the city meanwhile."""
        while True:
            got = (await self.next(within))["data"]["caseUpdated"]
            if got["caseId"] in ids:
                return got

    async def nothing_of(self, ids: set[str], within: float = QUIET) -> None:
        """No ``caseUpdated`` about any of ``ids`` within ``within`` seconds."""
        with pytest.raises(TimeoutError):
            while True:
                got = (await self.next(within))["data"]["caseUpdated"]
                assert got["caseId"] not in ids, f"expected nothing of {ids}, got {got}"


@asynccontextmanager
async def connection(host: str, init: dict[str, Any] | None) -> AsyncIterator[ClientConnection]:
    async with connect(f"ws://{host}/graphql", subprotocols=[PROTOCOL]) as ws:  # type: ignore[list-item]
        if init is not None:
            await ws.send(json.dumps({"type": "connection_init", "payload": init}))
        yield ws


@asynccontextmanager
async def subscribed(
    host: str, token: str, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[Stream]:
    async with connection(host, {"Authorization": f"Bearer {token}"}) as ws:
        ack = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        assert ack == {"type": "connection_ack"}, ack
        op = uuid.uuid4().hex
        payload = {"query": query, "variables": variables or {}}
        await ws.send(json.dumps({"type": "subscribe", "id": op, "payload": payload}))
        yield Stream(ws, op)


async def subscribers(host: str, n: int) -> None:
    """Wait until ``host`` has ``n`` open subscriptions (its metrics say so)."""
    headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    deadline = time.monotonic() + WAIT
    async with httpx.AsyncClient(base_url=f"http://{host}", headers=headers) as client:
        while True:
            text = (await client.get("/metrics")).text
            line = next(x for x in text.splitlines() if x.startswith("xinfang_live_subscribers "))
            if float(line.split()[1]) == n:
                return
            assert time.monotonic() < deadline, line
            await asyncio.sleep(0.1)


async def closed(ws: ClientConnection, within: float = WAIT) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), within)
    rcvd = info.value.rcvd
    return (rcvd.code, rcvd.reason) if rcvd else (None, "")


# --- events reach those who may read them, from another process --------------------------


async def test_art30_case_change_on_a_reaches_readers_on_b_never_the_accused_or_another_city(
    servers, on_a, world
):
    b = servers[1]
    city = world.a
    officer = city.token("officer")
    async with (
        subscribed(b, officer, CASE_UPDATED, {"unit": city.path()}) as root,
        subscribed(b, city.token("c2_officer"), CASE_UPDATED) as accused,
        subscribed(b, world.b.token("officer"), CASE_UPDATED) as other_city,
    ):
        await subscribers(b, 3)
        accusation = await register(
            on_a, officer, city, type="ACCUSATION", locationPath=city.path("c2/t1"),
            accusedUnitPath=city.path("c2"),
        )  # fmt: skip
        claim = await register(on_a, officer, city, locationPath=city.path("c2/t1"))
        ours = {accusation["id"], claim["id"]}
        got = await root.next_case(ours)
        assert got["caseId"] == accusation["id"]
        assert got["number"] == accusation["number"]
        assert got["status"] == accusation["status"]
        assert got["version"] == accusation["version"]
        assert got["updatedAt"].endswith("+08:00")  # the city's zone, as over HTTP
        assert (await root.next_case(ours))["caseId"] == claim["id"]
        # Art. 30: the accused unit's officer hears of the claim, never of the accusation
        assert (await accused.next_case(ours))["caseId"] == claim["id"]
        await accused.nothing_of({accusation["id"]})
        await other_city.nothing_of(ours)  # another city's changes never reach it


async def test_unit_path_narrows_the_stream_to_the_units_cases(servers, on_a, world):
    b = servers[1]
    city = world.a
    officer = city.token("officer")
    async with subscribed(b, officer, CASE_UPDATED, {"unit": city.path("c1")}) as c1:
        await subscribers(b, 1)
        await register(on_a, officer, city, locationPath=city.path("c2/t1"))
        inside = await register(on_a, officer, city, locationPath=city.path("c1/t1"))
        assert (await c1.next())["data"]["caseUpdated"]["caseId"] == inside["id"]


async def test_notification_reaches_its_recipient_only(servers, on_a, world):
    b = servers[1]
    city = world.a
    case = await register(on_a, city.token("officer"), city, locationPath=city.path("c1/t1"))
    async with (
        subscribed(b, city.token("officer"), NOTIFICATION_RECEIVED) as officer,
        subscribed(b, city.token("c1_officer"), NOTIFICATION_RECEIVED) as other,
    ):
        await subscribers(b, 2)
        resp = await on_a(
            SUPERVISE, {"i": {"caseId": case["id"], "note": "请加快办理"}},
            token=world.tokens["sup1"],
        )  # fmt: skip
        assert resp.ok()["superviseCity"]["notified"] >= 1
        got = (await officer.next())["data"]["notificationReceived"]
        assert got["kind"] == "PROVINCE_SUPERVISION"
        assert got["caseId"] == case["id"]
        assert got["recipient"] == f"{city.slug}_officer"
        assert case["number"] in got["subject"]
        await other.nothing()  # a root officer's notification is nobody else's


# --- the stream follows the caller as it is now ------------------------------------------------


async def test_revoked_role_ends_the_stream(servers, on_a, world, db):
    b = servers[1]
    city = world.a
    username = unique(f"{city.slug}_watch")
    async with db.transaction() as session:
        await tenants.create_user(
            session, SYSTEM, tenant=city.slug, username=username, display_name="watch"
        )
        await tenants.assign_role(
            session, SYSTEM, username=username, role=Role.PETITION_OFFICER,
            org_unit_path=city.path("c1"),
        )  # fmt: skip
    officer = city.token("officer")
    async with subscribed(b, issue_token(username), CASE_UPDATED) as stream:
        await subscribers(b, 1)
        first = await register(on_a, officer, city, locationPath=city.path("c1/t1"))
        assert (await stream.next())["data"]["caseUpdated"]["caseId"] == first["id"]
        async with db.transaction() as session:
            await tenants.revoke_role(
                session, SYSTEM, username=username, role=Role.PETITION_OFFICER,
                org_unit_path=city.path("c1"),
            )  # fmt: skip
        await register(on_a, officer, city, locationPath=city.path("c1/t1"))
        refusal = await stream.next()
        assert refusal["data"] is None
        assert refusal["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert (await stream.message())["type"] == "complete"


async def test_platform_staff_read_no_case_and_get_forbidden(servers, world):
    async with subscribed(servers[1], world.tokens["platform"], CASE_UPDATED) as stream:
        refusal = await stream.message()
        if refusal["type"] == "next":  # the refusal as a result, then the end
            assert refusal["payload"]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            refusal = await stream.message()
            assert refusal["type"] == "complete"
        else:
            assert refusal["type"] == "error"
            assert refusal["payload"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_art30_a_role_taken_inside_the_accused_unit_counts_from_the_next_event(
    servers, on_a, world, db
):
    b = servers[1]
    city = world.a
    username = unique(f"{city.slug}_root")
    async with db.transaction() as session:
        await tenants.create_user(
            session, SYSTEM, tenant=city.slug, username=username, display_name="root"
        )
        await tenants.assign_role(
            session, SYSTEM, username=username, role=Role.PETITION_OFFICER,
            org_unit_path=city.path(),
        )  # fmt: skip
    officer = city.token("officer")
    accusation = {"type": "ACCUSATION", "accusedUnitPath": city.path("c2")}
    async with subscribed(b, issue_token(username), CASE_UPDATED) as stream:
        await subscribers(b, 1)
        first = await register(on_a, officer, city, locationPath=city.path("c2/t1"), **accusation)
        assert (await stream.next())["data"]["caseUpdated"]["caseId"] == first["id"]
        async with db.transaction() as session:  # now also posted inside the accused unit
            await tenants.assign_role(
                session, SYSTEM, username=username, role=Role.PETITION_OFFICER,
                org_unit_path=city.path("c2/t1"),
            )  # fmt: skip
        await register(on_a, officer, city, locationPath=city.path("c2/t1"), **accusation)
        claim = await register(on_a, officer, city, locationPath=city.path("c2/t1"))
        assert (await stream.next())["data"]["caseUpdated"]["caseId"] == claim["id"]


# --- the connection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("init", "code"),
    [
        ({}, 4401),  # no credential
        ({"Authorization": "Bearer not-a-token"}, 4403),
        ({"Authorization": "ApiKey xf_nothing"}, 4403),
    ],
)
async def test_connection_init_without_a_good_credential_is_closed(servers, init, code):
    async with connection(servers[1], init) as ws:
        assert (await closed(ws))[0] == code


async def test_expired_token_in_connection_init_is_closed_4403(servers, world):
    username = f"{world.a.slug}_officer"
    async with connection(servers[1], {"Authorization": f"Bearer {expired(username)}"}) as ws:
        code, reason = await closed(ws)
    assert code == 4403
    assert "expired" in reason


def expired(username: str) -> str:
    return issue_token(username, ttl_seconds=-60)


async def test_connection_is_closed_when_its_token_expires(servers, world):
    token = issue_token(f"{world.a.slug}_officer", ttl_seconds=3)
    async with subscribed(servers[1], token, CASE_UPDATED) as stream:
        code, reason = await closed(stream.ws)
    assert code == 4403
    assert "expired" in reason


async def test_subscribe_before_connection_init_is_closed_4401(servers):
    async with connection(servers[1], None) as ws:
        payload = {"query": CASE_UPDATED}
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": payload}))
        assert (await closed(ws))[0] == 4401


async def test_only_subscriptions_run_over_the_socket(servers, world):
    async with subscribed(servers[1], world.a.token("officer"), "query { me { username } }") as s:
        refusal = await s.message()
    assert refusal["type"] == "error"
    assert refusal["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    "payload",
    [
        {"query": "subscription S { notificationReceived { id } }", "operationName": "Nope"},
        {
            "query": "subscription A { notificationReceived { id } } "
            "subscription B { notificationReceived { id } }"
        },
    ],
    ids=["unknown operationName", "two operations, no name"],
)
async def test_an_unclear_operation_over_the_socket_is_bad_user_input(servers, world, payload):
    """As over HTTP (OPERATION_SELECTION); it used to end with a bare ``complete``."""
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        await stream.ws.send(json.dumps({"type": "subscribe", "id": "x", "payload": payload}))
        refusal = await Stream(stream.ws, "x").message()
    assert refusal["type"] == "error", refusal
    extensions = refusal["payload"][0]["extensions"]
    assert extensions == {
        "code": "BAD_USER_INPUT",
        "field": "operationName",
        "reason": "OPERATION_SELECTION",
    }


MALFORMED = {
    "syntax error": ({"query": "subscription {"}, None, None),
    "operationName not a string": (
        {"query": "subscription A { notificationReceived { id } }", "operationName": 5},
        "operationName",
        "MALFORMED_BODY",
    ),
    "variables not an object": (
        {"query": "subscription { notificationReceived { id } }", "variables": [1, 2]},
        "variables",
        "MALFORMED_BODY",
    ),
    "extensions not an object": (
        {"query": "subscription { notificationReceived { id } }", "extensions": "x"},
        "extensions",
        "MALFORMED_BODY",
    ),
    "query null": ({"query": None}, "query", "MALFORMED_BODY"),
    "query not a string": ({"query": 5}, "query", "MALFORMED_BODY"),
    "fragments only": ({"query": "fragment F on Query { __typename }"}, None, None),
}


@pytest.mark.parametrize("name", MALFORMED)
async def test_a_malformed_subscribe_gets_a_coded_error_not_silence(servers, world, name):
    """What HTTP answers 400 BAD_USER_INPUT gets an ``error`` message with that code over
    the socket (third outside probe of issue 21: a bare complete, INTERNAL, or a crash)."""
    payload, field, reason = MALFORMED[name]
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        await stream.ws.send(json.dumps({"type": "subscribe", "id": "m", "payload": payload}))
        refusal = await Stream(stream.ws, "m").message()
    assert refusal["type"] == "error", refusal
    extensions = refusal["payload"][0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT", refusal
    if field:
        assert extensions.get("field") == field, refusal
    if reason:
        assert extensions.get("reason") == reason, refusal


@pytest.mark.parametrize(
    "message",
    [
        {"type": "subscribe", "id": "p", "payload": "subscription { x }"},
        {"type": "subscribe", "id": "p", "payload": None},
        [1, 2],
    ],
    ids=["payload a string", "payload null", "an array"],
)
async def test_a_message_that_is_no_object_closes_4400(servers, world, message):
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        await stream.ws.send(json.dumps(message))
        assert (await closed(stream.ws))[0] == 4400


@pytest.mark.parametrize(
    "text",
    [
        "[" * 2000 + "]" * 2000,  # deeper than the JSON decoder's recursion limit
        json.dumps({"type": "x" * 300}),  # a close reason quoting it: past 123 bytes
        json.dumps({"type": "信" * 100}),
        '{"type": "\\ud800"}',  # a lone surrogate in the quoted type
        json.dumps({"id": {"a": 1}, "type": "subscribe", "payload": {"query": CASE_UPDATED}}),
        json.dumps({"id": 1, "type": "subscribe", "payload": {"query": CASE_UPDATED}}),
        json.dumps({"id": [1], "type": "complete"}),
        json.dumps({"id": "no-payload", "type": "subscribe"}),
    ],
    ids=[
        "nested too deeply",
        "long unknown type",
        "wide unknown type",
        "surrogate type",
        "object id",
        "number id",
        "list id on complete",
        "no payload",
    ],
)
async def test_an_invalid_message_closes_4400_cleanly(servers, world, text):
    """Fourth outside probe of issue 21: each of these dropped the connection without a
    close frame (1006) and logged a traceback, or ran with a number for an id."""
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        await stream.ws.send(text)
        assert (await closed(stream.ws))[0] == 4400


async def test_a_token_that_is_not_ascii_is_refused_4403(servers):
    """A lone surrogate in the bearer token raised inside the JWT library (1006)."""
    async with connection(servers[1], None) as ws:
        await ws.send('{"type": "connection_init", "payload": {"Authorization": "Bearer \\ud800"}}')
        assert (await closed(ws))[0] == 4403


async def test_a_city_in_allow_list_mode_subscribes_only_to_its_listed_documents(servers, db):
    """A socket is no way around a city's allow-list (outside probe of issue 21): free
    text is FORBIDDEN as over HTTP; a listed document runs by its hash, with or without
    its text."""
    city = await build_city(db, unique("wsal"), unique("wsalp"))  # no cached mode anywhere
    listed = persisted.sha256_hex(CASE_UPDATED)
    async with db.transaction() as session:
        tenant_id = (await tenant_by_slug(session, city.slug)).id
        manifest = persisted.parse_manifest(json.dumps({listed: CASE_UPDATED}))
        await persisted.load_manifest(session, manifest, tenant_id=tenant_id)
        await persisted.set_allow_list_only(session, tenant_id, True)
    token = city.token("officer")
    async with subscribed(servers[1], token, NOTIFICATION_RECEIVED) as free_text:
        refusal = await free_text.message()
        assert refusal["type"] == "error", refusal
        assert refusal["payload"][0]["extensions"] == {
            "code": "FORBIDDEN",
            "reason": "PERSISTED_QUERY_REQUIRED",
        }
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": listed}}}
        await free_text.ws.send(json.dumps({"type": "subscribe", "id": "h", "payload": by_hash}))
        await Stream(free_text.ws, "h").nothing()  # accepted: no error, the socket open
        both = {"query": CASE_UPDATED, **by_hash}  # its text with its hash, as over HTTP
        await free_text.ws.send(json.dumps({"type": "subscribe", "id": "t", "payload": both}))
        await Stream(free_text.ws, "t").nothing()


async def test_a_message_over_the_limit_closes_the_connection_1009(servers, world):
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        big = {"query": CASE_UPDATED + " " * MAX_MESSAGE}
        await stream.ws.send(json.dumps({"type": "subscribe", "id": "2", "payload": big}))
        assert (await closed(stream.ws))[0] == 1009


async def test_subscriptions_per_connection_are_limited_with_a_code(servers, world):
    """The 21st subscription on one socket is refused with extensions.code (outside probe)."""
    async with subscribed(servers[1], world.a.token("officer"), CASE_UPDATED) as stream:
        for n in range(1, MAX_SUBSCRIPTIONS_PER_CONNECTION + 1):
            payload = {"query": CASE_UPDATED}
            await stream.ws.send(
                json.dumps({"type": "subscribe", "id": f"s{n}", "payload": payload})
            )
        refusal = json.loads(await asyncio.wait_for(stream.ws.recv(), WAIT))
        while refusal.get("type") != "error":
            refusal = json.loads(await asyncio.wait_for(stream.ws.recv(), WAIT))
    assert refusal["id"] == f"s{MAX_SUBSCRIPTIONS_PER_CONNECTION}"
    assert refusal["payload"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_connections_per_account_are_limited_4429(servers, world):
    token = world.a.token("leader")
    async with (
        subscribed(servers[1], token, CASE_UPDATED),
        subscribed(servers[1], token, CASE_UPDATED),
        subscribed(servers[1], token, CASE_UPDATED),
    ):
        auth = {"Authorization": f"Bearer {token}"}
        async with connection(servers[1], auth) as ws:
            assert (await closed(ws))[0] == 4429
    async with subscribed(servers[1], token, CASE_UPDATED):  # given back when closed
        pass


async def test_subscription_over_http_is_refused(on_a, world):
    resp = await on_a(CASE_UPDATED, token=world.a.token("officer"))
    assert resp.status == 400
    assert resp.codes == ["BAD_USER_INPUT"]
    assert "WebSocket" in resp.errors[0]["message"]
