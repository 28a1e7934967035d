"""roster practices of issue 19: named people, their village pairings, people's shifts
and appointments, dispute sweeps

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 10:40:00

Seeds 000, 001 and 003 (docs/rosters.md): the 两代表一委员, party members, lawyers and
counsellors who take part in rosters without an account (``roster_people``), and the
party members among them paired with villages (``person_pairings``), the people of a
rule staffed by people (``roster_rule_people``) and, on ``duty_shifts``, the person on
duty (``leader_id`` becomes optional) and an appointment's case, and the findings of the
矛盾纠纷排查 sweeps (``sweep_findings``). Tenant data: the
key leads with ``tenant_id`` (Citus distribution column, ``backend/core/citus.py``),
every foreign key carries it, row-level security like every tenant table.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from backend.core.rls import enable_tenant_rls, grant_app_role

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _tenant_fk(column: str, table: str, name: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"], name=name
    )


def _path_index(table: str, name: str, column: str) -> None:
    op.create_index(
        name, table, ["tenant_id", column], postgresql_ops={column: "text_pattern_ops"}
    )


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
    ]


def _stamps() -> list[sa.Column]:
    return [
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "roster_people",
        *_key_columns(),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("party_member", sa.Boolean(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("unit_path", sa.String(length=512), nullable=False),
        sa.Column("organisation", sa.String(length=200), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        _tenant_fk("unit_id", "org_units", "fk_roster_people_unit"),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
    )
    _path_index("roster_people", "ix_roster_people_unit_path", "unit_path")
    op.create_table(
        "person_pairings",
        *_key_columns(),
        sa.Column("village_id", sa.Uuid(), nullable=False),
        sa.Column("village_path", sa.String(length=512), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_by_id", sa.Uuid(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        _tenant_fk("village_id", "org_units", "fk_person_pairings_village"),
        _tenant_fk("person_id", "roster_people", "fk_person_pairings_person"),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "village_id", name="uq_person_pairings_village"),
    )
    _path_index("person_pairings", "ix_person_pairings_path", "village_path")
    op.create_table(
        "roster_rule_people",
        *_key_columns(),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        _tenant_fk("rule_id", "roster_rules", "fk_rule_people_rule"),
        _tenant_fk("person_id", "roster_people", "fk_rule_people_person"),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "rule_id", "person_id", name="uq_roster_rule_people"),
    )
    with op.batch_alter_table("duty_shifts") as batch:
        batch.alter_column("leader_id", existing_type=sa.Uuid(), nullable=True)
        batch.add_column(sa.Column("person_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("case_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            "fk_duty_shifts_person",
            "roster_people",
            ["tenant_id", "person_id"],
            ["tenant_id", "id"],
        )
        batch.create_foreign_key(
            "fk_duty_shifts_case", "cases", ["tenant_id", "case_id"], ["tenant_id", "id"]
        )
        batch.create_index("ix_duty_shifts_case", ["tenant_id", "case_id"])
    op.create_table(
        "sweep_findings",
        *_key_columns(),
        sa.Column("shift_id", sa.Uuid(), nullable=False),
        sa.Column("unit_path", sa.String(length=512), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=False),
        sa.Column("parties", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("risk_level", sa.String(length=8), nullable=False),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        *_stamps(),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        _tenant_fk("shift_id", "duty_shifts", "fk_sweep_findings_shift"),
        _tenant_fk("case_id", "cases", "fk_sweep_findings_case"),
        sa.PrimaryKeyConstraint("tenant_id", "id"),
        sa.UniqueConstraint("tenant_id", "case_id", name="uq_sweep_findings_case"),
    )
    _path_index("sweep_findings", "ix_sweep_findings_unit_path", "unit_path")
    op.create_index("ix_sweep_findings_shift", "sweep_findings", ["tenant_id", "shift_id"])
    enable_tenant_rls("roster_people", "person_pairings", "roster_rule_people", "sweep_findings")
    grant_app_role()


def downgrade() -> None:
    op.execute("DELETE FROM duty_shifts WHERE leader_id IS NULL")  # people's shifts
    with op.batch_alter_table("duty_shifts") as batch:
        batch.drop_index("ix_duty_shifts_case")
        batch.drop_constraint("fk_duty_shifts_case", type_="foreignkey")
        batch.drop_constraint("fk_duty_shifts_person", type_="foreignkey")
        batch.drop_column("case_id")
        batch.drop_column("person_id")
        batch.alter_column("leader_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_table("sweep_findings")
    op.drop_table("roster_rule_people")
    op.drop_table("person_pairings")
    op.drop_table("roster_people")
