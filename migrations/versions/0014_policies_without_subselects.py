"""row-level security policies without sub-selects (Citus)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:00:00

Why (issue 24, docs/tenancy.md "The policy without a sub-select"): Citus refuses a
sub-select in the policy of a distributed or reference table ("Subqueries are not
supported in policies on distributed tables"), and of every local table that a foreign
key chains to a reference table. The policies read ``app.tenant_ids`` directly instead of
through ``(SELECT …)``: the same rows, on plain PostgreSQL as on Citus. ``ALTER POLICY``
keeps each policy's name, roles and command; Citus propagates it to the shards when the
tables are already distributed.
"""

from __future__ import annotations

from alembic import op

from backend.core.rls import AUDIT_LOG_CHECK, AUDIT_LOG_USING, POLICY_PREDICATE, ddl

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_PREDICATE = (
    "tenant_id = ANY (CAST((SELECT string_to_array("
    "NULLIF(current_setting('app.tenant_ids', true), ''), ',')) AS uuid[]))"
)
OLD_AUDIT_USING = (
    f"(tenant_id IS NOT NULL AND {OLD_PREDICATE}) OR (tenant_id IS NULL AND "
    "coalesce(current_setting('app.audit_platform', true), '') = 'on')"
)
OLD_AUDIT_CHECK = f"tenant_id IS NULL OR {OLD_PREDICATE}"


def _tables() -> list[str]:
    rows = op.get_bind().exec_driver_sql(
        "SELECT tablename FROM pg_policies WHERE schemaname = 'public'"
        " AND policyname = 'tenant_isolation' ORDER BY tablename"
    )
    return [r[0] for r in rows]


def _alter(predicate: str, audit_using: str, audit_check: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in _tables():
        using, check = (
            (audit_using, audit_check) if table == "admin_audit_log" else (predicate, predicate)
        )
        op.execute(
            ddl("ALTER POLICY tenant_isolation ON {t}", t=table)
            + f" USING ({using}) WITH CHECK ({check})"
        )


def upgrade() -> None:
    _alter(POLICY_PREDICATE, AUDIT_LOG_USING, AUDIT_LOG_CHECK)


def downgrade() -> None:
    _alter(OLD_PREDICATE, OLD_AUDIT_USING, OLD_AUDIT_CHECK)
