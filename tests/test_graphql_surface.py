"""The GraphQL surface itself: masking of unexpected errors, limits, introspection in prod."""

from __future__ import annotations

import httpx
from graphql import GraphQLError

from backend.app import create_app
from backend.core.errors import NotFound
from backend.core.settings import Settings, get_settings
from backend.schema.errors import format_error


def test_unexpected_exception_is_masked_as_internal_with_request_id():
    error = GraphQLError("boom", path=["cases"], original_error=RuntimeError("db password=x"))
    formatted = format_error(error, "req-1")
    assert formatted["message"] == "Internal server error"
    assert formatted["extensions"] == {"code": "INTERNAL", "requestId": "req-1"}
    assert "password" not in str(formatted)


def test_application_errors_keep_their_code_and_field():
    error = GraphQLError("x", path=["case"], original_error=NotFound("case 1 not found"))
    assert format_error(error, "r")["extensions"] == {"code": "NOT_FOUND"}


async def test_depth_limit_is_bad_user_input(gql, world):
    deep = "{ orgUnits { " + "children { " * 12 + "path" + " }" * 12 + " } }"
    resp = await gql(deep, token=world.a.token("officer"))
    assert resp.code == "BAD_USER_INPUT"
    assert "depth" in resp.errors[0]["message"]


async def test_alias_limit_is_bad_user_input(gql, world):
    many = "{ " + " ".join(f"a{i}: me {{ username }}" for i in range(40)) + " }"
    assert (await gql(many, token=world.a.token("officer"))).code == "BAD_USER_INPUT"


async def test_introspection_is_off_in_production(migrated):
    prod = Settings(env="prod", jwt_secret="p" * 40, database_url=get_settings().database_url)
    app = create_app(prod, run_jobs=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        resp = await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})
        page = await client.get("/graphql", headers={"accept": "text/html"})
    await app.state.db.dispose()
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert page.status_code == 404


async def test_get_requests_cannot_run_operations(http, world):
    resp = await http.get(
        "/graphql",
        params={"query": "{ me { username } }"},
        headers={"Authorization": f"Bearer {world.a.token('officer')}"},
    )
    assert resp.status_code in (400, 405)
