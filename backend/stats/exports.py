"""Exports: indicator tables and filtered case lists as CSV or XLSX, streamed.

Case lists are read with ``session.stream`` (a server-side cursor, a few
hundred rows at a time) and written row by row: CSV chunks are yielded as
they fill; XLSX goes through openpyxl's write-only mode into a temporary
file that is then yielded in chunks. Memory stays bounded whatever the
length of the list (docs/indicators.md).

Every instant in a file reads as the API shows it (``local_instant``): in the caller's
city's zone, the deployment's default for staff, to the second. Rows carry ``datetime``
values; the writers render them, so no column can forget.

Petitioner phone and id numbers are masked in exports (``mask_*``) unless
the caller explicitly asks for ``masked=false``; then a case's PII is shown
unmasked exactly when the per-case API would show it (``sees_pii``: an
official handling the case in scope, never a supervisor or evaluator), and
each such case gets a row in the PII access log — one row per case, all rows
of one export sharing a ``request_id`` of ``export:<uuid>`` — committed in its
own transaction *before* the batch holding those rows is sent. Visibility is
the case list's own SQL predicate (``read_predicate``, accusation rules
included).
"""

from __future__ import annotations

import calendar
import csv
import io
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import date, datetime, tzinfo
from enum import StrEnum
from types import SimpleNamespace
from typing import Any

from sqlalchemy import ColumnElement, func, select

from backend.authz.principal import Principal
from backend.cases.audit import record_pii_reads
from backend.cases.models import Case
from backend.cases.pii import mask_id_number, mask_phone
from backend.cases.queries import CaseFilter, filter_clauses
from backend.cases.visibility import HANDLING_ROLES, sees_pii
from backend.core.clock import DEFAULT_TIMEZONE, local_instant, local_today, response_zone
from backend.core.db import Database
from backend.core.progress import track
from backend.core.spreadsheet import csv_cell, xlsx_row
from backend.stats.indicators import Indicators, Range
from backend.stats.province import province_overview
from backend.stats.ranking import unit_breakdown
from backend.stats.statistics import case_statistics
from backend.tenants.models import Tenant

CHUNK_ROWS = 500
PROGRESS_FROM_ROWS = 5_000  # "more than a few thousand rows" get a bar in a terminal
FILE_CHUNK = 64 * 1024


class Format(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


MEDIA = {
    Format.CSV: "text/csv; charset=utf-8",
    Format.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

INDICATOR_HEADER = (
    "单位 Unit",
    "名称 Name",
    "受理 Received",
    "按期受理率 On-time acceptance",
    "按期办结率 On-time closure",
    "参评率 Participation",
    "满意率 Satisfaction",
    "重复访率 Repeat rate",
    "越级访 Skip-level",
    "积案 Backlog",
    "受理到期 Acceptance due",
    "办理到期 Handling due",
    "答复 Replied",
    "评价 Rated",
)

CASE_HEADER = (
    "编号 Number",
    "登记时间 Received",
    "渠道 Channel",
    "类型 Type",
    "类别 Category",
    "状态 Status",
    "事由 Subject",
    "办理单位 Holder",
    "问题属地 Location",
    "信访人 Petitioner",
    "电话 Phone",
    "身份证 Id number",
    "评价 Rating",
)
CASE_COLUMNS = (
    Case.number,
    Case.received_at,
    Case.channel,
    Case.type,
    Case.category,
    Case.status,
    Case.subject,
    Case.holder_path,
    Case.location_path,
    Case.petitioner_name,
    Case.petitioner_phone,
    Case.petitioner_id_number,
    Case.rating,
)


def indicator_row(key: str, name: str, ind: Indicators) -> tuple[Any, ...]:
    return (
        key,
        name,
        ind.received,
        ind.on_time_acceptance_rate,
        ind.on_time_closure_rate,
        ind.participation_rate,
        ind.satisfaction_rate,
        ind.repeat_rate,
        ind.skip_level,
        ind.backlog,
        ind.acceptance_due,
        ind.closure_due,
        ind.replied,
        ind.rated,
    )


@dataclass(frozen=True)
class IndicatorQuery:
    """``first``/``last`` (local dates, inclusive) default to the current month."""

    first: date | None = None
    last: date | None = None
    tenant: str | None = None
    unit_path: str | None = None
    province: str | None = None


async def with_period(db: Database, principal: Principal, q: IndicatorQuery) -> IndicatorQuery:
    """``q`` with a missing ``from``/``to`` set to the current month's first/last day, in the
    time zone of the city asked for (``tenant``) or the caller's own (the platform's default,
    Asia/Shanghai, for a province-wide table)."""
    if q.first is not None and q.last is not None:
        return q
    async with db.transaction() as session:
        where = Tenant.slug == q.tenant if q.tenant else Tenant.id == principal.tenant_id
        zone = await session.scalar(select(Tenant.timezone).where(where)) or DEFAULT_TIMEZONE
    first = local_today(zone).replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return replace(q, first=q.first or first, last=q.last or last)


async def indicator_table(
    db: Database, principal: Principal, q: IndicatorQuery
) -> list[tuple[Any, ...]]:
    """A small table: the tenants of a province, or the child units of a unit, plus a total."""
    async with db.transaction(principal.scope()) as session:
        if q.province:
            ov = await province_overview(session, principal, q.province, q.first, q.last)
            rows = [indicator_row(t.tenant.slug, t.tenant.name, t.indicators) for t in ov.tenants]
            return [*rows, indicator_row("*", "合计 Total", ov.total)]
        stats = await case_statistics(
            session, principal, q.first, q.last, tenant=q.tenant, unit_path=q.unit_path
        )
        rows = []
        if stats.tenant_id is not None or principal.tenant_id is not None:
            units = await unit_breakdown(
                session,
                principal,
                Range.of(q.first, q.last, principal.timezone),
                tenant=q.tenant,
                unit_path=q.unit_path,
            )
            rows = [indicator_row(u.unit.path, u.unit.name, u.indicators) for u in units]
        total_key = q.unit_path or q.tenant or "*"
        return [*rows, indicator_row(total_key, "合计 Total", stats.indicators)]


async def case_clauses(
    db: Database, principal: Principal, f: CaseFilter
) -> list[ColumnElement[bool]]:
    """Check the caller may list cases (raises before any byte is sent) and build the WHERE."""
    async with db.transaction(principal.scope()) as session:
        return await filter_clauses(session, principal, f)


# What sees_pii needs of a case, read with the row (never exported)
PII_COLUMNS = (Case.tenant_id, Case.id, Case.holder_path, Case.type, Case.accused_path)
PII_FIELDS = ("phone", "idNumber")


def case_row(row: Any, unmasked: bool = False) -> tuple[Any, ...]:
    (number, received, channel, type_, category, status, subject, holder, location, name, phone,
     id_no, rating) = row[: len(CASE_COLUMNS)]  # fmt: skip
    return (
        number,
        received,  # a datetime: the writer shows it in the caller's zone (cells())
        channel,
        type_,
        category,
        status,
        subject,
        holder,
        location,
        name,
        phone if unmasked else mask_phone(phone),
        id_no if unmasked else mask_id_number(id_no),
        rating,
    )


def may_unmask(principal: Principal) -> bool:
    """Whether ``masked=false`` can unmask anything: an official with a handling role."""
    return any(g.role in HANDLING_ROLES for g in principal.grants)


async def case_rows(
    db: Database,
    principal: Principal,
    clauses: list[ColumnElement[bool]],
    *,
    masked: bool = True,
    total: int | None = None,
) -> AsyncIterator[tuple[Any, ...]]:
    """The filtered case list, newest first, one row at a time from a server-side cursor.

    Long exports report progress (``total`` rows, when the caller counted them):
    a bar in a terminal from ``PROGRESS_FROM_ROWS`` rows, else a log line now and then.

    ``masked=False``: the cases the caller handles (``sees_pii``) unmasked, each
    logged (one PII access row per case) and committed before its batch leaves.
    """
    unmask = not masked and may_unmask(principal)
    request_id = f"export:{uuid.uuid4()}"
    with track("export cases", total=total, unit="rows", bar_from=PROGRESS_FROM_ROWS) as progress:
        async with db.transaction(principal.scope()) as session:
            result = await session.stream(
                select(*CASE_COLUMNS, *PII_COLUMNS)
                .where(*clauses)
                .order_by(Case.received_at.desc(), Case.id.desc())
                .execution_options(yield_per=CHUNK_ROWS)
            )
            async for batch in result.partitions(CHUNK_ROWS):  # one await per batch, not per row
                shown = [False] * len(batch)
                if unmask:
                    reads = []
                    for i, row in enumerate(batch):
                        tid, cid, holder, type_, accused = row[len(CASE_COLUMNS) :]
                        case = SimpleNamespace(holder_path=holder, type=type_, accused_path=accused)
                        if sees_pii(principal, case):  # type: ignore[arg-type]
                            shown[i] = True
                            reads.append((tid, cid, PII_FIELDS))
                    if reads:  # the log first, in its own committed transaction
                        async with db.transaction(principal.scope()) as log:
                            await record_pii_reads(log, principal, reads, request_id)
                for row, plain in zip(batch, shown, strict=True):
                    yield case_row(row, plain)
                progress.advance(len(batch))


def cells(row: Iterable[Any], zone: tzinfo) -> list[Any]:
    """A row as written: each ``datetime`` in ``zone`` to the second, the rest unchanged.

    Applied by both writers to every cell, so a date-time column added later cannot leave
    in UTC with microseconds while the API shows the same instant otherwise."""
    return [local_instant(c, zone) if isinstance(c, datetime) else c for c in row]


async def csv_stream(
    header: Iterable[str], rows: AsyncIterator[tuple[Any, ...]] | list, zone: tzinfo
):
    """CSV (UTF-8 with BOM for Excel), yielded every ``CHUNK_ROWS`` rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    pending = 0

    async def each():
        if isinstance(rows, list):
            for r in rows:
                yield r
        else:
            async for r in rows:
                yield r

    yield ("\ufeff" + buffer.getvalue()).encode()
    buffer.seek(0)
    buffer.truncate()
    async for row in each():
        writer.writerow([csv_cell(c) for c in cells(row, zone)])
        pending += 1
        if pending >= CHUNK_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode()


async def xlsx_stream(title: str, header: Iterable[str], rows: AsyncIterator | list, zone: tzinfo):
    """XLSX through openpyxl's write-only mode into a temporary file, then yielded in chunks."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.append(xlsx_row(ws, header))
    if isinstance(rows, list):
        for row in rows:
            ws.append(xlsx_row(ws, cells(row, zone)))  # user text stays text (no formulas)
    else:
        async for row in rows:
            ws.append(xlsx_row(ws, cells(row, zone)))
    with tempfile.TemporaryFile() as fh:
        wb.save(fh)
        fh.seek(0)
        while chunk := fh.read(FILE_CHUNK):
            yield chunk


def render(
    fmt: Format, title: str, header: Iterable[str], rows, zone: tzinfo
) -> AsyncIterator[bytes]:
    """The file's bytes; its instants in ``zone`` (:func:`export_zone`)."""
    if fmt is Format.CSV:
        return csv_stream(header, rows, zone)
    return xlsx_stream(title, header, rows, zone)


def export_zone(principal: Principal, default: str) -> tzinfo:
    """The zone ``principal`` reads an export's times in: as the API would answer it."""
    return response_zone(principal.city_timezone, default)


async def export_to(  # noqa: PLR0913 — the CLI's options of `xinfang report export`, by name
    db: Database,
    username: str,
    kind: str,
    fmt: Format,
    out: Any,
    *,
    first: date | None = None,
    last: date | None = None,
    tenant: str | None = None,
    unit_path: str | None = None,
    province: str | None = None,
    masked: bool = True,
) -> int:
    """``xinfang report``: write an export as ``username`` would download it; bytes written."""
    from backend.tenants.principals import load_principal

    principal = await load_principal(db, username)
    if kind == "statistics":
        q = await with_period(
            db, principal, IndicatorQuery(first, last, tenant, unit_path, province)
        )
        rows: Any = await indicator_table(db, principal, q)
        header, title = INDICATOR_HEADER, "statistics"
    else:
        f = CaseFilter(tenant=tenant, unit_path=unit_path, received_from=first, received_to=last)
        clauses = await case_clauses(db, principal, f)
        async with db.transaction(principal.scope()) as session:
            total = await session.scalar(select(func.count(Case.id)).where(*clauses))
        rows = case_rows(db, principal, clauses, masked=masked, total=total)
        header, title = CASE_HEADER, "cases"
    written = 0
    zone = export_zone(principal, db.settings.default_timezone)
    async for chunk in render(fmt, title, header, rows, zone):
        out.write(chunk)
        written += len(chunk)
    return written
