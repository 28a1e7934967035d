"""Provinces, tenants (cities), the org-unit tree, accounts, users and role assignments.

``provinces``, ``tenants`` and ``accounts`` are platform data (no tenant
column, no RLS): ``accounts`` is the login directory that maps a token's
``sub`` to a tenant before any tenant is known. Everything else carries
``tenant_id`` and sits behind both tenant walls.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.db import Base, TenantScoped, TimestampedId, UtcDateTime, tenant_fk


class OrgUnitLevel(StrEnum):
    CITY = "CITY"
    COUNTY = "COUNTY"
    TOWNSHIP = "TOWNSHIP"
    VILLAGE = "VILLAGE"
    GRID = "GRID"
    DEPARTMENT = "DEPARTMENT"


class Province(TimestampedId, Base):
    __tablename__ = "provinces"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Tenant(TimestampedId, Base):
    """一个地级市 — one city; the unit of isolation."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    province_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("provinces.id"), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default=DEFAULT_TIMEZONE)
    case_prefix: Mapped[str] = mapped_column(String(8))


class Account(TimestampedId, Base):
    """Login directory entry: username → tenant (or province/platform staff)."""

    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    display_name: Mapped[str] = mapped_column(String(200))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"), index=True)
    province_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("provinces.id"))
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class OrgUnit(TenantScoped, Base):
    """A node of the city's tree; ``path`` makes "this unit and below" one prefix filter."""

    __tablename__ = "org_units"
    __table_args__ = (
        UniqueConstraint("tenant_id", "path", name="uq_org_units_tenant_path"),
        tenant_fk("parent_id", "org_units", "fk_org_units_parent"),
        Index(
            "ix_org_units_tenant_path_prefix",
            "tenant_id",
            "path",
            postgresql_ops={"path": "text_pattern_ops"},
        ),
    )

    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    path: Mapped[str] = mapped_column(String(512))
    slug: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    depth: Mapped[int] = mapped_column(default=0)


class User(TenantScoped, Base):
    """A tenant's official; ``id`` equals the account id."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("tenant_id", "username", name="uq_users_tenant_username"),)

    username: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))


class RoleAssignment(TenantScoped, Base):
    """A role held at an org unit: its scope is that unit and its subtree."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "user_id", "role", "org_unit_id", name="uq_role_assignments_grant"
        ),
        tenant_fk("user_id", "users", "fk_role_user"),
        tenant_fk("org_unit_id", "org_units", "fk_role_org_unit"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    role: Mapped[str] = mapped_column(String(32))
    org_unit_id: Mapped[uuid.UUID] = mapped_column(Uuid)
