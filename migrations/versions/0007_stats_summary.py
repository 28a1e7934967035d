"""statistics: daily summary table and indicator indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

COUNTS = (
    'received',
    'repeat',
    'skip_level',
    'acceptance_due',
    'acceptance_on_time',
    'closure_due',
    'closure_on_time',
    'closure_on_time_no_ext',
    'replied',
    'replied_rated',
    'replied_eligible',
    'replied_eligible_std',
    'rated',
    'rated_satisfied',
    'rated_basically',
)


def upgrade() -> None:
    op.create_table(
        'stats_daily',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('holder_path', sa.String(length=512), nullable=False),
        sa.Column('location_path', sa.String(length=512), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS],
        sa.Column('breakdown', sa.JSON(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
        sa.PrimaryKeyConstraint('tenant_id', 'id'),
        sa.UniqueConstraint('tenant_id', 'day', 'holder_path', 'location_path', name='uq_stats_daily_key'),
    )
    op.create_table(
        'stats_refreshes',
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('through_day', sa.Date(), nullable=False),
        sa.Column('definition', sa.JSON(), nullable=False),
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
        sa.PrimaryKeyConstraint('tenant_id', 'id'),
        sa.UniqueConstraint('tenant_id', name='uq_stats_refreshes_tenant'),
    )
    with op.batch_alter_table('case_deadlines', schema=None) as batch_op:
        batch_op.create_index('ix_case_deadlines_step_due', ['tenant_id', 'step', 'due_at'], unique=False)
        batch_op.create_index('ix_case_deadlines_finished', ['tenant_id', 'finished_at'], unique=False, postgresql_where=sa.text('finished_at IS NOT NULL'))
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_tenant_replied', ['tenant_id', 'replied_at'], unique=False, postgresql_where=sa.text('replied_at IS NOT NULL'))
        batch_op.create_index('ix_cases_tenant_rated', ['tenant_id', 'rated_at'], unique=False, postgresql_where=sa.text('rated_at IS NOT NULL'))

    enable_tenant_rls('stats_daily', 'stats_refreshes')
    grant_app_role()


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_tenant_rated')
        batch_op.drop_index('ix_cases_tenant_replied')
    with op.batch_alter_table('case_deadlines', schema=None) as batch_op:
        batch_op.drop_index('ix_case_deadlines_finished')
        batch_op.drop_index('ix_case_deadlines_step_due')
    op.drop_table('stats_refreshes')
    op.drop_table('stats_daily')
