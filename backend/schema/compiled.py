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

from datetime import UTC
from typing import Any

from strawberry.types.nodes import SelectedField
from strawberry.utils.str_converters import to_camel_case

from backend.cases import compiled as sql
from backend.cases import queries
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
_names: dict[str, dict[str, str]] = {}


def register(*types: Any) -> None:
    """Let the compiler map the GraphQL field names of these strawberry types."""
    for t in types:
        definition = t.__strawberry_definition__
        _names[definition.name] = {
            (f.graphql_name or to_camel_case(f.python_name)): f.python_name
            for f in definition.fields
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
            elif sel.type_condition in (None, type_name):
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


async def case_page(
    info: Ctx, f: queries.CaseFilter, first: int, after: str | None
) -> Precompleted | None:
    """A ``CaseConnection`` answered by one statement, or None (take the normal path)."""
    ctx = info.context
    if not enabled(ctx):
        return None
    try:
        envelope = merged(_nodes(info), "CaseConnection")
        edge_keys: dict[str, dict[str, list[SelectedField]]] = {}
        node_shapes: list[tuple[sql.Field, ...]] = []
        node_index: dict[tuple[str, str], int] = {}
        for key, sels in envelope.items():
            if sels[0].name == "edges":
                edge = merged([c for s in sels for c in s.selections], "CaseEdge")
                edge_keys[key] = edge
                for ekey, esels in edge.items():
                    if esels[0].name == "node":
                        node_index[key, ekey] = len(node_shapes) + 1
                        node_shapes.append(shape([c for s in esels for c in s.selections], "Case"))
            elif sels[0].name == "pageInfo":
                merged([c for s in sels for c in s.selections], "PageInfo")  # directives
        wants_total = any(s[0].name == "totalCount" for s in envelope.values())
        zone = _zone()
        for node_shape in node_shapes:
            sql.check(node_shape)
    except sql.NotCompiled:
        return None
    async with ctx.read() as session:
        page = await sql.case_page(
            session,
            ctx.principal,
            f,
            first=first,
            after=after,
            nodes=node_shapes,
            total=wants_total,
            zone=zone,
        )
    rows = page.rows[:first]
    answer: dict[str, Any] = {}
    for key, sels in envelope.items():
        name = sels[0].name
        if name == "totalCount":
            answer[key] = page.total
        elif name == "__typename":
            answer[key] = "CaseConnection"
        elif name == "pageInfo":
            info_sel = merged([c for s in sels for c in s.selections], "PageInfo")
            answer[key] = {
                k: (
                    len(page.rows) > first
                    if s[0].name == "hasNextPage"
                    else (rows[-1][0] if rows else None)
                    if s[0].name == "endCursor"
                    else "PageInfo"
                )
                for k, s in info_sel.items()
            }
        else:  # edges
            edge = edge_keys[key]
            answer[key] = [
                {
                    k: (
                        row[0]
                        if s[0].name == "cursor"
                        else row[node_index[key, k]]
                        if s[0].name == "node"
                        else "CaseEdge"
                    )
                    for k, s in edge.items()
                }
                for row in rows
            ]
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
        return Precompleted(
            await sql.case_detail(session, ctx.principal, case_id, node=node, zone=zone)
        )
