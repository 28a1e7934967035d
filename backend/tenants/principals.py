"""Turn a verified username into a :class:`Principal`, reading roles from the database.

Roles are read on every request so a revoked role takes effect at once.

A request's principal costs two round trips on PostgreSQL: ``BEGIN`` and one statement
that reads the account (with its city's slug and zone), sets the transaction's role and
tenant scope from it, and then reads the account's grants under those settings. No
``pool_pre_ping`` before them: a pooled connection the server dropped fails the first
statement, and :func:`open_principal` retries once on a fresh connection (nothing of
the request has run yet, the read is idempotent). docs/decisions.md says why the grants
can share the account's statement.
"""

from __future__ import annotations

import contextlib
import json
import uuid

from sqlalchemy import (
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Grant, Principal
from backend.authz.roles import CITY_KINDS, AccountKind, Role
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.db import (
    SCOPE_KEY,
    SETTINGS_DEFERRED,
    SETTINGS_INLINE,
    Database,
    TenantScope,
    current_scope,
    is_lost_connection,
    use_scope,
)
from backend.core.errors import Unauthenticated
from backend.core.settings import get_settings
from backend.tenants.models import Account, OrgUnit, RoleAssignment, Tenant
from backend.tenants.service import grants_of


async def load_principal(db: Database, username: str) -> Principal:
    async with db.transaction() as session:
        return await principal_in(session, username)


async def open_principal(db: Database, username: str) -> tuple[Principal, AsyncSession | None]:
    """The principal, and the still-open session that read it when it can serve the request.

    A city official's transaction already runs as the app role in the principal's own
    scope once the grants are read, so the request's reads continue in it (one pool
    checkout and four round trips fewer per request than a second transaction). A
    supervisor's province scope differs from the one it was loaded in: closed, ``None``.
    """
    for attempt in (1, 2):
        session = db.session()
        session.info[SETTINGS_INLINE] = True
        try:
            await session.begin()
            principal = await principal_in(session, username)
            break
        except Exception as exc:
            # the first statement of the request met a connection the server had dropped
            # (restart, idle timeout): the pool is invalidated, one retry gets a new one
            if attempt == 1 and is_lost_connection(exc):
                with contextlib.suppress(Exception):
                    await session.invalidate()
                continue
            await session.close()
            raise
        except BaseException:
            await session.close()
            raise
    if current_scope(session) != principal.scope():
        await session.close()
        return principal, None
    return principal, session


async def principal_in(session: AsyncSession, username: str) -> Principal:
    """Read ``username``'s principal inside ``session``'s transaction (left in its scope)."""
    # the account with its city's slug and zone in one statement (both are platform tables);
    # on PostgreSQL the same statement sets the transaction's role and tenant scope
    # when ``open_principal`` asked for it (the session hook then sent nothing)
    await session.connection()  # fires the session's after_begin hook (no round trip)
    inline = session.info.pop(SETTINGS_DEFERRED, False)
    stmt = _INLINE_ACCOUNT if inline else _ACCOUNT
    params = {"username": username}
    if inline:
        settings = get_settings()
        params["role"] = settings.db_app_role
        params["plan_cache_mode"] = settings.db_plan_cache_mode
    # on the Core connection: a plain row, no ORM instance or loader hooks (~0.3 ms)
    account = (await (await session.connection()).execute(stmt, params)).first()
    if account is None or account.disabled_at is not None:
        raise Unauthenticated("unknown or disabled account")
    kind = AccountKind(account.kind)
    base = dict(account_id=account.id, username=account.username, kind=kind)
    if kind is AccountKind.PLATFORM_ADMIN:
        return Principal(**base)
    if kind is AccountKind.PROVINCIAL_SUPERVISOR:
        ids = await session.scalars(
            select(Tenant.id).where(Tenant.province_id == account.province_id)
        )
        return Principal(
            **base, province_id=account.province_id, province_tenant_ids=frozenset(ids)
        )
    scope = TenantScope.of([account.tenant_id])
    if inline:  # the statement above set app.tenant_ids to this city and read the grants
        session.info[SCOPE_KEY] = scope
        grants = tuple(
            Grant(role=Role(role), unit_id=uuid.UUID(unit_id), unit_path=path)
            for role, unit_id, path in json.loads(account.grants or "[]")
        )
    else:
        await use_scope(session, scope)
        grants = tuple(
            Grant(role=Role(role), unit_id=unit.id, unit_path=unit.path)
            for role, unit in await grants_of(session, account.id)
        )
    return Principal(
        **base,
        tenant_id=account.tenant_id,
        tenant_slug=account.slug,
        timezone=account.timezone or DEFAULT_TIMEZONE,
        province_id=account.province_id,
        grants=grants,
    )


_ACCOUNT = (
    select(
        Account.id,
        Account.username,
        Account.kind,
        Account.tenant_id,
        Account.province_id,
        Account.disabled_at,
        Tenant.slug,
        Tenant.timezone,
    )
    .outerjoin(Tenant, Tenant.id == Account.tenant_id)
    .where(Account.username == bindparam("username"))
)

# The same, setting ``role`` and ``app.tenant_ids`` as ``SET LOCAL`` would (the session's
# after_begin hook does it in its own round trip otherwise), and reading the grants. The
# statement runs with the login role's privileges — they are checked when it starts,
# before the settings switch the role. A city official's scope is its city; every other
# kind starts with none and reads no grants (a supervisor's province is read next;
# ``open_principal`` then closes that session). Not on Citus: there the settings must be
# ``SET LOCAL`` to reach the workers, so the session hook sends them first.
_CITY_KIND_NAMES = sorted(k.value for k in CITY_KINDS)
_SETTINGS = (
    select(
        func.set_config("role", bindparam("role"), true()).label("role"),
        # the transaction's statements after this one plan for their values (core/db.py)
        func.set_config("plan_cache_mode", bindparam("plan_cache_mode"), true()).label("plans"),
        func.set_config(
            "app.tenant_ids",
            case(
                (
                    Account.kind.in_(_CITY_KIND_NAMES) & Account.tenant_id.is_not(None),
                    cast(Account.tenant_id, String),
                ),
                else_=literal(""),
            ),
            true(),
        ).label("tenant_ids"),
    )
    .correlate(Account)
    .offset(literal_column("0"))  # a fence: the planner keeps the settings where they are
    .lateral("settings")
)
# The grants as ``[[role, unit id, unit path], …]`` in ``grants_of``'s order. They read
# the settings' output, so PostgreSQL computes the settings first (a subquery's
# parameters are), and row-level security (wall b) applies under them for a login role
# subject to it. Core tables, not the ORM entities: wall (a) would add the session's
# scope, which is empty until this very statement sets it; the explicit account and city
# take its place.
_RA = RoleAssignment.__table__.alias("ra")
_OU = OrgUnit.__table__.alias("ou")
_GRANTS = (
    select(
        cast(
            func.json_agg(
                aggregate_order_by(
                    func.json_build_array(_RA.c.role, _OU.c.id, _OU.c.path), _OU.c.path, _RA.c.role
                )
            ),
            Text,
        )
    )
    .select_from(_RA)
    .join(_OU, (_OU.c.tenant_id == _RA.c.tenant_id) & (_OU.c.id == _RA.c.org_unit_id))
    .where(
        _RA.c.tenant_id == Account.tenant_id,
        _RA.c.user_id == Account.id,
        _SETTINGS.c.tenant_ids == cast(Account.tenant_id, String),
        _SETTINGS.c.role.is_not(None),
    )
    .correlate(Account, _SETTINGS)
    .scalar_subquery()
)
_INLINE_ACCOUNT = (
    # the settings' columns are selected so that they are computed for every kind
    _ACCOUNT.add_columns(
        _GRANTS.label("grants"), _SETTINGS.c.role, _SETTINGS.c.tenant_ids, _SETTINGS.c.plans
    ).join(_SETTINGS, true())
)
