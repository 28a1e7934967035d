"""Turn a verified username into a :class:`Principal`, reading roles from the database.

Roles are read on every request so a revoked role takes effect at once.

A request's principal costs three round trips on PostgreSQL: ``BEGIN``, one statement
that reads the account (with its city's slug and zone) *and* sets the transaction's
role and tenant scope from it, and the grants under row-level security. No
``pool_pre_ping`` before them: a pooled connection the server dropped fails the first
statement, and :func:`open_principal` retries once on a fresh connection (nothing of
the request has run yet, the read is idempotent). docs/decisions.md says why not one.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import String, bindparam, case, cast, func, literal, select, true
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
from backend.tenants.models import Account, Tenant
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
        params["role"] = get_settings().db_app_role
    row = (await session.execute(stmt, params)).first()
    account, tenant_slug, timezone = row[:3] if row is not None else (None, None, None)
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
    if inline:  # the statement above set app.tenant_ids to this city already
        session.info[SCOPE_KEY] = scope
    else:
        await use_scope(session, scope)
    grants = tuple(
        Grant(role=Role(role), unit_id=unit.id, unit_path=unit.path)
        for role, unit in await grants_of(session, account.id)
    )
    return Principal(
        **base,
        tenant_id=account.tenant_id,
        tenant_slug=tenant_slug,
        timezone=timezone or DEFAULT_TIMEZONE,
        province_id=account.province_id,
        grants=grants,
    )


_ACCOUNT = (
    select(Account, Tenant.slug, Tenant.timezone)
    .outerjoin(Tenant, Tenant.id == Account.tenant_id)
    .where(Account.username == bindparam("username"))
)

# The same, setting ``role`` and ``app.tenant_ids`` as ``SET LOCAL`` would (the session's
# after_begin hook does it in its own round trip otherwise). The read itself runs as the
# login role — privileges are checked when the statement starts, before the target list
# switches the role — and touches only platform tables (no row-level security there). A
# city official's scope is its city; every other kind starts with none (a supervisor's
# province is read next; ``open_principal`` then closes that session).
_CITY_KIND_NAMES = sorted(k.value for k in CITY_KINDS)
_INLINE_ACCOUNT = _ACCOUNT.add_columns(
    func.set_config("role", bindparam("role"), true()),
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
    ),
)
