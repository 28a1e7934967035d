"""Keyset pagination in both directions, for every connection of the API (Relay).

A list has a stable, total order given by its :class:`Key` columns (the last one unique,
usually the id). A cursor is the key of one row, ``base64url("v1|v2|…")`` — for cases
``received_at|id``, the format their cursors always had, so a cursor a client kept stays
valid. ``after``/``before`` become SQL predicates (row-value comparison spelled out so
mixed directions work on PostgreSQL and SQLite alike); ``first`` reads forward from the
start of the window, ``last`` backward from its end (the statement runs in the reversed
order and the rows are turned round). A page costs one statement whatever its position.

``hasNextPage``/``hasPreviousPage`` follow the Relay cursor connections spec: the side a
page was read towards is exact (one row more is fetched); the other side says whether a
cursor bounded the window there (``after`` given → there is a previous page: at least the
row the cursor came from), without a second statement.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from backend.core.errors import BadUserInput

MAX_PAGE = 200
DEFAULT_PAGE = 50


@dataclass(frozen=True)
class Key:
    """One column of a list's order: the column, its direction, how a cursor's text
    becomes a value again, and how a row gives its value."""

    column: Any
    descending: bool
    parse: Callable[[str], Any]
    value: Callable[[Any], Any]


def datetime_key(column: Any, attr: str, *, descending: bool = True) -> Key:
    return Key(column, descending, datetime.fromisoformat, _attr(attr, _iso))


def uuid_key(column: Any, attr: str = "id", *, descending: bool = True) -> Key:
    return Key(column, descending, uuid.UUID, _attr(attr, str))


def text_key(column: Any, attr: str, *, descending: bool = False) -> Key:
    return Key(column, descending, str, _attr(attr, str))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _attr(name: str, text: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda row: text(getattr(row, name))


@dataclass(frozen=True)
class PageArgs:
    """``first``/``after`` forward, ``last``/``before`` backward; both cursors may bound a
    window. Neither size given: ``default`` rows forward."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None


@dataclass(frozen=True)
class Window:
    """One page of rows in the list's order, and whether more lie beyond either end."""

    rows: list[Any]
    has_next: bool
    has_previous: bool


def encode(keys: Sequence[Key], row: Any) -> str:
    raw = "|".join(k.value(row) for k in keys)
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode(keys: Sequence[Key], cursor: str, field: str) -> list[Any]:
    try:
        parts = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", len(keys) - 1)
        if len(parts) != len(keys):
            raise ValueError("wrong number of parts")
        return [k.parse(p) for k, p in zip(keys, parts, strict=True)]
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise BadUserInput("malformed cursor", field=field) from exc


def beyond(keys: Sequence[Key], values: Sequence[Any], *, forward: bool) -> ColumnElement[bool]:
    """Rows strictly after (``forward``) or before the row whose key is ``values``."""
    alternatives = []
    for n, key in enumerate(keys):
        equal = [k.column == v for k, v in zip(keys[:n], values[:n], strict=True)]
        later = key.descending != forward  # descending + forward: a smaller value
        step = key.column > values[n] if later else key.column < values[n]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


def check_size(args: PageArgs, *, minimum: int = 0, maximum: int = MAX_PAGE) -> None:
    if args.first is not None and args.last is not None:
        raise BadUserInput("give first or last, not both", field="last")
    for name in ("first", "last"):
        size = getattr(args, name)
        if size is not None and not minimum <= size <= maximum:
            raise BadUserInput(f"{name} must be between {minimum} and {maximum}", field=name)


def windowed(stmt: Select, keys: Sequence[Key], args: PageArgs, *, default: int) -> Select:
    """``stmt`` bounded by the cursors, ordered and limited for the page (one row more)."""
    if args.after:
        stmt = stmt.where(beyond(keys, decode(keys, args.after, "after"), forward=True))
    if args.before:
        stmt = stmt.where(beyond(keys, decode(keys, args.before, "before"), forward=False))
    backward = args.last is not None
    size = args.last if backward else (args.first if args.first is not None else default)
    order = [k.column.desc() if k.descending != backward else k.column.asc() for k in keys]
    return stmt.order_by(*order).limit(size + 1)


def window(rows: Sequence[Any], args: PageArgs, *, default: int) -> Window:
    """The page of ``rows`` as ``windowed`` fetched them (reversed when read backward)."""
    rows = list(rows)
    if args.last is not None:
        more = len(rows) > args.last
        page = rows[: args.last][::-1]
        return Window(page, has_next=args.before is not None, has_previous=more)
    size = args.first if args.first is not None else default
    return Window(rows[:size], has_next=len(rows) > size, has_previous=args.after is not None)


async def paginate(
    session: AsyncSession,
    stmt: Select,
    keys: Sequence[Key],
    args: PageArgs,
    *,
    default: int = DEFAULT_PAGE,
    minimum: int = 1,
    maximum: int = MAX_PAGE,
    scalars: bool = True,
) -> Window:
    """One page of ``stmt`` (its WHERE already the caller's read rule) in one statement."""
    check_size(args, minimum=minimum, maximum=maximum)
    query = windowed(stmt, keys, args, default=default)
    rows = await (session.scalars(query) if scalars else session.execute(query))
    return window(list(rows), args, default=default)
