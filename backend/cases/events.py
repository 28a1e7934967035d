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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases.models import Case, CaseEvent
from backend.core import live
from backend.core.clock import now

GENESIS = "0" * 64
_INSERT_EVENT = insert(CaseEvent.__table__)


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


async def insert_first_event(
    session: AsyncSession,
    case: Case,
    principal: Principal,
    kind: str,
    *,
    to_status: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """The first event of a case inserted in this very transaction (intake's hot path).

    Chains from :data:`GENESIS` like ``append_event(..., first=True)`` but writes the row
    with one Core ``INSERT`` instead of the unit of work (add + flush costs several times
    the statement in Python). The row's tenant is the case's, which the session already
    checked on the case's own flush; PostgreSQL's row-level security checks it again.
    """
    event = _chained(case, principal, kind, 1, GENESIS, None, to_status, None, data)
    conn = await session.connection()
    await conn.execute(_INSERT_EVENT, column_values(event))
    live.publish(session, live.CASE, case.tenant_id, [case.id])  # caseUpdated, after commit


def column_values(obj: Any) -> dict[str, Any]:
    """The column values set on a transient ORM object, keyed by column name (for a Core
    ``INSERT``; unset columns get their defaults from the table)."""
    state = obj.__dict__
    return {
        prop.columns[0].name: state[prop.key]
        for prop in inspect(type(obj)).column_attrs
        if prop.key in state
    }


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
