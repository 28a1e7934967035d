"""案件办理质量评价 — evaluator pool, panels drawn per case, members and their scores.

Every table carries ``tenant_id`` first in its key and in every foreign key.
A panel stores what an auditor needs to re-run its draw: the seed, the
sorted eligible pool (ids and categories), the mix policy and the hash of
all three.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, TenantScoped, UtcDateTime, tenant_fk


class EvaluatorCategory(StrEnum):
    """The nine sources of the pool (Shangqiu's 评价员人才库)."""

    OFFICIAL = "OFFICIAL"  # 党员干部
    EXPERT = "EXPERT"  # 知名学者
    LAWYER = "LAWYER"  # 律师
    VOLUNTEER = "VOLUNTEER"  # 志愿者
    DEPUTY = "DEPUTY"  # 两代表一委员
    PSYCHOLOGIST = "PSYCHOLOGIST"  # 心理咨询师
    VETERAN = "VETERAN"  # 退役军人
    ELDER = "ELDER"  # 五老
    FORMER_PETITIONER = "FORMER_PETITIONER"  # 信访老户


class EvaluatorStatus(StrEnum):
    APPLIED = "APPLIED"  # 自愿申请, awaiting 审核批准
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    RETIRED = "RETIRED"  # terminal


class Verdict(StrEnum):
    """评价决议, in order of strictness (a tie goes to the later one)."""

    REASONABLE = "REASONABLE"  # 有理: resolve within a deadline
    PARTLY_REASONABLE = "PARTLY_REASONABLE"  # 部分有理: resolve the reasonable part
    HARDSHIP = "HARDSHIP"  # 生活困难: relief fund referral
    UNREASONABLE = "UNREASONABLE"  # 无理或要求过高: explanation and psychological guidance
    UNLAWFUL = "UNLAWFUL"  # 执意违法: handled according to law


VERDICT_ORDER: tuple[Verdict, ...] = tuple(Verdict)


class PanelStatus(StrEnum):
    OPEN = "OPEN"  # drawn, scores coming in
    CONCLUDED = "CONCLUDED"  # every member scored; verdict and follow-up set
    CANCELLED = "CANCELLED"


class EvaluationPolicyRow(TenantScoped, Base):
    """A tenant's panel policy (size, category mix, follow-up days); defaults when absent."""

    __tablename__ = "evaluation_policies"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_evaluation_policies_tenant"),)

    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Evaluator(TenantScoped, Base):
    """A pool member: a tenant user holding the EVALUATOR role, with category and conflicts."""

    __tablename__ = "evaluators"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", name="uq_evaluators_user"),
        tenant_fk("user_id", "users", "fk_evaluators_user"),
        Index("ix_evaluators_status", "tenant_id", "status", "id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    category: Mapped[str] = mapped_column(String(24))
    status: Mapped[str] = mapped_column(String(16), default=EvaluatorStatus.APPLIED)
    # declared conflicts: org units whose cases it must not judge, related persons
    excluded_unit_paths: Mapped[list[str]] = mapped_column(JSON, default=list)
    # [{"name", "idMasked", "key"}]: key = pii.petitioner_key of the person (no raw PII kept)
    related_persons: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    contact_phone: Mapped[str | None] = mapped_column(String(32))  # PII, masked
    contact_email: Mapped[str | None] = mapped_column(String(254))  # PII, masked
    note: Mapped[str | None] = mapped_column(Text)
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class EvaluationPanel(TenantScoped, Base):
    """评价小组 of one case: the draw's inputs (auditable) and, once scored, the result."""

    __tablename__ = "evaluation_panels"
    __table_args__ = (
        tenant_fk("case_id", "cases", "fk_evaluation_panels_case"),
        tenant_fk("drawn_by_id", "users", "fk_evaluation_panels_drawn_by"),
        Index("ix_evaluation_panels_case", "tenant_id", "case_id"),
        Index("ix_evaluation_panels_petitioner", "tenant_id", "petitioner_key"),
        Index("ix_evaluation_panels_concluded", "tenant_id", "concluded_at"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    petitioner_key: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=PanelStatus.OPEN)
    size: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(128))
    seed_is_int: Mapped[bool] = mapped_column(Boolean, default=False)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the mix used
    pool_snapshot: Mapped[list[list[str]]] = mapped_column(JSON, default=list)  # [[id, cat]]
    pool_hash: Mapped[str] = mapped_column(String(64))
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)  # why the case is eligible
    drawn_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    drawn_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verdict: Mapped[str | None] = mapped_column(String(24))
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # means, votes
    concluded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    follow_up_deadline_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    settled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    settled_note: Mapped[str | None] = mapped_column(Text)
    cancelled_reason: Mapped[str | None] = mapped_column(Text)


class PanelMember(TenantScoped, Base):
    """One seat on a panel; ``case_id``/``user_id`` copied for the evaluator read rule."""

    __tablename__ = "evaluation_panel_members"
    __table_args__ = (
        UniqueConstraint("tenant_id", "panel_id", "evaluator_id", name="uq_panel_members_seat"),
        tenant_fk("panel_id", "evaluation_panels", "fk_panel_members_panel"),
        tenant_fk("evaluator_id", "evaluators", "fk_panel_members_evaluator"),
        tenant_fk("user_id", "users", "fk_panel_members_user"),
        tenant_fk("case_id", "cases", "fk_panel_members_case"),
        Index("ix_panel_members_user_case", "tenant_id", "user_id", "case_id"),
        Index("ix_panel_members_evaluator", "tenant_id", "evaluator_id"),
    )

    panel_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    evaluator_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    category: Mapped[str] = mapped_column(String(24))
    position: Mapped[int] = mapped_column(Integer)


class Evaluation(TenantScoped, Base):
    """One member's scores (三到位一处理, 1–5 each) and verdict; written once."""

    __tablename__ = "evaluations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "panel_id", "member_id", name="uq_evaluations_member"),
        tenant_fk("panel_id", "evaluation_panels", "fk_evaluations_panel"),
        tenant_fk("member_id", "evaluation_panel_members", "fk_evaluations_member"),
        tenant_fk("user_id", "users", "fk_evaluations_user"),
    )

    panel_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    member_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    facts: Mapped[int] = mapped_column(Integer)
    procedure: Mapped[int] = mapped_column(Integer)
    law_and_policy: Mapped[int] = mapped_column(Integer)
    responsibility: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(24))
    # seed 004: the member also finds the petitioner in real hardship (生活困难), whatever
    # the demand's merit — relief alongside the verdict (e.g. 部分有理 + 救助帮扶)
    hardship_relief: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UtcDateTime)
