"""The monthly analysis report (月度分析通报): SQL aggregates, stored JSON, XLSX and HTML renderings.

One report per unit (the city and each county) per month. Every number is a
``GROUP BY``/``count`` in the database — no case is loaded into Python. A
case belongs to a unit when it is held in, or located in, the unit's subtree
(what the unit's officials see). Definitions are in docs/jobs.md; in short:

- intake: cases received in the month, by channel / type / category, with
  repeat (重复访) and skip-level (越级访) counts; closed: closed in the month;
- on time, per step (ROUTING, ACCEPTANCE, HANDLING, …): of the steps *due* in
  the month (cancelled ones aside, and acceptance steps ended by an agreed Art. 23
  objection, ``OBJECTED``), those finished on or before their due
  time; the rate is on-time / due (``None`` when nothing was due);
- backlog (积案): cases with a step past due at the end of the month and not
  finished by then;
- red: cases with a running step due within the red threshold at month end;
- satisfaction: ratings given in the month; evaluations: panels concluded in the
  month (backend.evaluations.statistics.evaluation_outcomes).

Readers (service functions): ``report, read`` in the casbin policy; an
official sees the reports of units in the subtree of a unit it holds the role
at; provincial supervisors every report of their province.
"""

from __future__ import annotations

import html
import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.scope import subtree_filter
from backend.cases import need_to_know
from backend.cases.models import (
    NOT_DUE_STATUSES,
    Case,
    CaseDeadline,
    CaseType,
    Category,
    Channel,
    DeadlineStatus,
    Satisfaction,
    SkipLevel,
)
from backend.cases.rules import DeadlinePolicy, Step, end_of_day
from backend.cases.visibility import unit_cases
from backend.core import pagination
from backend.core.clock import DEFAULT_TIMEZONE, local_instant, now
from backend.core.errors import BadUserInput, NotFound
from backend.core.ids import parse_id
from backend.evaluations.statistics import evaluation_outcomes
from backend.stats.models import MonthlyReport
from backend.tenants.models import OrgUnit, OrgUnitLevel

MAX_PAGE = 100
STEPS = (
    Step.ROUTING,
    Step.ACCEPTANCE,
    Step.HANDLING,
    Step.REVIEW_DECISION,
    Step.RE_REVIEW_DECISION,
    Step.SUPERVISION,
)
STEP_ZH = {
    Step.ROUTING: "转送交办",
    Step.ACCEPTANCE: "受理告知",
    Step.HANDLING: "办理答复",
    Step.REVIEW_DECISION: "复查",
    Step.RE_REVIEW_DECISION: "复核",
    Step.SUPERVISION: "督办",
}
CHANNEL_ZH = {
    "VISIT": "来访",
    "LETTER": "来信",
    "PHONE": "电话",
    "ONLINE": "网上",
    "QR_CODE": "扫码",
}
TYPE_ZH = {"SUGGESTION": "建议意见", "ACCUSATION": "检举控告", "CLAIM": "申诉求决"}
RATING_ZH = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "DISSATISFIED": "不满意"}
ACCUSATION_NOTE = (
    "检举控告中点名被举报单位或个人的事项不计入本报告（《信访工作条例》第三十条），"
    "请在系统统计中查看 (accusations naming an accused are not counted here: Art. 30)."
)
EVALUATION_NOTE = (
    "本月完成评议的评议组及其结论（panels concluded in the month, by majority verdict)."
)


async def _evaluations(
    session: AsyncSession, cases: Any, start: datetime, end: datetime
) -> dict[str, Any]:
    """案件办理质量评价 of the unit's cases, from the evaluations module's statistics hook."""
    outcomes = await evaluation_outcomes(session, case_clause=cases, since=start, until=end)
    return {
        "panels": outcomes.evaluated,
        "submitted": outcomes.evaluated,
        "settled": outcomes.settled,
        "pending": outcomes.pending,
        "byVerdict": {v.value: n for v, n in outcomes.verdict_mix.items()},
        "note": EVALUATION_NOTE,
    }


# --- the period ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """A calendar month in the tenant's time zone, as UTC instants ``[start, end)``."""

    first: date
    tz: str

    @classmethod
    def parse(cls, value: str, tz: str) -> Period:
        try:
            year, month = (int(p) for p in value.split("-"))
            return cls(date(year, month, 1), tz)
        except ValueError as exc:
            raise BadUserInput("period must be YYYY-MM", field="period") from exc

    @classmethod
    def previous(cls, today: date, tz: str) -> Period:
        last = today.replace(day=1) - timedelta(days=1)
        return cls(last.replace(day=1), tz)

    @property
    def key(self) -> str:
        return f"{self.first.year:04d}-{self.first.month:02d}"

    @property
    def next_first(self) -> date:
        return (self.first + timedelta(days=32)).replace(day=1)

    @property
    def last(self) -> date:
        return self.next_first - timedelta(days=1)

    def _instant(self, d: date) -> datetime:
        return datetime.combine(d, time.min, tzinfo=ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def start(self) -> datetime:
        return self._instant(self.first)

    @property
    def end(self) -> datetime:
        return self._instant(self.next_first)


# --- computing one unit's report ---------------------------------------------------------


def rate(part: int, whole: int) -> float | None:
    """A rate rounded to four places; ``None`` on a zero denominator (docs/indicators.md)."""
    return round(part / whole, 4) if whole else None


async def report_units(session: AsyncSession) -> list[OrgUnit]:
    """The city (root) and its counties, in path order."""
    rows = await session.scalars(
        select(OrgUnit)
        .where(or_(OrgUnit.parent_id.is_(None), OrgUnit.level == OrgUnitLevel.COUNTY.value))
        .order_by(OrgUnit.depth, OrgUnit.path)
    )
    return list(rows)


async def compute_report(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    unit: OrgUnit,
    period: Period,
    policy: DeadlinePolicy,
    categories: dict[str, str],
) -> dict[str, Any]:
    """The report data of ``unit`` for ``period``: five aggregate statements.

    Accusations naming an accused are left out of every figure (Art. 30): a stored report
    is read by whoever reads reports at the unit or above — today's readers and those of
    next year, some of whom may sit in the accused unit — and nothing stored can ask who
    reads it. They are counted where the reader is known: the live statistics
    (``caseStatistics``, exports), behind the read predicate.
    """
    mine = and_(
        Case.tenant_id == tenant_id, unit_cases(unit.path), ~need_to_know.names_an_accused()
    )
    start, end = period.start, period.end

    # intake by channel x type x category (a few hundred groups at most)
    intake_rows = await session.execute(
        select(
            Case.channel,
            Case.type,
            Case.category,
            func.count(),
            func.sum(sql_case((Case.repeat_count > 0, 1), else_=0)),
            func.sum(sql_case((Case.skip_level != SkipLevel.NONE.value, 1), else_=0)),
        )
        .where(mine, Case.received_at >= start, Case.received_at < end)
        .group_by(Case.channel, Case.type, Case.category)
    )
    by_channel = dict.fromkeys((c.value for c in Channel), 0)
    by_type = dict.fromkeys((t.value for t in CaseType), 0)
    by_category: dict[str, int] = {}
    total = repeats = skip_level = 0
    for channel, type_, category, n, rep, skip in intake_rows:
        by_channel[channel] = by_channel.get(channel, 0) + n
        by_type[type_] = by_type.get(type_, 0) + n
        by_category[category] = by_category.get(category, 0) + n
        total, repeats, skip_level = total + n, repeats + int(rep or 0), skip_level + int(skip or 0)

    closed = await session.scalar(
        select(func.count()).where(mine, Case.closed_at >= start, Case.closed_at < end)
    )

    # on time per step: the steps due in the month
    d = CaseDeadline
    met_on_time = and_(d.status == DeadlineStatus.MET.value, d.finished_at <= d.due_at)
    met_late = and_(d.status == DeadlineStatus.MET.value, d.finished_at > d.due_at)
    step_rows = await session.execute(
        select(
            d.step,
            func.count(),
            func.sum(sql_case((met_on_time, 1), else_=0)),
            func.sum(sql_case((met_late, 1), else_=0)),
            func.sum(sql_case((d.status == DeadlineStatus.OPEN.value, 1), else_=0)),
        )
        .join(Case, and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id))
        .where(
            mine,
            d.due_at >= start,
            d.due_at < end,
            d.status.not_in(NOT_DUE_STATUSES),  # cancelled, ended by objection
        )
        .group_by(d.step)
    )
    on_time: dict[str, dict[str, Any]] = {
        s.value: {"due": 0, "onTime": 0, "late": 0, "open": 0, "rate": None} for s in STEPS
    }
    for step, due, ok, late, still_open in step_rows:
        on_time[step] = {
            "due": int(due),
            "onTime": int(ok or 0),
            "late": int(late or 0),
            "open": int(still_open or 0),
            "rate": rate(int(ok or 0), int(due)),
        }

    # running at month end (started before, not finished before)
    running = and_(
        d.started_at < end,
        d.status != DeadlineStatus.CANCELLED.value,
        or_(d.status == DeadlineStatus.OPEN.value, d.finished_at >= end),
    )
    red_until = end_of_day(period.last + timedelta(days=policy.red_days), policy)
    state = (
        await session.execute(
            select(
                func.count(sql_case((d.due_at < end, d.case_id), else_=None).distinct()),
                func.count(sql_case((d.due_at <= red_until, d.case_id), else_=None).distinct()),
            )
            .join(Case, and_(Case.tenant_id == d.tenant_id, Case.id == d.case_id))
            .where(mine, running)
        )
    ).one()

    ratings = dict.fromkeys((s.value for s in Satisfaction), 0)
    for rating, n in await session.execute(
        select(Case.rating, func.count())
        .where(mine, Case.rated_at >= start, Case.rated_at < end, Case.rating.is_not(None))
        .group_by(Case.rating)
    ):
        ratings[rating] = int(n)
    rated = sum(ratings.values())
    happy = ratings["SATISFIED"] + ratings["BASICALLY_SATISFIED"]

    return {
        "version": 1,
        "period": period.key,
        "from": period.first.isoformat(),
        "to": period.last.isoformat(),
        "timezone": period.tz,
        "unit": {"path": unit.path, "name": unit.name, "level": unit.level},
        "generatedAt": now().isoformat(),
        "intake": {
            "total": total,
            "repeat": repeats,
            "skipLevel": skip_level,
            "byChannel": by_channel,
            "byType": by_type,
            "byCategory": dict(sorted(by_category.items(), key=lambda kv: (-kv[1], kv[0]))),
            "categoryNames": {code: categories.get(code, code) for code in by_category},
        },
        "closed": int(closed or 0),
        "onTime": on_time,
        "onTimeRoutingRate": on_time[Step.ROUTING.value]["rate"],
        "onTimeAcceptanceRate": on_time[Step.ACCEPTANCE.value]["rate"],
        "onTimeHandlingRate": on_time[Step.HANDLING.value]["rate"],
        "backlog": int(state[0] or 0),
        "redCases": int(state[1] or 0),
        "redDays": policy.red_days,
        "satisfaction": {
            **ratings,
            "rated": rated,
            "rate": rate(happy, rated),
        },
        "evaluations": await _evaluations(session, mine, start, end),
        "note": ACCUSATION_NOTE,
    }


async def category_names(session: AsyncSession) -> dict[str, str]:
    return {
        code: name for code, name in await session.execute(select(Category.code, Category.name))
    }


# --- reading stored reports (service functions: session + principal) -----------------------


def _visible(principal: Principal) -> ColumnElement[bool]:
    require(principal, "report", "read")
    if principal.is_supervisor:
        return true()  # the session's tenant scope (the province's cities) is the wall
    paths = [g.unit_path for g in allowed_grants(principal, "report", "read")]
    return subtree_filter(MonthlyReport.unit_path, paths)


async def list_reports(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int = 20,
    period: str | None = None,
    unit_path: str | None = None,
) -> list[MonthlyReport]:
    """Reports the caller may read, newest month first, then by unit path."""
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    args = pagination.PageArgs(first=first)
    return (await report_page(session, principal, args, period=period, unit_path=unit_path)).rows


# newest month first, then by unit path (and city, then id: a total order)
REPORT_KEYS = (
    pagination.text_key(MonthlyReport.period, "period", descending=True),
    pagination.text_key(MonthlyReport.unit_path, "unit_path"),
    pagination.uuid_key(MonthlyReport.tenant_id, "tenant_id", descending=False),
    pagination.uuid_key(MonthlyReport.id, descending=False),
)


async def report_page(
    session: AsyncSession,
    principal: Principal,
    args: pagination.PageArgs,
    *,
    period: str | None = None,
    unit_path: str | None = None,
) -> pagination.Window:
    """A page of the reports the caller may read, in either direction (Relay cursors)."""
    query = select(MonthlyReport).where(_visible(principal))
    if period is not None:
        Period.parse(period, "UTC")
        query = query.where(MonthlyReport.period == period)
    if unit_path is not None:
        query = query.where(MonthlyReport.unit_path == unit_path)
    return await pagination.paginate(
        session, query, REPORT_KEYS, args, default=20, maximum=MAX_PAGE
    )


async def visible_reports(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[MonthlyReport]:
    """Those of ``ids`` :func:`find_report` would answer, in one statement."""
    if not ids or not may(principal, "report", "read"):
        return []
    query = select(MonthlyReport).where(MonthlyReport.id.in_(list(set(ids))), _visible(principal))
    return list(await session.scalars(query))


async def find_report(session: AsyncSession, principal: Principal, report_id: str) -> MonthlyReport:
    """One report; NOT_FOUND when absent or not visible (the same answer)."""
    rid = parse_id(report_id, "MonthlyReport")
    report = None
    if rid is not None and may(principal, "report", "read"):  # else NOT_FOUND, not FORBIDDEN
        report = await session.scalar(
            select(MonthlyReport).where(MonthlyReport.id == rid, _visible(principal))
        )
    if report is None:
        raise NotFound(f"report {report_id} not found")
    return report


# --- renderings ------------------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _generated(data: dict[str, Any]) -> str:
    """When the report was made, in the report's own zone to the second (the stored value is
    UTC with microseconds): a page people read shows times as the API does."""
    zone = ZoneInfo(data.get("timezone") or DEFAULT_TIMEZONE)
    return local_instant(datetime.fromisoformat(data["generatedAt"]), zone)


def summary_rows(data: dict[str, Any]) -> list[tuple[str, Any]]:
    intake = data["intake"]
    return [
        ("单位 Unit", f"{data['unit']['name']} ({data['unit']['path']})"),
        ("月份 Period", data["period"]),
        ("受理登记总量 Cases received", intake["total"]),
        ("重复访 Repeat", intake["repeat"]),
        ("越级访 Skip-level", intake["skipLevel"]),
        ("办结 Closed", data["closed"]),
        ("按期转送交办率 On-time routing", _pct(data["onTimeRoutingRate"])),
        ("按期受理率 On-time acceptance", _pct(data["onTimeAcceptanceRate"])),
        ("按期办结率 On-time handling", _pct(data["onTimeHandlingRate"])),
        ("积案（月末超期未办结）Backlog", data["backlog"]),
        ("红色预警（月末）Red cases", data["redCases"]),
        ("满意率 Satisfaction", _pct(data["satisfaction"]["rate"])),
        ("说明 Note", data.get("note", "")),
    ]


def render_xlsx(data: dict[str, Any]) -> bytes:
    """The report as a workbook: a summary sheet and one sheet per breakdown."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from backend.core.spreadsheet import xlsx_row

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, header: tuple[str, ...], rows: list[tuple[Any, ...]], first=False):
        ws = wb.active if first else wb.create_sheet()
        ws.title = title
        ws.append(xlsx_row(ws, header))
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append(xlsx_row(ws, row))  # unit and category names stay text (no formulas)
        for col, width in zip("ABCDEF", (34, 16, 12, 12, 12, 12), strict=False):
            ws.column_dimensions[col].width = width
        return ws

    sheet("Summary", ("指标 Metric", "数值 Value"), summary_rows(data), first=True)
    intake = data["intake"]
    sheet(
        "Channel",
        ("渠道 Channel", "件数 Cases"),
        [(f"{CHANNEL_ZH.get(k, k)} {k}", v) for k, v in intake["byChannel"].items()],
    )
    sheet(
        "Type",
        ("类型 Type", "件数 Cases"),
        [(f"{TYPE_ZH.get(k, k)} {k}", v) for k, v in intake["byType"].items()],
    )
    names = intake.get("categoryNames", {})
    sheet(
        "Category",
        ("类别 Category", "代码 Code", "件数 Cases"),
        [(names.get(k, k), k, v) for k, v in intake["byCategory"].items()],
    )
    sheet(
        "OnTime",
        ("环节 Step", "到期 Due", "按期 On time", "逾期办结 Late", "未办结 Open", "按期率 Rate"),
        [
            (
                f"{STEP_ZH.get(Step(step), step)} {step}",
                v["due"],
                v["onTime"],
                v["late"],
                v["open"],
                v["rate"],
            )
            for step, v in data["onTime"].items()
        ],
    )
    sat = data["satisfaction"]
    sheet(
        "Satisfaction",
        ("评价 Rating", "件数 Cases"),
        [(f"{RATING_ZH[k]} {k}", sat[k]) for k in RATING_ZH]
        + [("已评价 Rated", sat["rated"]), ("满意率 Rate", sat["rate"])],
    )
    ev = data["evaluations"]
    sheet(
        "Evaluation",
        ("评价结论 Verdict", "件数 Cases"),
        [(k, v) for k, v in ev["byVerdict"].items()]
        + [
            ("评议组 Panels", ev["panels"]),
            ("提交 Submitted", ev["submitted"]),
            ("说明 Note", ev["note"]),
        ],
    )
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def svg_bars(
    title: str, items: list[tuple[str, float]], *, percent: bool = False, width: int = 560
) -> str:
    """A horizontal bar chart as inline SVG (server-rendered, no script)."""
    e = html.escape
    bar_h, gap, label_w, top = 22, 6, 170, 28
    height = top + len(items) * (bar_h + gap) + 8
    peak = 1.0 if percent else max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{e(title)}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="18" font-size="14" font-weight="bold">{e(title)}</text>',
    ]
    span = width - label_w - 70
    for i, (label, value) in enumerate(items):
        y = top + i * (bar_h + gap)
        w = 0 if value is None else max(0.0, min(1.0, value / peak)) * span
        shown = _pct(value) if percent else f"{value:g}"
        parts += [
            f'<text x="{label_w - 6}" y="{y + 15}" font-size="12" text-anchor="end">{e(label)}</text>',
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="#c0392b"/>',
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{e(shown)}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page: summary table and SVG bar charts (no script, no remote assets)."""
    e = html.escape
    intake = data["intake"]
    names = intake.get("categoryNames", {})
    charts = [
        svg_bars(
            "按渠道 By channel",
            [(CHANNEL_ZH.get(k, k), v) for k, v in intake["byChannel"].items()],
        ),
        svg_bars("按类型 By type", [(TYPE_ZH.get(k, k), v) for k, v in intake["byType"].items()]),
        svg_bars(
            "按类别（前10）Top categories",
            [(names.get(k, k), v) for k, v in list(intake["byCategory"].items())[:10]],
        ),
        svg_bars(
            "按期率 On-time rate by step",
            [(STEP_ZH.get(Step(s), s), v["rate"]) for s, v in data["onTime"].items() if v["due"]],
            percent=True,
        ),
    ]
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in summary_rows(data))
    steps = "".join(
        f"<tr><td>{e(STEP_ZH.get(Step(s), s))}</td><td>{v['due']}</td><td>{v['onTime']}</td>"
        f"<td>{v['late']}</td><td>{v['open']}</td><td>{e(_pct(v['rate']))}</td></tr>"
        for s, v in data["onTime"].items()
    )
    title = f"{data['unit']['name']} {data['period']} 信访工作月度分析"
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<title>{e(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1000px}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left}svg{display:block;margin:1em 0}.note{color:#666}"
        f"</style></head><body><h1>{e(title)}</h1>"
        f"<p class='note'>{e(data['from'])} — {e(data['to'])}（{e(data['timezone'])}）"
        f" · generated {e(_generated(data))}</p>"
        f"<p class='note'>{e(data.get('note', ''))}</p>"
        f"<table>{rows}</table>"
        "<h2>按期情况 On time by step</h2><table><tr><th>环节</th><th>到期</th><th>按期</th>"
        f"<th>逾期办结</th><th>未办结</th><th>按期率</th></tr>{steps}</table>"
        + "".join(charts)
        + "<h2>案件办理质量评价 Evaluations</h2>"
        f"<p class='note'>{e(data['evaluations']['note'])}</p>"
        "</body></html>"
    )
