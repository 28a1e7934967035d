"""Monthly reports: GraphQL listing (``monthlyReports``, ``monthlyReport``) and HTTP downloads.

``GET /reports/{id}.xlsx`` and ``GET /reports/{id}.html`` take the same
``Authorization: Bearer`` token as ``/graphql``: no, malformed or expired
token → 401; a report that does not exist or the caller may not read → 404
(the same answer); a caller whose roles read no reports at all → 403.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.types import Info

from backend.authz.tokens import bearer_token, verify_token
from backend.core.db import Database
from backend.core.errors import AppError, Forbidden, NotFound
from backend.jobs.models import MonthlyReport
from backend.jobs.reports import report_urls
from backend.schema.context import RequestContext
from backend.schema.enums import OrgUnitLevel
from backend.schema.view import unauthenticated_response
from backend.stats import report as reports
from backend.tenants.principals import load_principal

Ctx = Info[RequestContext, None]


@strawberry.type(name="MonthlyReport")
class MonthlyReportNode:
    _m: strawberry.Private[MonthlyReport]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field(description="The month, YYYY-MM (tenant time zone).")
    def period(self) -> str:
        return self._m.period

    @strawberry.field
    def unit_path(self) -> str:
        return self._m.unit_path

    @strawberry.field
    def unit_name(self) -> str:
        return self._m.unit_name

    @strawberry.field
    def unit_level(self) -> OrgUnitLevel:
        return OrgUnitLevel(self._m.unit_level)

    @strawberry.field
    def created_at(self) -> datetime:
        return self._m.created_at

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

    @strawberry.field(description="Every figure of the report (docs/jobs.md defines them).")
    def data(self) -> strawberry.scalars.JSON:
        return self._m.data

    @strawberry.field(description="GET with the same bearer token: the workbook.")
    def xlsx_url(self) -> str:
        return report_urls(self._m.id)["xlsx"]

    @strawberry.field(description="GET with the same bearer token: the page with charts.")
    def html_url(self) -> str:
        return report_urls(self._m.id)["html"]


@strawberry.type
class ReportQueries:
    @strawberry.field(
        description="Stored monthly reports the caller may read (its units and below), newest first."
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
        return [MonthlyReportNode(_m=r) for r in rows]

    @strawberry.field(description="One report; NOT_FOUND when absent or not visible.")
    async def monthly_report(self, info: Ctx, id: strawberry.ID) -> MonthlyReportNode:
        ctx = info.context
        async with ctx.read() as session:
            return MonthlyReportNode(_m=await reports.find_report(session, ctx.principal, str(id)))


# --- HTTP downloads ------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def report_routes(db: Database) -> list[Route]:
    """``/reports/{id}.xlsx`` and ``/reports/{id}.html`` for the app's database."""

    async def load(request: Request) -> MonthlyReport | Response:
        try:
            token = bearer_token(request.headers.get("authorization"))
            if not token:
                return unauthenticated_response("a bearer token is required")
            principal = await load_principal(db, verify_token(token))
        except AppError as exc:
            return unauthenticated_response(exc.message)
        try:
            async with db.transaction(principal.scope()) as session:
                return await reports.find_report(session, principal, request.path_params["id"])
        except NotFound as exc:
            return _error(404, "NOT_FOUND", exc.message)
        except Forbidden as exc:
            return _error(403, "FORBIDDEN", exc.message)

    def _headers(**extra: str) -> dict[str, Any]:
        return {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", **extra}

    async def xlsx(request: Request) -> Response:
        found = await load(request)
        if isinstance(found, Response):
            return found
        name = f"report-{found.period}-{found.unit_path.strip('/').replace('/', '-')}.xlsx"
        return Response(
            reports.render_xlsx(found.data),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers=_headers(**{"Content-Disposition": f'attachment; filename="{name}"'}),
        )

    async def page(request: Request) -> Response:
        found = await load(request)
        if isinstance(found, Response):
            return found
        return Response(
            reports.render_html(found.data),
            media_type="text/html; charset=utf-8",
            headers=_headers(
                **{"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
            ),
        )

    return [
        Route("/reports/{id}.xlsx", xlsx, methods=["GET"]),
        Route("/reports/{id}.html", page, methods=["GET"]),
    ]
