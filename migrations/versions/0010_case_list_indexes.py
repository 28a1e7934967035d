"""case list: (tenant, status, path) indexes replace (tenant, status)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 15:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_tenant_status_holder",
            ["tenant_id", "status", "holder_path"],
            unique=False,
            postgresql_ops={"holder_path": "text_pattern_ops"},
        )
        batch_op.create_index(
            "ix_cases_tenant_status_location",
            ["tenant_id", "status", "location_path"],
            unique=False,
            postgresql_ops={"location_path": "text_pattern_ops"},
        )
        batch_op.drop_index("ix_cases_tenant_status")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_tenant_status", ["tenant_id", "status"], unique=False)
        batch_op.drop_index("ix_cases_tenant_status_location")
        batch_op.drop_index("ix_cases_tenant_status_holder")
