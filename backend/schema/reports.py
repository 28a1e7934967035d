"""Monthly reports: GraphQL listing (``monthlyReports``, ``monthlyReport``) and HTTP downloads.

``GET /reports/{id}.xlsx`` and ``GET /reports/{id}.html`` take the same
credentials as ``/graphql`` (``backend/web/auth.py``): no, malformed or expired
credential → 401; a report that does not exist or the caller may not read → 404
(the same answer); a caller whose roles read no reports at all → 403.

``MonthlyReport.htmlLink`` is the page as a signed link a leader can open from the
inbox or an SMS without a header: bound to the caller and that one page, valid
``XF_REPORT_LINK_TTL_SECONDS`` (24 h), with the caller's roles read again when it
is opened (docs/jobs.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.authz.principal import Principal
from backend.authz.roles import AccountKind
from backend.authz.tokens import issue_link
from backend.core.db import Database
from backend.core.pagination import PageArgs, encode
from backend.jobs.reports import report_urls
from backend.schema.context import Ctx
from backend.schema.enums import OrgUnitLevel
from backend.schema.relay import After, Before, Connection, First, Last, Node, connection_of
from backend.stats import report as reports
from backend.stats.models import MonthlyReport
from backend.web.routes import rest_route


@strawberry.type(name="MonthlyReport")
class MonthlyReportNode(Node):
    _m: strawberry.Private[MonthlyReport]
    period: str = strawberry.field(description="The month, YYYY-MM (tenant time zone).")
    unit_path: str
    unit_name: str
    created_at: datetime
    data: strawberry.scalars.JSON = strawberry.field(
        description="Every figure of the report (docs/jobs.md defines them)."
    )

    @classmethod
    def of(cls, m: MonthlyReport, **private: Any) -> MonthlyReportNode:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(
            _m=m,
            **private,
            period=m.period,
            unit_path=m.unit_path,
            unit_name=m.unit_name,
            created_at=m.created_at,
            data=m.data,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def unit_level(self) -> OrgUnitLevel:
        return OrgUnitLevel(self._m.unit_level)

    @strawberry.field(description="Cases received in the month.")
    def received(self) -> int:
        return int(self._m.data["intake"]["total"])

    @strawberry.field(description="积案: cases past a due date at month end, not finished.")
    def backlog(self) -> int:
        return int(self._m.data["backlog"])

    @strawberry.field(description="Cases red at month end.")
    def red_cases(self) -> int:
        return int(self._m.data["redCases"])

    @strawberry.field(description="ACCEPTANCE steps due in the month finished on time / due.")
    def on_time_acceptance_rate(self) -> float | None:
        return self._m.data.get("onTimeAcceptanceRate")

    @strawberry.field(description="GET with the same bearer token: the workbook.")
    def xlsx_url(self) -> str:
        return report_urls(self._m.id)["xlsx"]

    @strawberry.field(description="GET with the same bearer token: the page with charts.")
    def html_url(self) -> str:
        return report_urls(self._m.id)["html"]

    @strawberry.field(
        description="The page as a signed link that opens without a header (from the inbox, "
        "an SMS): for the caller and this report only, valid XF_REPORT_LINK_TTL_SECONDS "
        "(24 h by default); the caller's roles are read again when it is opened. Null for "
        "a service account, which authenticates with its API key."
    )
    def html_link(self, info: Ctx) -> str | None:
        principal = info.context.principal
        if principal.kind == AccountKind.SERVICE_ACCOUNT:
            return None
        return report_link(report_urls(self._m.id)["html"], principal.username)


@strawberry.type
class ReportQueries:
    @strawberry.field(
        description="Stored monthly reports the caller may read (its units and below), newest first.",
        deprecation_reason="Use monthlyReportsConnection: Relay cursors in both directions (first/after, last/before).",
    )
    async def monthly_reports(
        self,
        info: Ctx,
        first: int = 20,
        period: str | None = None,
        unit_path: str | None = None,
    ) -> list[MonthlyReportNode]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await reports.list_reports(
                session, ctx.principal, first=first, period=period, unit_path=unit_path
            )
        return [MonthlyReportNode.of(r) for r in rows]

    @strawberry.field(
        description=(
            "Stored monthly reports the caller may read, newest month first then by unit "
            "path, as a Relay connection (default page: 20, at most 100)."
        )
    )
    async def monthly_reports_connection(
        self,
        info: Ctx,
        period: str | None = None,
        unit_path: str | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[MonthlyReportNode]:
        ctx = info.context
        args = PageArgs(first, after, last, before)
        async with ctx.read() as session:
            window = await reports.report_page(
                session, ctx.principal, args, period=period, unit_path=unit_path
            )
        return connection_of(
            window, MonthlyReportNode.of, lambda row: encode(reports.REPORT_KEYS, row)
        )

    @strawberry.field(
        description="One report: null + NOT_FOUND when absent or not visible; other fields survive."
    )
    async def monthly_report(self, info: Ctx, id: strawberry.ID) -> MonthlyReportNode | None:
        ctx = info.context
        async with ctx.read() as session:
            return MonthlyReportNode.of(await reports.find_report(session, ctx.principal, str(id)))


# --- HTTP downloads ------------------------------------------------------------------------


def report_link(path: str, username: str) -> str:
    """``path`` with a signed ``link`` for ``username`` (``backend/authz/tokens.py``)."""
    return f"{path}?link={issue_link(path, username)}"


def report_routes(db: Database) -> list[Route]:
    """``/reports/{id}.xlsx`` and ``/reports/{id}.html`` for the app's database."""

    async def load(request: Request, principal: Principal) -> MonthlyReport:
        async with db.transaction(principal.scope()) as session:
            return await reports.find_report(session, principal, request.path_params["id"])

    def _headers(**extra: str) -> dict[str, Any]:
        return {
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",  # a signed link must not leak onwards
            **extra,
        }

    async def xlsx(request: Request, principal: Principal) -> Response:
        found = await load(request, principal)
        name = f"report-{found.period}-{found.unit_path.strip('/').replace('/', '-')}.xlsx"
        return Response(
            reports.render_xlsx(found.data),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=_headers(**{"Content-Disposition": f'attachment; filename="{name}"'}),
        )

    async def page(request: Request, principal: Principal) -> Response:
        found = await load(request, principal)
        return Response(
            reports.render_html(found.data),
            media_type="text/html; charset=utf-8",
            headers=_headers(
                **{"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
            ),
        )

    return [
        rest_route("/reports/{id}.xlsx", xlsx),
        rest_route("/reports/{id}.html", page),
    ]
