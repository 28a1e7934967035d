"""The case event log: append in the same transaction as the change, chained by hash.

``hash = sha256(prev_hash + canonical_json(event))``; the first event of a
case chains from 64 zeros. Rows are never updated (a PostgreSQL trigger
refuses UPDATE/DELETE even for the owner); :func:`verify_chain` finds the
first link that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.models import Case, CaseEvent
from backend.core import live
from backend.core.clock import now
from backend.core.db import insert_values

GENESIS = "0" * 64


def canonical(event: CaseEvent) -> str:
    """The hashed content of an event: every field but the hashes, in a fixed order."""
    at: datetime = event.at if event.at.tzinfo else event.at.replace(tzinfo=UTC)
    body = {
        "tenant": str(event.tenant_id),
        "case": str(event.case_id),
        "seq": event.seq,
        "kind": event.kind,
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": str(event.actor_id) if event.actor_id else None,
        "actorUsername": event.actor_username,
        "from": event.from_status,
        "to": event.to_status,
        "reason": event.reason,
        "data": event.data or {},
    }
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def chain_hash(prev_hash: str, event: CaseEvent) -> str:
    return hashlib.sha256((prev_hash + canonical(event)).encode()).hexdigest()


async def append_event(  # noqa: PLR0913 — the event's columns, by name (from, to, reason, data)
    session: AsyncSession,
    case: Case,
    principal: Principal,
    kind: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
    first: bool = False,
) -> CaseEvent:
    """Chain a new event onto the case's last one.

    ``first``: the case was inserted in this very transaction, so it has no event yet and
    the chain starts from :data:`GENESIS` without asking the database (intake's hot path).
    """
    last = (
        None
        if first
        else (
            await session.execute(
                select(CaseEvent.seq, CaseEvent.hash)
                .where(CaseEvent.case_id == case.id)
                .order_by(CaseEvent.seq.desc())
                .limit(1)
            )
        ).first()
    )
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    event = _chained(case, principal, kind, seq, prev, from_status, to_status, reason, data)
    session.add(event)
    await session.flush()
    live.publish(session, live.CASE, case.tenant_id, [case.id])  # caseUpdated, after commit
    return event


async def insert_first_events(
    session: AsyncSession,
    principal: Principal,
    firsts: Sequence[tuple[Case, str, str | None, dict[str, Any] | None]],
) -> None:
    """The first event of each case inserted in this very transaction (intake's hot path:
    one petition, or a bulk intake's batch).

    ``firsts``: ``(case, kind, to_status, data)`` per case. Each chains from
    :data:`GENESIS` like ``append_event(..., first=True)`` but the rows are written as
    multi-row ``INSERT … VALUES`` (``core.db.insert_values``: routable on Citus) instead of
    the unit of work (add + flush costs several times the statement in Python). The rows'
    tenant is their case's, which the case INSERT already carried; PostgreSQL's row-level
    security checks it again.
    """
    rows = [
        complete_values(_chained(case, principal, kind, 1, GENESIS, None, to, None, data))
        for case, kind, to, data in firsts
    ]
    await insert_values(session, CaseEvent.__table__, rows)
    for tenant_id in {case.tenant_id for case, *_ in firsts}:  # caseUpdated, after commit
        ids = [case.id for case, *_ in firsts if case.tenant_id == tenant_id]
        live.publish(session, live.CASE, tenant_id, ids)


def column_values(obj: Any) -> dict[str, Any]:
    """The column values set on a transient ORM object, keyed by column name (for a Core
    ``INSERT``; unset columns get their defaults from the table)."""
    state = obj.__dict__
    return {
        prop.columns[0].name: state[prop.key]
        for prop in inspect(type(obj)).column_attrs
        if prop.key in state
    }


def complete_values(obj: Any) -> dict[str, Any]:
    """Every column of a transient ORM object, keyed by column name: its unset attributes
    are set first to the column's Python-side default (``None`` without one).

    For multi-row ``INSERT … VALUES``, whose rows must all name the same columns, and so
    the object holds exactly what was written: it can then join the session as persistent
    (``make_transient_to_detached``) without a reload, as after a flush.
    """
    state = obj.__dict__
    for prop in inspect(type(obj)).column_attrs:
        if prop.key not in state:
            default = prop.columns[0].default
            if default is None:
                value = None
            elif default.is_callable:
                value = default.arg(None)  # type: ignore[union-attr]  # wrapped: takes a context
            else:
                value = default.arg  # type: ignore[union-attr]
            setattr(obj, prop.key, value)
    return column_values(obj)


def _chained(  # noqa: PLR0913 — the columns of one event row, in chain order
    case: Case,
    principal: Principal,
    kind: str,
    seq: int,
    prev: str,
    from_status: str | None,
    to_status: str | None,
    reason: str | None,
    data: dict[str, Any] | None,
) -> CaseEvent:
    """A new (transient) event of ``case`` after ``prev``, its hash set."""
    event = CaseEvent(
        tenant_id=case.tenant_id,
        case_id=case.id,
        seq=seq,
        kind=kind,
        at=now(),
        actor_id=principal.account_id if principal.tenant_id else None,
        actor_username=principal.username,
        from_status=from_status,
        to_status=to_status,
        reason=reason,
        data=data or {},
        prev_hash=prev,
    )
    event.hash = chain_hash(prev, event)
    return event


@dataclass(frozen=True)
class BrokenLink:
    case_id: uuid.UUID
    seq: int
    reason: str


async def verify_chain(events: AsyncIterator[CaseEvent]) -> BrokenLink | None:
    """Walk events ordered by (case, seq); the first mismatch, or ``None`` when intact."""
    current: uuid.UUID | None = None
    prev = GENESIS
    expected_seq = 1
    async for event in events:
        if event.case_id != current:
            current, prev, expected_seq = event.case_id, GENESIS, 1
        if event.seq != expected_seq:
            return BrokenLink(event.case_id, event.seq, f"expected seq {expected_seq}")
        if event.prev_hash != prev:
            return BrokenLink(event.case_id, event.seq, "prev_hash does not match")
        if chain_hash(prev, event) != event.hash:
            return BrokenLink(event.case_id, event.seq, "content does not match its hash")
        prev, expected_seq = event.hash, expected_seq + 1
    return None
