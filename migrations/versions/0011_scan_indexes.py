"""deadline scan: HOT colour updates on cases (no index names warning_color or red_since),
(tenant, due_at) for the digest, no trigram index, fillfactor 85

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 16:50:00

Why (docs/performance.md "Deadline scan", docs/decisions.md "Search under RLS"):
PostgreSQL updates a row in place (HOT: no index entry written) only when no
indexed column changes and the page has room. The three scan indexes on
``cases`` named ``warning_color``/``red_since``, so every colour change wrote an
entry into all 15 indexes of the table; the scan now finds stale cases through
their steps (``case_deadlines`` keeps its colour index) and the digest reads red
cases by due time. ``fillfactor = 85`` leaves room on new pages; pages written
before this migration get it once the table is repacked (``VACUUM FULL cases`` or
pg_repack in a quiet hour) — until then updates stay non-HOT, as before.
The trigram index served only the owner: under RLS ``ILIKE`` is not leakproof,
so the serving role's search never used it, while every case update paid for it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_cases_search_trgm")
        op.execute("ALTER TABLE cases SET (fillfactor = 85)")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_colour_due")
        batch_op.drop_index("ix_cases_red_unstamped")
        batch_op.drop_index("ix_cases_red_since")
        batch_op.create_index(
            "ix_cases_open_due",
            ["tenant_id", "due_at"],
            unique=False,
            postgresql_where=sa.text("due_at IS NOT NULL"),
        )
    # Mutations now keep red_since in step with the colour (the scan no longer searches for
    # red cases without a stamp): repair what earlier versions left for the scan to fix.
    op.execute(
        "UPDATE cases SET red_since = CURRENT_TIMESTAMP "
        "WHERE warning_color = 'RED' AND red_since IS NULL AND due_at IS NOT NULL"
    )
    op.execute(
        "UPDATE cases SET red_since = NULL WHERE warning_color <> 'RED' AND red_since IS NOT NULL"
    )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_open_due", postgresql_where=sa.text("due_at IS NOT NULL"))
        batch_op.create_index(
            "ix_cases_colour_due",
            ["tenant_id", "warning_color", "due_at"],
            unique=False,
            postgresql_where=sa.text("due_at IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_cases_red_unstamped",
            ["tenant_id", "due_at"],
            unique=False,
            postgresql_where=sa.text("warning_color = 'RED' AND red_since IS NULL"),
        )
        batch_op.create_index(
            "ix_cases_red_since",
            ["tenant_id", "warning_color", "red_since"],
            unique=False,
            postgresql_where=sa.text("red_since IS NOT NULL"),
        )
    if postgres:
        op.execute("ALTER TABLE cases RESET (fillfactor)")
        op.execute(
            "CREATE INDEX ix_cases_search_trgm ON cases "
            "USING gin ((subject || ' ' || content) gin_trgm_ops)"
        )
