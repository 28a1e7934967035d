"""Art. 30 need-to-know gate: the accusations each notification is about

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 18:00:00

``notification_accusations`` names the accusations a notification mentions, so the
dispatcher (at delivery) and the inbox and dead-letter lists (when read) can check
again, in SQL, that the recipient may still know them (backend/cases/need_to_know.py).
Tenant data behind row-level security like every outbox table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_accusations",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(
            ["tenant_id", "notification_id"],
            ["notifications.tenant_id", "notifications.id"],
            name="fk_notification_accusations_notification",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"],
            ["cases.tenant_id", "cases.id"],
            name="fk_notification_accusations_case",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint(
            "tenant_id", "notification_id", "case_id", name="uq_notification_accusations"
        ),
    )
    enable_tenant_rls("notification_accusations")
    grant_app_role()


def downgrade() -> None:
    op.drop_table("notification_accusations")
