"""service accounts own API keys; searches by id number are logged

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 10:00:00

Issue 18: an API key used to be mintable for any non-admin user, so it acted as an
official (PII unmasked, the PII access log blaming the official). Keys now belong
to service accounts (``accounts.kind = 'SERVICE_ACCOUNT'``, no schema change:
``kind`` is a string); every still-valid key of a person is revoked here — the
integration gets a service account and a new key (docs/CHANGELOG.md says how).

Searches by id number are logged in ``pii_access_log`` with no case
(``case_id`` becomes nullable) and the searched person's keyed hash
(``petitioner_key``: the HMAC the cases carry, never the number itself).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Row-level security is FORCEd, for the owner too: scope this transaction to every city.
SEE_EVERY_TENANT = (
    "SELECT set_config('app.tenant_ids', "
    "coalesce((SELECT string_agg(id::text, ',') FROM tenants), ''), true)"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SEE_EVERY_TENANT)
    with op.batch_alter_table("pii_access_log", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("petitioner_key", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP WHERE revoked_at IS NULL AND "
        "user_id IN (SELECT id FROM accounts WHERE kind <> 'SERVICE_ACCOUNT')"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(SEE_EVERY_TENANT)
    op.execute("DELETE FROM pii_access_log WHERE case_id IS NULL")
    with op.batch_alter_table("pii_access_log", schema=None) as batch_op:
        batch_op.drop_column("petitioner_key")
        batch_op.alter_column("case_id", existing_type=sa.Uuid(), nullable=False)
