"""cases assigned down from above, mediation, 回头看 re-visits, hardship relief (issue 19)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 11:00:00

Three tables of seed practices around a case (backend/cases/practices.py):
``case_assignments`` (京、省交办, seed 000: the bureau, its number and deadline, the report
back), ``case_mediations`` (四调联动, seeds 001 and 004) and ``case_revisits`` (三不限
"回头看", seed 004). Tenant data like the case they belong to: ``(tenant_id, id)`` keys, a
``(tenant_id, case_id)`` key to ``cases``, row-level security, distributed by
``tenant_id`` on Citus (backend/core/citus.py lists them). ``evaluations.hardship_relief``:
a member's finding of hardship alongside its verdict (seed 004: relief together with
部分有理), false for every score given before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

TABLES = ("case_assignments", "case_mediations", "case_revisits")


def _keys(table: str) -> list[sa.SchemaItem]:
    """The columns and keys every one of these tables has: tenant, id, case, created."""
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        sa.ForeignKeyConstraint(
            ["tenant_id", "case_id"], ["cases.tenant_id", "cases.id"], name=f"fk_{table}_case"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    ]


def upgrade() -> None:
    op.create_table(
        "case_assignments",
        *_keys("case_assignments"),
        sa.Column("origin", sa.String(24), nullable=False),
        sa.Column("external_number", sa.String(64), nullable=False),
        sa.Column("external_due_date", sa.Date(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_by", sa.String(64), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.UniqueConstraint("tenant_id", "case_id", name="uq_case_assignments_case"),
    )
    op.create_index(
        "ix_case_assignments_due", "case_assignments", ["tenant_id", "external_due_date"]
    )
    op.create_table(
        "case_mediations",
        *_keys("case_mediations"),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("body", sa.String(200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("terms", sa.Text(), nullable=True),
    )
    op.create_index("ix_case_mediations_case", "case_mediations", ["tenant_id", "case_id"])
    op.create_table(
        "case_revisits",
        *_keys("case_revisits"),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=True),
        sa.Column("visited_by", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(24), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.UniqueConstraint("tenant_id", "case_id", "period", name="uq_case_revisits_period"),
    )
    op.create_index("ix_case_revisits_period", "case_revisits", ["tenant_id", "period"])
    enable_tenant_rls(*TABLES)
    # seed 004: a member may find hardship alongside its verdict (部分有理 + 救助帮扶)
    op.add_column(
        "evaluations",
        sa.Column("hardship_relief", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    grant_app_role()


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("hardship_relief")
    for table in reversed(TABLES):
        op.drop_table(table)
