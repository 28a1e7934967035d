"""Statistics: ``caseStatistics``, ``unitRanking``, ``provinceOverview``, ``superviseCity``,
and the HTTP exports ``/exports/statistics.{csv,xlsx}`` and ``/exports/cases.{csv,xlsx}``.

Definitions: docs/indicators.md. Exports take the same credentials as
``/graphql`` (a bearer token or an API key; 401 without one, 403 when the caller's
roles read no statistics / cases or ask for another city, 400 on bad parameters) and
are charged ``XF_RATE_LIMIT_EXPORT_COST`` points of the caller's rate limit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from backend.cases.models import CaseStatus, CaseType
from backend.cases.queries import CaseFilter
from backend.core import validation
from backend.core.db import Database
from backend.core.errors import BadUserInput, NotFound
from backend.schema.context import Ctx
from backend.schema.tenants import OrgUnitType
from backend.stats import definitions, exports, indicators, ranking, statistics
from backend.stats import province as provincial
from backend.stats.indicators import Granularity as Gran
from backend.stats.indicators import Indicators
from backend.web.routes import rest_route

StatsGranularity = strawberry.enum(Gran, name="StatsGranularity")
SatisfactionFormulaType = strawberry.enum(
    definitions.SatisfactionFormula,
    name="SatisfactionFormula",
    description="STANDARD (satisfied + basically) / rated; SATISFIED_ONLY satisfied / rated; "
    "BASICALLY_HALF (satisfied + ½ basically) / rated.",
)
ClosureFormulaType = strawberry.enum(
    definitions.ClosureFormula,
    name="OnTimeClosureFormula",
    description="EXTENSION_COUNTS: on time against the approved-extended due time (standard); "
    "EXTENSION_LATE: a case that needed an extension is not on time.",
)


@strawberry.type(
    name="IndicatorDefinition",
    description="How a city forms its rates (tenant policy `indicators`; docs/indicators.md). "
    "The defaults are the province standard.",
)
class IndicatorDefinitionType:
    satisfaction: SatisfactionFormulaType
    on_time_closure: ClosureFormulaType
    participation_window_days: int = strawberry.field(
        description="Days after the reply the petitioner may rate; a replied case counts in the "
        "participation denominator once rated or once this window has closed."
    )
    is_standard: bool

    @classmethod
    def of(cls, d: definitions.Definition) -> IndicatorDefinitionType:
        return cls(
            satisfaction=d.satisfaction,
            on_time_closure=d.on_time_closure,
            participation_window_days=d.participation_window_days,
            is_standard=d.is_standard,
        )


@strawberry.input
class IndicatorDefinitionInput:
    satisfaction: SatisfactionFormulaType | None = None
    on_time_closure: ClosureFormulaType | None = None
    participation_window_days: int | None = None

    def as_data(self) -> dict[str, Any]:
        data = {
            "satisfaction": self.satisfaction,
            "onTimeClosure": self.on_time_closure,
            "participationWindowDays": self.participation_window_days,
        }
        return {
            k: (v.value if hasattr(v, "value") else v) for k, v in data.items() if v is not None
        }


@strawberry.type
class Count:
    key: str
    count: int


def _counts(data: dict[str, int]) -> list[Count]:
    return [Count(key=k, count=n) for k, n in sorted(data.items(), key=lambda kv: (-kv[1], kv[0]))]


@strawberry.type(description="Indicator values; rates are 0–1, null on a zero denominator.")
class IndicatorSet:
    _i: strawberry.Private[Indicators]
    received: int = strawberry.field(description="Cases received in the range.")
    on_time_acceptance_rate: float | None = strawberry.field(
        description="ACCEPTANCE steps due in the range finished on time / due."
    )
    on_time_closure_rate: float | None = strawberry.field(
        description="HANDLING steps due in the range replied on time / due."
    )
    participation_rate: float | None = strawberry.field(
        description="Cases replied in the range that are rated / those rated or whose rating "
        "window has closed (participationBase)."
    )
    satisfaction_rate: float | None = strawberry.field(
        description="Ratings given in the range: satisfied (per `definition`) / rated."
    )
    repeat_rate: float | None = strawberry.field(
        description="Repeat cases / cases received in the range."
    )
    skip_level_count: int = strawberry.field(description="越级访 received in the range.")
    backlog: int = strawberry.field(
        description="积案: cases with a step past due at the end of the range."
    )
    acceptance_due: int
    closure_due: int
    replied: int
    participation_base: int = strawberry.field(
        description="Replied in the range and rated, or with the rating window closed: the "
        "participation denominator."
    )
    rated: int

    @classmethod
    def of(cls, i: Indicators, **extra: Any) -> Any:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(_i=i, **extra, **cls.figures(i))

    @staticmethod
    def figures(i: Indicators) -> dict[str, Any]:
        return {
            "received": i.received,
            "on_time_acceptance_rate": i.on_time_acceptance_rate,
            "on_time_closure_rate": i.on_time_closure_rate,
            "participation_rate": i.participation_rate,
            "satisfaction_rate": i.satisfaction_rate,
            "repeat_rate": i.repeat_rate,
            "skip_level_count": i.skip_level,
            "backlog": i.backlog,
            "acceptance_due": i.acceptance_due,
            "closure_due": i.closure_due,
            "replied": i.replied,
            "participation_base": i.participation_base,
            "rated": i.rated,
        }

    @strawberry.field(description="The definition these rates were formed with.")
    def definition(self) -> IndicatorDefinitionType:
        return IndicatorDefinitionType.of(self._i.definition)

    @strawberry.field(
        description="The same counts under the province-standard definition (compare cities here)."
    )
    def standard(self) -> IndicatorSet:
        return IndicatorSet.of(self._i.standard())

    @strawberry.field
    def by_channel(self) -> list[Count]:
        return _counts(self._i.by_channel)

    @strawberry.field
    def by_type(self) -> list[Count]:
        return _counts(self._i.by_type)

    @strawberry.field
    def by_category(self) -> list[Count]:
        return _counts(self._i.by_category)

    @strawberry.field
    def by_rating(self) -> list[Count]:
        return _counts(self._i.by_rating)


@strawberry.type
class EvaluationFigures:
    evaluated: int
    settled: int
    pending: int
    by_verdict: list[Count]


@strawberry.type
class StatsBucket(IndicatorSet):
    from_: date = strawberry.field(name="from")
    to: date


@strawberry.type
class UnitStatistics(IndicatorSet):
    unit: OrgUnitType


@strawberry.type
class UnitRank:
    unit: OrgUnitType
    rank: int | None
    score: float | None
    previous_rank: int | None
    previous_score: float | None
    rank_change: int | None = strawberry.field(description="Places gained since last week.")
    score_change: float | None
    statistics: IndicatorSet


@strawberry.type
class UnitRanking:
    week_from: date
    week_to: date
    units: list[UnitRank]


@strawberry.input
class RankingWeightsInput:
    on_time_acceptance: float | None = None
    on_time_closure: float | None = None
    participation: float | None = None
    satisfaction: float | None = None
    repeat: float | None = None


def _weights(w: RankingWeightsInput | None) -> dict[str, float] | None:
    return None if w is None else {k: v for k, v in vars(w).items() if v is not None}


def _ranking(week: indicators.Range, rows: list[ranking.RankRow]) -> UnitRanking:
    return UnitRanking(
        week_from=week.first,
        week_to=week.last,
        units=[
            UnitRank(
                unit=OrgUnitType.of(r.unit),
                rank=r.rank,
                score=r.score,
                previous_rank=r.previous_rank,
                previous_score=r.previous_score,
                rank_change=r.rank_change,
                score_change=r.score_change,
                statistics=IndicatorSet.of(r.indicators),
            )
            for r in rows
        ],
    )


@strawberry.type
class CaseStatistics(IndicatorSet):
    _s: strawberry.Private[statistics.Statistics]
    unit_path: str | None
    tenant: str | None
    refreshed_at: datetime | None = strawberry.field(
        description="When the daily summary these figures were read from was rebuilt (past days "
        "as of then; today live); null when every figure is live."
    )

    @strawberry.field(name="from")
    def from_(self) -> date:
        return self._s.range.first

    @strawberry.field
    def to(self) -> date:
        return self._s.range.last

    @strawberry.field(description="案件办理质量评价: panels concluded in the range.")
    async def evaluations(self, info: Ctx) -> EvaluationFigures:
        async with info.context.read() as session:
            o = await statistics.evaluations(session, self._s.clause, self._s.range)
        return EvaluationFigures(
            evaluated=o.evaluated,
            settled=o.settled,
            pending=o.pending,
            by_verdict=[Count(key=v.value, count=n) for v, n in o.verdict_mix.items()],
        )

    @strawberry.field(description="The same indicators per day, week or month of the range.")
    async def series(self, info: Ctx, granularity: StatsGranularity) -> list[StatsBucket]:
        async with info.context.read() as session:
            rows = await statistics.series(
                session,
                self._s.clause,
                self._s.range,
                Gran(granularity),
                self._s.indicators.definition,
            )
        return [StatsBucket.of(i, from_=r.first, to=r.last) for r, i in rows]

    @strawberry.field(description="Drill-down: the child units of unitPath (default: the city).")
    async def units(self, info: Ctx) -> list[UnitStatistics]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await ranking.unit_breakdown(
                session,
                ctx.principal,
                self._s.range,
                tenant=self._s.tenant,
                unit_path=self._s.unit_path,
            )
        return [UnitStatistics.of(u.indicators, unit=OrgUnitType.of(u.unit)) for u in rows]

    @strawberry.field(
        description="Weekly ranking of the child units for the week (Mon–Sun) containing `to`."
    )
    async def unit_ranking(
        self, info: Ctx, weights: RankingWeightsInput | None = None
    ) -> UnitRanking:
        ctx = info.context
        async with ctx.read() as session:
            week, rows = await ranking.weekly_ranking(
                session,
                ctx.principal,
                week=self._s.range.last,
                tenant=self._s.tenant,
                unit_path=self._s.unit_path,
                weights=_weights(weights),
            )
        return _ranking(week, rows)


@strawberry.type
class TenantStatistics(IndicatorSet):
    slug: str
    name: str


@strawberry.type(
    description="Every city side by side, each under its own indicator definition (`definition`, "
    "`standard` for the province-standard figures); the total is the province standard."
)
class ProvinceOverview:
    province: str | None
    from_: date = strawberry.field(name="from")
    to: date
    tenants: list[TenantStatistics]
    total: IndicatorSet
    refreshed_at: datetime | None = strawberry.field(
        description="Staleness: complete past days come from the daily summary as of this instant "
        "(the oldest city's refresh; the job runs every 30 minutes and nightly); today, and any "
        "day since a city's last refresh, is live, as is the backlog. Null: all live."
    )


@strawberry.input
class SuperviseCityInput:
    case_id: strawberry.ID
    note: str
    due_date: date | None = None


@strawberry.type
class SupervisionOrderResult:
    case_id: strawberry.ID
    tenant: str
    event_seq: int
    notified: int


@strawberry.type
class StatsQueries:
    @strawberry.field(
        description="Indicators over local dates from..to (inclusive) of the cases the caller "
        "may read, optionally one tenant (supervisors: a city of their province; officials: "
        "their own) and one unit subtree. Definitions: docs/indicators.md."
    )
    async def case_statistics(
        self,
        info: Ctx,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        unit_path: str | None = None,
        tenant: str | None = None,
    ) -> CaseStatistics:
        ctx = info.context
        async with ctx.read() as session:
            s = await statistics.case_statistics(
                session, ctx.principal, from_, to, tenant=tenant, unit_path=unit_path
            )
        return CaseStatistics.of(
            s.indicators, _s=s, unit_path=s.unit_path, tenant=s.tenant, refreshed_at=s.refreshed_at
        )

    @strawberry.field(
        description="Weekly ranking of the child units of unitPath (week containing `week`, "
        "default the last full week), with the change from the previous week."
    )
    async def unit_ranking(
        self,
        info: Ctx,
        week: date | None = None,
        tenant: str | None = None,
        unit_path: str | None = None,
        weights: RankingWeightsInput | None = None,
    ) -> UnitRanking:
        ctx = info.context
        async with ctx.read() as session:
            w, rows = await ranking.weekly_ranking(
                session,
                ctx.principal,
                week=week,
                tenant=tenant,
                unit_path=unit_path,
                weights=_weights(weights),
            )
        return _ranking(w, rows)

    @strawberry.field(
        description="Provincial supervisors: every city of their province side by side "
        "(another province: an empty overview)."
    )
    async def province_overview(
        self,
        info: Ctx,
        province: str,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> ProvinceOverview:
        ctx = info.context
        async with ctx.read() as session:
            ov = await provincial.province_overview(session, ctx.principal, province, from_, to)
        return ProvinceOverview(
            province=ov.province.slug if ov.province else None,
            from_=ov.range.first,
            to=ov.range.last,
            tenants=[
                TenantStatistics.of(t.indicators, slug=t.tenant.slug, name=t.tenant.name)
                for t in ov.tenants
            ],
            total=IndicatorSet.of(ov.total),
            refreshed_at=ov.refreshed_at,
        )


@strawberry.type
class StatsMutations:
    @strawberry.mutation(
        description="省级督办: a provincial supervisor's order on a city's case — a case event, "
        "and a message to the city's petition officers at its root unit."
    )
    async def supervise_city(self, info: Ctx, input: SuperviseCityInput) -> SupervisionOrderResult:
        ctx = info.context
        order = await ctx.mutate(
            provincial.supervise_city,
            str(input.case_id),
            note=input.note,
            due_date=input.due_date,
            scope=provincial.supervision_scope(ctx.principal),
        )
        return SupervisionOrderResult(
            case_id=strawberry.ID(str(order.case_id)),
            tenant=order.tenant,
            event_seq=order.event_seq,
            notified=order.notified,
        )


# --- HTTP exports --------------------------------------------------------------------------


def _date(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    return validation.parse_date(raw, name)  # YYYY-MM-DD within the supported dates


def _period(request: Request) -> tuple[date | None, date | None]:
    """``from``/``to`` of an export, each optional, checked as every from/to pair of the API
    is (``validation.date_range``): a reversed range is a 400, never an empty file."""
    first, last = _date(request, "from"), _date(request, "to")
    validation.date_range(first, last)
    return first, last


def _enum(request: Request, name: str, enum: Any) -> Any:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        return enum(raw)
    except ValueError as exc:
        raise BadUserInput(f"unknown {name} {raw}", field=name) from exc


def _only(request: Request, *names: str) -> None:
    """Refuse parameters the route does not know: a misspelt filter must not silently
    export everything (``unit=`` for ``unitPath=``)."""
    unknown = sorted(set(request.query_params) - {*names, "link"})
    if unknown:
        raise BadUserInput(
            f"unknown parameter {unknown[0]} (known: {', '.join(names)})", field=unknown[0]
        )


def _flag(request: Request, name: str, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("true", "false"):
        raise BadUserInput(f"{name} must be true or false", field=name)
    return raw.lower() == "true"


def stats_routes(db: Database) -> list[Route]:
    """``/exports/statistics.{csv,xlsx}`` and ``/exports/cases.{csv,xlsx}``."""

    def _headers(name: str) -> dict[str, str]:
        return {
            "Cache-Control": "private, no-store",
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'attachment; filename="{name}"',
        }

    async def endpoint(request: Request, principal, build) -> Response:
        try:
            fmt = exports.Format(request.path_params["fmt"])
        except ValueError:
            raise NotFound("format must be csv or xlsx") from None
        name, header, rows = await build(request, principal)
        return StreamingResponse(
            exports.render(
                fmt,
                name,
                header,
                rows,
                exports.export_zone(principal, db.settings.default_timezone),
            ),
            media_type=exports.MEDIA[fmt],
            headers=_headers(f"{name}.{fmt.value}"),
        )

    async def build_statistics(request: Request, principal):
        _only(request, "from", "to", "tenant", "unitPath", "province")
        first, last = _period(request)  # a missing end: the current month's
        q = exports.IndicatorQuery(
            first=first,
            last=last,
            tenant=request.query_params.get("tenant") or None,
            unit_path=request.query_params.get("unitPath") or None,
            province=request.query_params.get("province") or None,
        )
        q = await exports.with_period(db, principal, q)
        rows = await exports.indicator_table(db, principal, q)
        return f"statistics-{q.first}-{q.last}", exports.INDICATOR_HEADER, rows

    async def build_cases(request: Request, principal):
        _only(request, "tenant", "unitPath", "status", "type", "from", "to", "masked")
        first, last = _period(request)
        f = CaseFilter(
            tenant=request.query_params.get("tenant") or None,
            unit_path=request.query_params.get("unitPath") or None,
            status=_enum(request, "status", CaseStatus),
            type=_enum(request, "type", CaseType),
            received_from=first,
            received_to=last,
        )
        clauses = await exports.case_clauses(db, principal, f)
        # masked=false: unmasked where the caller handles the case (logged); else masked
        masked = _flag(request, "masked", default=True)
        rows = exports.case_rows(db, principal, clauses, masked=masked)
        return "cases", exports.CASE_HEADER, rows

    async def statistics(request: Request, principal) -> Response:
        return await endpoint(request, principal, build_statistics)

    async def cases(request: Request, principal) -> Response:
        return await endpoint(request, principal, build_cases)

    return [
        rest_route("/exports/statistics.{fmt}", statistics, export=True),
        rest_route("/exports/cases.{fmt}", cases, export=True),
    ]
