"""Database engine, sessions and the two tenant walls.

Wall (a), every backend: a ``do_orm_execute`` hook adds
``tenant_id IN (<scope>)`` to every ORM select/update/delete of a
:class:`TenantScoped` model, and ``before_flush`` refuses new rows outside
the scope. A service cannot forget the filter because it never writes it.

Wall (b), PostgreSQL only: each transaction starts with
``SET LOCAL ROLE <app role>`` (a role that owns nothing and cannot bypass
RLS) and ``SET LOCAL app.tenant_ids = '<ids>'``; the row-level security
policies created by the migrations read that setting, so even raw SQL sees
only the scope's tenants. Both settings are transaction-local, so a pooled
connection never carries a tenant into the next request. ``SET LOCAL`` (not
``set_config``) because Citus sends it on to the worker nodes that evaluate the
policies on the shards (``citus.propagate_set_commands = 'local'``, docs/tenancy.md).
"""

from __future__ import annotations

import functools
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    TypeDecorator,
    Uuid,
    event,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.util import await_only

from backend.core.clock import now
from backend.core.ids import new_id
from backend.core.settings import Settings, get_settings

SCOPE_KEY = "tenant_scope"
# A session whose first statement sets role and tenant scope itself (the principal's read,
# ``backend/tenants/principals.py``) asks the after_begin hook for nothing with
# SETTINGS_INLINE; the hook answers SETTINGS_DEFERRED when it did skip them (not on
# Citus, where only ``SET LOCAL`` reaches the workers, and not on SQLite).
SETTINGS_INLINE = "settings_inline"
SETTINGS_DEFERRED = "settings_deferred"


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {uuid.UUID: Uuid(as_uuid=True)}


class TimestampedId:
    """A UUIDv7 ``id`` and a UTC ``created_at``."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id, sort_order=-5)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=now, sort_order=99)


class TenantScoped(TimestampedId):
    """Mixin of every tenant table: ``tenant_id`` leads the primary key.

    ``(tenant_id, id)`` is the key so every foreign key and unique constraint
    can carry ``tenant_id`` (the future Citus distribution column).
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(Uuid, ForeignKey("tenants.id"), primary_key=True, sort_order=-10)


def tenant_fk(column: str, table: str, name: str) -> ForeignKeyConstraint:
    """A foreign key on ``(tenant_id, column)`` to ``table(tenant_id, id)``.

    Carrying ``tenant_id`` means a row can only ever point inside its own tenant, and
    the key stays valid when tables are distributed by tenant (Citus).
    """
    return ForeignKeyConstraint(
        ["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"], name=name
    )


@dataclass(frozen=True)
class TenantScope:
    """The tenants a transaction may touch: one city, or a province's cities for a supervisor."""

    tenant_ids: frozenset[uuid.UUID]
    read_only: bool = False

    @classmethod
    def of(cls, ids: Iterable[uuid.UUID], *, read_only: bool = False) -> TenantScope:
        return cls(frozenset(ids), read_only)

    @property
    def setting(self) -> str:
        return ",".join(sorted(str(t) for t in self.tenant_ids))


NO_TENANT = TenantScope(frozenset())


def current_scope(session: AsyncSession | Session) -> TenantScope:
    return session.info.get(SCOPE_KEY, NO_TENANT)


# --- wall (a): ORM filter -------------------------------------------------------------


@event.listens_for(Session, "do_orm_execute")
def _add_tenant_filter(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_select and (state.is_column_load or state.is_relationship_load):
        return  # the criteria of the parent statement propagate to these loads
    ids = sorted(current_scope(state.session).tenant_ids)
    state.statement = state.statement.options(
        with_loader_criteria(TenantScoped, lambda cls: cls.tenant_id.in_(ids), include_aliases=True)
    )


@event.listens_for(Session, "before_flush")
def _refuse_foreign_rows(session: Session, _ctx: Any, _instances: Any) -> None:
    allowed = current_scope(session).tenant_ids
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, TenantScoped) and obj.tenant_id not in allowed:
            raise PermissionError(f"write to tenant {obj.tenant_id} outside the session scope")


# --- wall (b): PostgreSQL transaction settings -------------------------------------------

_SETTING_NAME = re.compile(r"^app\.[a-z_]+$")
_SETTING_VALUE = re.compile(r"^[0-9a-z,-]*$")  # uuids joined by commas, or "on"


def set_local(connection: Any, name: str, value: str) -> None:
    """``SET LOCAL name = 'value'`` on ``connection`` (a sync-facade ``Connection`` inside an
    open transaction).

    ``SET`` takes no bind parameters, so the value is spliced in, after a check that it
    is only UUIDs (or a word): never user input. It travels as one simple-protocol
    statement on the driver connection rather than through SQLAlchemy, which would
    prepare it: one prepared statement per distinct set of tenants would crowd the
    app's statements out of asyncpg's statement cache. Citus propagates ``SET LOCAL``
    to the workers of the transaction (``set_config`` it does not).
    """
    if not _SETTING_NAME.match(name) or not _SETTING_VALUE.match(value):
        raise ValueError(f"refusing setting {name}={value!r}")
    raw = connection.connection.driver_connection  # the asyncpg connection
    await_only(raw.execute(f"SET LOCAL {name} = '{value}'"))


def on_citus(connection: Any) -> bool:
    """Whether the pooled connection is to a Citus coordinator (asked once per connection).

    The tenant setting must reach the worker nodes there, and only ``SET LOCAL`` does;
    on plain PostgreSQL one prepared ``set_config`` statement sets role and tenants in
    the round trip that opens the transaction.
    """
    known = connection.info.get("citus")
    if known is None:
        found = connection.exec_driver_sql(
            "SELECT 1 FROM pg_extension WHERE extname = 'citus'"
        ).scalar()
        known = connection.info["citus"] = found is not None
    return bool(known)


@event.listens_for(Session, "after_begin")
def _set_transaction_tenant(session: Session, tx: Any, connection: Any) -> None:
    # A SAVEPOINT (begin_nested) fires this too, inside a transaction whose settings are
    # already in place: setting them again would cost two round trips per savepoint.
    if connection.dialect.name != "postgresql" or tx.nested:
        return
    # ``set_config('role', …, true)`` is ``SET LOCAL ROLE`` (as PostgREST does it), as a
    # statement prepared once; it also opens the driver's transaction (BEGIN). Citus opens
    # its worker connections as this role.
    role, scope = get_settings().db_app_role, current_scope(session)
    citus = on_citus(connection)
    if session.info.pop(SETTINGS_INLINE, False) and not citus:
        session.info[SETTINGS_DEFERRED] = True  # the first statement sets them itself
        return
    plans = get_settings().db_plan_cache_mode  # for the statements after this one
    if citus:
        connection.execute(
            text("SELECT set_config('role', :role, true), set_config('plan_cache_mode', :p, true)"),
            {"role": role, "p": plans},
        )
        _apply_scope_setting(connection, scope)
        return
    connection.execute(
        text(
            "SELECT set_config('role', :role, true), set_config('app.tenant_ids', :ids, true),"
            " set_config('plan_cache_mode', :p, true)"
        ),
        {"role": role, "ids": scope.setting, "p": plans},
    )
    if scope.read_only:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def _apply_scope_setting(connection: Any, scope: TenantScope) -> None:
    _set_setting(connection, "app.tenant_ids", scope.setting)
    if scope.read_only:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def _set_setting(connection: Any, name: str, value: str) -> None:
    """A transaction-local setting: ``SET LOCAL`` on Citus (it reaches the workers), a
    prepared ``set_config(…, true)`` on plain PostgreSQL (no new statement per value)."""
    if on_citus(connection):
        set_local(connection, name, value)
    else:
        connection.execute(
            text("SELECT set_config(:name, :value, true)"), {"name": name, "value": value}
        )


async def use_scope(session: AsyncSession, scope: TenantScope) -> None:
    """Switch the session to ``scope`` (also inside an open transaction)."""
    session.info[SCOPE_KEY] = scope
    if session.in_transaction() and session.bind is not None:
        conn = await session.connection()
        if conn.dialect.name == "postgresql":
            await conn.run_sync(lambda c: _apply_scope_setting(c, scope))


async def set_local_setting(session: AsyncSession, name: str, value: str) -> None:
    """A transaction-local setting of an async session's open transaction (PostgreSQL
    only; :func:`_set_setting`)."""
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        await conn.run_sync(lambda c: _set_setting(c, name, value))


# --- bulk inserts that Citus can route ----------------------------------------------------

# Chunk sizes of :func:`insert_values`: the binary digits of a batch's length, so a batch
# of any size up to 1,023 rows is at most ten statements of ten fixed shapes.
_CHUNKS = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)


async def insert_values(session: AsyncSession, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (all naming the same columns): on plain PostgreSQL one ``INSERT …
    SELECT FROM unnest(:arrays)``, elsewhere multi-row ``INSERT … VALUES``.

    The ``unnest`` form (:func:`_insert_unnest`) is one statement of one parameter per
    column, whatever the number of rows: PostgreSQL parses and plans a few arrays instead
    of a ``VALUES`` list of rows × columns parameters, and SQLAlchemy renders nothing per
    row — ~25 µs a row less (docs/performance.md, "Deadline scan"). Citus runs that form
    as a COPY into the shards, which PostgreSQL refuses under row-level security ("COPY
    FROM not supported with row-level security"), while it routes each ``VALUES`` row to
    its shard: there, and on SQLite, the rows go in :func:`insert_chunks`' power-of-two
    chunks, each one execution of the prebuilt one-row statement, which SQLAlchemy's
    "insertmanyvalues" renders as a single multi-row ``VALUES`` (the ``RETURNING`` asks for
    it; nothing reads what it returns) — compiled once, not rebuilt with a bound parameter
    per cell (~0.015 ms per row instead of ~0.16, docs/performance.md "Bulk intake").
    """
    if not rows:
        return
    conn = await session.connection()
    plain_postgres = conn.dialect.name == "postgresql" and not await conn.run_sync(on_citus)
    if plain_postgres and (unnest := _insert_unnest(table, rows, conn.dialect)) is not None:
        await conn.execute(*unnest)
        return
    await insert_chunks(session, _insert_returning(table), rows)


def _insert_unnest(
    table: Any, rows: Sequence[dict[str, Any]], dialect: Any
) -> tuple[Any, dict[str, list[Any]]] | None:
    """``INSERT INTO table (…) SELECT * FROM unnest(CAST(:c AS type[]), …)`` and its arrays,
    or None where a column's Python-side default is not a plain value or function.

    What SQLAlchemy would do per row is done here per column: a Python-side default fills
    a column the rows do not name (``id``, ``created_at``), and each column type's bind
    processor (encrypted PII, UTC instants, JSON) turns the values into what the driver
    sends — so the stored rows are those the ``VALUES`` form writes.
    """
    named = list(rows[0])
    values = {c: [r[c] for r in rows] for c in named}
    for column in table.columns:
        if column.name in values or column.default is None:
            continue
        default = column.default
        if default.is_scalar:
            values[column.name] = [default.arg] * len(rows)
        elif default.is_callable:  # SQLAlchemy wraps a plain function to take a context
            values[column.name] = [default.arg(None) for _ in rows]
        else:
            return None
    for name, column_values in values.items():
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            values[name] = [process(v) for v in column_values]
    return _unnest_statement(table, tuple(values)), {f"p_{c}": v for c, v in values.items()}


def array_params(table: Any, columns: Iterable[str], prefix: str) -> str:
    """``CAST(:<prefix><column> AS <column type>[]), …``: one bound array per column, for
    PostgreSQL's ``unnest`` batches (the names come from the table's metadata, the values
    are always bound)."""
    dialect = postgresql.dialect()
    return ", ".join(
        f"CAST(:{prefix}{c} AS {table.c[c].type.compile(dialect=dialect)}[])" for c in columns
    )


@functools.cache
def _unnest_statement(table: Any, columns: tuple[str, ...]) -> Any:
    """The statement of :func:`_insert_unnest` for these columns (built once)."""
    quote = postgresql.dialect().identifier_preparer.quote
    arrays = array_params(table, columns, "p_")
    names = ", ".join(quote(c) for c in columns)
    return text(f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM unnest({arrays})")


async def insert_chunks(
    session: AsyncSession, statement: Any, rows: Sequence[dict[str, Any]]
) -> list[Any]:
    """``statement`` (an ``INSERT … RETURNING`` without values, e.g. with ``ON CONFLICT DO
    NOTHING``) for ``rows`` in :func:`insert_values`' power-of-two chunks; the returned rows.

    One compiled statement per chunk size, each chunk sent as one multi-row ``VALUES``
    (SQLAlchemy's "insertmanyvalues"), not ``.values(rows)``, which builds a bound
    parameter per cell and compiles a new statement per batch.
    """
    conn = await session.connection()
    returned: list[Any] = []
    start = 0
    for size in _CHUNKS:
        while len(rows) - start >= size:
            returned += (await conn.execute(statement, list(rows[start : start + size]))).all()
            start += size
    return returned


@functools.cache
def _insert_returning(table: Any) -> Any:
    """``INSERT INTO table (…) VALUES (…) RETURNING <first key column>`` for :func:`insert_values`."""
    return insert(table).returning(next(iter(table.primary_key.columns)))


# --- lost or unreachable database -----------------------------------------------------

# SQLSTATEs that mean "the server went away or cannot take you now", not "your SQL is
# wrong": class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, starting
# up) and 53300 (too many connections). A retry of the whole request can succeed.
_UNAVAILABLE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")


def is_lost_connection(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a pooled connection found dead (SQLAlchemy invalidated it).

    Without ``pool_pre_ping`` this is how a connection the server dropped (restart,
    idle timeout, failover) shows itself: on its first statement. SQLAlchemy then
    invalidates the whole pool, so a retry checks out a fresh connection. Not a pool
    timeout or a refused connect: retrying those only doubles the wait.
    """
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or anything it was raised from) is a lost or unreachable database.

    Walks the cause chain because SQLAlchemy wraps the driver's error twice
    (``DBAPIError`` → adapted DBAPI error → asyncpg exception). Such errors are
    answered ``UNAVAILABLE`` (HTTP 503 + ``Retry-After``). The transaction either rolled
    back or (connection lost during COMMIT) committed unseen, so a client retries an
    intake with the same ``clientKey`` and reloads a case before repeating a step.
    """
    from sqlalchemy import exc as sa_exc

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within pool_timeout
            return True
        if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):
            return True  # refused, reset, connect timeout, name lookup
        if type(exc) is OSError:  # asyncio's "Multiple exceptions: [Errno 111] ..." on connect
            return True
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
        ):
            return True
        # asyncpg's protocol-state errors ("another operation is in progress") are what a
        # connection killed under a running statement reports before it notices it is closed
        if type(exc).__name__ in ("ConnectionDoesNotExistError", "InternalClientError"):
            return True
        if isinstance(exc, sa_exc.InterfaceError) and "connection is closed" in str(exc):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


# --- engine and sessions -------------------------------------------------------------


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def build_engine(settings: Settings | None = None, url: str | None = None) -> AsyncEngine:
    settings = settings or get_settings()
    url = url or settings.database_url
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # asyncpg prepares every statement, and after five runs PostgreSQL may switch a
    # prepared statement to a generic plan that ignores the values: for the case list
    # (subtree ranges, status, the visibility predicate) such a plan reads far more rows
    # than one made for the values (docs/performance.md has the measurements). So every
    # transaction's first statement — the one that sets role and tenant scope, or the
    # request's principal read that does it inline — also sets ``plan_cache_mode``
    # (XF_DB_PLAN_CACHE_MODE, default force_custom_plan) for the statements after it, and
    # the connection itself plans in "auto": that first statement, the same on every
    # request, keeps a generic plan instead of being planned anew each time. Behind
    # PgBouncer, which refuses unknown startup parameters, nothing is sent at connect.
    server_settings: dict[str, str] = {}
    # JIT compiles a statement whose estimated cost passes jit_above_cost: the read
    # predicate's Art. 30 EXISTS lifts short OLTP reads (the warning board at 100k cases)
    # past it, and compiling took 2.3 s for a read that runs in 0.1 s (docs/performance.md,
    # "Case detail and warning board"). The app runs no analytical query that JIT would
    # repay, so its connections turn it off; XF_DB_JIT=true leaves the server's setting.
    if not settings.db_jit:
        server_settings["jit"] = "off"
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        # no round trip per checkout on the hot path: a dropped connection fails its first
        # statement and the request's principal read retries once (tenants/principals.py);
        # XF_DB_POOL_PRE_PING=true brings the ping back (docs/operations.md)
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args={"server_settings": server_settings},
    )


class Database:
    """The process's engine and session factory."""

    def __init__(self, settings: Settings | None = None, url: str | None = None) -> None:
        self.settings = settings or get_settings()
        self.engine = build_engine(self.settings, url)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self, scope: TenantScope = NO_TENANT) -> AsyncSession:
        session = self.sessionmaker()
        session.info[SCOPE_KEY] = scope
        return session

    @asynccontextmanager
    async def transaction(self, scope: TenantScope = NO_TENANT) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on any error."""
        async with self.session(scope) as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
