"""Admin audit log: every administrative change leaves an append-only row, in its own transaction.

One mechanism instead of a call in every resolver: the caller opens an
:func:`admin_action` frame (the GraphQL field extension in
``backend/schema/security.py`` does it for every mutation named in
:data:`ADMIN_MUTATIONS`; CLI commands do it by hand), and a ``before_commit``
hook adds the row to the first transaction of that frame that *wrote*
something. So the row commits with the change or not at all: a mutation that
fails, or is refused, rolls back and leaves no row.

What is kept: who (account id and username), which tenant (the single tenant
the transaction was scoped to; ``NULL`` for platform actions such as creating a
provincial supervisor or loading holidays), the action, its target, a
before/after summary and the request id. The summary is built from the inputs
with every PII-bearing key removed (:data:`SECRET_KEYS`); services may add a
``before`` picture with :func:`note`.

The table is append-only in PostgreSQL (trigger, ``backend/core/rls.py``) and
sits behind row-level security like every tenant table, with one addition:
platform rows (``tenant_id IS NULL``) are readable only in a transaction that
set ``app.audit_platform`` (the platform admin's query does).
"""

from __future__ import annotations

import contextvars
import dataclasses
import enum
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Select, String, event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, ORMExecuteState, Session, mapped_column

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.core import pagination
from backend.core.db import (
    Base,
    TenantScope,
    TimestampedId,
    current_scope,
    set_local_setting,
    use_scope,
)
from backend.core.errors import BadUserInput
from backend.core.ids import parse_id
from backend.tenants.models import Tenant

PLATFORM_SETTING = "app.audit_platform"

# GraphQL mutation (python name) → audit action. Case lifecycle mutations are not here:
# each already writes a hash-chained case event (backend/cases/events.py).
ADMIN_MUTATIONS: dict[str, str] = {
    "create_tenant": "createTenant",
    "create_org_unit": "createOrgUnit",
    "create_user": "createUser",
    "create_service_account": "createServiceAccount",
    "assign_role": "assignRole",
    "revoke_role": "revokeRole",
    "create_provincial_supervisor": "createProvincialSupervisor",
    "update_tenant_policy": "updateTenantPolicy",
    "update_evaluation_policy": "updateEvaluationPolicy",
    "add_evaluator": "addEvaluator",
    "set_evaluator_status": "setEvaluatorStatus",
    "update_evaluator": "updateEvaluator",
    "import_evaluators": "importEvaluators",
    "retry_notification": "retryNotification",
    "set_notification_webhook": "setNotificationWebhook",
    "set_roster_rule": "setRosterRule",
    "assign_pairing": "assignPairing",
    "assign_township_pairing": "assignTownshipPairing",
    "supervise_city": "superviseCity",
    "create_api_key": "createApiKey",
    "revoke_api_key": "revokeApiKey",
}

# Input keys never copied into the log (PII, secrets, bulk payloads) — nor case ids: the
# city administrator reads this log and may sit in the unit an accusation names (Art. 30);
# what happened to a case is in the case's own hash-chained events, behind the read rule.
SECRET_KEYS = re.compile(
    r"(phone|id_?number|secret|password|token|email|related|csv|text|content|note|hash|key$"
    r"|case_?id)",
    re.I,
)
MAX_TEXT = 200
IGNORED_ATTRS = {"version", "updated_at", "created_at", "last_used_at"}


class AdminAuditEntry(TimestampedId, Base):
    """One administrative change (append-only; ``id`` is a UUIDv7, so it sorts by time)."""

    __tablename__ = "admin_audit_log"
    __table_args__ = (Index("ix_admin_audit_log_tenant", "tenant_id", "id"),)

    tenant_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tenants.id"))
    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    actor_username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))  # graphql | cli


@dataclass
class _Frame:
    action: str
    principal: Principal
    target: str | None
    after: dict[str, Any] | None
    request_id: str | None
    via: str
    before: dict[str, Any] | None = None
    recorded: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[_Frame | None] = contextvars.ContextVar(
    "admin_audit_frame", default=None
)
_WROTE = "admin_audit_wrote"


@contextmanager
def admin_action(
    action: str,
    principal: Principal,
    *,
    target: str | None = None,
    details: Any = None,
    request_id: str | None = None,
    via: str = "graphql",
) -> Iterator[None]:
    """Everything committed inside this block belongs to ``action`` (one row, first write)."""
    frame = _Frame(action, principal, target, summarise(details), request_id, via)
    token = _current.set(frame)
    try:
        yield
    finally:
        _current.reset(token)


def note(*, before: Any = None, target: str | None = None) -> None:
    """Let a service add what the inputs cannot show (the old value, the real target)."""
    frame = _current.get()
    if frame is None:
        return
    if before is not None:
        frame.before = summarise(before)
    if target is not None:
        frame.target = target[:300]


def summarise(value: Any) -> Any:
    """A JSON-safe copy of ``value`` without PII keys; long strings cut."""
    if value is None:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {
            str(k): summarise(v)
            for k, v in value.items()
            if not SECRET_KEYS.search(str(k)) and not str(k).startswith("_")
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [summarise(v) for v in list(value)[:50]]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, int | float | bool):
        return value
    return str(value)[:MAX_TEXT]


# --- the hook --------------------------------------------------------------------------


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _ctx: Any) -> None:
    """Mark the transaction as writing, and keep what changed (old and new values)."""
    frame = _current.get()
    if frame is None or frame.recorded:
        return
    if not (session.new or session.dirty or session.deleted):
        return
    session.info[_WROTE] = True
    changes = frame.extra
    for obj in session.new:
        created = changes.setdefault("created", {})
        created[obj.__tablename__] = created.get(obj.__tablename__, 0) + 1
    for obj in session.deleted:
        deleted = changes.setdefault("deleted", {})
        deleted[obj.__tablename__] = deleted.get(obj.__tablename__, 0) + 1
    for obj in session.dirty:
        state = inspect(obj)
        for attr in state.mapper.column_attrs:
            name = attr.key
            if name in IGNORED_ATTRS or SECRET_KEYS.search(name):
                continue
            history = state.attrs[name].history
            if not history.has_changes() or len(changes.get("changed", {})) >= 20:
                continue
            key = f"{obj.__tablename__}.{name}"
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
            changes.setdefault("was", {}).setdefault(key, summarise(old))
            changes.setdefault("changed", {})[key] = summarise(new)


@event.listens_for(Session, "do_orm_execute")
def _dml(state: ORMExecuteState) -> None:
    if _current.get() is not None and (state.is_insert or state.is_update or state.is_delete):
        state.session.info[_WROTE] = True


@event.listens_for(Session, "before_commit")
def _record(session: Session) -> None:
    frame = _current.get()
    if frame is None or frame.recorded or session.in_nested_transaction():
        return
    wrote = session.info.pop(_WROTE, False) or session.new or session.dirty or session.deleted
    scope = current_scope(session)
    if not wrote or scope.read_only:
        return
    tenant_id = next(iter(scope.tenant_ids)) if len(scope.tenant_ids) == 1 else None
    principal = frame.principal
    was = frame.extra.get("was")
    before = {**(was or {}), **(frame.before or {})} or None
    after = {
        k: val
        for k, val in (
            ("input", frame.after),
            ("changed", frame.extra.get("changed")),
            ("created", frame.extra.get("created")),
            ("deleted", frame.extra.get("deleted")),
        )
        if val
    }
    session.add(
        AdminAuditEntry(
            tenant_id=tenant_id,
            actor_id=principal.account_id if principal.account_id.int else None,
            actor_username=principal.username,
            action=frame.action,
            target=frame.target,
            before=before,
            after=after or None,
            request_id=frame.request_id,
            via=frame.via,
        )
    )
    frame.recorded = True


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_WROTE, None)


# --- reading ---------------------------------------------------------------------------


MAX_PAGE = 200


async def entries(
    session: AsyncSession,
    principal: Principal,
    *,
    tenant: str | None = None,
    action: str | None = None,
    first: int = 50,
    before_id: str | None = None,
) -> list[AdminAuditEntry]:
    """Newest first. City admins: their own city. Platform admins: a named city, or (no
    ``tenant``) the platform's own rows. Nobody else. ``before_id``: rows older than
    that entry (the list's own cursor; ``adminAuditLogConnection`` has Relay's)."""
    require(principal, "audit_log", "read")
    if not 1 <= first <= MAX_PAGE:
        raise BadUserInput(f"first must be between 1 and {MAX_PAGE}", field="first")
    stmt = await _readable(session, principal, tenant=tenant, action=action)
    if stmt is None:
        return []
    if before_id:
        before = parse_id(before_id, "AdminAuditEntry", "before")  # malformed: BAD_USER_INPUT
        if before is None:  # another type's id names no entry of the log
            return []
        stmt = stmt.where(AdminAuditEntry.id < before)
    stmt = stmt.order_by(AdminAuditEntry.id.desc()).limit(first)
    return list(await session.scalars(stmt))


# newest first: ids are time-ordered (UUIDv7); a cursor is the id
ENTRY_KEYS = (pagination.uuid_key(AdminAuditEntry.id),)


async def entry_page(
    session: AsyncSession,
    principal: Principal,
    args: pagination.PageArgs,
    *,
    tenant: str | None = None,
    action: str | None = None,
) -> pagination.Window:
    """A page of :func:`entries`' rows in either direction (Relay cursors)."""
    pagination.check_size(args, minimum=1)
    stmt = await _readable(session, principal, tenant=tenant, action=action)
    if stmt is None:
        return pagination.Window([], has_next=False, has_previous=False)
    return await pagination.paginate(session, stmt, ENTRY_KEYS, args)


async def _readable(
    session: AsyncSession, principal: Principal, *, tenant: str | None, action: str | None
) -> Select | None:
    """The entries ``principal`` may read (None: none at all), scope set for them."""
    require(principal, "audit_log", "read")
    stmt = select(AdminAuditEntry)
    if principal.is_platform_admin:
        if tenant:
            tid = await session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            if tid is None:
                return None
            await use_scope(session, TenantScope.of([tid]))
            stmt = stmt.where(AdminAuditEntry.tenant_id == tid)
        else:
            await _see_platform_rows(session)
            stmt = stmt.where(AdminAuditEntry.tenant_id.is_(None))
    else:
        if tenant and tenant != principal.tenant_slug:
            return None  # another city's log does not exist for this caller
        stmt = stmt.where(AdminAuditEntry.tenant_id == principal.tenant_id)
    if action:
        stmt = stmt.where(AdminAuditEntry.action == action)
    return stmt


async def _see_platform_rows(session: AsyncSession) -> None:
    await set_local_setting(session, PLATFORM_SETTING, "on")
