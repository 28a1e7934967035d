"""Compiled reads, the GraphQL side: the selection (lookahead) becomes a shape for
``backend/cases/compiled.py``, whose JSON comes back as the field's finished answer.

Thin: fragments are flattened, ``@skip``/``@include`` applied and fields merged by
response key in the order graphql-core collects them; GraphQL names become the API's
Python names through the strawberry types themselves; the connection envelope
(``totalCount``, ``edges``, ``pageInfo``) is put together from the page's rows. Anything
this cannot follow (another directive, an argument on a nested field, a field the SQL
compiler does not know — the petitioner, a unit's children) answers ``None`` and the
resolver takes the normal path for the whole root field. docs/performance.md,
docs/decisions.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from strawberry.types.nodes import SelectedField
from strawberry.utils.str_converters import to_camel_case

from backend.cases import compiled as sql
from backend.cases import queries
from backend.cases.models import WarningColor
from backend.core import pagination
from backend.core.errors import AppError
from backend.core.pagination import PageArgs
from backend.schema.context import Ctx, RequestContext
from backend.schema.execution import Precompleted
from backend.schema.scalars import RESPONSE_ZONE

# GraphQL type → its nested object fields (Python name → GraphQL type)
NESTED: dict[str, dict[str, str]] = {
    "Case": {
        "holder_unit": "OrgUnit",
        "location_unit": "OrgUnit",
        "leader": "Leader",
        "first_receiver": "Leader",
        "deadlines": "Deadline",
        "events": "CaseEvent",
        "petitioner": "Petitioner",
    },
    "CaseEvent": {"actor": "Actor"},
}
# the interfaces a type implements (a fragment on one of them applies to it)
INTERFACES: dict[str, tuple[str, ...]] = {"Case": ("Node",)}
_names: dict[str, dict[str, str]] = {}


def register(*types: Any) -> None:
    """Let the compiler map the GraphQL field names of these strawberry types."""
    for t in types:
        definition = t.__strawberry_definition__
        _names[definition.name] = {
            (f.graphql_name or to_camel_case(f.python_name)): f.python_name
            for f in definition.fields
            if not f.python_name.startswith("_")  # strawberry.Private, not in the schema
        }


def enabled(ctx: RequestContext) -> bool:
    setting = ctx.db.settings.compiled_reads
    return ctx.precompleted and ctx.db.dialect == "postgresql" and setting is not False


def _zone() -> str:
    zone = RESPONSE_ZONE.get()
    if zone is UTC:
        return "UTC"
    key = getattr(zone, "key", None)
    if not isinstance(key, str):
        raise sql.NotCompiled("response zone without a name")
    return key


def merged(selections: list[Any], type_name: str) -> dict[str, list[SelectedField]]:
    """The fields at this level by response key, as graphql-core's ``collect_fields``."""
    out: dict[str, list[SelectedField]] = {}

    def walk(level: list[Any]) -> None:
        for sel in level:
            directives = sel.directives or {}
            if set(directives) - {"skip", "include"}:
                raise sql.NotCompiled("directive")
            if directives.get("skip", {}).get("if") is True:
                continue
            if directives.get("include", {}).get("if") is False:
                continue
            if isinstance(sel, SelectedField):
                out.setdefault(sel.alias or sel.name, []).append(sel)
            elif sel.type_condition in (None, type_name, *INTERFACES.get(type_name, ())):
                walk(sel.selections)
            else:
                raise sql.NotCompiled("fragment on another type")

    walk(selections)
    return out


def shape(selections: list[Any], type_name: str) -> tuple[sql.Field, ...]:
    """The selection on an object of ``type_name`` as the SQL compiler's fields."""
    names = _names.get(type_name, {})
    fields = []
    for key, sels in merged(selections, type_name).items():
        name = sels[0].name
        if name == "__typename":
            fields.append(sql.Field(key, "__typename", const=type_name))
            continue
        if any(s.arguments for s in sels) or name not in names:
            raise sql.NotCompiled(name)
        python = names[name]
        child = NESTED.get(type_name, {}).get(python)
        children = shape([c for s in sels for c in s.selections], child) if child else ()
        fields.append(sql.Field(key, python, children))
    return tuple(fields)


def _nodes(info: Ctx) -> list[Any]:
    return [c for f in info.selected_fields for c in f.selections]


@dataclass
class _Plan:
    """What a ``CaseConnection`` selection asks for, by response key."""

    envelope: dict[str, list[SelectedField]]
    edges: dict[str, dict[str, list[SelectedField]]] = field(default_factory=dict)
    page_info: dict[str, dict[str, list[SelectedField]]] = field(default_factory=dict)
    nodes: list[tuple[sql.Field, ...]] = field(default_factory=list)
    node_index: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def wants_total(self) -> bool:
        return any(s[0].name == "totalCount" for s in self.envelope.values())


def _plan(selections: list[Any]) -> _Plan:
    """The plan of a ``CaseConnection`` field with these selections."""
    plan = _Plan(merged(selections, "CaseConnection"))
    for key, sels in plan.envelope.items():
        below = [c for s in sels for c in s.selections]
        if sels[0].name == "edges":
            plan.edges[key] = merged(below, "CaseEdge")
            for ekey, esels in plan.edges[key].items():
                if esels[0].name == "node":
                    plan.node_index[key, ekey] = len(plan.nodes) + 1  # row[0] is the cursor
                    plan.nodes.append(shape([c for s in esels for c in s.selections], "Case"))
        elif sels[0].name == "pageInfo":
            plan.page_info[key] = merged(below, "PageInfo")
        elif sels[0].name not in ("totalCount", "__typename"):
            raise sql.NotCompiled(sels[0].name)
    for node_shape in plan.nodes:
        sql.check(node_shape)
    return plan


def _edge(plan: _Plan, key: str, row: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, s in plan.edges[key].items():
        name = s[0].name
        out[k] = row[0] if name == "cursor" else "CaseEdge" if name == "__typename" else None
        if name == "node":
            out[k] = row[plan.node_index[key, k]]
    return out


async def case_page(info: Ctx, f: queries.CaseFilter, args: PageArgs) -> Precompleted | None:
    """A ``CaseConnection`` answered by one statement, or None (take the normal path)."""
    ctx = info.context
    if not enabled(ctx):
        return None
    try:
        plan = _plan(_nodes(info))
        zone = _zone()
    except sql.NotCompiled:
        return None
    async with ctx.read() as session:
        if not await sql.runs_here(session):
            return None
        page = await sql.case_page(
            session, ctx.principal, f, args, nodes=plan.nodes, total=plan.wants_total, zone=zone
        )
    return _connection(plan, page, args)


async def warning_board(
    info: Ctx, unit_path: str | None
) -> tuple[queries.BoardCounts, dict[str, Precompleted]] | None:
    """``warningBoard`` with its one ``cases`` page: the counts and the page in one
    statement, the page by its response key; None takes the normal path (counts, then
    the page's own resolver) — also for any error, which that path then raises where it
    belongs (a bad page argument on ``cases``, a bad ``unitPath`` on the board)."""
    ctx = info.context
    if not enabled(ctx):
        return None
    try:
        pages = [
            (key, sels)
            for key, sels in merged(_nodes(info), "WarningBoard").items()
            if sels[0].name == "cases"
        ]
        if len(pages) != 1:  # none, or one statement per page: the normal path
            return None
        key, sels = pages[0]
        # the same on every merged selection (validation); strawberry's lookahead gives
        # a literal as its source text (``first: 50`` → "50") and a variable as its value
        given = sels[0].arguments
        color = given.get("color")
        color = WarningColor(getattr(color, "value", color))
        first, last = (None if given.get(k) is None else int(given[k]) for k in ("first", "last"))
        args = PageArgs(first, given.get("after"), last, given.get("before"))
        plan = _plan([c for s in sels for c in s.selections])
        zone = _zone()
    except (sql.NotCompiled, ValueError, TypeError):
        return None
    f = queries.CaseFilter(unit_path=unit_path, warning_color=color)
    try:
        async with ctx.read() as session:
            if not await sql.runs_here(session):
                return None
            board = await queries.board_clauses(session, ctx.principal, unit_path)
            page = await sql.case_page(
                session,
                ctx.principal,
                f,
                args,
                nodes=plan.nodes,
                total=plan.wants_total,
                zone=zone,
                board=board,
            )
    except AppError:  # raised before any statement ran: the normal path raises it again
        return None
    assert page.board is not None
    return page.board, {key: _connection(plan, page, args)}


def _connection(plan: _Plan, page: sql.CompiledPage, args: PageArgs) -> Precompleted:
    """The ``CaseConnection`` envelope around the page's rows, as ``plan`` asks for it."""
    win = pagination.window(page.rows, args, default=pagination.DEFAULT_PAGE)
    rows = win.rows
    page_info = {
        "hasNextPage": win.has_next,
        "hasPreviousPage": win.has_previous,
        "startCursor": rows[0][0] if rows else None,
        "endCursor": rows[-1][0] if rows else None,
        "__typename": "PageInfo",
    }
    answer: dict[str, Any] = {}
    for key, sels in plan.envelope.items():
        name = sels[0].name
        if name == "totalCount":
            answer[key] = page.total
        elif name == "__typename":
            answer[key] = "CaseConnection"
        elif name == "pageInfo":
            answer[key] = {k: page_info[s[0].name] for k, s in plan.page_info[key].items()}
        else:  # edges
            answer[key] = [_edge(plan, key, row) for row in rows]
    return Precompleted(answer)


async def case_detail(info: Ctx, case_id: str) -> Precompleted | None:
    """``case(id)`` answered by one statement, or None (take the normal path)."""
    ctx = info.context
    if not enabled(ctx):
        return None
    try:
        node = shape(_nodes(info), "Case")
        sql.check(node)
        zone = _zone()
    except sql.NotCompiled:
        return None
    async with ctx.read() as session:
        if not await sql.runs_here(session):
            return None
        return Precompleted(
            await sql.case_detail(session, ctx.principal, case_id, node=node, zone=zone)
        )
