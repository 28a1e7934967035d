"""GraphQL over HTTP media types: ``application/graphql-response+json`` when the client
accepts it, with the spec's status codes; ``application/json`` as before.

With ``application/graphql-response+json`` (what Apollo Client 4, urql and graphql-http
ask for) a response that has ``data`` is 200 — field errors included — and a request
error (unparsable or invalid document, bad variables, refused credentials, body or
limits) has no ``data`` and a 4xx status, so clients read its errors instead of a
transport failure. The graphql-http audit runs against a real server in CI
(``scripts/frontend_check.py``).
"""

from __future__ import annotations

import uuid

import pytest

from backend.core.settings import Settings
from backend.web.errors import GRAPHQL_RESPONSE_JSON, JSON, media_type_for
from tests.test_rate_limits import client

APOLLO = "application/graphql-response+json,application/json;q=0.9"  # Apollo Client 4
URQL = "application/graphql-response+json, application/graphql+json, application/json"
ME = "{ me { username } }"
HIDDEN_CASE = '{ me { username } case(id: "' + str(uuid.UUID(int=7)) + '") { id } }'
# over the cost limit (built up, so the repo-wide "every document fits" check skips it)
DEEP = "{ orgUnits { " + "children { " * 5 + "path" + " }" * 5 + " } }"


def headers(accept: str | None, token: str | None = None) -> dict[str, str]:
    found = {"Accept": accept} if accept is not None else {}
    if token:
        found["Authorization"] = f"Bearer {token}"
    return found


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (APOLLO, GRAPHQL_RESPONSE_JSON),
        (URQL, GRAPHQL_RESPONSE_JSON),
        ("application/graphql-response+json", GRAPHQL_RESPONSE_JSON),
        ("application/json;q=0.5, application/graphql-response+json;q=0.8", GRAPHQL_RESPONSE_JSON),
        ("application/json, application/graphql-response+json;q=0.9", JSON),
        ("application/graphql-response+json;q=0", JSON),
        ("application/json", JSON),
        ("*/*", JSON),
        ("", JSON),
        (None, JSON),
    ],
)
def test_the_media_type_follows_the_accept_header(accept, expected):
    assert media_type_for(accept) == expected


async def test_an_answer_comes_in_the_media_type_the_client_accepts(http, world):
    token = world.a.token("officer")
    for accept, media_type in [(APOLLO, GRAPHQL_RESPONSE_JSON), ("application/json", JSON)]:
        resp = await http.post("/graphql", json={"query": ME}, headers=headers(accept, token))
        assert resp.status_code == 200
        assert resp.headers["content-type"] == media_type
        assert resp.json()["data"]["me"]["username"].endswith("_officer")


@pytest.mark.parametrize(
    "query",
    ["{ me { username", "{ noSuchField }", "query($id: ID!) { case(id: $id) { id } }"],
    ids=["unparsable", "invalid", "variable missing"],
)
async def test_request_errors_are_400_without_data_in_graphql_response_json(http, world, query):
    token = world.a.token("officer")
    resp = await http.post("/graphql", json={"query": query}, headers=headers(APOLLO, token))
    assert resp.status_code == 400
    assert resp.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = resp.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    # application/json keeps its answer: 200 with data null (graphql-http's SHOULD for it)
    legacy = await http.post("/graphql", json={"query": query}, headers=headers(None, token))
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == JSON
    assert legacy.json()["data"] is None


async def test_a_field_error_is_200_with_data_in_graphql_response_json(http, world):
    resp = await http.post(
        "/graphql", json={"query": HIDDEN_CASE}, headers=headers(APOLLO, world.a.token("officer"))
    )
    assert resp.status_code == 200
    assert resp.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    body = resp.json()
    assert "data" in body  # executed: the (non-null) root was nulled by the miss
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]


async def test_refusals_keep_their_status_and_drop_data_in_graphql_response_json(http, world):
    token = world.a.token("admin")
    refused = {
        401: await http.post("/graphql", json={"query": ME}, headers=headers(APOLLO)),
        # a bad token is refused by the authentication middleware, before GraphQL
        402: await http.post("/graphql", json={"query": ME}, headers=headers(APOLLO, "x.y.z")),
        400: await http.post("/graphql", json={"query": DEEP}, headers=headers(APOLLO, token)),
        415: await http.post(
            "/graphql",
            content=b'{"query": "{ me { username } }"}',
            headers={**headers(APOLLO, token), "Content-Type": "text/plain"},
        ),
        413: await http.post(
            "/graphql",
            content=b" " * (Settings().max_body_bytes + 1),
            headers={**headers(APOLLO, token), "Content-Type": "application/json"},
        ),
        405: await http.get("/graphql", headers=headers(APOLLO)),
    }
    for status, resp in refused.items():
        assert resp.status_code == (401 if status == 402 else status), resp.text
        assert resp.headers["content-type"] == GRAPHQL_RESPONSE_JSON, status
        assert "data" not in resp.json(), status
        assert resp.json()["errors"][0]["extensions"]["code"], status
    assert refused[400].json()["errors"][0]["extensions"]["reason"] == "QUERY_TOO_COMPLEX"
    # the same refusals in application/json: same statuses, data null
    legacy = await http.post("/graphql", json={"query": ME}, headers=headers("application/json"))
    assert (legacy.status_code, legacy.headers["content-type"]) == (401, JSON)
    assert legacy.json()["data"] is None


async def test_rate_limited_is_429_without_data_in_graphql_response_json(world):
    async with client(None, rate_limit_user=1) as http:
        token = world.a.token("leader")
        first = await http.post("/graphql", json={"query": ME}, headers=headers(APOLLO, token))
        assert first.status_code == 200
        resp = await http.post("/graphql", json={"query": ME}, headers=headers(APOLLO, token))
    assert resp.status_code == 429
    assert resp.headers["content-type"] == GRAPHQL_RESPONSE_JSON
    assert resp.headers["retry-after"]
    assert "data" not in resp.json()
    assert resp.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
