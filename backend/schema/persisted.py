"""Persisted queries on the request path: resolve a hash to its document, enforce allow-lists.

Clients send Apollo's APQ shape ``{"extensions": {"persistedQuery":
{"version": 1, "sha256Hash": H}}}`` or ``{"id": H}`` (``documentId`` and a
``sha256:`` prefix are accepted too). The server never learns new documents
from clients (no APQ registration: that would let any caller fill the table);
an administrator loads a manifest (``xinfang persisted-queries load``).

* no credentials → ``UNAUTHENTICATED`` (HTTP 401) whatever the id, before any lookup:
  an anonymous caller cannot tell a stored hash from an unknown one;
* hash only → the stored document runs; unknown → ``PersistedQueryNotFound``
  (Apollo's message, ``NOT_FOUND``, HTTP 400) so an APQ client falls back to
  sending the text;
* hash and text → the hash must be the text's SHA-256;
* a city in allow-list mode (``xinfang persisted-queries mode --tenant T on``)
  refuses its users' documents that are not in the list (``FORBIDDEN``,
  HTTP 403). Supervisors and platform staff are not a city's users and are
  not subject to a city's mode.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.core import persisted
from backend.core.db import Database
from backend.core.errors import BadUserInput, Forbidden, NotFound, Unauthenticated


class PersistedQueryNotFound(NotFound):
    """Apollo clients recognise the message and retry with the document (HTTP 400)."""

    http_status = 400


class PersistedQueryRequired(Forbidden):
    pass


def _sent_id(payload: dict[str, Any]) -> Any:
    """Whatever the body sends as a persisted query's id (any JSON value), ``None`` without."""
    extensions = payload.get("extensions")
    value: Any = None
    if isinstance(extensions, dict) and isinstance(extensions.get("persistedQuery"), dict):
        value = extensions["persistedQuery"].get("sha256Hash")
    if value is None:
        value = payload.get("id", payload.get("documentId"))
    return value


def requested_hash(payload: dict[str, Any]) -> str | None:
    value = _sent_id(payload)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadUserInput("a persisted query id is a SHA-256 hex string", field="id")
    return value.removeprefix("sha256:").lower()


async def resolve(
    db: Database, principal: Principal | None, body: bytes, held: AsyncSession | None = None
) -> bytes:
    """The body to execute: unchanged, or with the persisted document filled in.

    ``held`` is the request's open session, used for the lookups when its scope fits.
    """
    tenant_id = principal.tenant_id if principal is not None else None
    enforced = await persisted.allow_list_only(db, tenant_id, held)
    markers = (b"persistedQuery", b'"id"', b'"documentId"')
    if not enforced and not any(m in body for m in markers):
        return body  # the common case: no hash to resolve and nothing to enforce
    try:
        payload = json.loads(body)
    except ValueError:
        if enforced:
            raise PersistedQueryRequired(_REQUIRED, reason="PERSISTED_QUERY_REQUIRED") from None
        return body  # not JSON: strawberry answers that
    if not isinstance(payload, dict):
        if enforced:
            raise PersistedQueryRequired(_REQUIRED, reason="PERSISTED_QUERY_REQUIRED")
        return body
    if principal is None and _sent_id(payload) is not None:
        # authentication first (docs/graphql-limits.md): no lookup, no hash check, one answer
        # for every id — else a known hash's 401 against an unknown one's 400 tells an
        # anonymous caller which documents exist (and the 401's path their root field)
        raise Unauthenticated(_ANONYMOUS)
    digest = requested_hash(payload)
    text = payload.get("query")
    if digest is None:
        if enforced:
            raise PersistedQueryRequired(_REQUIRED, reason="PERSISTED_QUERY_REQUIRED")
        return body
    if isinstance(text, str) and text:
        if persisted.sha256_hex(text) != digest:
            raise BadUserInput("provided sha does not match query", field="sha256Hash")
        if enforced and await persisted.lookup(db, digest, tenant_id, held) is None:
            raise PersistedQueryRequired(_REQUIRED, reason="PERSISTED_QUERY_REQUIRED")
        return body
    stored = await persisted.lookup(db, digest, tenant_id, held)
    if stored is None:
        raise PersistedQueryNotFound("PersistedQueryNotFound", reason="PERSISTED_QUERY_NOT_FOUND")
    payload["query"] = stored
    return json.dumps(payload).encode()


_ANONYMOUS = "a persisted query runs for an authenticated caller: send a bearer token or API key"
_REQUIRED = "this city accepts persisted queries only; send a known sha256Hash"
