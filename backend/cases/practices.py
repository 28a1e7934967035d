"""Tables of three seed practices around a case (issue 19, "Missing").

- 京、省交办 (seed 000): a case the national or provincial petition bureau assigned down,
  with the bureau's number and deadline, and the report back (报结) owed to it;
- 四调联动 (seeds 001, 004): a mediation the case was sent to and its outcome;
- 三不限"回头看" (seed 004): a dissatisfied closed case put on a period's re-visit list,
  and the official's re-visit.

Each row belongs to one case of the tenant (``(tenant_id, case_id)`` key to ``cases``),
behind row-level security and distributed by ``tenant_id`` like the case itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Date, Index, String, Text, UniqueConstraint, Uuid, and_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.authz.enforcer import may
from backend.authz.principal import Principal
from backend.cases.models import Case
from backend.cases.visibility import read_predicate, unit_cases
from backend.core import validation as v
from backend.core.db import Base, TenantScoped, UtcDateTime, tenant_fk
from backend.core.errors import BadUserInput, Forbidden

MAX_LIST = 200


class AssignmentOrigin(StrEnum):
    """Who assigned the case down (seed 000: 京、省交办)."""

    NATIONAL_BUREAU = "NATIONAL_BUREAU"  # 国家信访局交办
    PROVINCIAL_BUREAU = "PROVINCIAL_BUREAU"  # 省信访局交办


@dataclass(frozen=True)
class AssignedDown:
    """What the bureau's 交办单 says: who assigned the case, its number and its deadline."""

    origin: AssignmentOrigin
    external_number: str
    external_due_date: date


class MediationKind(StrEnum):
    """四调联动 (seed 001): the petition office's own mediation and the three it links with."""

    PEOPLES = "PEOPLES"  # 人民调解
    ADMINISTRATIVE = "ADMINISTRATIVE"  # 行政调解
    JUDICIAL = "JUDICIAL"  # 司法调解
    PETITION_OFFICE = "PETITION_OFFICE"  # 信访调解


class MediationOutcome(StrEnum):
    AGREEMENT = "AGREEMENT"  # 达成调解协议
    FAILED = "FAILED"  # 调解不成


class RevisitOutcome(StrEnum):
    """What the 回头看 re-visit found (seed 004)."""

    RESOLVED = "RESOLVED"  # 问题已解决、信访人息访
    STILL_DISSATISFIED = "STILL_DISSATISFIED"  # 仍不满意: re-handled as a new case
    NOT_REACHED = "NOT_REACHED"  # 信访人联系不上


class AssignedCase(TenantScoped, Base):
    """京、省交办: the bureau, its 交办单号 and deadline, and the report back to it."""

    __tablename__ = "case_assignments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", name="uq_case_assignments_case"),
        tenant_fk("case_id", "cases", "fk_case_assignments_case"),
        Index("ix_case_assignments_due", "tenant_id", "external_due_date"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    origin: Mapped[str] = mapped_column(String(24))
    external_number: Mapped[str] = mapped_column(String(64))
    external_due_date: Mapped[date] = mapped_column(Date)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reported_by: Mapped[str | None] = mapped_column(String(64))
    report: Mapped[str | None] = mapped_column(Text)


class CaseMediation(TenantScoped, Base):
    """四调联动: one mediation of a case, by which body, and how it ended."""

    __tablename__ = "case_mediations"
    __table_args__ = (
        tenant_fk("case_id", "cases", "fk_case_mediations_case"),
        Index("ix_case_mediations_case", "tenant_id", "case_id"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(24))
    body: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_by: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    terms: Mapped[str | None] = mapped_column(Text)


class CaseRevisit(TenantScoped, Base):
    """三不限"回头看": a dissatisfied closed case on one period's re-visit list."""

    __tablename__ = "case_revisits"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", "period", name="uq_case_revisits_period"),
        tenant_fk("case_id", "cases", "fk_case_revisits_case"),
        Index("ix_case_revisits_period", "tenant_id", "period"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM: the month the cases closed in
    visited_on: Mapped[date | None] = mapped_column(Date)
    visited_by: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str | None] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text)


async def pending_mediation(session: AsyncSession, case_id: uuid.UUID) -> CaseMediation | None:
    """The case's mediation still waiting for its outcome (at most one at a time)."""
    return await session.scalar(
        select(CaseMediation).where(
            CaseMediation.case_id == case_id, CaseMediation.outcome.is_(None)
        )
    )


async def with_visible_cases(
    session: AsyncSession,
    principal: Principal,
    model: Any,
    *where: Any,
    unit_path: str | None,
    first: int,
    order_by: tuple[Any, ...],
) -> list[tuple[Any, Case]]:
    """Rows of ``model`` (a table above) with their case, for the cases the caller may
    read: the read predicate of every case list (tenant, scope, Art. 30) in SQL, then
    ``where``, optionally one unit's subtree, at most ``first`` (0-200)."""
    if not may(principal, "case", "read"):
        raise Forbidden("not allowed to read cases")
    if not 0 <= first <= MAX_LIST:
        raise BadUserInput(f"first must be between 0 and {MAX_LIST}", field="first")
    query = (
        select(model, Case)
        .join(Case, and_(Case.tenant_id == model.tenant_id, Case.id == model.case_id))
        .where(read_predicate(principal), *where)
    )
    if unit_path is not None:
        query = query.where(unit_cases(v.path(unit_path, "unitPath")))
    rows = await session.execute(query.order_by(*order_by).limit(first))
    return [(row, case) for row, case in rows.all()]
