"""Compiled reads (backend/cases/compiled.py) answer exactly what the resolvers answer.

A differential test: many random selections of ``cases``, ``case(id)`` and
``warningBoard { cases }`` — any mix of Case, OrgUnit, Leader, Deadline, CaseEvent
fields, aliases, fragments, ``@skip``/``@include``, ``__typename``, filters, cursors and
bad arguments — each sent twice over HTTP by the same reader, once as served (compiled)
and once with ``XF_COMPILED_READS`` off, and the two JSON bodies must be identical as
text (values, nulls, key order, ``totalCount``, ``pageInfo``, masking, errors). The
readers cover the read predicate's branches: city officer and leader, a member of the
accused unit of three accusations (Art. 30), a department handler, a grid worker, an
officer of another city and the provincial supervisor.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from backend.authz.principal import SYSTEM
from backend.authz.tokens import issue_token
from backend.cases import compiled as sql
from backend.tenants import service
from tests.case_helpers import iso, register, step_brief
from tests.clocks import sh, ticking
from tests.helpers import City, build_city, unique
from tests.test_case_query_count import statements

# compiled reads are off on a Citus coordinator (cases/compiled.runs_here): the
# resolvers answer there, and the rest of the suite covers them
pytestmark = pytest.mark.citus_incompatible(reason="compiled reads are off on Citus")

READERS = ["officer", "leader", "c1_officer", "handler", "grid", "other", "sup"]
UNITS = ["c1/t1", "c1", "c2/t1", "dept", "c2", "c1/t1/v1"]

CASE_SCALARS = [
    "id",
    "number",
    "status",
    "type",
    "channel",
    "category",
    "subject",
    "content",
    "version",
    "receivedAt",
    "dueAt",
    "warningColor",
    "repeatCount",
    "skipLevel",
    "headCount",
    "tags",
    "priority",
    "onHold",
    "replyOpinion",
    "rating",
    "resolution",
    "extensionDays",
    "extensionApproved",
    "accusedUnitPath",
    "accusedUsername",
]
NESTED = {
    "holderUnit": ["id", "path", "slug", "name", "level", "depth"],
    "locationUnit": ["id", "path", "slug", "name", "level", "depth"],
    "leader": ["username", "displayName"],
    "firstReceiver": ["username", "displayName"],
    "deadlines": [
        "step",
        "status",
        "startedAt",
        "dueDate",
        "dueAt",
        "warningColor",
        "rule",
        "note",
    ],
    "events": ["seq", "kind", "at", "fromStatus", "toStatus", "reason", "data", "hash"],
}


@pytest.fixture(scope="module")
async def world(db, gql) -> dict[str, Any]:
    """A city with 30 cases over six units (three accusations against ``c1``, one naming
    ``c1_officer``), some routed to ``c2`` or the department, some with a 包案 leader, one
    registered by the grid worker, a second city with its own cases, and the province's
    supervisor."""
    city = await build_city(db, unique("cr"), unique("crp"))
    other = await build_city(db, unique("co"), city.province)
    officer, leader = city.token("officer"), city.token("leader")
    cases: list[dict[str, Any]] = []
    with ticking(sh(2026, 3, 2, 9)):
        for n in range(30):
            overrides: dict[str, Any] = {
                "locationPath": city.path(UNITS[n % len(UNITS)]),
                "receivedAt": iso(sh(2026, 2, 1 + n % 27, 8 + n % 9)),
                "subject": f"compiled {n}",
                "tags": ["land", f"t{n % 3}"] if n % 2 else [],
                "channel": ["VISIT", "LETTER", "PHONE", "ONLINE"][n % 4],
            }
            if n % 10 == 3:
                overrides |= {"type": "ACCUSATION", "accusedUnitPath": city.path("c1")}
            if n == 13:
                overrides["accusedUsername"] = f"{city.slug}_c1_officer"
            cases.append(await register(gql, officer, city, **overrides))
        for n, case in enumerate(cases[-8:]):
            if n % 2:
                to = city.path("c2" if n % 4 == 1 else "dept")
                await step_brief(gql, officer, "routeCase", case, toUnitPath=to, mode="TRANSFER")
            else:
                await step_brief(
                    gql, leader, "assignCaseLeader", case, username=f"{city.slug}_leader"
                )
        grid = city.path("c1/t1/v1/g1")
        await register(gql, city.token("grid"), city, locationPath=grid, subject="by the grid")
        for n in range(3):
            await register(gql, other.token("officer"), other, subject=f"other {n}")
    username = unique("sup")
    async with db.transaction() as session:
        await service.create_provincial_supervisor(
            session, SYSTEM, username=username, display_name="sup", province=city.province
        )
    tokens = {who: city.token(who) for who in READERS if who not in ("other", "sup")}
    tokens |= {"other": other.token("officer"), "sup": issue_token(username)}
    return {"city": city, "tokens": tokens, "ids": [c["id"] for c in cases]}


# --- random documents ---------------------------------------------------------------------


def _alias(rng: random.Random, name: str) -> str:
    return f"{name}_{rng.randrange(3)}: {name}" if rng.random() < 0.15 else name


def _directive(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.05:
        return " @skip(if: true)"
    if r < 0.10:
        return " @include(if: false)"
    if r < 0.15:
        return " @include(if: true)"
    return ""


def case_selection(rng: random.Random, *, compilable: bool = True) -> str:
    parts = [
        f"{_alias(rng, f)}{_directive(rng)}" for f in rng.sample(CASE_SCALARS, rng.randrange(1, 10))
    ]
    for name, fields in NESTED.items():
        if rng.random() < 0.4:
            inner = " ".join(rng.sample(fields, rng.randrange(1, len(fields) + 1)))
            if name == "events" and rng.random() < 0.5:
                inner += " actor { username __typename }"
            if rng.random() < 0.2:
                inner += " __typename"
            parts.append(f"{_alias(rng, name)} {{ {inner} }}")
    if rng.random() < 0.2:
        parts.append("__typename")
    if rng.random() < 0.2:  # the same key twice: merged, as graphql-core merges it
        parts.append(f"holderUnit {{ path }} holderUnit {{ name }} {rng.choice(CASE_SCALARS)}")
    if rng.random() < 0.2:
        parts.append("... on Case { number status }")
    if rng.random() < 0.1:
        parts.append("... on Node { id }")
    if not compilable:
        parts.append(
            rng.choice(
                [
                    "petitioner { name phone idNumber masked }",
                    "holderUnit { children { path } }",
                ]
            )
        )
    rng.shuffle(parts)
    return " ".join(parts)


def connection_selection(rng: random.Random, node: str) -> str:
    parts = []
    if rng.random() < 0.8:
        parts.append("totalCount")
    if rng.random() < 0.7:
        parts.append(
            rng.choice(
                [
                    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }",
                    "pageInfo { endCursor __typename startCursor }",
                    "p: pageInfo { hasPreviousPage hasNextPage }",
                ]
            )
        )
    edges = [f"node {{ {node} }}"]
    if rng.random() < 0.6:
        edges.append("cursor")
    if rng.random() < 0.1:
        edges.append("__typename")
    if rng.random() < 0.1:
        edges.append("other: node { id }")
    parts.append(f"edges {{ {' '.join(edges)} }}")
    if rng.random() < 0.1:
        parts.append("__typename")
    rng.shuffle(parts)
    return " ".join(parts)


def case_filter(rng: random.Random, city: City) -> dict[str, Any]:
    f: dict[str, Any] = {}
    if rng.random() < 0.3:
        f["unitPath"] = city.path(rng.choice(UNITS))
    if rng.random() < 0.2:
        f["status"] = rng.choice(["REGISTERED", "ROUTED", "ACCEPTED"])
    if rng.random() < 0.2:
        f["type"] = rng.choice(["ACCUSATION", "CLAIM"])
    if rng.random() < 0.1:
        f["search"] = "compiled 1"
    if rng.random() < 0.1:
        f["receivedFrom"] = "2026-02-10"
    return f


def documents(rng: random.Random, city: City, ids: list[str]) -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for n in range(14):
        compilable = n % 5 != 4
        node = case_selection(rng, compilable=compilable)
        size = rng.choice([None, 0, 1, 3, 5, 10, 50])
        backward = rng.random() < 0.3
        query = (
            "query($f: CaseFilter, $n: Int, $a: String, $l: Int, $b: String) "
            "{ cases(filter: $f, first: $n, after: $a, last: $l, before: $b) "
            f"{{ {connection_selection(rng, node)} }} }}"
        )
        variables = {"f": case_filter(rng, city), "n": None if backward else size}
        out.append((query, {**variables, "l": size if backward else None}))
    for _ in range(5):
        case_id = rng.choice([*ids, "not-an-id", "00000000-0000-7000-8000-000000000000"])
        node = case_selection(rng)
        out.append(("query($id: ID!) { case(id: $id) { " + node + " } }", {"id": case_id}))
    for _ in range(6):
        # the counts and one page are one statement (compiled.warning_board): literal and
        # variable arguments, a unitPath (also a bad one), a bad page size (the error
        # stays on `cases`), a second aliased page (the normal path)
        color = rng.choice(["RED", "YELLOW", "BLUE", "NONE"])
        node = case_selection(rng)
        size = rng.choice([1, 4, 4, 4, -1])
        unit = rng.choice([None, None, city.path("c1"), "not a path"])
        page = f"{{ {connection_selection(rng, node)} }}"
        second = f" other: cases(color: BLUE, first: 2) {page}" if rng.random() < 0.2 else ""
        if rng.random() < 0.5:
            query = (
                "query($c: WarningColor!, $n: Int, $u: String) { warningBoard(unitPath: $u) "
                f"{{ red blue yellow cases(color: $c, first: $n) {page}{second} }} }}"
            )
            out.append((query, {"c": color, "n": size, "u": unit}))
        else:
            where = "" if unit is None else f'(unitPath: "{unit}")'
            query = (
                f"{{ warningBoard{where} {{ red blue "
                f"cases(color: {color}, first: {size}) {page}{second} }} }}"
            )
            out.append((query, {}))
    return out


def comparable(body: dict) -> str:
    """The body as JSON text (key order counts), without the per-request id of errors."""
    for error in body.get("errors") or []:
        error.get("extensions", {}).pop("requestId", None)
    return json.dumps(body, ensure_ascii=False)


async def both(app, gql, query: str, variables: dict, token: str, monkeypatch) -> tuple[str, str]:
    served = await gql(query, variables, token=token)
    with monkeypatch.context() as patch:
        patch.setattr(app.state.db.settings, "compiled_reads", False)
        reference = await gql(query, variables, token=token)
    assert served.status == reference.status
    return comparable(served.body), comparable(reference.body)


@pytest.fixture
def compiled_calls(monkeypatch) -> list[str]:
    """Names of the compiled statements run (to show the compiled path was taken)."""
    calls: list[str] = []
    for name in ("case_page", "case_detail"):
        original = getattr(sql, name)

        async def spy(*args: Any, _original=original, _name=name, **kwargs: Any) -> Any:
            calls.append(_name)
            return await _original(*args, **kwargs)

        monkeypatch.setattr(sql, name, spy)
    return calls


@pytest.mark.postgres
@pytest.mark.parametrize("who", READERS)
async def test_compiled_reads_answer_like_the_resolvers_for_random_selections(
    app, gql, world, who, monkeypatch, compiled_calls
):
    rng = random.Random(f"compiled-{who}")
    city, token = world["city"], world["tokens"][who]
    nodes = 0
    for query, variables in documents(rng, city, world["ids"]):
        served, reference = await both(app, gql, query, variables, token, monkeypatch)
        assert served == reference, query
        nodes += served.count('"node"') + served.count('"case": {')
        page_info = ((json.loads(served).get("data") or {}).get("cases") or {}).get("pageInfo")
        for name, arg in (("endCursor", "a"), ("startCursor", "b")):
            cursor = (page_info or {}).get(name)
            if cursor:  # the next (previous) page, from the compiled cursor
                turned = {**variables, arg: cursor}
                served, reference = await both(app, gql, query, turned, token, monkeypatch)
                assert served == reference, query
    print(f"{who}: {nodes} cases compared")
    assert nodes > 0
    assert compiled_calls.count("case_page") >= 10
    assert "case_detail" in compiled_calls


@pytest.mark.postgres
async def test_art30_accusations_stay_out_of_the_compiled_list_of_the_accused_unit(
    gql, world, compiled_calls
):
    city, ids = world["city"], world["ids"]
    query = "query($id: ID!) { case(id: $id) { number accusedUnitPath } }"
    accusation = ids[3]
    seen = await gql(query, {"id": accusation}, token=world["tokens"]["officer"])
    assert seen.ok()["case"]["accusedUnitPath"] == city.path("c1")
    barred = await gql(query, {"id": accusation}, token=world["tokens"]["c1_officer"])
    assert barred.errors[0]["extensions"]["code"] == "NOT_FOUND"
    listed = await gql(
        "{ cases(first: 200, filter: {type: ACCUSATION}) { totalCount edges { node { id } } } }",
        token=world["tokens"]["c1_officer"],
    )
    assert listed.ok()["cases"] == {"totalCount": 0, "edges": []}
    assert compiled_calls == ["case_detail", "case_detail", "case_page"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "variables",
    [
        {"n": 500},
        {"n": -1},
        {"n": 5, "l": 5},
        {"n": 5, "a": "garbage"},
        {"l": 5, "b": "Z2FyYmFnZQ=="},
        {"n": 5, "f": {"unitPath": "no such"}},
    ],
)
async def test_bad_arguments_fail_the_same_on_the_compiled_path(
    app, gql, world, monkeypatch, variables
):
    query = (
        "query($f: CaseFilter, $n: Int, $a: String, $l: Int, $b: String) "
        "{ cases(filter: $f, first: $n, after: $a, last: $l, before: $b) "
        "{ totalCount edges { node { id } } } }"
    )
    served, reference = await both(
        app, gql, query, variables, world["tokens"]["officer"], monkeypatch
    )
    assert served == reference
    assert json.loads(served)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_fields_it_cannot_compile_send_the_whole_field_to_the_resolvers():
    sql.check([sql.Field("n", "number"), sql.Field("h", "holder_unit", (sql.Field("p", "path"),))])
    for unknown in (
        [sql.Field("p", "petitioner", (sql.Field("name", "name"),))],
        [sql.Field("h", "holder_unit", (sql.Field("c", "children", (sql.Field("p", "path"),)),))],
        [sql.Field("x", "no_such_field")],
        [sql.Field(f"k{n}", "number") for n in range(sql.MAX_KEYS + 1)],
    ):
        with pytest.raises(sql.NotCompiled):
            sql.check(unknown)


@pytest.mark.postgres
async def test_a_compiled_page_with_every_nested_object_is_one_statement(app, gql, world):
    nested = " ".join(f"{name} {{ {' '.join(fields)} }}" for name, fields in NESTED.items())
    query = f"{{ cases(first: 50) {{ totalCount edges {{ node {{ number {nested} }} }} }} }}"
    with statements(app.state.db.engine.sync_engine) as seen:
        (await gql(query, token=world["tokens"]["officer"])).ok()
    reads = [s for s in seen if "case_deadlines" in s or "case_events" in s or "FROM cases" in s]
    assert len(reads) == 1 and "json_build_object" in reads[0], reads


@pytest.mark.postgres
async def test_the_detail_plans_generically_and_leaves_the_request_planning_per_value(
    gql, world, monkeypatch
):
    """The detail's statement runs under ``plan_cache_mode = auto`` and sets the
    transaction's mode back itself, found or not: the page asked after it in the same
    request plans for its values (force_custom_plan, core/db.py)."""
    from sqlalchemy import text

    modes: list[str] = []
    original = sql.case_page

    async def spy(session: Any, *args: Any, **kwargs: Any) -> Any:
        modes.append((await session.execute(text("SHOW plan_cache_mode"))).scalar_one())
        return await original(session, *args, **kwargs)

    monkeypatch.setattr(sql, "case_page", spy)
    query = (
        "query($id: ID!, $gone: ID!) { a: case(id: $id) { number } b: case(id: $gone) { number }"
        " cases(first: 1) { totalCount } }"
    )
    gone = "00000000-0000-7000-8000-000000000000"
    for _ in range(7):  # past the five custom plans PostgreSQL makes before a generic one
        answer = await gql(
            query, {"id": world["ids"][0], "gone": gone}, token=world["tokens"]["officer"]
        )
        assert answer.data["a"]["number"] and answer.data["cases"]["totalCount"] >= 1
        assert [e["extensions"]["code"] for e in answer.errors] == ["NOT_FOUND"]
    assert set(modes) == {"force_custom_plan"}, modes


@pytest.mark.postgres
async def test_the_board_counts_and_its_page_are_one_statement(gql, world, monkeypatch):
    """``warningBoard { red yellow blue cases }`` reads the counts and the page in one
    statement; when the page cannot be asked (a size the contract refuses) the board
    takes the normal path, which raises the error on ``cases`` (non-null, as is the
    board: ``data`` goes null, as it always did)."""
    from backend.cases import queries

    separate: list[int] = []
    original = queries.warning_counts

    async def spy(*args: Any, **kwargs: Any) -> Any:
        separate.append(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(queries, "warning_counts", spy)
    token = world["tokens"]["officer"]
    query = "{ warningBoard { red yellow blue cases(color: RED, first: 3) { totalCount } } }"
    good = await gql(query, token=token)
    assert not good.errors and separate == []
    bad = await gql(query.replace("first: 3", "first: -1"), token=token)
    assert bad.data is None
    assert bad.errors[0]["path"] == ["warningBoard", "cases"]
    assert bad.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert separate == [1]
