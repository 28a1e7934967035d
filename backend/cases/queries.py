"""Case lists: every filter, the visibility rule and keyset pagination in one SQL statement.

Keyset cursors on ``(received_at, id)`` descending make page 5,000 cost what
page 1 costs; ``totalCount`` is a second statement with the same WHERE.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import ColumnElement, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import may
from backend.authz.principal import Principal
from backend.cases import pii
from backend.cases.models import Case, CaseStatus, CaseType, WarningColor
from backend.cases.visibility import HANDLING_ROLES, pii_predicate, read_predicate, unit_cases
from backend.core import pagination
from backend.core import validation as v
from backend.core.clock import local_day_start
from backend.core.errors import Forbidden
from backend.tenants.models import User
from backend.tenants.service import tenant_in_scope

MAX_PAGE = 200
# The expression of the former ix_cases_search_trgm index (dropped by migration 0011: RLS
# never let the serving role use it, docs/decisions.md).
SEARCH_TEXT = Case.subject.concat(literal_column("' '")).concat(Case.content)


@dataclass(frozen=True)
class CaseFilter:
    tenant: str | None = None
    status: CaseStatus | None = None
    type: CaseType | None = None
    unit_path: str | None = None
    warning_color: WarningColor | None = None
    received_from: date | None = None
    received_to: date | None = None
    leader: str | None = None
    search: str | None = None
    petitioner_id_number: str | None = None
    agent: str | None = None


# newest first; the id breaks ties (a cursor is ``received_at|id``, as it always was)
CASE_KEYS = (
    pagination.datetime_key(Case.received_at, "received_at"),
    pagination.uuid_key(Case.id),
)


@dataclass(frozen=True)
class Page:
    cases: list[Case]
    total: int
    has_next: bool
    has_previous: bool = False

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.cases[-1]) if self.cases else None

    @property
    def start_cursor(self) -> str | None:
        return encode_cursor(self.cases[0]) if self.cases else None


def encode_cursor(case: Case) -> str:
    return pagination.encode(CASE_KEYS, case)


async def filter_clauses(
    session: AsyncSession, principal: Principal, f: CaseFilter
) -> list[ColumnElement[bool]]:
    if not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        raise Forbidden("not allowed to read cases")
    clauses: list[ColumnElement[bool]] = [read_predicate(principal)]
    if f.tenant:
        clauses.append(
            Case.tenant_id == await tenant_in_scope(session, principal, f.tenant, "cases")
        )
    if f.status:
        clauses.append(Case.status == f.status)
    if f.type:
        clauses.append(Case.type == f.type)
    if f.unit_path:
        v.path(f.unit_path, "filter.unitPath")
        clauses.append(unit_cases(f.unit_path))
    if f.warning_color:
        clauses.append(Case.warning_color == f.warning_color)
    tz = principal.timezone  # the dates are the caller's city's local dates
    # supported dates, in order: a reversed range is refused, not an empty list (GraphQL,
    # the CLI and /exports alike; the routes check their own from/to first)
    v.date_range(
        f.received_from,
        f.received_to,
        first_field="filter.receivedFrom",
        last_field="filter.receivedTo",
    )
    if f.received_from:
        clauses.append(Case.received_at >= local_day_start(f.received_from, tz))
    if f.received_to:
        clauses.append(Case.received_at < local_day_start(f.received_to + timedelta(days=1), tz))
    clauses += _person_clauses(f)
    if f.search:
        term = f.search.strip()[:100]
        if term:  # LIKE wildcards in the text are searched for literally, not stripped
            term = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append(SEARCH_TEXT.ilike(f"%{term}%", escape="\\"))
    if f.petitioner_id_number:
        clauses.append(_petitioner_clause(principal, f.petitioner_id_number))
    return clauses


def _person_clauses(f: CaseFilter) -> list[ColumnElement[bool]]:
    """Cases a named user owns (包案 ``leader``) or acts for (代办 ``agent``, seeds 001,
    002); the read predicate beside them still decides what the caller sees."""
    return [
        column == select(User.id).where(User.username == username).scalar_subquery()
        for column, username in ((Case.leader_id, f.leader), (Case.agent_id, f.agent))
        if username
    ]


def _petitioner_clause(principal: Principal, value: str) -> ColumnElement[bool]:
    """Exact search by id number through its keyed hash (the column itself is encrypted),
    over the cases whose PII the caller is shown unmasked only: over any other case a
    count would confirm a number the caller sees masked (``411403**********08``)."""
    return and_(
        Case.petitioner_key == id_number_search_key(principal, value), pii_predicate(principal)
    )


def id_number_search_key(principal: Principal, value: str) -> str:
    """The keyed hash a search by id number looks for (and the PII access log records).

    Only officials who may see PII unmasked somewhere may ask: for anyone else (supervisors,
    evaluators, grid workers) "which cases has this person" would itself disclose PII.
    """
    if principal.tenant_id is None or not any(g.role in HANDLING_ROLES for g in principal.grants):
        raise Forbidden("searching by id number needs a handling role")
    id_no = pii.id_number(value, "filter.petitionerIdNumber")
    return pii.petitioner_key(principal.tenant_id, id_no, None)


async def list_cases(
    session: AsyncSession,
    principal: Principal,
    f: CaseFilter,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page:
    args = pagination.PageArgs(first=first, after=after, last=last, before=before)
    return await case_page(session, await list_clauses(session, principal, f, args), args)


async def list_clauses(
    session: AsyncSession, principal: Principal, f: CaseFilter, args: pagination.PageArgs
) -> list[ColumnElement[bool]]:
    """The WHERE of a case list (read predicate with Art. 30, every filter), its page size
    checked: shared by :func:`list_cases` and the compiled reads (``compiled.py``)."""
    pagination.check_size(args, minimum=0, maximum=MAX_PAGE)
    return await filter_clauses(session, principal, f)


async def case_page(
    session: AsyncSession, clauses: list[ColumnElement[bool]], args: pagination.PageArgs
) -> Page:
    """The page ``args`` asks for of the cases matching ``clauses`` (the read rule among
    them), with their total: one statement, the total riding on the rows."""
    pagination.check_size(args, minimum=0, maximum=MAX_PAGE)
    count = select(func.count(Case.id)).where(*clauses)
    stmt = select(Case, count.scalar_subquery().correlate(None)).where(*clauses)
    query = pagination.windowed(stmt, CASE_KEYS, args, default=pagination.DEFAULT_PAGE)
    rows = list(await session.execute(query))
    total = rows[0][1] if rows else None
    if total is None:  # nothing matched; only a page beyond a cursor must ask
        total = await session.scalar(count) if (args.after or args.before) else 0
    win = pagination.window([r[0] for r in rows], args, default=pagination.DEFAULT_PAGE)
    return Page(win.rows, int(total or 0), win.has_next, win.has_previous)


@dataclass(frozen=True)
class BoardCounts:
    red: int
    yellow: int
    blue: int


async def board_clauses(
    session: AsyncSession, principal: Principal, unit_path: str | None
) -> list[ColumnElement[bool]]:
    """The WHERE of the 红黄蓝 board's counts: open cases in the caller's scope (below
    ``unit_path``). Shared with the compiled board (``compiled.py``)."""
    if unit_path:  # the argument is warningBoard(unitPath:), not a filter field
        v.path(unit_path, "unitPath")
    clauses = await filter_clauses(session, principal, CaseFilter(unit_path=unit_path))
    # a closed case stays on the board while a follow-up duty runs (its only clock)
    return [*clauses, or_(Case.status != CaseStatus.CLOSED, Case.due_at.is_not(None))]


async def warning_counts(
    session: AsyncSession, principal: Principal, unit_path: str | None
) -> BoardCounts:
    """红黄蓝 board: open cases by colour in the caller's scope (below ``unit_path``)."""
    clauses = await board_clauses(session, principal, unit_path)
    rows = await session.execute(
        select(Case.warning_color, func.count(Case.id)).where(*clauses).group_by(Case.warning_color)
    )
    counts = {color: n for color, n in rows}
    return BoardCounts(
        red=counts.get(WarningColor.RED, 0),
        yellow=counts.get(WarningColor.YELLOW, 0),
        blue=counts.get(WarningColor.BLUE, 0),
    )


async def live_cases(
    session: AsyncSession,
    principal: Principal,
    case_ids: Sequence[uuid.UUID],
    unit_path: str | None = None,
) -> list[Case]:
    """The cases among ``case_ids`` that ``caseUpdated`` may tell ``principal`` of:
    readable by the same rule as :func:`list_cases` (Art. 30 included) — asked again at
    every change, so a role revoked or taken inside an accused unit counts at once — and
    among ``unit_path``'s cases when one is given. FORBIDDEN when the principal may read
    no case at all (a revoked role ends the subscription); no ids, no statement."""
    if unit_path:
        v.path(unit_path, "unitPath")
    clauses = await filter_clauses(session, principal, CaseFilter(unit_path=unit_path))
    if not case_ids:
        return []
    rows = await session.scalars(select(Case).where(Case.id.in_(list(case_ids)), *clauses))
    return sorted(rows, key=lambda c: (c.updated_at, str(c.id)))
