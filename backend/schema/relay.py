"""Relay's shapes, shared by every domain's schema: ``PageInfo``, generic connections and
edges, and the ``Node`` interface (docs/CHANGELOG.md, issue 20).

Pagination itself is ``backend/core/pagination.py`` (keyset, both directions, in SQL);
``node``/``nodes`` are ``backend/schema/nodes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

import strawberry

from backend.core.pagination import Window

T = TypeVar("T")


@strawberry.interface(
    description=(
        "An object with a stable, globally unique id: node(id:) and nodes(ids:) fetch it "
        "again under the same read rules as its typed lookup."
    )
)
class Node:
    id: strawberry.ID = strawberry.field(
        description=(
            "Globally unique (a UUID). node(id:) takes it as it is or in the typed global "
            'form base64("Type:uuid"), e.g. base64("Case:0193…").'
        )
    )


@strawberry.type(description="Where a page of a connection lies in the whole list (Relay).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow the last edge (exact when paging forward with first)."
    )
    has_previous_page: bool = strawberry.field(
        description="More items precede the first edge (exact when paging backward with last)."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first edge: pass it as before to page backward."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge: pass it as after to page forward."
    )


@strawberry.type(description="One item of a connection and its cursor.")
class Edge(Generic[T]):
    cursor: str = strawberry.field(description="Opaque position of this item in the list.")
    node: T = strawberry.field(description="The item.")


@strawberry.type(
    description=(
        "A page of a list in Relay's cursor form: first/after page forward, last/before "
        "backward, in a stable order."
    )
)
class Connection(Generic[T]):
    edges: list[Edge[T]] = strawberry.field(description="The page's items, in list order.")
    page_info: PageInfo = strawberry.field(description="Cursors and whether more items exist.")


def page_info(has_next: bool, has_previous: bool, cursors: list[str]) -> PageInfo:
    return PageInfo(
        has_next_page=has_next,
        has_previous_page=has_previous,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


def connection_of(
    window: Window, node: Callable[[Any], Any], cursor: Callable[[Any], str]
) -> Connection[Any]:
    """The window's rows as a connection: ``node`` makes the GraphQL object of a row."""
    cursors = [cursor(row) for row in window.rows]
    return Connection(
        edges=[Edge(cursor=c, node=node(row)) for c, row in zip(cursors, window.rows, strict=True)],
        page_info=page_info(window.has_next, window.has_previous, cursors),
    )


FIRST = "Page forward: this many items from the start (or after `after`); default 50."
AFTER = "Page forward: items after this cursor (an edge's cursor or pageInfo.endCursor)."
LAST = "Page backward: this many items from the end (or before `before`)."
BEFORE = "Page backward: items before this cursor (an edge's cursor or pageInfo.startCursor)."

# Relay's connection arguments, for every connection field
First = Annotated[int | None, strawberry.argument(description=FIRST)]
After = Annotated[str | None, strawberry.argument(description=AFTER)]
Last = Annotated[int | None, strawberry.argument(description=LAST)]
Before = Annotated[str | None, strawberry.argument(description=BEFORE)]
