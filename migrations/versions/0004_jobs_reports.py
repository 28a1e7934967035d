"""jobs: job_runs, monthly_reports, cases.red_since, case_deadlines.overdue_since, scan indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('job_runs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('target_tenant_id', sa.Uuid(), nullable=True),
    sa.Column('key', sa.String(length=32), nullable=True),
    sa.Column('runner', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['target_tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_done', ['name', 'target_tenant_id', 'key', 'status'], unique=False)
        batch_op.create_index('ix_job_runs_name_started', ['name', 'started_at'], unique=False)
        batch_op.create_index('ix_job_runs_started', ['started_at'], unique=False)

    op.create_table('monthly_reports',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=False),
    sa.Column('unit_id', sa.Uuid(), nullable=False),
    sa.Column('unit_path', sa.String(length=512), nullable=False),
    sa.Column('unit_name', sa.String(length=200), nullable=False),
    sa.Column('unit_level', sa.String(length=16), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'period', 'unit_path', name='uq_monthly_reports_unit')
    )

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('red_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_cases_colour_due', ['tenant_id', 'warning_color', 'due_at'], unique=False, postgresql_where=sa.text('due_at IS NOT NULL'))
        batch_op.create_index('ix_cases_red_unstamped', ['tenant_id', 'due_at'], unique=False, postgresql_where=sa.text("warning_color = 'RED' AND red_since IS NULL"))
        batch_op.create_index('ix_cases_red_since', ['tenant_id', 'warning_color', 'red_since'], unique=False, postgresql_where=sa.text('red_since IS NOT NULL'))

    with op.batch_alter_table('case_deadlines', schema=None) as batch_op:
        batch_op.add_column(sa.Column('overdue_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_case_deadlines_open_colour_due', ['tenant_id', 'warning_color', 'due_at'], unique=False, postgresql_where=sa.text("status = 'OPEN'"))
        batch_op.create_index('ix_case_deadlines_not_overdue', ['tenant_id', 'due_at'], unique=False, postgresql_where=sa.text("status = 'OPEN' AND overdue_since IS NULL"))
        batch_op.create_index('ix_case_deadlines_overdue', ['tenant_id', 'due_at'], unique=False, postgresql_where=sa.text("status = 'OPEN' AND overdue_since IS NOT NULL"))

    enable_tenant_rls("monthly_reports")
    grant_app_role()


def downgrade() -> None:
    with op.batch_alter_table('case_deadlines', schema=None) as batch_op:
        batch_op.drop_index('ix_case_deadlines_overdue')
        batch_op.drop_index('ix_case_deadlines_not_overdue')
        batch_op.drop_index('ix_case_deadlines_open_colour_due')
        batch_op.drop_column('overdue_since')

    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_red_since')
        batch_op.drop_index('ix_cases_red_unstamped')
        batch_op.drop_index('ix_cases_colour_due')
        batch_op.drop_column('red_since')

    op.drop_table('monthly_reports')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_job_runs_started')
        batch_op.drop_index('ix_job_runs_name_started')
        batch_op.drop_index('ix_job_runs_done')

    op.drop_table('job_runs')
