"""Cases (信访事项), their deadlines, the hash-chained event log, categories and counters.

Paths of the location, holder and accused units are copied onto the case:
org-unit paths never change, and "cases in this subtree" then is one indexed
prefix filter on the case table itself.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.clock import now
from backend.core.crypto import EncryptedText
from backend.core.db import Base, TenantScoped, UtcDateTime, tenant_fk


class Channel(StrEnum):
    VISIT = "VISIT"
    LETTER = "LETTER"
    PHONE = "PHONE"
    ONLINE = "ONLINE"
    QR_CODE = "QR_CODE"


class CaseType(StrEnum):
    """The three types of the 2022 regulation (Arts. 29–31)."""

    SUGGESTION = "SUGGESTION"  # 建议意见
    ACCUSATION = "ACCUSATION"  # 检举控告
    CLAIM = "CLAIM"  # 申诉求决


class AgentKind(StrEnum):
    """代办/帮办 (seeds 001, 002): who handles a case on the petitioner's behalf."""

    PROXY = "PROXY"  # 代办员
    HELPER = "HELPER"  # 帮办员
    GRID_WORKER = "GRID_WORKER"  # 网格员 (问题在网格发现、矛盾在网格解决, seed 001)
    PARTY_MEMBER = "PARTY_MEMBER"  # 党员代办员 (诸暨 枫桥式信访代办制, seed 002)
    HOUSEHOLD_HEAD = "HOUSEHOLD_HEAD"  # 双联户长 (seed 001)


class CaseStatus(StrEnum):
    REGISTERED = "REGISTERED"
    ROUTED = "ROUTED"
    ACCEPTED = "ACCEPTED"
    NOT_ACCEPTED = "NOT_ACCEPTED"
    EXTENDED = "EXTENDED"
    REPLIED = "REPLIED"
    REVIEW_REQUESTED = "REVIEW_REQUESTED"
    REVIEWED = "REVIEWED"
    RE_REVIEW_REQUESTED = "RE_REVIEW_REQUESTED"
    RE_REVIEWED = "RE_REVIEWED"
    DIVERTED = "DIVERTED"
    CLOSED = "CLOSED"


class Satisfaction(StrEnum):
    SATISFIED = "SATISFIED"
    BASICALLY_SATISFIED = "BASICALLY_SATISFIED"
    DISSATISFIED = "DISSATISFIED"


class SkipLevel(StrEnum):
    """越级访: whether the petitioner also went over the city's head."""

    NONE = "NONE"
    PROVINCE = "PROVINCE"
    BEIJING = "BEIJING"


class RouteMode(StrEnum):
    """How a petition office sends a case on (Art. 22)."""

    TRANSFER = "TRANSFER"  # 转送: to the competent body
    ASSIGN = "ASSIGN"  # 交办: with a supervision requirement


class DivertChannel(StrEnum):
    """诉访分离: where a matter for the courts goes instead."""

    LITIGATION = "LITIGATION"
    ARBITRATION = "ARBITRATION"
    RECONSIDERATION = "RECONSIDERATION"


class EscalationTarget(StrEnum):
    """Where a hard case goes beyond its holder."""

    LEADERSHIP_GROUP = "LEADERSHIP_GROUP"  # 领导小组
    SUPERVISION_BRIGADE = "SUPERVISION_BRIGADE"  # 督查: reasonable demand, not solved
    ENFORCEMENT_BRIGADE = "ENFORCEMENT_BRIGADE"  # 执法: unreasonable or unlawful conduct


class WarningColor(StrEnum):
    RED = "RED"
    YELLOW = "YELLOW"
    BLUE = "BLUE"
    NONE = "NONE"


class DeadlineStatus(StrEnum):
    OPEN = "OPEN"
    MET = "MET"
    CANCELLED = "CANCELLED"
    # ended because the routing office agreed to the holder's Art. 23 objection: the body
    # was not competent, so the step is neither met nor missed (on-time figures leave it out)
    OBJECTED = "OBJECTED"


# steps the on-time figures do not count as due: nobody owed them any more
NOT_DUE_STATUSES = (DeadlineStatus.CANCELLED.value, DeadlineStatus.OBJECTED.value)


class Category(TenantScoped, Base):
    """A tenant's case category (e.g. land, wages, housing)."""

    __tablename__ = "case_categories"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_case_categories_code"),)

    code: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CaseCounter(TenantScoped, Base):
    """Last case number issued per tenant and year; the row lock makes numbers gap-free."""

    __tablename__ = "case_counters"
    __table_args__ = (UniqueConstraint("tenant_id", "year", name="uq_case_counters_year"),)

    year: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(TenantScoped, Base):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number", name="uq_cases_number"),
        UniqueConstraint("tenant_id", "client_key", name="uq_cases_client_key"),
        tenant_fk("location_unit_id", "org_units", "fk_cases_location_unit"),
        tenant_fk("holder_unit_id", "org_units", "fk_cases_holder_unit"),
        tenant_fk("leader_id", "users", "fk_cases_leader"),
        tenant_fk("registered_by_id", "users", "fk_cases_registered_by"),
        Index("ix_cases_tenant_received", "tenant_id", "received_at", "id"),
        Index(
            "ix_cases_tenant_holder_path",
            "tenant_id",
            "holder_path",
            postgresql_ops={"holder_path": "text_pattern_ops"},
        ),
        Index(
            "ix_cases_tenant_location_path",
            "tenant_id",
            "location_path",
            postgresql_ops={"location_path": "text_pattern_ops"},
        ),
        Index("ix_cases_tenant_petitioner", "tenant_id", "petitioner_key", "category"),
        Index("ix_cases_tenant_agent", "tenant_id", "agent_id"),
        # status + subtree: a county's open list reaches only that county's rows of the
        # status (a BitmapOr of the two), not every such case of the city (performance.md);
        # the (tenant_id, status) prefix serves status-only filters.
        Index(
            "ix_cases_tenant_status_holder",
            "tenant_id",
            "status",
            "holder_path",
            postgresql_ops={"holder_path": "text_pattern_ops"},
        ),
        Index(
            "ix_cases_tenant_status_location",
            "tenant_id",
            "status",
            "location_path",
            postgresql_ops={"location_path": "text_pattern_ops"},
        ),
    )

    number: Mapped[str] = mapped_column(String(32))
    client_key: Mapped[str] = mapped_column(String(128))
    payload_hash: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16), default="NORMAL")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    head_count: Mapped[int] = mapped_column(Integer, default=1)
    petitioner_name: Mapped[str] = mapped_column(String(100))
    # Encrypted at rest (AES-GCM, backend/core/crypto.py): never compare them in SQL;
    # ``petitioner_key`` is their searchable keyed hash (id number, else phone).
    petitioner_phone: Mapped[str | None] = mapped_column(EncryptedText("cases.petitioner_phone"))
    petitioner_id_number: Mapped[str | None] = mapped_column(
        EncryptedText("cases.petitioner_id_number")
    )
    petitioner_key: Mapped[str | None] = mapped_column(String(64))
    location_unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    location_path: Mapped[str] = mapped_column(String(512))
    holder_unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    holder_path: Mapped[str] = mapped_column(String(512))
    routed_from_path: Mapped[str | None] = mapped_column(String(512))
    accused_path: Mapped[str | None] = mapped_column(String(512))
    accused_username: Mapped[str | None] = mapped_column(String(64))
    leader_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    registered_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    first_receiver_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.REGISTERED)
    version: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warning_color: Mapped[str] = mapped_column(String(8), default=WarningColor.NONE)
    red_since: Mapped[datetime | None] = mapped_column(UtcDateTime)  # set by the deadline scan
    repeat_count: Mapped[int] = mapped_column(Integer, default=0)
    repeat_of_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Art. 36: the earlier case of the same matter whose re-review (复核) was decided; a
    # case carrying it is accepted only with a reason (service.accept_case)
    final_of_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # 代办/帮办 (seeds 001, 002): the official who registers and follows the case for the
    # petitioner, and as what (AgentKind); reads it like its registrar (visibility.py)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    agent_kind: Mapped[str | None] = mapped_column(String(16))
    skip_level: Mapped[str] = mapped_column(String(16), default=SkipLevel.NONE)
    extension_days: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_approved: Mapped[bool] = mapped_column(Boolean, default=False)
    on_hold_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    replied_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reply_opinion: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[str | None] = mapped_column(String(24))
    rated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    review_decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolution: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)

    # Optimistic locking: every UPDATE says WHERE version = <loaded>; the service bumps
    # the number once per mutation (not once per flush), so clients see +1 per change.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}


class CaseDeadline(TenantScoped, Base):
    """One step's clock: its due date and the rule that produced it."""

    __tablename__ = "case_deadlines"
    __table_args__ = (
        tenant_fk("case_id", "cases", "fk_deadlines_case"),
        Index("ix_case_deadlines_case", "tenant_id", "case_id"),
        # no (tenant, due_at) WHERE status = 'OPEN': the scan's two overdue partial indexes
        # (backend/jobs/models.py) cover it, and every colour change wrote into it (0018)
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    step: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeadlineStatus.OPEN)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    warning_color: Mapped[str] = mapped_column(String(8), default=WarningColor.BLUE)
    held_days: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)
    issued_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    overdue_since: Mapped[datetime | None] = mapped_column(UtcDateTime)  # set by the deadline scan


class CaseEvent(TenantScoped, Base):
    """Append-only, hash-chained record of everything that happened to a case (痕迹化管理)."""

    __tablename__ = "case_events"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", "seq", name="uq_case_events_seq"),
        tenant_fk("case_id", "cases", "fk_events_case"),
    )

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(48))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_username: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PiiAccess(TenantScoped, Base):
    """Every read of unmasked petitioner PII: who, which case, when; and every search by
    id number (no case; ``petitioner_key`` is the searched person's keyed hash)."""

    __tablename__ = "pii_access_log"
    __table_args__ = (Index("ix_pii_access_case", "tenant_id", "case_id"),)

    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    username: Mapped[str] = mapped_column(String(64))
    fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    request_id: Mapped[str | None] = mapped_column(String(64))
    petitioner_key: Mapped[str | None] = mapped_column(String(64))


class TenantPolicy(TenantScoped, Base):
    """Per-tenant overrides of time limits, counting rule, warning thresholds."""

    __tablename__ = "tenant_policies"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_tenant_policies_tenant"),)

    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class HolidayOverride(Base):
    """A day of the State Council's yearly notice (platform data: one national calendar)."""

    __tablename__ = "holiday_overrides"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(Integer, index=True)
    is_working_day: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(300))
    loaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
