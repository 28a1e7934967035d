"""Hostile-input fuzzing of the whole GraphQL surface (issue 10, item 2).

``hypothesis-graphql`` generates schema-valid queries and mutations from the app's own
SDL; each one is sent over HTTP with the token of one of six principals of city A
(city admin, petition officer at a county, grid worker, evaluator, the provincial
supervisor of A's province, a platform admin). City B, in another province, is planted
with marker data: cases (an accusation, a routed one, a rated one with an evaluation
panel), units and users with marker names, shifts, in-app notifications. ID arguments
are drawn from the real ids of *both* cities (and random UUIDs/garbage), string
arguments from both cities' unit paths, usernames and slugs (and random text), so
cross-tenant references are tried on every field that takes one.

Every response must satisfy:

- HTTP status below 500;
- no error with ``extensions.code == "INTERNAL"``;
- no marker of city B in the body that the request did not itself contain (an error
  message may echo what the caller sent; anything else of B's is a leak). Platform
  staff administer every tenant, so B's directory (tenant, units, users) is not a leak
  for them — B's case content, notifications, panels and shifts still are.

String arguments also draw hostile text (NUL, lone surrogates, control characters), and
two more tests send what no schema-valid document holds (issue 18, item 6): whole bodies
that are not one GraphQL request (any JSON value, raw bytes, nesting 50,000 deep) and
hostile bytes in variables and in the REST routes' parameters — each must be answered
below 500 (400 for the malformed ones), never ``INTERNAL``. ``Date`` and ``DateTime``
arguments, and the REST routes' ``from``/``to``, also draw dates from all of Python's
calendar, its edges (0001-01-01, 9999-12-31) and the supported range's most of all (issue 18,
probe finding 4: those overflowed in date arithmetic).

CI runs a bounded number of examples per test (``XF_FUZZ_EXAMPLES``, default 100; the
file takes well under a minute on two cores). The longer run::

    XF_FUZZ_EXAMPLES=3000 uv run pytest tests/test_fuzz_graphql.py -q -p no:randomly

(≈ 6,000 requests; run it on PostgreSQL with ``XF_DATABASE_URL`` too). Hypothesis
shrinks a failure to a minimal document and prints it.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import graphql
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import mutations, nodes, queries
from sqlalchemy import select

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.cases.categories import DEFAULT_CATEGORIES
from backend.core.clock import now
from backend.core.db import Base, Database, TenantScope
from backend.notifications.service import enqueue
from backend.schema import sdl
from backend.tenants import service
from backend.tenants.models import OrgUnitLevel, Province, Tenant
from tests.helpers import UNITS, USERS, City, build_city, create_supervisors, id_number, unique

EXAMPLES = int(os.environ.get("XF_FUZZ_EXAMPLES", "100"))
ROLES = ["admin", "c1_officer", "grid", "evaluator", "sup", "platform"]

REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) { id version } }"""
STEP = "mutation($i: {T}!) { {m}(input: $i) { id version } }"


@dataclass
class Arena:
    home: City
    foreign: City
    tokens: dict[str, str]
    ids: list[str]  # real ids of both cities, for ID arguments
    strings: list[str]  # paths, usernames, slugs of both cities, for String arguments
    leaks_always: set[str] = field(default_factory=set)  # B's content: never visible
    leaks_directory: set[str] = field(default_factory=set)  # B's tenant/units/users
    strategies: dict[str, st.SearchStrategy[str]] = field(default_factory=dict)

    def markers(self, role: str) -> set[str]:
        if role == "platform":
            return self.leaks_always
        return self.leaks_always | self.leaks_directory


# --- planting -------------------------------------------------------------------------


async def _gql_ok(gql, doc: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    return (await gql(doc, variables, token=token)).ok()


async def _step(gql, token: str, name: str, case: dict[str, Any], **extra: Any) -> dict:
    doc = STEP.replace("{T}", name[0].upper() + name[1:] + "Input").replace("{m}", name)
    i = {"caseId": case["id"], "version": case["version"], **extra}
    return (await _gql_ok(gql, doc, {"i": i}, token))[name]


async def _register(gql, city: City, tag: str, rel: str, n: int, **extra: Any) -> dict:
    data = {
        "clientKey": unique("fz-"),
        "channel": "VISIT",
        "type": "CLAIM",
        "category": "land",
        "subject": f"{tag}case subject {n}",
        "content": f"{tag}case content {n}",
        "petitioner": {
            "name": f"{tag}case p{n}",
            "phone": f"1390000{n:04d}",
            "idNumber": id_number(n),
        },
        "locationPath": city.path(rel),
        **extra,
    }
    return (await _gql_ok(gql, REGISTER, {"i": data}, city.token("officer")))["registerCase"]


async def _plant(db: Database, gql, city: City, tag: str) -> None:
    """Cases, a panel, shifts, notifications and marker-named units/users in ``city``."""
    async with db.transaction() as session:
        await service.create_org_unit(
            session, SYSTEM, parent_path=city.path("c1"), slug="mk",
            name=f"{tag}dir unit", level=OrgUnitLevel.TOWNSHIP,
        )  # fmt: skip
        username = f"{city.slug}_mk"
        await service.create_user(
            session, SYSTEM, tenant=city.slug, username=username,
            display_name=f"{tag}dir person", phone="13900009999",
        )  # fmt: skip
        await service.assign_role(
            session, SYSTEM, username=username, role=Role.LEADER, org_unit_path=city.path("c1/mk")
        )
    officer = city.token("officer")
    await _register(gql, city, tag, "c1/t1", 1)
    await _register(
        gql, city, tag, "c1/t1", 2, type="ACCUSATION", accusedUnitPath=city.path("c1"),
        accusedUsername=f"{city.slug}_c1_leader",
    )  # fmt: skip
    routed = await _register(gql, city, tag, "c2/t1", 3)
    await _step(gql, officer, "routeCase", routed, toUnitPath=city.path("dept"), mode="ASSIGN")
    rated = await _register(gql, city, tag, "c1", 4)
    rated = await _step(gql, officer, "acceptCase", rated)
    rated = await _step(gql, officer, "replyCase", rated, opinion=f"{tag}case opinion")
    rated = await _step(gql, officer, "rateSatisfaction", rated, rating="DISSATISFIED")
    add = "mutation($i: AddEvaluatorInput!) { addEvaluator(input: $i) { id } }"
    enrol = {"username": f"{city.slug}_evaluator", "category": "LAWYER", "note": f"{tag}case note"}
    await _gql_ok(gql, add, {"i": enrol}, city.token("admin"))
    draw = "mutation($i: DrawEvaluationPanelInput!) { drawEvaluationPanel(input: $i) { id } }"
    await _gql_ok(gql, draw, {"i": {"caseId": rated["id"], "size": 1, "seed": 7}}, officer)
    rule = "mutation($i: SetRosterRuleInput!) { setRosterRule(input: $i) { id } }"
    rule_in = {"unitPath": city.path(), "kind": "RECEPTION_HALL", "location": f"{tag}case hall"}
    await _gql_ok(gql, rule, {"i": rule_in}, city.token("admin"))
    plan = "mutation($i: PlanReceptionDaysInput!) { planReceptionDays(input: $i) { created } }"
    month = now().astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m")
    await _gql_ok(gql, plan, {"i": {"unitPath": city.path(), "month": month}}, city.token("admin"))
    async with db.transaction() as session:
        tenant = await service.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        for short in ("officer", "admin", "c1_officer", "evaluator", "grid"):
            user = await service.account_by_username(session, f"{city.slug}_{short}")
            await enqueue(
                session, tenant_id=tenant.id, recipient_id=user.id, kind="reminder",
                subject=f"{tag}case notice", body=f"{tag}case body", dedupe_key=unique("fz"),
            )  # fmt: skip


DIRECTORY_TABLES = {"accounts", "org_units", "users", "role_assignments"}


async def _row_ids(db: Database, tenant_id: uuid.UUID) -> tuple[set[str], set[str]]:
    """Every row id of every tenant table of one tenant: (directory rows, other rows)."""
    directory: set[str] = set()
    content: set[str] = set()
    async with db.session(TenantScope.of([tenant_id])) as session:
        for table in Base.metadata.sorted_tables:
            if "tenant_id" not in table.c or "id" not in table.c:
                continue
            rows = await session.execute(select(table.c.id).where(table.c.tenant_id == tenant_id))
            bucket = directory if table.name in DIRECTORY_TABLES else content
            bucket |= {str(r[0]) for r in rows}
    return directory, content


async def _tenant(db: Database, city: City) -> tuple[uuid.UUID, set[str]]:
    """The tenant id and the ids/names of the tenant and its province."""
    async with db.transaction() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == city.slug))
        province = await session.get(Province, tenant.province_id)
        return tenant.id, {str(tenant.id), str(province.id), tenant.name}


def _paths(city: City) -> list[str]:
    return [city.path(), *(city.path(rel) for rel, _ in UNITS), city.path("c1/mk")]


def _users(city: City) -> list[str]:
    return [*(f"{city.slug}_{short}" for short, _, _ in USERS), f"{city.slug}_mk"]


@pytest.fixture(scope="module")
async def arena(db: Database, gql) -> Arena:
    tag = "zq" + uuid.uuid4().hex[:10]
    home = await build_city(db, unique("fa"), unique("fap"))
    foreign = await build_city(db, unique(tag), unique("fbp"))
    await _plant(db, gql, home, "home")
    await _plant(db, gql, foreign, tag)
    tokens = {who: home.token(who) for who in ROLES if who in home.tokens}
    tokens |= await create_supervisors(db, {"sup": home.province})
    async with db.transaction() as session:
        platform = unique("platform")
        await service.create_platform_admin(session, username=platform)
        tokens["platform"] = issue_token(platform)
    home_tid, _ = await _tenant(db, home)
    foreign_tid, foreign_names = await _tenant(db, foreign)
    home_dir, home_rows = await _row_ids(db, home_tid)
    foreign_dir, foreign_rows = await _row_ids(db, foreign_tid)
    strings = [
        *_paths(home), *_paths(foreign), *_users(home), *_users(foreign),
        home.slug, foreign.slug, home.province, foreign.province,
        *(code for code, _ in DEFAULT_CATEGORIES[:3]), "2026-05", "09:00",
    ]  # fmt: skip
    ids = sorted(
        home_dir | home_rows | foreign_dir | foreign_rows | {str(home_tid), str(foreign_tid)}
    )
    arena = Arena(home, foreign, tokens, ids, strings)
    arena.leaks_always = {f"{tag}case"} | foreign_rows
    arena.leaks_directory = (
        {f"{tag}dir"}
        | foreign_names
        | foreign_dir
        | set(_paths(foreign)[1:])
        | set(_users(foreign))
    )
    return arena


# --- strategies -----------------------------------------------------------------------


# Characters no database column stores (NUL: PostgreSQL; lone surrogates: UTF-8) and others
# that break naive code (controls, line/paragraph separators, a BOM, a replacement char).
HOSTILE_CHARS = ["\x00", "\ud800", "\udfff", "\x01", "\x1f", "\x7f", "\u2028", "\ufeff", "\ufffd"]
hostile_text = st.builds(
    lambda before, char, after: before + char + after,
    st.text(max_size=4),
    st.sampled_from(HOSTILE_CHARS),
    st.text(alphabet=st.one_of(st.sampled_from(HOSTILE_CHARS), st.characters()), max_size=4),
)


# Dates anywhere in Python's calendar, the edges most of all (0001-01-01, 9999-12-31 and
# the supported range's own: issue 18, probe finding 4 — they used to overflow in date
# arithmetic and time-zone conversion), and instants there with offsets up to ±23:59.
EDGE_DATES = [date.min, date.min + timedelta(days=1), date(1989, 12, 31), date(1990, 1, 1),
              date(2100, 12, 31), date(2101, 1, 1), date.max - timedelta(days=1), date.max]  # fmt: skip
extreme_dates = st.one_of(st.sampled_from(EDGE_DATES), st.dates())
extreme_moments = st.builds(
    lambda day, hour, offset: datetime.combine(day, datetime.min.time()).replace(
        hour=hour, tzinfo=timezone(timedelta(minutes=offset))
    ),
    extreme_dates,
    st.sampled_from([0, 12, 23]),
    st.sampled_from([-(23 * 60 + 59), -300, 0, 480, 23 * 60 + 59]),
)


def scalars(arena: Arena) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    text = st.one_of(st.text(max_size=12), hostile_text)
    ids = st.one_of(
        st.sampled_from(arena.ids), st.uuids().map(str), text, st.just(str(uuid.UUID(int=0)))
    )
    strings = st.one_of(st.sampled_from(arena.strings), text)
    dates = st.one_of(st.dates(date(2019, 1, 1), date(2031, 12, 31)), extreme_dates).map(
        date.isoformat
    )
    moments = st.one_of(
        st.datetimes(
            datetime(2019, 1, 1), datetime(2031, 12, 31), timezones=st.sampled_from([UTC, None])
        ),
        extreme_moments,
    ).map(datetime.isoformat)
    json_values = st.one_of(st.integers(-(2**31), 2**31 - 1).map(nodes.Int), text.map(nodes.String))
    return {
        "ID": st.one_of(st.sampled_from(arena.ids), ids).map(nodes.String),
        "String": strings.map(nodes.String),
        "Date": st.one_of(dates, text).map(nodes.String),
        "DateTime": st.one_of(moments, text).map(nodes.String),
        "JSON": json_values,
    }


# --- the checks -----------------------------------------------------------------------


async def send_and_check(gql, arena: Arena, role: str, document: str) -> None:
    resp = await gql.http.post(
        "/graphql",
        # json.dumps escapes as any client would (\ud800: httpx's json= cannot encode it)
        content=json.dumps({"query": document, "variables": {}}).encode(),
        headers={
            "Authorization": f"Bearer {arena.tokens[role]}",
            "content-type": "application/json",
        },
    )
    assert resp.status_code < 500, (role, document, resp.text)
    body = resp.json()
    internal = [
        e for e in body.get("errors") or [] if e.get("extensions", {}).get("code") == "INTERNAL"
    ]
    assert not internal, (role, document, internal)
    # the outcome mix, shown by --hypothesis-show-statistics
    codes = sorted({str(e.get("extensions", {}).get("code")) for e in body.get("errors") or []})
    event(f"{resp.status_code} {' '.join(codes) or 'no error'}")
    text = json.dumps(body, ensure_ascii=False)
    leaked = {m for m in arena.markers(role) if m in text and m not in document}
    assert not leaked, (role, document, leaked, text[:2000])


def documents(arena: Arena, kind: str) -> st.SearchStrategy[str]:
    """Whole-schema documents, and as often documents of one root field: one refused
    non-null field nulls the whole ``data``, which would hide a leak in its neighbours."""
    if kind not in arena.strategies:
        schema = graphql.build_schema(sdl())
        make, root = (
            (queries, schema.query_type) if kind == "query" else (mutations, schema.mutation_type)
        )
        custom = scalars(arena)
        single = [
            make(schema, fields=[name], custom_scalars=custom) for name in sorted(root.fields)
        ]
        arena.strategies[kind] = st.one_of(st.one_of(single), make(schema, custom_scalars=custom))
    return arena.strategies[kind]


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def test_the_leak_detector_sees_the_foreign_city_from_inside(gql, arena):
    """Control: the markers are real — B's own officer reads them in its city's cases."""
    document = "{ cases(first: 50) { edges { node { id subject petitioner { name } } } } }"
    resp = await gql(document, token=arena.foreign.token("officer"))
    text = json.dumps(resp.ok(), ensure_ascii=False)
    assert {m for m in arena.leaks_always if m in text}, text


@FUZZ
@given(data=st.data())
async def test_fuzzed_queries_never_fail_internally_or_leak_another_city(gql, arena, data):
    role = data.draw(st.sampled_from(ROLES), label="role")
    document = data.draw(documents(arena, "query"), label="query")
    await send_and_check(gql, arena, role, document)


@FUZZ
@given(data=st.data())
async def test_fuzzed_mutations_never_fail_internally_or_leak_another_city(gql, arena, data):
    role = data.draw(st.sampled_from(ROLES), label="role")
    document = data.draw(documents(arena, "mutation"), label="mutation")
    await send_and_check(gql, arena, role, document)


# --- dates at the calendar's edges (issue 18, probe finding 4) ---------------------------


def _takes_a_date(arg_type: Any, seen: set[str] | None = None) -> bool:
    """Whether an argument of ``arg_type`` holds a Date or DateTime, at any depth."""
    seen = seen if seen is not None else set()
    named = graphql.get_named_type(arg_type)
    if named.name in ("Date", "DateTime"):
        return True
    if isinstance(named, graphql.GraphQLInputObjectType) and named.name not in seen:
        seen.add(named.name)
        return any(_takes_a_date(f.type, seen) for f in named.fields.values())
    return False


def edge_date_documents(arena: Arena) -> st.SearchStrategy[str]:
    """Documents of one root field that takes a date, every date drawn at the calendar's
    edges: the whole-schema strategies rarely pick these fields with such dates."""
    if "dates" not in arena.strategies:
        schema = graphql.build_schema(sdl())
        custom = scalars(arena) | {
            "Date": extreme_dates.map(date.isoformat).map(nodes.String),
            "DateTime": extreme_moments.map(datetime.isoformat).map(nodes.String),
        }
        choices = []
        for make, root in ((queries, schema.query_type), (mutations, schema.mutation_type)):
            for name, root_field in sorted(root.fields.items()):
                if any(_takes_a_date(a.type) for a in root_field.args.values()):
                    choices.append(make(schema, fields=[name], custom_scalars=custom))
        arena.strategies["dates"] = st.one_of(choices)
    return arena.strategies["dates"]


@FUZZ
@given(data=st.data())
async def test_fuzzed_dates_at_the_calendars_edges_are_refused_cleanly(gql, arena, data):
    role = data.draw(st.sampled_from(ROLES), label="role")
    document = data.draw(edge_date_documents(arena), label="document")
    await send_and_check(gql, arena, role, document)


# --- bodies and bytes no schema-valid document holds (issue 18, item 6) -------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
              hostile_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)  # fmt: skip
HOSTILE_FILTERS = ["search", "leader", "tenant", "unitPath"]
SEARCH = "query($f: CaseFilter) { cases(filter: $f, first: 1) { totalCount } }"


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


bodies = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),  # any JSON value, mostly not a request
    st.binary(max_size=64),  # not JSON, or not UTF-8
    st.integers(900, 60_000).map(_deep),  # nested past the decoder's recursion limit
    st.builds(  # a request with hostile text in a variable
        lambda key, value: json.dumps({"query": SEARCH, "variables": {"f": {key: value}}}).encode(),
        st.sampled_from(HOSTILE_FILTERS),
        hostile_text,
    ),
    st.builds(  # a request whose fields have the wrong types
        lambda key, value: json.dumps({"query": "{ me { username } }", key: value}).encode(),
        st.sampled_from(["query", "variables", "operationName", "extensions"]),
        json_values,
    ),
)


def _assert_clean(resp: Any, what: Any) -> None:
    assert resp.status_code < 500, (what, resp.status_code, resp.text[:500])
    if not resp.headers.get("content-type", "").startswith("application/json"):
        event(f"{resp.status_code} {resp.headers.get('content-type')}")
        return  # a download
    body = resp.json()
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    assert "INTERNAL" not in codes, (what, body)
    if resp.status_code == 400:
        assert codes == {"BAD_USER_INPUT"}, (what, body)
    event(f"{resp.status_code} {' '.join(sorted(str(c) for c in codes)) or 'no error'}")


@FUZZ
@given(data=st.data())
async def test_fuzzed_bodies_and_bytes_are_refused_cleanly(gql, arena, data):
    role = data.draw(st.sampled_from([None, *ROLES]), label="role")
    body = data.draw(bodies, label="body")
    headers = {"content-type": "application/json"}
    if role:
        headers["Authorization"] = f"Bearer {arena.tokens[role]}"
    resp = await gql.http.post("/graphql", content=body, headers=headers)
    _assert_clean(resp, (role, body[:200]))


REST = ["/exports/cases.csv?{q}", "/exports/statistics.csv?from=2026-01-01&to=2026-01-31&{q}",
        "/exports/statistics.csv?{q}", "/rosters/{p}.ics?{q}", "/reports/{p}.html"]  # fmt: skip


@FUZZ
@given(data=st.data())
async def test_fuzzed_bytes_in_rest_parameters_are_refused_cleanly(gql, arena, data):
    from urllib.parse import quote

    role = data.draw(st.sampled_from([r for r in ROLES if r != "platform"]), label="role")
    raw = data.draw(
        st.one_of(hostile_text, st.binary(max_size=12), extreme_dates.map(date.isoformat)),
        label="value",
    )
    encoded = (
        quote(raw, safe="", errors="surrogatepass") if isinstance(raw, str) else quote(raw, safe="")
    )
    name = data.draw(
        st.sampled_from(["tenant", "unitPath", "status", "type", "from", "to", "masked"])
    )
    url = data.draw(st.sampled_from(REST)).format(q=f"{name}={encoded}", p=encoded or "x")
    headers = {"Authorization": f"Bearer {arena.tokens[role]}"}
    resp = await gql.http.get(url, headers=headers)
    _assert_clean(resp, (role, url))


DATED_REST = ["/exports/cases.csv", "/exports/statistics.csv", "/exports/statistics.xlsx",
              "/rosters/{p}.ics"]  # fmt: skip


@FUZZ
@given(data=st.data())
async def test_fuzzed_dates_in_rest_parameters_are_refused_cleanly(gql, arena, data):
    """``from``/``to`` of every route that takes dates, drawn at the calendar's edges."""
    role = data.draw(st.sampled_from([r for r in ROLES if r != "platform"]), label="role")
    route = data.draw(st.sampled_from(DATED_REST)).format(p=arena.home.path().lstrip("/"))
    params = {
        name: value.isoformat()
        for name in ("from", "to")
        if (value := data.draw(st.one_of(st.none(), extreme_dates), label=name)) is not None
    }
    headers = {"Authorization": f"Bearer {arena.tokens[role]}"}
    resp = await gql.http.get(route, params=params, headers=headers)
    _assert_clean(resp, (role, route, params))
