"""evaluations: policies, evaluator pool, panels, panel members, scores

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

TABLES = (
    "evaluation_policies",
    "evaluators",
    "evaluation_panels",
    "evaluation_panel_members",
    "evaluations",
)


def _fk(columns: list[str], table: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ['tenant_id', *columns], [f'{table}.tenant_id', f'{table}.id'], name=name
    )


def upgrade() -> None:
    op.create_table('evaluation_policies',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', name='uq_evaluation_policies_tenant')
    )
    op.create_table('evaluators',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('excluded_unit_paths', sa.JSON(), nullable=False),
    sa.Column('related_persons', sa.JSON(), nullable=False),
    sa.Column('contact_phone', sa.String(length=32), nullable=True),
    sa.Column('contact_email', sa.String(length=254), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('approved_by_id', sa.Uuid(), nullable=True),
    sa.Column('approved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk(['user_id'], 'users', 'fk_evaluators_user'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'user_id', name='uq_evaluators_user')
    )
    with op.batch_alter_table('evaluators', schema=None) as batch_op:
        batch_op.create_index('ix_evaluators_status', ['tenant_id', 'status', 'id'], unique=False)

    op.create_table('evaluation_panels',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('petitioner_key', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('seed', sa.String(length=128), nullable=False),
    sa.Column('seed_is_int', sa.Boolean(), nullable=False),
    sa.Column('policy', sa.JSON(), nullable=False),
    sa.Column('pool_snapshot', sa.JSON(), nullable=False),
    sa.Column('pool_hash', sa.String(length=64), nullable=False),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('drawn_by_id', sa.Uuid(), nullable=False),
    sa.Column('drawn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verdict', sa.String(length=24), nullable=True),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('concluded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('follow_up_deadline_id', sa.Uuid(), nullable=True),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('settled_note', sa.Text(), nullable=True),
    sa.Column('cancelled_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk(['case_id'], 'cases', 'fk_evaluation_panels_case'),
    _fk(['drawn_by_id'], 'users', 'fk_evaluation_panels_drawn_by'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id')
    )
    with op.batch_alter_table('evaluation_panels', schema=None) as batch_op:
        batch_op.create_index('ix_evaluation_panels_case', ['tenant_id', 'case_id'], unique=False)
        batch_op.create_index('ix_evaluation_panels_concluded', ['tenant_id', 'concluded_at'], unique=False)
        batch_op.create_index('ix_evaluation_panels_petitioner', ['tenant_id', 'petitioner_key'], unique=False)

    op.create_table('evaluation_panel_members',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('panel_id', sa.Uuid(), nullable=False),
    sa.Column('evaluator_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('case_id', sa.Uuid(), nullable=False),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk(['case_id'], 'cases', 'fk_panel_members_case'),
    _fk(['evaluator_id'], 'evaluators', 'fk_panel_members_evaluator'),
    _fk(['panel_id'], 'evaluation_panels', 'fk_panel_members_panel'),
    _fk(['user_id'], 'users', 'fk_panel_members_user'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'panel_id', 'evaluator_id', name='uq_panel_members_seat')
    )
    with op.batch_alter_table('evaluation_panel_members', schema=None) as batch_op:
        batch_op.create_index('ix_panel_members_evaluator', ['tenant_id', 'evaluator_id'], unique=False)
        batch_op.create_index('ix_panel_members_user_case', ['tenant_id', 'user_id', 'case_id'], unique=False)

    op.create_table('evaluations',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('panel_id', sa.Uuid(), nullable=False),
    sa.Column('member_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('facts', sa.Integer(), nullable=False),
    sa.Column('procedure', sa.Integer(), nullable=False),
    sa.Column('law_and_policy', sa.Integer(), nullable=False),
    sa.Column('responsibility', sa.Integer(), nullable=False),
    sa.Column('verdict', sa.String(length=24), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    _fk(['member_id'], 'evaluation_panel_members', 'fk_evaluations_member'),
    _fk(['panel_id'], 'evaluation_panels', 'fk_evaluations_panel'),
    _fk(['user_id'], 'users', 'fk_evaluations_user'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'panel_id', 'member_id', name='uq_evaluations_member')
    )
    enable_tenant_rls(*TABLES)
    grant_app_role()


def downgrade() -> None:
    op.drop_table('evaluations')
    with op.batch_alter_table('evaluation_panel_members', schema=None) as batch_op:
        batch_op.drop_index('ix_panel_members_user_case')
        batch_op.drop_index('ix_panel_members_evaluator')
    op.drop_table('evaluation_panel_members')
    with op.batch_alter_table('evaluation_panels', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluation_panels_petitioner')
        batch_op.drop_index('ix_evaluation_panels_concluded')
        batch_op.drop_index('ix_evaluation_panels_case')
    op.drop_table('evaluation_panels')
    with op.batch_alter_table('evaluators', schema=None) as batch_op:
        batch_op.drop_index('ix_evaluators_status')
    op.drop_table('evaluators')
    op.drop_table('evaluation_policies')
