"""Duty rosters (领导接访、下访、窗口值班): rules, generated shifts, leave, swaps, receptions,
and cadre ↔ village pairings.

Every table is tenant data (``tenant_id`` leads every key, composite foreign
keys carry it). Unit paths are copied onto the rows that are listed by scope,
so "shifts in this subtree" is one indexed prefix filter, like cases.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
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


class ShiftKind(StrEnum):
    GRASSROOTS_DAY = "GRASSROOTS_DAY"  # 三五: city 25th, county 15th, township 5th
    RECEPTION_HALL = "RECEPTION_HALL"  # 领导接访: daily rotating duty leader at the hall
    WINDOW_DUTY = "WINDOW_DUTY"  # 镇街、部门班子成员窗口值班 (seed 003), every working day
    VILLAGE_OFFICE = "VILLAGE_OFFICE"  # 村周五坐班
    MAIN_LEADER = "MAIN_LEADER"  # 主要领导每月接访
    DOWN_VISIT = "DOWN_VISIT"  # 每月15日下访
    PUBLIC_RECEPTION = "PUBLIC_RECEPTION"  # 季度公开接访, announced >= 3 days ahead
    # issue 19, roster kinds with their own people (seeds 001, 003)
    APPOINTMENT = "APPOINTMENT"  # 预约接访/约访: a leader receives one case's petitioner
    JOINT_RECEPTION = "JOINT_RECEPTION"  # "两代表一委员"联合接访, monthly
    LAWYER_DUTY = "LAWYER_DUTY"  # 每日1名律师坐班 in the reception hall
    COUNSELLING = "COUNSELLING"  # 心理咨询师提供心理干预服务 at the reception hall
    # 矛盾纠纷排查 (seeds 001, 003: 村级每周、工作片每旬、镇街每月一次集中排查调处矛盾纠纷)
    VILLAGE_SWEEP = "VILLAGE_SWEEP"  # weekly, at a village
    WORK_AREA_SWEEP = "WORK_AREA_SWEEP"  # every 旬 (10 days), the township's work areas
    TOWNSHIP_SWEEP = "TOWNSHIP_SWEEP"  # monthly, at a township


class PersonKind(StrEnum):
    """Named people of the city who take part in rosters without being system users."""

    PARTY_DEPUTY = "PARTY_DEPUTY"  # 党代表 (a party member by definition)
    NPC_DEPUTY = "NPC_DEPUTY"  # 人大代表
    CPPCC_MEMBER = "CPPCC_MEMBER"  # 政协委员
    PARTY_MEMBER = "PARTY_MEMBER"  # 党员
    LAWYER = "LAWYER"  # 律师: 每日1名律师坐班 (seed 001)
    COUNSELLOR = "COUNSELLOR"  # 心理咨询师: 心理干预服务 (seed 001)


# 两代表一委员: the deputies and committee members
DEPUTY_KINDS = frozenset({PersonKind.PARTY_DEPUTY, PersonKind.NPC_DEPUTY, PersonKind.CPPCC_MEMBER})
# kinds whose every member is a party member
PARTY_KINDS = frozenset({PersonKind.PARTY_DEPUTY, PersonKind.PARTY_MEMBER})


# Kinds where the leader sits somewhere a petitioner can walk in: a visit registered at
# that unit during the shift gets the duty leader as first receiver (首问负责). A
# down-visit shift is kept at the township its leader is paired with (下访约访, seed 002
# Haiyan: the county leader receiving on the 15th answers first for what it received).
RECEPTION_KINDS = frozenset(
    {
        ShiftKind.DOWN_VISIT,
        ShiftKind.RECEPTION_HALL,
        ShiftKind.WINDOW_DUTY,
        ShiftKind.VILLAGE_OFFICE,
        ShiftKind.MAIN_LEADER,
        ShiftKind.PUBLIC_RECEPTION,
    }
)


# Kinds staffed by named people (``roster_people``), not by leaders, and which people:
# the shift's ``person_id`` is set and its ``leader_id`` is empty.
PEOPLE_OF_KIND: dict[ShiftKind, frozenset[PersonKind]] = {
    ShiftKind.JOINT_RECEPTION: DEPUTY_KINDS,  # 两代表一委员
    ShiftKind.LAWYER_DUTY: frozenset({PersonKind.LAWYER}),
    ShiftKind.COUNSELLING: frozenset({PersonKind.COUNSELLOR}),
}

# The public feed (receptionAnnouncements, the .ics export): where a citizen can come.
# An appointment is a private meeting with one petitioner, never published.
PUBLISHED_KINDS = RECEPTION_KINDS | frozenset(PEOPLE_OF_KIND)


SWEEP_KINDS = frozenset(
    {ShiftKind.VILLAGE_SWEEP, ShiftKind.WORK_AREA_SWEEP, ShiftKind.TOWNSHIP_SWEEP}
)


class RiskLevel(StrEnum):
    """How likely a dispute found in a sweep is to escalate (风险等级)."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class ShiftStatus(StrEnum):
    PLANNED = "PLANNED"  # generated; regeneration may move it
    CONFIRMED = "CONFIRMED"  # fixed: regeneration leaves it alone
    SWAPPED = "SWAPPED"  # leader changed by an approved swap: fixed
    CHECKED_IN = "CHECKED_IN"
    COMPLETED = "COMPLETED"  # checked out


OPEN_STATUSES = (
    ShiftStatus.PLANNED,
    ShiftStatus.CONFIRMED,
    ShiftStatus.SWAPPED,
    ShiftStatus.CHECKED_IN,
)
# not yet begun: a shift in one of these may still be swapped or checked in to
SWAPPABLE = (ShiftStatus.PLANNED, ShiftStatus.CONFIRMED, ShiftStatus.SWAPPED)


class SwapStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


def _path_index(name: str, table_column: str) -> Index:
    return Index(name, "tenant_id", table_column, postgresql_ops={table_column: "text_pattern_ops"})


class RosterRule(TenantScoped, Base):
    """How one unit staffs one kind of duty; ``planReceptionDays`` turns it into shifts."""

    __tablename__ = "roster_rules"
    __table_args__ = (
        UniqueConstraint("tenant_id", "unit_id", "kind", name="uq_roster_rules_unit_kind"),
        tenant_fk("unit_id", "org_units", "fk_roster_rules_unit"),
        _path_index("ix_roster_rules_unit_path", "unit_path"),
    )

    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    start_time: Mapped[str] = mapped_column(String(5), default="09:00")
    end_time: Mapped[str] = mapped_column(String(5), default="17:00")
    location: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class RosterRuleLeader(TenantScoped, Base):
    """The rotation of a rule, in order (none listed: the leaders held at the unit)."""

    __tablename__ = "roster_rule_leaders"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rule_id", "user_id", name="uq_roster_rule_leaders"),
        tenant_fk("rule_id", "roster_rules", "fk_rule_leaders_rule"),
        tenant_fk("user_id", "users", "fk_rule_leaders_user"),
    )

    rule_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    position: Mapped[int] = mapped_column(Integer)


class RosterRulePerson(TenantScoped, Base):
    """The named people of a rule staffed by people (joint reception, lawyer, counsellor),
    in rotation order."""

    __tablename__ = "roster_rule_people"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rule_id", "person_id", name="uq_roster_rule_people"),
        tenant_fk("rule_id", "roster_rules", "fk_rule_people_rule"),
        tenant_fk("person_id", "roster_people", "fk_rule_people_person"),
    )

    rule_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    position: Mapped[int] = mapped_column(Integer)


class DutyShift(TenantScoped, Base):
    """One leader — or, for the kinds of :data:`PEOPLE_OF_KIND`, one named person — on
    duty at one unit for one time window. An appointment reception (预约接访) names the
    case whose petitioner the leader receives: Art. 30 applies to the shift."""

    __tablename__ = "duty_shifts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "rule_id", "day", "slot", name="uq_duty_shifts_slot"),
        tenant_fk("rule_id", "roster_rules", "fk_duty_shifts_rule"),
        tenant_fk("unit_id", "org_units", "fk_duty_shifts_unit"),
        tenant_fk("leader_id", "users", "fk_duty_shifts_leader"),
        _path_index("ix_duty_shifts_unit_path", "unit_path"),
        Index("ix_duty_shifts_leader_start", "tenant_id", "leader_id", "starts_at"),
        Index("ix_duty_shifts_day", "tenant_id", "day"),
        Index("ix_duty_shifts_rule_period", "tenant_id", "rule_id", "period"),
        tenant_fk("person_id", "roster_people", "fk_duty_shifts_person"),
        tenant_fk("case_id", "cases", "fk_duty_shifts_case"),
        Index("ix_duty_shifts_case", "tenant_id", "case_id"),
    )

    rule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    period: Mapped[str] = mapped_column(String(7))  # the planned month, YYYY-MM
    day: Mapped[date] = mapped_column(Date)
    slot: Mapped[int] = mapped_column(Integer, default=0)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    leader_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # None: a person's shift
    person_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # APPOINTMENT: the case
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16), default=ShiftStatus.PLANNED)
    title: Mapped[str] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    announced_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    check_in_location: Mapped[str | None] = mapped_column(String(200))
    checked_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    check_out_location: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class LeaderLeave(TenantScoped, Base):
    """Recorded leave: the leader is skipped by rotation and cannot take a swapped shift."""

    __tablename__ = "leader_leaves"
    __table_args__ = (
        tenant_fk("user_id", "users", "fk_leader_leaves_user"),
        Index("ix_leader_leaves_user", "tenant_id", "user_id", "first_day"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    reason: Mapped[str | None] = mapped_column(Text)
    recorded_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ShiftSwap(TenantScoped, Base):
    """A request to hand a shift to another leader, or to exchange two shifts."""

    __tablename__ = "shift_swaps"
    __table_args__ = (
        tenant_fk("shift_id", "duty_shifts", "fk_shift_swaps_shift"),
        tenant_fk("other_shift_id", "duty_shifts", "fk_shift_swaps_other"),
        tenant_fk("from_user_id", "users", "fk_shift_swaps_from"),
        tenant_fk("to_user_id", "users", "fk_shift_swaps_to"),
        Index("ix_shift_swaps_shift", "tenant_id", "shift_id", "status"),
    )

    shift_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    other_shift_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    from_user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    to_user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default=SwapStatus.REQUESTED)
    reason: Mapped[str | None] = mapped_column(Text)
    requested_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    comment: Mapped[str | None] = mapped_column(Text)


class ShiftReception(TenantScoped, Base):
    """A visit case received during a shift (its duty leader is the case's first receiver)."""

    __tablename__ = "shift_receptions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "case_id", name="uq_shift_receptions_case"),
        tenant_fk("shift_id", "duty_shifts", "fk_shift_receptions_shift"),
        tenant_fk("case_id", "cases", "fk_shift_receptions_case"),
        Index("ix_shift_receptions_shift", "tenant_id", "shift_id"),
    )

    shift_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class VillagePairing(TenantScoped, Base):
    """一对一联系: one responsible cadre per village — or per township, for the county
    (city) leaders' 15th-of-month down-visits (下访约访). A cadre may hold several units;
    the unit's level tells village and township pairings apart (the column names are
    historical)."""

    __tablename__ = "village_pairings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "village_id", name="uq_village_pairings_village"),
        tenant_fk("village_id", "org_units", "fk_village_pairings_village"),
        tenant_fk("cadre_id", "users", "fk_village_pairings_cadre"),
        _path_index("ix_village_pairings_path", "village_path"),
    )

    village_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    village_path: Mapped[str] = mapped_column(String(512))
    cadre_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class RosterPerson(TenantScoped, Base):
    """A named person of the city (a deputy, a party member, a lawyer, a counsellor) who is
    paired with villages or takes roster shifts but holds no account. ``unit_path`` is the
    unit the person is registered with (scope, like everything else); the phone is PII,
    encrypted at rest and masked for readers who do not manage the roster."""

    __tablename__ = "roster_people"
    __table_args__ = (
        tenant_fk("unit_id", "org_units", "fk_roster_people_unit"),
        _path_index("ix_roster_people_unit_path", "unit_path"),
    )

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(24))
    party_member: Mapped[bool] = mapped_column(Boolean, default=False)
    unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    organisation: Mapped[str | None] = mapped_column(String(200))  # law firm, committee...
    phone: Mapped[str | None] = mapped_column(EncryptedText("roster_people.phone"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class PersonPairing(TenantScoped, Base):
    """一对一联系 by a party member among the 两代表一委员 (seed 000): one such contact per
    village, beside its contact cadre (``village_pairings``); a person may hold several."""

    __tablename__ = "person_pairings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "village_id", name="uq_person_pairings_village"),
        tenant_fk("village_id", "org_units", "fk_person_pairings_village"),
        tenant_fk("person_id", "roster_people", "fk_person_pairings_person"),
        _path_index("ix_person_pairings_path", "village_path"),
    )

    village_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    village_path: Mapped[str] = mapped_column(String(512))
    person_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)


class SweepFinding(TenantScoped, Base):
    """One dispute found in a 矛盾纠纷排查 sweep shift: where, between whom, what, how risky.
    ``unit_path`` and ``day`` are copied from the shift (scope and date filters in SQL);
    ``case_id`` is the case it became (through the ordinary intake), at most one."""

    __tablename__ = "sweep_findings"
    __table_args__ = (
        tenant_fk("shift_id", "duty_shifts", "fk_sweep_findings_shift"),
        tenant_fk("case_id", "cases", "fk_sweep_findings_case"),
        UniqueConstraint("tenant_id", "case_id", name="uq_sweep_findings_case"),
        _path_index("ix_sweep_findings_unit_path", "unit_path"),
        Index("ix_sweep_findings_shift", "tenant_id", "shift_id"),
    )

    shift_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    unit_path: Mapped[str] = mapped_column(String(512))
    day: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200))
    parties: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    risk_level: Mapped[str] = mapped_column(String(8))
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now)
