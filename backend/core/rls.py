"""PostgreSQL row-level security DDL, used by the migrations (wall b).

The policy reads the transaction-local setting once per statement (the
sub-select) and an unset setting yields no rows rather than a cast error.
"""

from __future__ import annotations

from alembic import op

from backend.core.settings import get_settings

POLICY_PREDICATE = (
    "tenant_id = ANY (CAST((SELECT string_to_array("
    "NULLIF(current_setting('app.tenant_ids', true), ''), ',')) AS uuid[]))"
)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def ensure_app_role() -> None:
    """Create the serving role (owns nothing, no BYPASSRLS) and let the owner switch to it."""
    if not _is_postgres():
        return
    role = get_settings().db_app_role
    op.execute(
        f"""
        DO $$
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$;
        """
    )
    op.execute(f'GRANT "{role}" TO CURRENT_USER')
    op.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')


def grant_app_role() -> None:
    """DML on every table for the serving role (run at the end of each migration)."""
    if not _is_postgres():
        return
    role = get_settings().db_app_role
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    op.execute(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    op.execute(f'REVOKE ALL ON TABLE alembic_version FROM "{role}"')


def enable_tenant_rls(*tables: str) -> None:
    """``ENABLE`` + ``FORCE`` RLS and one policy per tenant table."""
    if not _is_postgres():
        return
    for table in tables:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({POLICY_PREDICATE}) WITH CHECK ({POLICY_PREDICATE})"
        )


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` for everyone, owner included (audit trail)."""
    if not _is_postgres():
        return
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {table}_append_only() RETURNS trigger AS $$
        BEGIN
          RAISE EXCEPTION '{table} is append-only (%)', TG_OP USING ERRCODE = 'insufficient_privilege';
        END $$ LANGUAGE plpgsql
        """
    )
    op.execute(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
    )
