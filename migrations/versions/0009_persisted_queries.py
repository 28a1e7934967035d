"""persisted queries: per-tenant allow-list

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00

``persisted_queries`` is platform data (the global manifest, no RLS, like
``tenants``); a city's own documents and its allow-list switch are tenant
tables behind RLS. See backend/core/persisted.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TENANT_TABLES = ("tenant_persisted_queries", "persisted_query_modes")


def upgrade() -> None:
    op.create_table(
        "persisted_queries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sha256"),
    )
    op.create_table(
        "tenant_persisted_queries",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "sha256", name="uq_tenant_persisted_queries_hash"),
    )
    op.create_table(
        "persisted_query_modes",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("allow_list_only", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", name="uq_persisted_query_modes_tenant"),
    )
    enable_tenant_rls(*TENANT_TABLES)
    grant_app_role()


def downgrade() -> None:
    for table in TENANT_TABLES:
        op.drop_table(table)
    op.drop_table("persisted_queries")
