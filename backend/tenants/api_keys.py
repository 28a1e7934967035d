"""Machine credentials: API keys of a city's service accounts, stored as argon2id.

People sign in through SSO (JWTs); integrations such as a 12345 hotline that
pushes intake cannot, so a city admin creates a *service account* for the
integration (``createServiceAccount``: a user of the city that can never get a
token), gives it only the roles the integration needs (``assignRole``, never
``CITY_ADMIN``), and mints a key for it. A key never belongs to a person: it would
let whoever holds it read PII as that official, and the PII access log would blame
the official. The key acts with exactly its account's roles, read on every request
like a token's; the admin audit log records who minted and revoked it.

A key reads ``xfk.<tenant slug>.<prefix>.<secret>``: the slug lets the lookup
run inside that tenant's scope (both tenant walls apply to ``api_keys``), the
prefix finds the row, and only an argon2id hash of the whole key is stored — it
is shown once, at creation. Keys are revocable and remember when they were last
used (written at most once a minute). A verified key is remembered in-process
for a minute by its SHA-256, so argon2's deliberate cost is paid once per
process and minute, not per request; revocation is still read from the row on
every request and takes effect at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Index, Select, String, UniqueConstraint, Uuid, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.authz.roles import AccountKind
from backend.core import validation as v
from backend.core.clock import now
from backend.core.db import Base, Database, TenantScope, TenantScoped, UtcDateTime, tenant_fk
from backend.core.errors import BadUserInput, NotFound, Unauthenticated
from backend.core.ids import parse_id
from backend.tenants import audit_log
from backend.tenants.models import Account, Tenant, User

SCHEME = "xfk"
KEY_RE = re.compile(r"^xfk\.([a-z0-9-]{1,63})\.([0-9a-f]{12})\.([A-Za-z0-9_-]{32,64})$")
TOUCH_EVERY = timedelta(minutes=1)
CACHE_SECONDS = 60.0
_hasher = PasswordHasher()  # argon2id, the library's RFC 9106 low-memory defaults
_verified: dict[uuid.UUID, tuple[str, float]] = {}  # key id -> (sha256 of key, until)


class ApiKey(TenantScoped, Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("tenant_id", "prefix", name="uq_api_keys_prefix"),
        tenant_fk("user_id", "users", "fk_api_keys_user"),
        Index("ix_api_keys_user", "tenant_id", "user_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class IssuedKey:
    row: ApiKey
    username: str
    key: str  # shown once


def looks_like_key(token: str) -> bool:
    return token.startswith(SCHEME + ".")


# --- administration (city admin) ---------------------------------------------------------


async def create_key(
    session: AsyncSession, principal: Principal, *, username: str, name: str
) -> IssuedKey:
    require(principal, "api_key", "manage")
    name = v.text(name, "name", max_len=100)
    user = await session.scalar(select(User).where(User.username == v.username(username)))
    if user is None or user.tenant_id != principal.tenant_id:
        raise BadUserInput(f"unknown user {username} in this tenant", field="username")
    kind = await session.scalar(select(Account.kind).where(Account.id == user.id))
    if kind != AccountKind.SERVICE_ACCOUNT:
        raise BadUserInput(
            f"{username} is a person: API keys are minted for service accounts only "
            "(createServiceAccount)",
            field="username",
        )
    prefix = secrets.token_hex(6)
    key = f"{SCHEME}.{principal.tenant_slug}.{prefix}.{secrets.token_urlsafe(32)}"
    row = ApiKey(
        tenant_id=user.tenant_id,
        user_id=user.id,
        name=name,
        prefix=prefix,
        secret_hash=_hasher.hash(key),
        created_by_id=principal.account_id,
    )
    session.add(row)
    await session.flush()
    audit_log.note(target=f"{username}:{prefix}")
    return IssuedKey(row, user.username, key)


async def revoke_key(session: AsyncSession, principal: Principal, *, id: str) -> tuple[ApiKey, str]:
    require(principal, "api_key", "manage")
    key_id = parse_id(id, "ApiKey")
    found = (
        (await session.execute(_with_username().where(ApiKey.id == key_id))).first()
        if key_id
        else None
    )
    if found is None:
        raise NotFound(f"API key {id} not found")
    row, username = found
    if row.revoked_at is None:
        row.revoked_at = now()
        await session.flush()
    _verified.pop(row.id, None)
    audit_log.note(target=f"{username}:{row.prefix}")
    return row, username


async def list_keys(session: AsyncSession, principal: Principal) -> list[tuple[ApiKey, str]]:
    require(principal, "api_key", "manage")
    rows = await session.execute(_with_username().order_by(ApiKey.created_at.desc()))
    return [(k, u) for k, u in rows]


def _with_username() -> Select[tuple[ApiKey, str]]:
    return select(ApiKey, User.username).join(
        User, (User.tenant_id == ApiKey.tenant_id) & (User.id == ApiKey.user_id)
    )


# --- authentication ----------------------------------------------------------------------


async def authenticate_key(db: Database, key: str) -> str:
    """The username a valid, unrevoked key acts as; ``Unauthenticated`` otherwise."""
    match = KEY_RE.match(key)
    if match is None:
        raise Unauthenticated("invalid API key")
    slug, prefix, _ = match.groups()
    async with db.transaction() as session:
        tenant_id = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise Unauthenticated("invalid API key")
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        found = (await session.execute(_with_username().where(ApiKey.prefix == prefix))).first()
        if found is None:
            raise Unauthenticated("invalid API key")
        row, username = found
        if row.revoked_at is not None:
            raise Unauthenticated("API key revoked")
        if not _verify(row, key):
            raise Unauthenticated("invalid API key")
        current = now()
        if row.last_used_at is None or current - row.last_used_at >= TOUCH_EVERY:
            row.last_used_at = current
    return username


def _verify(row: ApiKey, key: str) -> bool:
    digest = hashlib.sha256(key.encode()).hexdigest()
    cached = _verified.get(row.id)
    if cached and cached[1] > time.monotonic() and secrets.compare_digest(cached[0], digest):
        return True
    try:
        _hasher.verify(row.secret_hash, key)
    except (VerificationError, InvalidHashError):
        return False
    _verified[row.id] = (digest, time.monotonic() + CACHE_SECONDS)
    return True
