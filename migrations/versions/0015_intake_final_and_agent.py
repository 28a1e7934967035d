"""cases: the re-reviewed case a new petition repeats (Art. 36)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 11:00:00

Issue 19 (intake): ``cases.final_of_id`` — a petition of the same petitioner, category and
a similar subject as a case whose re-review (复核) was decided is registered flagged, with
a link to that case; accepting it needs a reason (Art. 36, docs/lifecycle.md). Nullable
columns only: no backfill, no row rewrite, nothing for row-level security or Citus to do
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


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("final_of_id")
