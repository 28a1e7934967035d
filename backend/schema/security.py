"""GraphQL for the admin audit log and API keys, and the field extension that audits.

:func:`install_admin_audit` puts :class:`AdminAudit` on every mutation named in
``backend.tenants.audit_log.ADMIN_MUTATIONS``, once, where the schema is
assembled: resolvers stay unaware of auditing, and a new admin mutation is
audited by adding one line to that table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.extensions import FieldExtension

from backend.core.pagination import PageArgs, encode
from backend.schema.context import Ctx
from backend.schema.relay import After, Before, Connection, First, Last, connection_of
from backend.tenants import api_keys, audit_log

# Input keys that name what an admin action acts on, in order of preference.
_TARGET_KEYS = ("org_unit_path", "unit_path", "username", "slug", "id", "tenant")


def _target(kwargs: dict[str, Any]) -> str | None:
    data = audit_log.summarise(kwargs)
    data = data.get("input", data) if isinstance(data, dict) else {}
    if not isinstance(data, dict):
        return None
    if data.get("parent_path") and data.get("slug"):
        return f"{data['parent_path']}/{data['slug']}"
    for key in _TARGET_KEYS:
        if data.get(key):
            return str(data[key])[:300]
    return None


class AdminAudit(FieldExtension):
    """Opens an audit frame around one admin mutation (see backend/tenants/audit_log.py)."""

    def __init__(self, action: str) -> None:
        self.action = action

    async def resolve_async(self, next_: Any, source: Any, info: Ctx, **kwargs: Any) -> Any:
        ctx = info.context
        if ctx.principal_or_none is None:  # refused below with UNAUTHENTICATED
            return await next_(source, info, **kwargs)
        with audit_log.admin_action(
            self.action,
            ctx.principal_or_none,
            target=_target(kwargs),
            details=kwargs.get("input", kwargs),
            request_id=ctx.request_id,
        ):
            return await next_(source, info, **kwargs)


def install_admin_audit(mutation_type: Any) -> None:
    """Attach :class:`AdminAudit` to the admin mutations of ``mutation_type`` (idempotent)."""
    fields = {f.python_name: f for f in mutation_type.__strawberry_definition__.fields}
    unknown = set(audit_log.ADMIN_MUTATIONS) - set(fields)
    if unknown:
        raise RuntimeError(f"ADMIN_MUTATIONS names unknown mutations: {sorted(unknown)}")
    for name, action in audit_log.ADMIN_MUTATIONS.items():
        field = fields[name]
        if not any(isinstance(e, AdminAudit) for e in field.extensions):
            field.extensions.append(AdminAudit(action))


# --- audit log ---------------------------------------------------------------------------


@strawberry.type(name="AdminAuditEntry")
class AdminAuditEntryType:
    id: strawberry.ID
    at: datetime
    tenant: str | None
    actor: str
    action: str
    target: str | None
    before: strawberry.scalars.JSON | None
    after: strawberry.scalars.JSON | None
    request_id: str | None
    via: str


# --- API keys ----------------------------------------------------------------------------


@strawberry.type(name="ApiKey")
class ApiKeyType:
    id: strawberry.ID
    name: str
    username: str = strawberry.field(description="The service user the key acts as.")
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: api_keys.ApiKey, username: str) -> ApiKeyType:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            username=username,
            prefix=row.prefix,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )


@strawberry.type
class CreatedApiKey:
    api_key: ApiKeyType
    key: str = strawberry.field(
        description="The secret, shown this once: send it as `Authorization: ApiKey <key>`."
    )


@strawberry.input
class CreateApiKeyInput:
    username: str = strawberry.field(description="A service user of the caller's city.")
    name: str = strawberry.field(description="What the key is for, e.g. 12345 hotline.")


@strawberry.input
class RevokeApiKeyInput:
    id: strawberry.ID


@strawberry.type
class SecurityQueries:
    @strawberry.field(
        description="Admin actions, newest first: city admins see their city; platform "
        "admins a named city or (no tenant) the platform's own actions.",
        deprecation_reason="Use adminAuditLogConnection: Relay cursors in both directions (first/after, last/before).",
    )
    async def admin_audit_log(
        self,
        info: Ctx,
        tenant: str | None = None,
        action: str | None = None,
        first: int = 50,
        before: str | None = None,
    ) -> list[AdminAuditEntryType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await audit_log.entries(
                session,
                ctx.principal,
                tenant=tenant,
                action=action,
                first=first,
                before_id=before,
            )
            slugs = await _tenant_slugs(session, {r.tenant_id for r in rows if r.tenant_id})
        return [_entry(r, slugs) for r in rows]

    @strawberry.field(
        description="Admin actions, newest first, as a Relay connection: city admins see "
        "their city; platform admins a named city or (no tenant) the platform's own actions."
    )
    async def admin_audit_log_connection(
        self,
        info: Ctx,
        tenant: str | None = None,
        action: str | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[AdminAuditEntryType]:
        ctx = info.context
        args = PageArgs(first, after, last, before)
        async with ctx.read() as session:
            window = await audit_log.entry_page(
                session, ctx.principal, args, tenant=tenant, action=action
            )
            slugs = await _tenant_slugs(session, {r.tenant_id for r in window.rows if r.tenant_id})
        return connection_of(
            window, lambda row: _entry(row, slugs), lambda row: encode(audit_log.ENTRY_KEYS, row)
        )

    @strawberry.field(description="The city's API keys (city admin); secrets are never shown.")
    async def api_keys(self, info: Ctx) -> list[ApiKeyType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await api_keys.list_keys(session, ctx.principal)
        return [ApiKeyType.of(k, u) for k, u in rows]


def _entry(r: Any, slugs: dict[Any, str]) -> AdminAuditEntryType:
    return AdminAuditEntryType(
        id=strawberry.ID(str(r.id)),
        at=r.created_at,
        tenant=slugs.get(r.tenant_id) if r.tenant_id else None,
        actor=r.actor_username,
        action=r.action,
        target=r.target,
        before=r.before,
        after=r.after,
        request_id=r.request_id,
        via=r.via,
    )


async def _tenant_slugs(session: Any, ids: set[Any]) -> dict[Any, str]:
    from backend.tenants.service import tenants_by_ids

    return {t.id: t.slug for t in await tenants_by_ids(session, sorted(ids))}


@strawberry.type
class SecurityMutations:
    @strawberry.mutation(description="Mint an API key for a service user (city admin).")
    async def create_api_key(self, info: Ctx, input: CreateApiKeyInput) -> CreatedApiKey:
        issued = await info.context.mutate(
            api_keys.create_key, username=input.username, name=input.name
        )
        return CreatedApiKey(api_key=ApiKeyType.of(issued.row, issued.username), key=issued.key)

    @strawberry.mutation(description="Revoke an API key at once (city admin).")
    async def revoke_api_key(self, info: Ctx, input: RevokeApiKeyInput) -> ApiKeyType:
        row, username = await info.context.mutate(api_keys.revoke_key, id=str(input.id))
        return ApiKeyType.of(row, username)
