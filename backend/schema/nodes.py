"""Global object identification (Relay): ``node(id:)`` and ``nodes(ids:)``.

An id is an object's UUID as its ``id`` field shows it, or the global form
``base64("Type:uuid")`` (backend/core/ids.py). Each type answers through its domain's
``visible_*`` read — the very rule of its typed lookup (tenant wall, scope, Art. 30
need-to-know, the inbox's owner) as one ``IN`` statement — so ``nodes`` costs one
statement per type asked for, whatever the number of ids (a bare UUID asks every type).
Whatever the caller may not read is ``null`` with ``NOT_FOUND``, like an id that does not
exist: the answer never says whether, or as what, the object exists.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import service as cases
from backend.core.errors import BadUserInput, NotFound
from backend.core.ids import decode_id
from backend.evaluations import panels
from backend.notifications import service as notifications
from backend.rosters import shifts
from backend.schema.cases import node as case_node
from backend.schema.context import Ctx, RequestContext
from backend.schema.evaluations import PanelType
from backend.schema.notifications import NotificationNode
from backend.schema.relay import Node
from backend.schema.reports import MonthlyReportNode
from backend.schema.rosters import shift
from backend.schema.tenants import OrgUnitType
from backend.stats import report as reports
from backend.tenants import service as tenants

MAX_IDS = 100


@dataclass(frozen=True)
class Kind:
    """How one Node type is read (its domain's rule, batched) and shown."""

    fetch: Callable[[AsyncSession, Principal, Sequence[uuid.UUID]], Awaitable[list[Any]]]
    show: Callable[[Any, RequestContext], Any]


KINDS: dict[str, Kind] = {
    "Case": Kind(cases.visible_cases, lambda row, _ctx: case_node(row)),
    "OrgUnit": Kind(tenants.visible_units, lambda row, _ctx: OrgUnitType.of(row)),
    "Panel": Kind(panels.visible_panels, lambda row, _ctx: PanelType.of(row)),
    "MonthlyReport": Kind(reports.visible_reports, lambda row, _ctx: MonthlyReportNode.of(row)),
    "DutyShift": Kind(shifts.visible_shifts, lambda row, _ctx: shift(row)),
    "Notification": Kind(
        notifications.own_notifications,
        lambda row, ctx: NotificationNode.of(row, _viewer=ctx.principal.account_id),
    ),
}


def _parse(raw: str) -> tuple[str | None, uuid.UUID] | None:
    """``(type, key)`` of a global id, ``(None, key)`` of a bare UUID; ``None`` for a
    global id of a type no node has (NOT_FOUND, as an unknown id). Malformed: raises
    ``BAD_USER_INPUT`` (``decode_id``, the API's one id decoding)."""
    type_name, key = decode_id(raw)
    return None if type_name is not None and type_name not in KINDS else (type_name, key)


async def resolve(ctx: RequestContext, ids: Sequence[str]) -> list[Any]:
    """The object of each id, or a ``NotFound`` in its place (same order)."""
    parsed: list[tuple[str | None, uuid.UUID] | BadUserInput | None] = []
    for raw in ids:
        try:
            parsed.append(_parse(str(raw)))
        except BadUserInput as refused:  # in its place: the other ids are still answered
            parsed.append(refused)
    wanted: defaultdict[str, set[uuid.UUID]] = defaultdict(set)
    for p in parsed:
        if isinstance(p, tuple):
            for name in [p[0]] if p[0] else KINDS:
                wanted[name].add(p[1])
    found: dict[tuple[str, uuid.UUID], Any] = {}
    if wanted:
        async with ctx.read() as session:
            for name in KINDS:  # a fixed order: the statements do not depend on the ids'
                if name in wanted:
                    rows = await KINDS[name].fetch(session, ctx.principal, sorted(wanted[name]))
                    found.update(((name, row.id), row) for row in rows)
    out: list[Any] = []
    for raw, p in zip(ids, parsed, strict=True):
        if isinstance(p, BadUserInput):
            out.append(p)
            continue
        hit = None
        if p is not None:
            names = [p[0]] if p[0] else list(KINDS)
            hit = next(((n, found[(n, p[1])]) for n in names if (n, p[1]) in found), None)
        out.append(KINDS[hit[0]].show(hit[1], ctx) if hit else NotFound(f"node {raw} not found"))
    return out


@strawberry.type
class NodeQueries:
    @strawberry.field(
        description=(
            "Any object with an id (Relay's refetch): its UUID as the id field shows it, or "
            'the global form base64("Type:uuid"). Null with NOT_FOUND when absent or not '
            "the caller's to read — the same rules as the typed lookup (case, orgUnit, …)."
        )
    )
    async def node(
        self,
        info: Ctx,
        id: Annotated[strawberry.ID, strawberry.argument(description="A UUID or a global id.")],
    ) -> Node | None:
        (found,) = await resolve(info.context, [str(id)])
        if isinstance(found, Exception):
            raise found
        return found

    @strawberry.field(
        description=(
            "Several objects at once, in the order asked (at most 100 ids); each one the "
            "caller may not read, or that does not exist, is null with its NOT_FOUND error."
        )
    )
    async def nodes(
        self,
        info: Ctx,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="UUIDs or global ids.")
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_IDS:
            raise BadUserInput(f"at most {MAX_IDS} ids", field="ids")
        return await resolve(info.context, [str(i) for i in ids])
