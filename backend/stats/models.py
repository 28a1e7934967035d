"""The daily statistics summary and the indexes of the indicator queries (migration 0007).

``stats_daily`` holds, per tenant, local day (in the tenant's zone, the day the
figure is attributed to: received, due, replied or rated) and (holder path,
location path) pair, both cut to the county level (``/city/county``), the
numerators and denominators the indicators need — so a unit filter ("held in
or located in the subtree") on the city or a county works on the summary
exactly as on the cases. ``stats_refreshes`` records per tenant when the
summary was rebuilt, which days it covers (``through_day``: every day before
the refresh's local date) and the indicator definition it was computed with.
``monthly_reports`` holds the stored monthly analysis reports (migration 0004).
All are tenant tables behind row-level security like every other.
Definitions and staleness: docs/indicators.md.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from backend.cases.models import Case, CaseDeadline
from backend.core.db import Base, TenantScoped, UtcDateTime

COUNT_COLUMNS = (
    "received",
    "repeat",
    "skip_level",
    "acceptance_due",
    "acceptance_on_time",
    "closure_due",
    "closure_on_time",
    "closure_on_time_no_ext",
    "replied",
    "replied_rated",
    "replied_eligible",
    "replied_eligible_std",
    "rated",
    "rated_satisfied",
    "rated_basically",
)


def _count() -> Mapped[int]:
    return mapped_column(Integer, default=0)


class StatsDaily(TenantScoped, Base):
    """One (day, holder path, location path) of one tenant: counts only, no case data."""

    __tablename__ = "stats_daily"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "day", "holder_path", "location_path", name="uq_stats_daily_key"
        ),
    )

    day: Mapped[date] = mapped_column(Date)
    holder_path: Mapped[str] = mapped_column(String(512))
    location_path: Mapped[str] = mapped_column(String(512))
    received: Mapped[int] = _count()
    repeat: Mapped[int] = _count()
    skip_level: Mapped[int] = _count()
    acceptance_due: Mapped[int] = _count()
    acceptance_on_time: Mapped[int] = _count()
    closure_due: Mapped[int] = _count()
    closure_on_time: Mapped[int] = _count()
    closure_on_time_no_ext: Mapped[int] = _count()
    replied: Mapped[int] = _count()
    replied_rated: Mapped[int] = _count()
    replied_eligible: Mapped[int] = _count()  # rated, or window closed (tenant's window)
    replied_eligible_std: Mapped[int] = _count()  # the same with the province-standard window
    rated: Mapped[int] = _count()
    rated_satisfied: Mapped[int] = _count()
    rated_basically: Mapped[int] = _count()
    # {"channel": {...}, "type": {...}, "category": {...}} of the cases received that day
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class StatsRefresh(TenantScoped, Base):
    """When the tenant's summary was rebuilt, what it covers and with which definition."""

    __tablename__ = "stats_refreshes"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_stats_refreshes_tenant"),)

    refreshed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    through_day: Mapped[date] = mapped_column(Date)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- indexes of the live indicator queries on the case tables (migration 0007) ---------------
# A month of a province is then index range scans: steps by (tenant, step, due), replies and
# ratings by (tenant, time), and the backlog at a past cut-off by the steps finished after it.
STATS_INDEXES = (
    Index(
        "ix_case_deadlines_step_due", CaseDeadline.tenant_id, CaseDeadline.step, CaseDeadline.due_at
    ),
    Index(
        "ix_case_deadlines_finished",
        CaseDeadline.tenant_id,
        CaseDeadline.finished_at,
        postgresql_where=CaseDeadline.finished_at.is_not(None),
    ),
    Index(
        "ix_cases_tenant_replied",
        Case.tenant_id,
        Case.replied_at,
        postgresql_where=Case.replied_at.is_not(None),
    ),
    Index(
        "ix_cases_tenant_rated",
        Case.tenant_id,
        Case.rated_at,
        postgresql_where=Case.rated_at.is_not(None),
    ),
)


class MonthlyReport(TenantScoped, Base):
    """The monthly analysis report of one unit (the city or a county) for one month."""

    __tablename__ = "monthly_reports"
    __table_args__ = (
        UniqueConstraint("tenant_id", "period", "unit_path", name="uq_monthly_reports_unit"),
    )

    period: Mapped[str] = mapped_column(String(7))  # "2026-10"
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    unit_name: Mapped[str] = mapped_column(String(200))
    unit_level: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
