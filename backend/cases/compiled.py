"""Compiled reads: a page of cases (or one case) as JSON built by one SQL statement.

The GraphQL layer hands over *what* was selected — a tree of :class:`Field` (response
key, API field name, children) — and gets back plain JSON-ready values shaped exactly
as the response wants them: keys are the response keys in selection order, enums their
names, ``DateTime`` the instant in the response zone to the second, ``Date`` ISO, ids
text. Nested objects (holder/location unit, leader, first receiver, deadlines, events
and their actor) are correlated ``json_build_object`` / ``json_agg`` subqueries over the
page's rows, so a page is one round trip and no ORM object, whatever its selection.

Nothing about *who may read what* is written here: the WHERE is
:func:`backend.cases.queries.list_clauses` (list filters and read predicate with the
Art. 30 exclusion of ``need_to_know.barred_clause``; cursors and order by
``backend.core.pagination.windowed``) or
:func:`backend.cases.service.case_read_rule` with the case id — the very clauses of the
normal path.

A field this module does not know (the petitioner, whose masking depends on the
reader and whose unmasked reads are logged; a unit's ``children``; any field added to
the API later) raises :class:`NotCompiled` before anything is read, and the caller
answers the whole root field through the resolvers instead. PostgreSQL only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    null,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.dialects.postgresql import asyncpg as postgresql_asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import queries, service
from backend.cases.models import Case, CaseDeadline, CaseEvent, WarningColor
from backend.core import pagination
from backend.core.db import current_scope, on_citus
from backend.core.ids import parse_id
from backend.core.settings import get_settings
from backend.tenants.models import OrgUnit, User


class NotCompiled(Exception):
    """The selection asks for something only the resolvers answer."""


@dataclass(frozen=True)
class Field:
    """One response key: ``name`` is the API field's Python name (``received_at``,
    ``holder_unit``) or ``__typename`` with its value in ``const``."""

    key: str
    name: str
    children: tuple[Field, ...] = ()
    const: str | None = None


@dataclass(frozen=True)
class CompiledPage:
    """The window as fetched (one row more), each ``[cursor, node for each node shape...]``."""

    total: int | None
    rows: list[list[Any]] = field(default_factory=list)
    board: queries.BoardCounts | None = None  # the board's counts, when asked with the page


# json_build_object takes at most 100 arguments: 50 keys per object
MAX_KEYS = 50
_KEY = re.compile(r"^[_A-Za-z][_0-9A-Za-z]*$")  # GraphQL names: safe to inline as literals
_ZONE = re.compile(r"^[A-Za-z0-9_+\-/]+$")

Expr = ColumnElement[Any]


async def runs_here(session: AsyncSession) -> bool:
    """Whether this database can run a compiled read: not on a Citus coordinator.

    Citus refuses the statement's correlated sub-selects over co-located tables ("complex
    joins are only supported when all distributed tables are co-located and joined on
    their distribution columns"); the resolvers' separate statements route fine. Known
    per pooled connection (``on_citus`` caches it): no extra round trip.
    """
    connection = await session.connection()
    return not await connection.run_sync(on_citus)


def _lit(text: str) -> Expr:
    assert "'" not in text and "\\" not in text
    return literal_column(f"'{text}'")


def instant(column: Any, zone: str) -> Expr:
    """A timestamptz as the ``DateTime`` scalar writes it (``backend/schema/scalars.py``):
    wall time in ``zone`` to the second, then its UTC offset as ``+HH:MM``."""
    local = func.timezone(_lit(zone), column)
    offset = local - func.timezone(_lit("UTC"), column)
    sign = case(
        (
            offset < literal_column("interval '0'"),
            _lit("-").concat(func.to_char(-offset, _lit("HH24:MI"))),
        ),
        else_=_lit("+").concat(func.to_char(offset, _lit("HH24:MI"))),
    )
    return func.to_char(local, _lit('YYYY-MM-DD"T"HH24:MI:SS')).concat(sign)


def cursor(c: Any) -> Expr:
    """:func:`backend.cases.queries.encode_cursor` in SQL: URL-safe base64 (padded) of the
    UTC ISO instant, microseconds only when non-zero, ``|`` and the id."""
    utc = func.timezone(_lit("UTC"), c.received_at)
    micros = func.to_char(utc, _lit("US"))
    iso = (
        func.to_char(utc, _lit('YYYY-MM-DD"T"HH24:MI:SS'))
        .concat(case((micros == _lit("000000"), _lit("")), else_=_lit(".").concat(micros)))
        .concat(_lit("+00:00|"))
        .concat(cast(c.id, Text))
    )
    b64 = func.encode(func.convert_to(iso, _lit("UTF8")), _lit("base64"))
    return func.translate(b64, literal_column("E'+/\\n'"), _lit("-_"))


# --- what each API field is, over the page's row ``c`` ------------------------------------

Column = Callable[[Any, str], Expr]


def _col(name: str) -> Column:
    return lambda c, _zone: getattr(c, name)


def _when(name: str) -> Column:
    return lambda c, zone: instant(getattr(c, name), zone)


CASE_SCALARS: dict[str, Column] = {
    "id": lambda c, _zone: cast(c.id, Text),
    **{
        name: _col(name)
        for name in [
            "number",
            "status",
            "type",
            "channel",
            "category",
            "subject",
            "content",
            "version",
            "warning_color",
            "repeat_count",
            "skip_level",
            "head_count",
            "tags",
            "priority",
            "reply_opinion",
            "rating",
            "resolution",
            "extension_days",
            "extension_approved",
            "accused_username",
        ]
    },
    "received_at": _when("received_at"),
    "due_at": _when("due_at"),
    "on_hold": lambda c, _zone: c.on_hold_since.is_not(None),
    "accused_unit_path": _col("accused_path"),
}
# the case columns each field reads (beyond tenant_id, id and received_at, always read)
CASE_COLUMNS: dict[str, tuple[str, ...]] = {
    "on_hold": ("on_hold_since",),
    "accused_unit_path": ("accused_path",),
    "holder_unit": ("holder_path",),
    "location_unit": ("location_path",),
    "leader": ("leader_id",),
    "first_receiver": ("first_receiver_id",),
    "deadlines": (),
    "events": (),
}
UNIT_SCALARS: dict[str, Column] = {
    "id": lambda u, _zone: cast(u.id, Text),
    **{name: _col(name) for name in ("path", "slug", "name", "level", "depth")},
}
LEADER_SCALARS: dict[str, Column] = {
    "username": _col("username"),
    "display_name": _col("display_name"),
}
DEADLINE_SCALARS: dict[str, Column] = {
    **{
        name: _col(name) for name in ("step", "status", "due_date", "warning_color", "rule", "note")
    },
    "started_at": _when("started_at"),
    "due_at": _when("due_at"),
}
EVENT_SCALARS: dict[str, Column] = {
    **{
        name: _col(name)
        for name in ("seq", "kind", "from_status", "to_status", "reason", "data", "hash")
    },
    "at": _when("at"),
}
ACTOR_SCALARS: dict[str, Column] = {"username": _col("actor_username")}

CASE_OBJECTS = {"holder_unit", "location_unit", "leader", "first_receiver", "deadlines", "events"}


def check(fields: Iterable[Field]) -> None:
    """Raise :class:`NotCompiled` unless every field of a ``Case`` selection compiles."""
    _check(tuple(fields), CASE_SCALARS, CASE_OBJECTS)


_CHILDREN: dict[str, tuple[dict[str, Column], set[str]]] = {
    "holder_unit": (UNIT_SCALARS, set()),
    "location_unit": (UNIT_SCALARS, set()),
    "leader": (LEADER_SCALARS, set()),
    "first_receiver": (LEADER_SCALARS, set()),
    "deadlines": (DEADLINE_SCALARS, set()),
    "events": (EVENT_SCALARS, {"actor"}),
    "actor": (ACTOR_SCALARS, set()),
}


def _check(fields: tuple[Field, ...], scalars: dict[str, Column], objects: set[str]) -> None:
    if not fields or len(fields) > MAX_KEYS:
        raise NotCompiled("empty or too wide a selection")
    for f in fields:
        if not _KEY.match(f.key):
            raise NotCompiled(f.key)
        if f.name == "__typename":
            if f.const is None or not _KEY.match(f.const):
                raise NotCompiled("__typename")
        elif f.name in objects:
            _check(f.children, *_CHILDREN[f.name])
        elif f.name not in scalars or f.children:
            raise NotCompiled(f.name)


def _object(fields: tuple[Field, ...], value: Callable[[Field], Expr]) -> Expr:
    args: list[Any] = []
    for f in fields:
        args += [_lit(f.key), _lit(f.const) if f.name == "__typename" else value(f)]
    return func.json_build_object(*args)


def _case_object(fields: tuple[Field, ...], c: Any, zone: str) -> Expr:
    def value(f: Field) -> Expr:
        if f.name in CASE_SCALARS:
            return CASE_SCALARS[f.name](c, zone)
        return _NESTED[f.name](f.children, c, zone)

    return _object(fields, value)


def _scalars(scalars: dict[str, Column], row: Any, zone: str) -> Callable[[Field], Expr]:
    return lambda f: scalars[f.name](row, zone)


def _unit(path_column: str) -> Callable[[tuple[Field, ...], Any, str], Expr]:
    def build(fields: tuple[Field, ...], c: Any, zone: str) -> Expr:
        u = OrgUnit.__table__.alias()
        return (
            select(_object(fields, _scalars(UNIT_SCALARS, u.c, zone)))
            .where(u.c.tenant_id == c.tenant_id, u.c.path == getattr(c, path_column))
            .scalar_subquery()
        )

    return build


def _user(id_column: str) -> Callable[[tuple[Field, ...], Any, str], Expr]:
    def build(fields: tuple[Field, ...], c: Any, zone: str) -> Expr:
        u = User.__table__.alias()
        return (
            select(_object(fields, _scalars(LEADER_SCALARS, u.c, zone)))
            .where(u.c.tenant_id == c.tenant_id, u.c.id == getattr(c, id_column))
            .scalar_subquery()
        )

    return build


def _list(model: Any, order: tuple[str, ...], value: Callable[[Any, str], Callable[[Field], Expr]]):
    def build(fields: tuple[Field, ...], c: Any, zone: str) -> Expr:
        t = model.__table__.alias()
        item = _object(fields, value(t.c, zone))
        agg = func.json_agg(aggregate_order_by(item, *(getattr(t.c, o) for o in order)))
        return (
            select(func.coalesce(agg, literal_column("'[]'::json")))
            .where(t.c.tenant_id == c.tenant_id, t.c.case_id == c.id)
            .scalar_subquery()
        )

    return build


def _event_value(e: Any, zone: str) -> Callable[[Field], Expr]:
    def value(f: Field) -> Expr:
        if f.name == "actor":
            return _object(f.children, _scalars(ACTOR_SCALARS, e, zone))
        return EVENT_SCALARS[f.name](e, zone)

    return value


_NESTED: dict[str, Callable[[tuple[Field, ...], Any, str], Expr]] = {
    "holder_unit": _unit("holder_path"),
    "location_unit": _unit("location_path"),
    "leader": _user("leader_id"),
    "first_receiver": _user("first_receiver_id"),
    # the order of the normal path's loaders (backend/schema/loaders.py)
    "deadlines": _list(
        CaseDeadline, ("due_at", "id"), lambda t, z: _scalars(DEADLINE_SCALARS, t, z)
    ),
    "events": _list(CaseEvent, ("seq",), _event_value),
}


# The page's rows as the compiled fragments name them: ``p.<column>``.
_P = Case.__table__.alias("p")
_LABEL = "compiled_item"


@lru_cache(maxsize=512)
def _fragment(nodes: tuple[tuple[Field, ...], ...], zone: str, with_cursor: bool) -> str:
    """The SQL text of ``[cursor, node, ...]`` (or of the one node) over the rows ``p``.

    Built once per selection and zone: making the expression (a few hundred SQLAlchemy
    elements, a table alias per nested object) costs ~8 ms of Python, more than the rest
    of the request. It binds nothing — keys, zone and formats are inlined literals, the
    correlations are columns — so its text stands for it; the per-request statement (the
    WHERE of this reader and filter, bound as usual) selects FROM a subquery named ``p``.
    """
    objects = [_case_object(shape, _P.c, zone) for shape in nodes]
    expr = func.json_build_array(cursor(_P.c), *objects) if with_cursor else objects[0]
    compiled = select(expr.label(_LABEL)).select_from(_P).compile(dialect=_DIALECT)
    if compiled.params:  # pragma: no cover - a bound value would be lost in the text
        raise AssertionError(f"compiled fragment binds {sorted(compiled.params)}")
    text = str(compiled)
    head, sep, tail = text.rpartition(f" AS {_LABEL}")
    if not (head.startswith("SELECT ") and sep and tail.split() == ["FROM", "cases", "AS", "p"]):
        raise AssertionError(f"unexpected compiled fragment: {text[:200]}")  # pragma: no cover
    return head.removeprefix("SELECT ")


_DIALECT = postgresql_asyncpg.dialect()


@lru_cache(maxsize=512)
def _columns(shapes: tuple[tuple[Field, ...], ...]) -> tuple[Any, ...]:
    names = {"tenant_id", "id", "received_at"}
    for fields in shapes:
        for f in fields:
            if f.name in CASE_COLUMNS:
                names.update(CASE_COLUMNS[f.name])
            elif f.name in CASE_SCALARS and f.name != "__typename":
                names.add(f.name)
    return tuple(getattr(Case, n) for n in sorted(names))


def _zone(zone: str) -> str:
    if not _ZONE.match(zone):
        raise NotCompiled(f"zone {zone!r}")
    return zone


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


async def case_page(
    session: AsyncSession,
    principal: Principal,
    f: queries.CaseFilter,
    args: pagination.PageArgs,
    *,
    nodes: list[tuple[Field, ...]],
    total: bool,
    zone: str,
    board: list[ColumnElement[bool]] | None = None,
) -> CompiledPage:
    """:func:`backend.cases.queries.list_cases` as one statement building JSON.

    ``rows`` are the window as ``pagination.windowed`` fetches it (one row more, reversed
    when reading backward) — each ``[cursor, node, ...]``, one node per shape of
    ``nodes`` — for ``pagination.window`` to cut; ``total`` is the exact count of matches
    when asked for; ``board`` (``queries.board_clauses``) adds the 红黄蓝 counts of the
    warning board the page belongs to, in the same statement. Same errors as the normal
    path, raised by the same code before any row is read.
    """
    shapes = tuple(nodes)
    for shape in shapes:
        check(shape)
    zone = _zone(zone)
    clauses = await queries.list_clauses(session, principal, f, args)
    # Without a cursor the page's own scan counts every match (``count(*) OVER ()`` runs
    # before the ORDER BY … LIMIT of its level): one scan and one predicate to plan
    # instead of two (planning the predicate twice was half the statement's cost at 10k).
    # With a cursor the window holds fewer rows than match: a count of its own.
    windowed_total = total and not (args.after or args.before)
    page = select(*_columns(shapes)).where(*clauses)
    if windowed_total:
        page = page.add_columns(func.count().over().label("total"))
    p = pagination.windowed(
        page, queries.CASE_KEYS, args, default=pagination.DEFAULT_PAGE
    ).subquery("p")
    direction = "ASC" if args.last is not None else "DESC"  # windowed's order, as fetched
    item = _fragment(shapes, zone, True)
    agg = (
        f"coalesce(json_agg({item} ORDER BY p.received_at {direction}, p.id {direction}), "
        "'[]'::json)"
    )
    if windowed_total:  # no row: no match at all, the total is 0
        rows = select(cast(literal_column(agg), Text), func.max(p.c.total)).select_from(p)
    else:
        count = (
            select(func.count(Case.id)).where(*clauses).scalar_subquery().correlate(None)
            if total
            else null()
        )
        rows = select(cast(select(literal_column(agg)).select_from(p).scalar_subquery(), Text))
        rows = rows.add_columns(count)
    # the colours' counts as ``queries.warning_counts`` groups them, as one JSON object
    colours: Any = null()
    if board is not None:
        grouped = (
            select(Case.warning_color.label("colour"), func.count(Case.id).label("n"))
            .where(*board)
            .group_by(Case.warning_color)
            .subquery("g")
        )
        colours = cast(
            select(func.json_object_agg(grouped.c.colour, grouped.c.n))
            .scalar_subquery()
            .correlate(None),
            Text,
        )
    result = (await session.execute(rows.add_columns(colours))).one()
    counts = _loads(result[2]) or {} if board is not None else None
    return CompiledPage(
        total=int(result[1] or 0) if total else None,
        rows=_loads(result[0]) or [],
        board=None
        if counts is None
        else queries.BoardCounts(*(int(counts.get(c, 0)) for c in _BOARD)),
    )


_BOARD = (WarningColor.RED, WarningColor.YELLOW, WarningColor.BLUE)  # BoardCounts' order


async def case_detail(
    session: AsyncSession, principal: Principal, case_id: str, *, node: tuple[Field, ...], zone: str
) -> dict[str, Any]:
    """:func:`backend.cases.service.find_case` as one statement building the node's JSON."""
    check(node)
    zone = _zone(zone)
    cid = parse_id(case_id, "Case", "caseId")
    if cid is None or not service.reads_cases(principal):  # as service.case_predicates
        raise service.case_not_found(case_id)
    rule = service.case_read_rule(principal)
    scope = tuple(sorted(current_scope(session).tenant_ids))
    statement = _detail_statement(rule, node, zone, scope)
    conn = await session.connection()
    # a generic plan for this statement, which restores the transaction's mode itself
    await conn.execute(_GENERIC_PLANS)
    mode = get_settings().db_plan_cache_mode
    answer = (await conn.execute(statement, {"case_id": cid, "plans": mode})).scalar()
    if answer is None:
        raise service.case_not_found(case_id)
    return _loads(answer)


@lru_cache(maxsize=256)
def _detail_statement(
    rule: ColumnElement[bool], node: tuple[Field, ...], zone: str, scope: tuple[Any, ...]
) -> Any:
    """The detail's statement for one reader, the case id its only parameter.

    Kept per read rule (the memoised object of ``visibility.read_predicate``: one per
    official and grants), selection, zone and tenant scope, so SQLAlchemy's cache key
    — memoised on the statement object — is computed once, not on every request (~0.4 ms
    of CPU). Run on the Core connection, where the ORM's tenant filter (wall a) does not
    apply, so the statement names the scope itself, as that filter would; row-level
    security (wall b) applies as always.
    """
    p = (
        select(*_columns((node,)))
        .where(Case.id == bindparam("case_id"), rule, Case.tenant_id.in_(scope))
        .subquery("p")
    )
    detail = select(literal_column(f"({_fragment((node,), zone, False)})::text")).select_from(p)
    # one row whether the case is found or not, so the mode is always restored
    return select(
        detail.scalar_subquery(), func.set_config("plan_cache_mode", bindparam("plans"), true())
    )


# The detail's statement is planned generically: its only parameter is the case id, so
# the plan PostgreSQL keeps after five runs (a key probe) is the one it would make for
# any id, and planning it anew — the transaction's force_custom_plan (core/db.py) — was
# ~2 ms of a ~6 ms request at 1M cases (docs/performance.md). One prepared set_config
# round trip before it; the statement itself sets the mode back.
_GENERIC_PLANS = text("SELECT set_config('plan_cache_mode', 'auto', true)")
