"""case_deadlines: drop ix_case_deadlines_open_due (the two overdue partial indexes cover it)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 16:40:00

Why (docs/decisions.md "Scan indexes of case_deadlines", docs/performance.md "Deadline
scan"): a step's colour and overdue mark change every day for ~2.5 % of the open steps,
and ``warning_color``/``overdue_since`` are indexed, so each such update writes an entry
into every index of the table whose predicate the row satisfies. ``(tenant, due_at) WHERE
status = 'OPEN'`` is the union of ``ix_case_deadlines_not_overdue`` and
``ix_case_deadlines_overdue`` (same key, ``overdue_since`` null / not null), which the
scan reads; its only other reader, the holiday recompute (a notice loaded once a year),
selects nearly every open step anyway and reads them through the colour index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.drop_index("ix_case_deadlines_open_due", postgresql_where="status = 'OPEN'")


def downgrade() -> None:
    with op.batch_alter_table("case_deadlines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_deadlines_open_due",
            ["tenant_id", "due_at"],
            unique=False,
            postgresql_where=sa.text("status = 'OPEN'"),
        )
