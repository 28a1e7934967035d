"""security: admin audit log, encrypted id numbers with a searchable hash

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
