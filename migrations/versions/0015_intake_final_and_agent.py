"""cases: the re-reviewed case a new petition repeats (Art. 36); the 代办 agent

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 11:00:00

Issue 19 (intake): ``cases.final_of_id`` — a petition of the same petitioner, category and
a similar subject as a case whose re-review (复核) was decided is registered flagged, with
a link to that case; accepting it needs a reason (Art. 36, docs/lifecycle.md). Nullable
columns only (and ``agent_id``/``agent_kind``: 代办/帮办, seeds 001 and 002, the official
acting for the petitioner, indexed ``(tenant_id, agent_id)`` — tenant first, the Citus
distribution column — for the agent's own list): no backfill, no row rewrite, nothing for row-level security or Citus to do
(``cases`` keeps its policy and distribution; ``ALTER TABLE … ADD COLUMN`` propagates).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("final_of_id", sa.Uuid(), nullable=True))
    op.add_column("cases", sa.Column("agent_id", sa.Uuid(), nullable=True))
    op.add_column("cases", sa.Column("agent_kind", sa.String(length=16), nullable=True))
    op.create_index("ix_cases_tenant_agent", "cases", ["tenant_id", "agent_id"])


def downgrade() -> None:
    op.drop_index("ix_cases_tenant_agent", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("agent_kind")
        batch_op.drop_column("agent_id")
        batch_op.drop_column("final_of_id")
