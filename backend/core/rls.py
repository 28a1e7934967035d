"""PostgreSQL row-level security DDL, used by the migrations (wall b).

The policy reads the transaction-local setting ``app.tenant_ids`` and an unset setting
yields no rows rather than a cast error. It has no sub-select: Citus refuses sub-selects
in policies of distributed and reference tables (and of every table a foreign key chains
to a reference table). Where the predicate is an index condition — every tenant index
leads with ``tenant_id`` — PostgreSQL still evaluates it once per scan; as a filter it is
evaluated per row (docs/tenancy.md, "The policy without a sub-select", measures both).
DDL cannot take bind parameters, so identifiers go through :func:`ddl`,
which accepts only plain lower-case identifiers.
"""

from __future__ import annotations

import re

from alembic import op

from backend.core.settings import get_settings

POLICY_PREDICATE = (
    "tenant_id = ANY (CAST(string_to_array("
    "NULLIF(current_setting('app.tenant_ids', true), ''), ',') AS uuid[]))"
)
# admin_audit_log: platform rows (no tenant) are readable only with app.audit_platform on
AUDIT_LOG_USING = (
    f"(tenant_id IS NOT NULL AND {POLICY_PREDICATE}) OR (tenant_id IS NULL AND "
    "coalesce(current_setting('app.audit_platform', true), '') = 'on')"
)
AUDIT_LOG_CHECK = f"tenant_id IS NULL OR {POLICY_PREDICATE}"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ddl(template: str, **identifiers: str) -> str:
    """Fill ``{name}`` placeholders with checked identifiers (never user input)."""
    for value in identifiers.values():
        if not _IDENTIFIER.match(value):
            raise ValueError(f"not a plain identifier: {value!r}")
    return template.format(**identifiers)


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def ensure_app_role() -> None:
    """Create the serving role (owns nothing, no BYPASSRLS) and let the owner switch to it."""
    if not _is_postgres():
        return
    role = get_settings().db_app_role
    op.execute(
        ddl(
            """
            DO $$
            BEGIN
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
              END IF;
            END $$;
            """,
            role=role,
        )
    )
    op.execute(ddl('GRANT "{role}" TO CURRENT_USER', role=role))
    op.execute(ddl('GRANT USAGE ON SCHEMA public TO "{role}"', role=role))


def grant_app_role() -> None:
    """DML on every table for the serving role (run at the end of each migration)."""
    if not _is_postgres():
        return
    role = get_settings().db_app_role
    op.execute(
        ddl('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{r}"', r=role)
    )
    op.execute(ddl('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{r}"', r=role))
    op.execute(ddl('REVOKE ALL ON TABLE alembic_version FROM "{r}"', r=role))


def enable_tenant_rls(*tables: str) -> None:
    """``ENABLE`` + ``FORCE`` RLS and one policy per tenant table."""
    if not _is_postgres():
        return
    for table in tables:
        op.execute(ddl("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY", t=table))
        op.execute(ddl("ALTER TABLE {t} FORCE ROW LEVEL SECURITY", t=table))
        op.execute(
            ddl("CREATE POLICY tenant_isolation ON {t} USING (", t=table)
            + POLICY_PREDICATE
            + ") WITH CHECK ("
            + POLICY_PREDICATE
            + ")"
        )


def make_append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` for everyone, owner included (audit trail)."""
    if not _is_postgres():
        return
    op.execute(
        ddl(
            """
            CREATE OR REPLACE FUNCTION {t}_append_only() RETURNS trigger AS $$
            BEGIN
              RAISE EXCEPTION '{t} is append-only (%)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
            END $$ LANGUAGE plpgsql
            """,
            t=table,
        )
    )
    op.execute(
        ddl(
            "CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
            "FOR EACH ROW EXECUTE FUNCTION {t}_append_only()",
            t=table,
        )
    )
