"""Hostile GraphQL over HTTP: cost limit, body cap, JSON-only POST, no GET operations,
persisted queries and a city's allow-list mode (docs/graphql-limits.md)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import httpx
import pytest
from graphql import parse, validate
from typer.testing import CliRunner

from backend.app import create_app
from backend.authz.principal import SYSTEM
from backend.core import persisted
from backend.core.settings import Settings
from backend.schema import build_schema
from backend.schema.cost import operation_cost
from backend.tenants.service import tenant_by_slug
from tests.helpers import build_city, unique

ROOT = Path(__file__).resolve().parent.parent
ME = "{ me { username } }"
DEEP_LISTS = "{ orgUnits { children { children { children { children { path } } } } } }"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- cost ------------------------------------------------------------------------------


def cost_of(query: str, **variables: int) -> int:
    schema = build_schema()._schema
    document = parse(query)
    assert validate(schema, document) == []
    return operation_cost(schema, document, variables=variables, default_list_size=10)


def test_cost_model_counts_objects_by_page_size():
    assert cost_of("{ me { username } }") == 1
    assert cost_of("{ cases(first: 10) { totalCount edges { node { id } } } }") == 21
    assert cost_of("query($n: Int!) { cases(first: $n) { edges { node { id } } } }", n=200) == 401
    assert cost_of("{ orgUnits { path } }") == 10  # a list without `first`: 10 assumed
    assert cost_of(DEEP_LISTS) == 111110  # five nested lists of 10
    fragment = "{ ...F } fragment F on Query { me { tenant { slug } } }"
    assert cost_of(fragment) == 2


async def test_query_over_the_cost_limit_is_refused_before_execution(http, world):
    deeper = (
        "{ orgUnits { children { children { children { children { children { path } } } } } } }"
    )
    resp = await http.post("/graphql", json={"query": deeper}, headers=auth(world.a.token("admin")))
    assert resp.status_code == 400
    body = resp.json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] == 1111110
    assert error["extensions"]["maxCost"] == Settings().graphql_max_cost
    assert "cost" in error["message"]


async def test_page_size_from_a_variable_counts(http, world):
    page = "cases(first: $n) { edges { node { events { seq } } } }"
    query = "query($n: Int!) { " + " ".join(f"p{i}: {page}" for i in range(10)) + " }"
    token = auth(world.a.token("officer"))
    small = await http.post("/graphql", json={"query": query, "variables": {"n": 5}}, headers=token)
    assert small.status_code == 200 and "errors" not in small.json()
    huge = {"query": query, "variables": {"n": 200}}
    resp = await http.post("/graphql", json=huge, headers=token)
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["extensions"]["reason"] == "QUERY_TOO_COMPLEX"
    # a page over the largest any list serves is the list's own error, naming `first`
    over = {"query": "query($n: Int!) { " + page + " }", "variables": {"n": 100_000}}
    error = (await http.post("/graphql", json=over, headers=token)).json()["errors"][0]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "first",
    )


def _repo_documents() -> list[tuple[str, str]]:
    """Every GraphQL document written out in the tests and the docs."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path.name in (Path(__file__).name, "test_fuzz_graphql.py"):
            continue  # hostile on purpose
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{" in node.value:
                found.append((path.name, node.value))
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```graphql\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            found.append((path.name, block))
    return found


def test_every_query_of_the_repo_fits_the_default_limits():
    """The limits are tuned so nothing the tests and docs send is refused (at page size 200)."""
    settings = Settings()
    schema = build_schema(settings)._schema
    checked = 0
    for where, text in _repo_documents():
        try:
            document = parse(text, max_tokens=settings.graphql_max_tokens)
        except Exception:
            continue  # not a GraphQL document (or a deliberately hostile one)
        if validate(schema, document):
            continue
        for op in document.definitions:
            if getattr(op, "operation", None) is None:
                continue
            variables = {v.variable.name.value: 200 for v in op.variable_definitions or ()}
            name = op.name.value if op.name else None
            cost = operation_cost(
                schema,
                document,
                operation_name=name,
                variables=variables,
                default_list_size=settings.graphql_default_list_size,
            )
            assert cost <= settings.graphql_max_cost, (where, cost, text[:80])
            checked += 1
    assert checked > 50


# --- body size -------------------------------------------------------------------------


async def test_declared_oversized_body_is_413(http, world):
    padding = "x" * (Settings().max_body_bytes + 10)
    resp = await http.post(
        "/graphql",
        json={"query": ME, "variables": {"pad": padding}},
        headers=auth(world.a.token("officer")),
    )
    assert resp.status_code == 413
    error = resp.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == "BODY_TOO_LARGE"


async def test_chunked_body_is_cut_off_without_reading_it_all(app):
    """No Content-Length: the app stops at the cap; the sender's other chunks are never read."""
    chunk = b" " * 65536
    total_chunks = 100  # 6.5 MB on offer, the cap is 1 MB
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 413
    assert pulled <= Settings().max_body_bytes // len(chunk) + 2
    assert json.loads(sent[1]["body"])["errors"][0]["extensions"]["reason"] == "BODY_TOO_LARGE"


async def test_streamed_body_over_the_cap_is_413(http):
    async def body():
        for _ in range(40):
            yield b" " * 65536

    resp = await http.post("/graphql", content=body(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


# --- CSRF: JSON-only POST, no GET operations -----------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("application/x-www-form-urlencoded", "query=%7B+me+%7B+username+%7D+%7D"),
        (
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="query"\r\n\r\n{ me { username } }\r\n--x--\r\n',
        ),
        ("text/plain", '{"query": "{ me { username } }"}'),
        ("application/graphql", "{ me { username } }"),
    ],
)
async def test_non_json_posts_are_415(http, world, content_type, content):
    headers = {**auth(world.a.token("officer")), "content-type": content_type}
    resp = await http.post("/graphql", content=content, headers=headers)
    assert resp.status_code == 415
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_json_with_charset_is_accepted(http, world):
    headers = {**auth(world.a.token("officer")), "content-type": "application/json; charset=utf-8"}
    resp = await http.post("/graphql", content=json.dumps({"query": ME}), headers=headers)
    assert resp.status_code == 200 and resp.json()["data"]["me"]["username"]


@pytest.mark.parametrize(
    "query",
    [
        ME,
        'mutation { createOrgUnit(input: {parentPath: "/x", slug: "y", name: "y", level: COUNTY}) { path } }',
    ],
)
async def test_get_runs_no_operation(http, world, query):
    resp = await http.get("/graphql", params={"query": query}, headers=auth(world.a.token("admin")))
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_get_serves_graphiql_to_browsers_in_dev(http):
    resp = await http.get("/graphql", headers={"accept": "text/html"})
    assert resp.status_code == 200 and "graphiql" in resp.text.lower()


# --- persisted queries -----------------------------------------------------------------


@pytest.fixture(scope="module")
async def pq_cities(db):
    """Two cities of their own: allow-list mode must not leak into the shared world."""
    province = unique("pq")
    return await build_city(db, unique("pqa"), province), await build_city(
        db, unique("pqb"), province
    )


async def load(db, queries: list[str], tenant: str | None = None) -> None:
    entries = persisted.parse_manifest(json.dumps({persisted.sha256_hex(q): q for q in queries}))
    async with db.transaction() as session:
        tenant_id = (await tenant_by_slug(session, tenant)).id if tenant else None
        await persisted.load_manifest(session, entries, tenant_id=tenant_id)


async def set_mode(db, slug: str, on: bool) -> None:
    async with db.transaction() as session:
        await persisted.set_allow_list_only(session, (await tenant_by_slug(session, slug)).id, on)


def apq(query: str) -> dict:
    return {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": persisted.sha256_hex(query)}}
    }


async def test_persisted_query_by_hash_or_id(http, db, world):
    query = "query Me { me { username } }"
    await load(db, [query])
    headers = auth(world.a.token("officer"))
    for body in (
        apq(query),
        {"id": persisted.sha256_hex(query)},
        {"id": "sha256:" + persisted.sha256_hex(query)},
    ):
        resp = await http.post("/graphql", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["me"]["username"] == f"{world.a.slug}_officer"


async def test_unknown_hash_is_persisted_query_not_found(http, world):
    resp = await http.post(
        "/graphql",
        json=apq("{ me { tenant { slug } } } # never loaded"),
        headers=auth(world.a.token("officer")),
    )
    assert resp.status_code == 400
    error = resp.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"] == {"code": "NOT_FOUND", "reason": "PERSISTED_QUERY_NOT_FOUND"}


async def test_anonymous_callers_cannot_tell_stored_hashes_from_unknown_ones(http, db, world):
    """Authentication comes before the lookup: without a credential every persisted-query
    id — stored or unknown, with its text or another — gets the same 401,
    with no path naming the stored document's root field."""
    known = "query Known { me { username } }"
    await load(db, [known])
    bodies = [
        apq(known),
        apq("{ me { tenant { slug } } } # never loaded"),
        {"id": persisted.sha256_hex(known)},
        {"documentId": "sha256:" + "0" * 64},
        {**apq(known), "query": known},
        {**apq(known), "query": "{ me { tenant { slug } } }"},  # not its text
    ]
    answers = set()
    for body in bodies:
        resp = await http.post("/graphql", json=body)
        answers.add((resp.status_code, json.dumps(resp.json(), sort_keys=True)))
    [(status, answer)] = answers
    assert status == 401
    [error] = json.loads(answer)["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED" and "path" not in error
    # with a token the stored document still runs
    resp = await http.post("/graphql", json=apq(known), headers=auth(world.a.token("officer")))
    assert resp.json()["data"]["me"]["username"] == f"{world.a.slug}_officer"


async def test_hash_must_match_the_sent_document(http, world):
    body = {**apq("{ me { username } }"), "query": "{ me { tenant { slug } } }"}
    resp = await http.post("/graphql", json=body, headers=auth(world.a.token("officer")))
    assert resp.status_code == 400
    assert resp.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_allow_list_mode_is_per_city(http, db, pq_cities):
    mine, other = pq_cities
    allowed = "query Slug { me { tenant { slug } } }"
    await load(db, [allowed], tenant=mine.slug)
    await set_mode(db, mine.slug, True)
    try:
        strict, free = auth(mine.token("officer")), auth(other.token("officer"))
        resp = await http.post("/graphql", json={"query": ME}, headers=strict)
        assert resp.status_code == 403
        error = resp.json()["errors"][0]
        assert error["extensions"] == {"code": "FORBIDDEN", "reason": "PERSISTED_QUERY_REQUIRED"}
        by_hash = await http.post("/graphql", json=apq(allowed), headers=strict)
        assert by_hash.json()["data"]["me"]["tenant"]["slug"] == mine.slug
        with_text = await http.post(
            "/graphql", json={**apq(allowed), "query": allowed}, headers=strict
        )
        assert with_text.status_code == 200
        # the other city is not in allow-list mode and does not see this city's documents
        assert (await http.post("/graphql", json={"query": ME}, headers=free)).status_code == 200
        assert (await http.post("/graphql", json=apq(allowed), headers=free)).status_code == 400
    finally:
        await set_mode(db, mine.slug, False)
    resp = await http.post("/graphql", json={"query": ME}, headers=auth(mine.token("officer")))
    assert resp.status_code == 200


def test_manifest_hashes_are_checked():
    with pytest.raises(Exception, match="SHA-256"):
        persisted.parse_manifest(json.dumps({"0" * 64: "{ me { username } }"}))
    apollo = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": persisted.sha256_hex("{ a }"), "name": "A", "type": "query", "body": "{ a }"}
        ],
    }
    [entry] = persisted.parse_manifest(json.dumps(apollo))
    assert (entry.name, entry.query) == ("A", "{ a }")


def test_cli_loads_a_manifest_and_switches_the_mode(tmp_path, migrated):
    import asyncio

    from backend.cli import app as cli
    from backend.core.db import Database
    from backend.tenants.flows import onboard_tenant

    slug = unique("pqcli")

    async def make_tenant() -> None:
        db = Database()
        try:
            async with db.transaction() as session:
                await onboard_tenant(session, SYSTEM, slug=slug, name="CLI", province=unique("pp"))
        finally:
            await db.dispose()

    asyncio.run(make_tenant())
    query = "{ me { username } }"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({persisted.sha256_hex(query): query}))
    runner = CliRunner()
    result = runner.invoke(cli, ["persisted-queries", "load", str(manifest), "--tenant", slug])
    assert result.exit_code == 0, result.output
    assert "1 new of 1" in result.output
    again = runner.invoke(cli, ["persisted-queries", "load", str(manifest), "--tenant", slug])
    assert "0 new of 1" in again.output
    on = runner.invoke(cli, ["persisted-queries", "mode", "on", "--tenant", slug])
    assert on.exit_code == 0, on.output

    async def mode() -> bool:
        db = Database()
        try:
            async with db.transaction() as session:
                tenant = await tenant_by_slug(session, slug)
            persisted.invalidate_cache()
            return await persisted.allow_list_only(db, tenant.id)
        finally:
            await db.dispose()

    assert asyncio.run(mode()) is True
    runner.invoke(cli, ["persisted-queries", "mode", "off", "--tenant", slug])
    assert asyncio.run(mode()) is False


async def test_introspection_still_answers_in_dev(migrated):
    app = create_app(Settings(), run_jobs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.post("/graphql", json={"query": "{ __schema { queryType { name } } }"})
    await app.state.db.dispose()
    assert resp.json()["data"]["__schema"]["queryType"]["name"] == "Query"
