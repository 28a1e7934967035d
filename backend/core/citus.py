"""The Citus layout: which table goes where, and ``xinfang distribute`` that makes it so.

Every table of the schema is in exactly one list (``tests/test_citus_layout.py`` fails
on a table in none, so a new migration's table cannot be forgotten):

- :data:`DISTRIBUTED` — tenant tables, hash-distributed by ``tenant_id`` and co-located
  with :data:`ANCHOR`: one city's rows of every table live in the same shard group, so a
  city's request (wall (a) adds ``tenant_id IN (:one)``) is a single-shard query, joins
  and foreign keys included.
- :data:`REFERENCE` — platform data, small, read by every node: copied to all nodes.
- :data:`COORDINATOR` — ``admin_audit_log``: rows of platform actions have no tenant
  (``tenant_id`` is nullable and not in the key), the log is small and append-only and
  never joined with tenant tables, so it stays on the coordinator (a Citus local table:
  its foreign key to ``tenants`` and its append-only trigger keep working, its row is
  written in the same distributed transaction as the change it records).

:func:`distribute` is idempotent and refuses plain PostgreSQL. Citus cannot distribute
a table while foreign keys tie it to local tables (a reference table turns every table
connected by keys into a "Citus local" table), so the keys touching the tables still to
convert are dropped, the tables converted, and the keys added back — in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.core.rls import ddl
from backend.core.settings import get_settings

ANCHOR = "org_units"
REFERENCE = (
    "provinces",
    "tenants",
    "accounts",
    "holiday_overrides",
    "job_runs",
    "persisted_queries",
)
COORDINATOR = ("admin_audit_log",)
DISTRIBUTED = (
    ANCHOR,
    "users",
    "role_assignments",
    "api_keys",
    "case_categories",
    "case_counters",
    "cases",
    "case_deadlines",
    "case_events",
    "case_assignments",
    "case_mediations",
    "case_revisits",
    "pii_access_log",
    "tenant_policies",
    "notifications",
    "notification_settings",
    "notification_contacts",
    "notification_accusations",
    "monthly_reports",
    "stats_daily",
    "stats_refreshes",
    "evaluators",
    "evaluation_policies",
    "evaluation_panels",
    "evaluation_panel_members",
    "evaluations",
    "roster_rules",
    "roster_rule_leaders",
    "duty_shifts",
    "leader_leaves",
    "shift_swaps",
    "shift_receptions",
    "village_pairings",
    "roster_people",
    "person_pairings",
    "roster_rule_people",
    "sweep_findings",
    "tenant_persisted_queries",
    "persisted_query_modes",
)
# alembic's own bookkeeping: an ordinary table of the coordinator, never touched
IGNORED = ("alembic_version",)

_KIND_SQL = """
SELECT logicalrelid::regclass::text AS name,
       CASE WHEN partmethod = 'h' THEN 'distributed'
            WHEN repmodel = 't' THEN 'reference'
            ELSE 'coordinator' END AS kind,
       colocationid
FROM pg_dist_partition
"""
_FOREIGN_KEYS_SQL = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE contype = 'f' AND connamespace = 'public'::regnamespace
  AND (conrelid::regclass::text = ANY(:t) OR confrelid::regclass::text = ANY(:t))
ORDER BY 1, 2
"""


class NotCitus(RuntimeError):
    """The database is not a Citus coordinator."""


class UnlistedTables(RuntimeError):
    """Tables that are in none of the lists: decide where they go before distributing."""


def wanted_kind(table: str) -> str:
    if table in DISTRIBUTED:
        return "distributed"
    if table in REFERENCE:
        return "reference"
    if table in COORDINATOR:
        return "coordinator"
    raise KeyError(table)


@dataclass
class Layout:
    """What :func:`distribute` found and did."""

    converted: dict[str, str] = field(default_factory=dict)  # table → kind
    foreign_keys: int = 0  # dropped and added back
    settings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.converted or self.settings)


async def ensure_citus(conn: AsyncConnection) -> list[str]:
    """The worker nodes, or :class:`NotCitus` saying why this database is not a coordinator."""
    if conn.dialect.name != "postgresql":
        raise NotCitus(f"{conn.dialect.name} is not PostgreSQL with Citus")
    if not await conn.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'")):
        raise NotCitus(
            "plain PostgreSQL: the citus extension is not installed in this database "
            "(deploy/README.md, 'Citus'); nothing was changed"
        )
    if await conn.scalar(text("SELECT groupid FROM pg_dist_local_group")) != 0:
        raise NotCitus("this is a Citus worker node: run it on the coordinator")
    workers = await conn.scalars(
        text("SELECT nodename || ':' || nodeport FROM pg_dist_node WHERE groupid <> 0")
    )
    names = list(workers)
    if not names:
        raise NotCitus("the coordinator has no worker nodes (citus_add_node)")
    return names


async def current_kinds(conn: AsyncConnection) -> dict[str, str]:
    return {r.name: r.kind for r in await conn.execute(text(_KIND_SQL))}


async def public_tables(conn: AsyncConnection) -> list[str]:
    rows = await conn.scalars(
        text(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p') AND NOT relispartition ORDER BY relname"
        )
    )
    return [r for r in rows if r not in IGNORED and not _is_shard(r)]


def _is_shard(name: str) -> bool:
    # a Citus local table's shard sits beside it on the coordinator: <table>_<shard id>
    base, _, number = name.rpartition("_")
    return number.isdigit() and base in (*DISTRIBUTED, *REFERENCE, *COORDINATOR)


async def distribute(conn: AsyncConnection, echo: Callable[[str], None] = print) -> Layout:
    """Bring a migrated database on a Citus coordinator to the documented layout.

    Runs in the caller's transaction (commit it). Converts only what is not yet where
    it belongs, so a second run, or a run after a migration added one table, changes
    only that table (and the keys that touch it).
    """
    workers = await ensure_citus(conn)
    tables = await public_tables(conn)
    unlisted = [t for t in tables if t not in (*DISTRIBUTED, *REFERENCE, *COORDINATOR)]
    if unlisted:
        raise UnlistedTables(
            f"tables in no list of backend/core/citus.py: {', '.join(unlisted)} "
            "(DISTRIBUTED if it has tenant_id, else REFERENCE or COORDINATOR)"
        )
    kinds = await current_kinds(conn)
    todo = [t for t in tables if kinds.get(t) != wanted_kind(t)]
    layout = Layout()
    await conn.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
    # case_events and admin_audit_log are append-only by trigger (migration 0002/0008);
    # Citus creates the trigger on every shard only when told that this is intended
    await conn.execute(text("SET LOCAL citus.enable_unsafe_triggers = on"))
    if todo:
        echo(f"workers: {', '.join(workers)}; converting {len(todo)} table(s)")
        keys = list(await conn.execute(text(_FOREIGN_KEYS_SQL), {"t": todo}))
        for table, name, _ in keys:
            await conn.execute(text(ddl("ALTER TABLE {t} DROP CONSTRAINT {c}", t=table, c=name)))
        kinds = await current_kinds(conn)  # dropping keys may turn auto-added tables back
        for table in sorted(todo, key=_order):
            await _convert(conn, table, kinds.get(table), kinds)
            layout.converted[table] = wanted_kind(table)
            kinds[table] = wanted_kind(table)
        for table, name, definition in keys:
            await conn.execute(
                text(ddl("ALTER TABLE {t} ADD CONSTRAINT {c} ", t=table, c=name) + definition)
            )
        layout.foreign_keys = len(keys)
    layout.settings = await _serving_settings(conn)
    return layout


def _order(table: str) -> tuple[int, int]:
    """Reference tables first, then the co-location anchor, then the rest in list order."""
    kind = wanted_kind(table)
    if kind == "reference":
        return (0, REFERENCE.index(table))
    if kind == "distributed":
        return (1, DISTRIBUTED.index(table))
    return (2, 0)


def conversion_sql(table: str, now: str | None, anchor_kind: str | None) -> list[str]:
    """The statements that put ``table`` (in the metadata as ``now``) where it belongs."""
    # a table that a foreign key to a reference table made a Citus local table converts
    # in place; one that changes between distributed and reference is undistributed first
    steps = [] if now in (None, "coordinator") else [f"SELECT undistribute_table('{table}')"]
    kind = wanted_kind(table)
    if kind == "reference":
        return [*steps, f"SELECT create_reference_table('{table}')"]
    if kind == "coordinator":
        return [*steps, f"SELECT citus_add_local_table_to_metadata('{table}')"]
    colocate = "default" if table == ANCHOR or anchor_kind != kind else ANCHOR
    return [
        *steps,
        f"SELECT create_distributed_table('{table}', 'tenant_id', colocate_with => '{colocate}')",
    ]


async def _convert(conn: AsyncConnection, table: str, now: str | None, kinds: dict) -> None:
    ddl("{t}", t=table)  # a plain identifier, checked before it is spliced into SQL
    for statement in conversion_sql(table, now, kinds.get(ANCHOR)):
        await conn.execute(text(statement))


def place_in_migration(table: str) -> None:
    """For a migration that adds a table, on a cluster that is already distributed: put
    ``table`` where the lists say right away, so the migration can then add its foreign
    keys to distributed tables (Citus refuses those from a local table). Create the table
    without them, call this, then ``op.create_foreign_key``. Does nothing on SQLite, plain
    PostgreSQL, or a Citus database not yet distributed (``xinfang distribute`` will)."""
    from alembic import op

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'citus'").scalar():
        return
    kinds = {r.name: r.kind for r in bind.execute(text(_KIND_SQL))}
    if kinds.get(ANCHOR) != "distributed":
        return
    ddl("{t}", t=table)
    bind.exec_driver_sql("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
    for statement in conversion_sql(table, kinds.get(table), kinds.get(ANCHOR)):
        bind.exec_driver_sql(statement)


async def _serving_settings(conn: AsyncConnection) -> list[str]:
    """What the serving role needs on a cluster; the names of what had to change.

    - ``citus.propagate_set_commands = 'local'`` as the database's default, so the
      transaction's ``SET LOCAL app.tenant_ids`` reaches the workers that evaluate the
      policies on the shards (backend/core/db.py).
    - ``LOGIN`` for the serving role: after ``SET LOCAL ROLE`` Citus opens its worker
      connections as that role (credentials: deploy/README.md, "Citus").
    """
    changed = []
    database = await conn.scalar(text("SELECT current_database()"))
    current = await conn.scalar(
        text(
            "SELECT 1 FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE d.datname = current_database() AND s.setrole = 0"
            " AND 'citus.propagate_set_commands=local' = ANY(s.setconfig)"
        )
    )
    if not current:
        await conn.execute(
            text(
                ddl(
                    "ALTER DATABASE {d} SET citus.propagate_set_commands = 'local'",
                    d=database,
                )
            )
        )
        changed.append("citus.propagate_set_commands")
    role = get_settings().db_app_role
    if not await conn.scalar(
        text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": role}
    ):
        await conn.execute(text(ddl('ALTER ROLE "{r}" LOGIN', r=role)))
        changed.append(f"{role} LOGIN")
    return changed
