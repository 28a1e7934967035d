"""Case intake and lifecycle: every change is one transaction with its event and clocks.

Functions take the session and the principal; they raise the contract's
errors and never commit (the caller's transaction does, or rolls back).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    Uuid,
    bindparam,
    func,
    literal,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.exc import StaleDataError

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Grant, Principal
from backend.authz.roles import Role
from backend.authz.scope import path_covers
from backend.cases import agents, deadlines, lifecycle, pii, repeats
from backend.cases.categories import list_categories
from backend.cases.events import append_event, complete_values, insert_first_events
from backend.cases.models import (
    Case,
    CaseCounter,
    CaseDeadline,
    CaseEvent,
    CaseStatus,
    CaseType,
    Category,
    Channel,
    DeadlineStatus,
    DivertChannel,
    EscalationTarget,
    RouteMode,
    Satisfaction,
    TenantPolicy,
)
from backend.cases.models import SkipLevel as SkipLevelEnum
from backend.cases.need_to_know import Accused, accused_of, is_barred, may_know, person_units
from backend.cases.policy import load_calendar, policy_from
from backend.cases.practices import AssignedDown, pending_mediation
from backend.cases.rules import (
    OBJECTION_DECISION_DAYS,
    Step,
    compute_due,
    extended_handling_days,
)
from backend.cases.visibility import acting_grants, read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.crypto import keyring
from backend.core.db import insert_values
from backend.core.errors import (
    AppError,
    BadUserInput,
    Conflict,
    Forbidden,
    InvalidTransition,
    NotFound,
)
from backend.core.hooks import Hook
from backend.core.ids import new_id, parse_id
from backend.tenants.models import Account, OrgUnit, Tenant, User
from backend.tenants.service import grants_of, unit_by_path

# Other domains' part in an intake, inside its transaction before the first event is
# written (rosters: a visit during a reception shift names the duty leader first receiver).
case_registered: Hook[Callable[[AsyncSession, Case], Awaitable[None]]] = Hook("case_registered")

MAX_CONTENT = 20_000
REPEAT_WINDOW_DAYS = 365
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class PetitionerInput:
    name: str
    phone: str | None = None
    id_number: str | None = None


@dataclass(frozen=True)
class RegisterCaseInput:
    client_key: str
    channel: Channel
    type: CaseType
    category: str
    subject: str
    content: str
    petitioner: PetitionerInput
    location_path: str
    received_at: datetime | None = None
    accused_unit_path: str | None = None
    accused_username: str | None = None
    head_count: int = 1
    tags: list[str] = field(default_factory=list)
    priority: str = "NORMAL"
    skip_level: SkipLevelEnum = SkipLevelEnum.NONE
    agent: agents.AgentInput | None = None  # 代办/帮办 (seeds 001, 002)
    # 京、省交办 (seed 000): recorded by backend/cases/assigned.py; in the hash, so a replay
    # with another 交办单 is a CONFLICT (left out when absent: older hashes stay valid)
    assigned_down: AssignedDown | None = None

    def payload_hash(self) -> str:
        # what dataclasses.asdict gave, without its deep copy: every field but the key
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "client_key"}
        body["petitioner"] = vars(self.petitioner)
        if self.agent is None:  # hashes of intakes without an agent stay what they were
            del body["agent"]
        else:
            body["agent"] = vars(self.agent)
        if self.assigned_down is None:
            del body["assigned_down"]
        body["received_at"] = self.received_at.isoformat() if self.received_at else None
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False, default=str)
        # keyed: the body holds the id number, and the rest of it is stored next to the
        # hash, so a plain SHA-256 would let a database dump brute-force the id number
        return hmac.new(keyring().hash_key, raw.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CaseRef:
    """Which case, at which version the client last saw it."""

    case_id: str
    version: int


# --- reading ---------------------------------------------------------------------------


async def find_case(
    session: AsyncSession, principal: Principal, case_id: str, *, lock: bool = False
) -> Case:
    """The case if it exists and the principal may see it; NOT_FOUND otherwise (same answer).

    ``lock``: ``SELECT ... FOR UPDATE`` (PostgreSQL), so concurrent mutations of one case
    queue up and the later one sees the version the earlier one committed.
    """
    where = case_predicates(principal, case_id)
    case = None
    if where is not None:
        query = select(Case).where(*where)
        case = await session.scalar(query.with_for_update() if lock else query)
    if case is None:
        raise case_not_found(case_id)
    return case


def case_predicates(principal: Principal, case_id: str) -> list[ColumnElement[bool]] | None:
    """The WHERE of :func:`find_case` (id and read predicate); None for an id that is no
    id, or for a caller who may read no case at all: NOT_FOUND, as an invisible case —
    what ``case(id)`` promises and ``node(id)`` answers (it was FORBIDDEN for such a
    role before the outside probe of issue 21; the same for every id, so no oracle)."""
    cid = parse_id(case_id, "Case", "caseId")
    if cid is None or not reads_cases(principal):
        return None
    return [Case.id == cid, read_predicate(principal)]


def reads_cases(principal: Principal) -> bool:
    """Whether the caller may read any case (its own, for a grid worker)."""
    return may(principal, "case", "read") or may(principal, "case", "read_own")


def case_read_rule(principal: Principal) -> ColumnElement[bool]:
    """The read predicate one case is found under (FORBIDDEN for a caller who may read
    none; the single-case reads check :func:`reads_cases` first and answer NOT_FOUND)."""
    if not reads_cases(principal):
        raise Forbidden("not allowed to read cases")
    return read_predicate(principal)


def case_not_found(case_id: str) -> NotFound:
    return NotFound(f"case {case_id} not found")


async def visible_cases(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[Case]:
    """Those of ``ids`` that :func:`find_case` would answer, in one statement; the others
    (absent, another city, out of scope, an accusation the caller may not know) are left
    out alike — and all of them when the caller may read no case at all."""
    if not ids or not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        return []
    query = select(Case).where(Case.id.in_(list(set(ids))), read_predicate(principal))
    return list(await session.scalars(query))


# --- intake ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Registered:
    """What an intake answers: the case, and whether the caller may read it now.

    ``readable`` is False for the registrar of an accusation against its own unit (Art.
    30: the case went to the unit above, out of its sight) — first time and replay
    alike, and for a replay after the case left the caller's scope: the API then
    answers a receipt (回执: id, number and what was submitted), nothing the case became.
    """

    case: Case
    readable: bool


async def intake(
    session: AsyncSession, principal: Principal, data: RegisterCaseInput
) -> Registered:
    """:func:`register_case` as the API answers it (see :class:`Registered`)."""
    ((case, replay),) = await _register_all(session, principal, [data], indexed=False)
    return Registered(case, await _readable(session, principal, case, replay))


MAX_BULK_INTAKE = 500
"""Most petitions one :func:`intake_many` takes (a hotline's or the online portal's batch)."""


async def intake_many(
    session: AsyncSession, principal: Principal, items: Sequence[RegisterCaseInput]
) -> list[Registered]:
    """Bulk intake (hotline/online imports): each item exactly as :func:`intake` takes it
    — same validation, authorization, Art. 30 answer, ``clientKey`` replay and repeat
    detection, by the same code — in the caller's one transaction, all or nothing.

    Set-based (docs/performance.md "Bulk intake"): every item is checked first, then the
    batch takes its numbers with one counter bump and is written as one multi-row INSERT
    of cases, one of first events and one of first clocks. A refused item refuses the
    whole batch before anything is written — no number burnt — and its error carries
    ``extensions.index`` (the item's position, from 0). Numbers follow the batch's order,
    and a ``clientKey`` repeated inside the batch replays its first item like a retry.
    """
    if not 1 <= len(items) <= MAX_BULK_INTAKE:
        raise BadUserInput(
            f"between 1 and {MAX_BULK_INTAKE} petitions per batch, not {len(items)}",
            field="inputs",
        )
    done = await _register_all(session, principal, items, indexed=True)
    return [Registered(case, await _readable(session, principal, case, r)) for case, r in done]


async def _readable(session: AsyncSession, principal: Principal, case: Case, replay: bool) -> bool:
    """Whether the registrar may read the case it registered (see :class:`Registered`)."""
    if replay:  # the case may have moved since: the read rule decides, in SQL
        seen = await session.scalar(
            select(Case.id).where(Case.id == case.id, read_predicate(principal))
        )
        return seen is not None
    # a new case is held in the registrar's scope: only Art. 30 can hide it from it
    facts = await accused_of(session, case)
    return not is_barred(facts, [g.unit_path for g in principal.grants], principal.username)


async def _open_for_savepoints(session: AsyncSession) -> None:
    """Make sure ``session``'s transaction is really open before a SAVEPOINT on SQLite.

    The SQLite driver (pysqlite's legacy transaction mode, kept on purpose) sends
    ``BEGIN`` only before a write; a ``SAVEPOINT`` sent earlier opens the transaction
    itself, and its ``RELEASE`` then *commits* it — a registered case (an earlier batch
    of the same transaction) would survive the rollback of its transaction. A no-op
    UPDATE first makes the driver send its ``BEGIN``. Nothing on PostgreSQL.
    """
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("UPDATE case_counters SET last = last WHERE 1 = 0")


async def register_case(
    session: AsyncSession, principal: Principal, data: RegisterCaseInput
) -> Case:
    """Register a petition from any channel; idempotent by ``clientKey``.

    For jobs, imports and the demo; the API answers through :func:`intake`, which
    never shows the caller a case it may not read.
    """
    ((case, _),) = await _register_all(session, principal, [data], indexed=False)
    return case


@dataclass
class _Checked:
    """One petition past the checks that need no database: its canonical input, when it
    was received and its petitioner's keyed identity (repeat detection)."""

    data: RegisterCaseInput
    received_at: datetime
    current: datetime
    petitioner_key: str | None


@dataclass
class _New:
    """One petition checked and built, waiting for its number: the case row and its
    first clock (the first event is built when the number is known)."""

    case: Case
    routing: CaseDeadline
    facts: _IntakeFacts
    agent: dict[str, str] | None = None  # the REGISTERED event's record of a 代办 agent


async def _register_all(
    session: AsyncSession,
    principal: Principal,
    items: Sequence[RegisterCaseInput],
    *,
    indexed: bool,
) -> list[tuple[Case, bool]]:
    """Register ``items`` in order: ``(case, replay)`` each — the case registered, or the
    one already under its ``clientKey`` (in the database or earlier in ``items``).

    The one definition of what an intake checks and writes, for one petition
    (``registerCase``) and a batch (``registerCases``) alike: every item is checked and
    built first (:func:`_plan`), then the new ones get their numbers and are written
    together (:func:`_write`). ``indexed``: a refused item's error names its position
    (``extensions.index``). Should another transaction commit one of the clientKeys
    between the checks and the write, the write gives its numbers back and the batch is
    planned once more, where that key is now a replay (as a single intake's retry is).
    """
    for last_try in (False, True):
        plans = await _plan(session, principal, items, indexed=indexed)
        new = [p for p in plans if isinstance(p, _New)]
        if not new or await _write(session, principal, new, last_try=last_try):
            break
    return [(p.case, False) if isinstance(p, _New) else (p, True) for p in plans]


async def _plan(
    session: AsyncSession,
    principal: Principal,
    items: Sequence[RegisterCaseInput],
    *,
    indexed: bool,
) -> list[_New | Case]:
    """Check every item in order and build its row; a replayed item answers its case.

    Errors are those :func:`intake` would raise for the first refused item, in the order
    its fields are checked: the checks that need no database run first for all items
    (stopping at the first refusal), the database facts of the items before it are read
    in one statement per chunk (:func:`_intake_facts`), and the remaining checks then run
    item by item, so an earlier item's later check still wins over a later item's first.
    """
    checked: list[_Checked] = []
    refused: AppError | None = None
    for index, data in enumerate(items):
        try:
            checked.append(_precheck(principal, data))
        except AppError as exc:
            refused = _at(exc, index, indexed)
            break
    rows = await _intake_facts(session, principal.tenant_id, checked) if checked else []
    plans: list[_New | Case] = []
    batch = _Batch()
    for index, (item, row) in enumerate(zip(checked, rows, strict=True)):
        try:
            plans.append(await _plan_one(session, principal, item, row, batch))
        except AppError as exc:
            raise _at(exc, index, indexed) from None
    if refused is not None:
        raise refused
    return plans


def _at(exc: AppError, index: int, indexed: bool) -> AppError:
    if indexed:
        exc.extensions["index"] = index
    return exc


@dataclass
class _Batch:
    """The new cases planned so far in one intake, for the items after them: a repeated
    ``clientKey`` replays its first item, and 重复访 counts them like registered cases."""

    by_key: dict[str, _New] = field(default_factory=dict)
    by_petition: dict[tuple[Any, ...], list[Case]] = field(default_factory=dict)

    def earlier(self, case: Case, since: datetime) -> list[Case]:
        """The new cases before ``case`` that it repeats (same petitioner, category and
        accused, received since ``since``): what :func:`_intake_facts` counts in the
        database, for cases not yet there."""
        return [c for c in self.by_petition.get(_petition(case), ()) if c.received_at >= since]

    def add(self, new: _New) -> None:
        self.by_key[new.case.client_key] = new
        if new.case.petitioner_key is not None:
            self.by_petition.setdefault(_petition(new.case), []).append(new.case)


def _petition(case: Case) -> tuple[Any, ...]:
    """The fields 重复访 matches on (with the window, see :func:`_intake_facts_statement`)."""
    return (
        case.petitioner_key,
        case.category,
        case.accused_path or "",
        case.accused_username or "",
    )


def _precheck(principal: Principal, data: RegisterCaseInput) -> _Checked:
    """The checks that need no database: permission, input shape, head count, city."""
    require(principal, "case", "register")
    data = _normalised(data)
    if data.head_count < 1 or data.head_count > 10_000:
        raise BadUserInput("headCount must be between 1 and 10000", field="headCount")
    if principal.tenant_id is None:
        raise Forbidden("cases are registered in a city")
    current = now()
    key = pii.petitioner_key(principal.tenant_id, data.petitioner.id_number, data.petitioner.phone)
    return _Checked(data, data.received_at or current, current, key)


async def _plan_one(
    session: AsyncSession, principal: Principal, item: _Checked, row: Any, batch: _Batch
) -> _New | Case:
    """One item past the rest of its checks: its replayed case, or its new row."""
    data = item.data
    facts = _validate_intake(principal, item, row)
    payload_hash = data.payload_hash()  # of the normalised copy
    earlier = batch.by_key.get(data.client_key)
    if earlier is not None:  # a key repeated in the batch: a retry of that item
        if earlier.case.payload_hash != payload_hash:
            raise _key_reused()
        return earlier.case
    if facts.existing_id is not None:
        existing = await _existing_by_key(session, principal, data.client_key, payload_hash)
        if existing:
            return existing
    # a replay answers its case above: only a new one needs its repeats read
    facts = await _with_repeats(session, principal, item, facts)
    assert principal.tenant_id is not None and facts.unit_id is not None
    grant = max(
        (
            g
            for g in allowed_grants(principal, "case", "register")
            if path_covers(g.unit_path, data.location_path)
        ),
        key=lambda g: len(g.unit_path),
    )
    accused = await _accused_at_intake(session, principal.tenant_id, data, facts.accused_path)
    agent_id = (
        await agents.agent_for(session, principal, data.agent, accused) if data.agent else None
    )
    holder_id, holder_path = await _intake_holder(session, grant, accused)
    case = Case(
        id=new_id(),
        tenant_id=principal.tenant_id,
        client_key=data.client_key,
        payload_hash=payload_hash,
        channel=data.channel,
        type=data.type,
        category=data.category,
        subject=data.subject,
        content=data.content,
        priority=data.priority,
        tags=data.tags,
        head_count=data.head_count,
        petitioner_name=data.petitioner.name,
        petitioner_phone=data.petitioner.phone,
        petitioner_id_number=data.petitioner.id_number,
        petitioner_key=facts.petitioner_key,
        location_unit_id=facts.unit_id,
        location_path=data.location_path,
        holder_unit_id=holder_id,
        holder_path=holder_path,
        accused_path=facts.accused_path,
        accused_username=data.accused_username,
        registered_by_id=principal.account_id,
        first_receiver_id=principal.account_id,
        status=CaseStatus.REGISTERED,
        received_at=facts.received_at,
        final_of_id=facts.final_of,
        agent_id=agent_id,
        agent_kind=data.agent.kind if data.agent else None,
        skip_level=data.skip_level,
        updated_at=now(),
    )
    _count_repeats(case, facts, batch)
    clocks = deadlines.Clocks(
        policy_from(facts.policy_data, facts.timezone), await load_calendar(session)
    )
    routing = deadlines.first_step(case, Step.ROUTING, facts.received_at, clocks)
    agent = _agent_data(principal, data.agent) if data.agent else None
    new = _New(case, routing, facts, agent)
    batch.add(new)
    return new


def _count_repeats(case: Case, facts: _IntakeFacts, batch: _Batch) -> None:
    """重复访: the earlier cases of the same petition in the database (read with the
    facts) and earlier in the batch; the case links to the first of them all."""
    count, first = facts.repeat_count, facts.repeat_of
    if case.petitioner_key is not None:
        for other in batch.earlier(case, case.received_at - timedelta(days=REPEAT_WINDOW_DAYS)):
            if not repeats.similar(case.subject, other.subject):
                continue
            count += 1
            if first is None or (other.received_at, other.id) < first:
                first = (other.received_at, other.id)
    case.repeat_count = count
    case.repeat_of_id = first[1] if first is not None else None


async def _write(
    session: AsyncSession, principal: Principal, new: list[_New], *, last_try: bool
) -> bool:
    """Number and write the planned cases, with their first events and clocks.

    One counter bump of ``len(new)`` and the case rows as one multi-row INSERT share a
    savepoint: should a clientKey have been taken meanwhile by a concurrent intake (its
    unique key), both are undone — no number burnt — and False tells the caller to plan
    again. The cases then join the session as if flushed (the resolver, the hooks and a
    later mutation of the same request use the objects).
    """
    facts = new[0].facts  # the city's own: the same for every item
    await _open_for_savepoints(session)  # the savepoint must not commit the case (SQLite)
    try:
        async with session.begin_nested():
            numbers = await _next_numbers(
                session, principal.tenant_id, facts.case_prefix, facts.timezone, now(), len(new)
            )
            rows = []
            for planned, number in zip(new, numbers, strict=True):
                planned.case.number = number
                rows.append(complete_values(planned.case))
            await insert_values(session, Case.__table__, rows)
    except IntegrityError:
        if last_try:
            raise
        return False
    for planned in new:
        make_transient_to_detached(planned.case)
        session.add(planned.case)
    for planned in new:  # 首问负责: a visit's duty leader (rosters)
        for take_part in case_registered:
            await take_part(session, planned.case)
    await insert_first_events(
        session,
        principal,
        [
            (
                p.case,
                "REGISTERED",
                CaseStatus.REGISTERED,
                {
                    "number": p.case.number,
                    "channel": p.case.channel.value,
                    "repeatCount": p.case.repeat_count,
                    "skipLevel": p.case.skip_level.value,
                    # Art. 36: the same matter after a re-review decision (accepted only
                    # with a reason)
                    **({"finalOf": str(p.case.final_of_id)} if p.case.final_of_id else {}),
                    **({"agent": p.agent} if p.agent else {}),
                },
            )
            for p in new
        ],
    )
    await deadlines.insert_first_steps(session, [p.routing for p in new])
    return True


def _agent_data(principal: Principal, agent: agents.AgentInput) -> dict[str, str]:
    """The REGISTERED event's record of the 代办 agent."""
    return {"username": agent.username or principal.username, "kind": agent.kind.value}


@dataclass(frozen=True)
class _IntakeFacts:
    """What the intake checks and the new row need from the database, read at once."""

    received_at: datetime
    unit_id: uuid.UUID | None
    accused_path: str | None
    existing_id: uuid.UUID | None  # a case already registered under this clientKey
    timezone: str
    case_prefix: str
    policy_data: dict[str, Any] | None
    petitioner_key: str | None
    repeat_count: int
    repeat_of: tuple[datetime, uuid.UUID] | None  # the first earlier case: (received, id)
    earlier_count: int = 0  # candidates of the same petitioner, category and accused
    final_of: uuid.UUID | None = None  # Art. 36: the same matter, its re-review decided


def _normalised(data: RegisterCaseInput) -> RegisterCaseInput:
    """The input in its canonical form (trimmed texts, a normalised petitioner, canonical
    names), or BAD_USER_INPUT for the first field that cannot be — a copy: the frozen
    input the caller gave is left as it was."""
    if not data.client_key or len(data.client_key) > 128:
        raise BadUserInput("clientKey must be 1-128 characters", field="clientKey")
    accused = data.accused_username
    return dataclasses.replace(
        data,
        subject=v.text(data.subject, "subject", max_len=200),
        content=v.text(data.content, "content", max_len=MAX_CONTENT),
        petitioner=PetitionerInput(
            v.text(data.petitioner.name, "petitioner.name", max_len=100),
            v.phone(data.petitioner.phone, "petitioner.phone"),
            pii.id_number(data.petitioner.id_number),
        ),
        accused_username=v.username(accused, "accusedUsername")
        if (accused or "").strip()
        else None,
        accused_unit_path=(data.accused_unit_path or "").strip() or None,
    )


def _validate_intake(principal: Principal, item: _Checked, row: Any) -> _IntakeFacts:
    """Check the normalised input against the city's facts (:func:`_intake_facts`); errors
    come in the order the fields are checked below (category, receivedAt, location,
    accused), after those of :func:`_precheck` (input shape, head count)."""
    data, received_at = item.data, item.received_at
    if row.category_id is None:
        raise BadUserInput(f"unknown category {data.category}", field="category")
    if received_at.tzinfo is None:
        raise BadUserInput("receivedAt needs a time zone offset", field="receivedAt")
    if received_at > item.current + CLOCK_SKEW:
        raise BadUserInput("receivedAt cannot be in the future", field="receivedAt")
    v.path(data.location_path, "locationPath")
    if row.unit_id is None or not any(
        path_covers(g.unit_path, data.location_path)
        for g in allowed_grants(principal, "case", "register")
    ):
        raise v.unit_out_of_reach(data.location_path, "locationPath")
    if (data.accused_unit_path or data.accused_username) and data.type is not CaseType.ACCUSATION:
        raise BadUserInput("only accusations name an accused", field="accusedUnitPath")
    if data.accused_unit_path:
        v.path(data.accused_unit_path, "accusedUnitPath")
        if row.accused_id is None:
            raise BadUserInput(
                f"unknown org unit {data.accused_unit_path}", field="accusedUnitPath"
            )
    if data.accused_username and row.accused_user_id is None:
        # Art. 30 protects the petitioner only against an accused it can match: a name
        # that matches nobody would leave the real person reading the case
        raise BadUserInput(
            f"unknown user {data.accused_username} in this city", field="accusedUsername"
        )
    return _IntakeFacts(
        received_at=received_at,
        unit_id=row.unit_id,
        accused_path=data.accused_unit_path or None,
        existing_id=row.existing_id,
        timezone=row.timezone,
        case_prefix=row.case_prefix,
        policy_data=row.policy_data,
        petitioner_key=item.petitioner_key,
        repeat_count=0,  # set by _with_repeats
        repeat_of=None,
        earlier_count=int(row.earlier_count or 0),
    )


async def _with_repeats(
    session: AsyncSession, principal: Principal, item: _Checked, facts: _IntakeFacts
) -> _IntakeFacts:
    """重复访 and 复核终结 among the earlier cases in the database: the candidates (same
    petitioner, category and accused) are read only when the facts counted some, and
    :mod:`backend.cases.repeats` decides which are the same matter (a similar subject)."""
    if not facts.earlier_count or item.petitioner_key is None:
        return facts
    assert principal.tenant_id is not None
    data = item.data
    earlier = await repeats.earlier_cases(
        session,
        principal.tenant_id,
        petitioner_key=item.petitioner_key,
        category=data.category,
        accused_path=data.accused_unit_path,
        accused_username=data.accused_username,
    )
    since = facts.received_at - timedelta(days=REPEAT_WINDOW_DAYS)
    matches = repeats.match(data.subject, earlier, since)
    first = next((e for e in earlier if e.id == matches.repeat_of), None)
    return dataclasses.replace(
        facts,
        repeat_count=matches.repeat_count,
        repeat_of=(first.received_at, first.id) if first else None,
        final_of=matches.final_of,
    )


# Chunk sizes of :func:`_intake_facts`: the binary digits of a batch's length (as
# ``core.db.insert_values`` does), so ten statement shapes serve every batch size.
_FACT_CHUNKS = (512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
_FACT_PARAMS = {
    "category": String(),
    "location_path": String(),
    "accused_path": String(),
    "accused_username": String(),
    "client_key": String(),
    "petitioner_key": String(),
}


async def _intake_facts(
    session: AsyncSession, tenant_id: uuid.UUID | None, items: Sequence[_Checked]
) -> list[Any]:
    """One round trip per chunk of items instead of seven per item: for each item the
    category, location and accused units, a case already under its clientKey, the
    tenant's time zone, prefix and deadline policy, and 重复访 — how many earlier cases of
    the same petitioner, category and accused there are (the candidates
    :mod:`backend.cases.repeats` compares by subject). Rows in the items' order.

    Run on the session's connection as prebuilt Core statements (no per-call statement
    building or ORM hook): every subquery names the tenant itself, and on PostgreSQL
    row-level security applies as to any statement of the transaction.
    """
    conn = await session.connection()
    rows: list[Any] = []
    start = 0
    for size in _FACT_CHUNKS:
        while len(items) - start >= size:
            params: dict[str, Any] = {"tenant_id": tenant_id}
            for i, item in enumerate(items[start : start + size]):
                params.update(_fact_params(item, i))
            result = await conn.execute(_intake_facts_statement(size), params)
            rows.extend(result.all())
            start += size
    return rows


def _fact_params(item: _Checked, i: int) -> dict[str, Any]:
    data, received_at = item.data, item.received_at
    with_repeats = item.petitioner_key is not None and received_at.tzinfo is not None
    return {
        f"category_{i}": data.category,
        f"location_path_{i}": data.location_path,
        f"accused_path_{i}": data.accused_unit_path or "",
        f"accused_username_{i}": data.accused_username or "",
        f"client_key_{i}": data.client_key,
        f"petitioner_key_{i}": item.petitioner_key if with_repeats else None,
    }


@cache
def _intake_facts_statement(size: int) -> Any:
    """The statement of :func:`_intake_facts` for ``size`` items, built once per size with
    bound parameters: the items as a ``UNION ALL`` of bound rows (a CTE both PostgreSQL
    and SQLite take), each joined to the tenant's row and its scalar subqueries."""
    tenant = bindparam("tenant_id", type_=Uuid())
    rows = [
        select(
            literal(i, Integer()).label("idx"),
            *(bindparam(f"{name}_{i}", type_=t).label(name) for name, t in _FACT_PARAMS.items()),
        )
        for i in range(size)
    ]
    item = (union_all(*rows) if size > 1 else rows[0]).cte("items")

    def first(column: Any, *where: Any) -> Any:
        return select(column).where(*where).limit(1).scalar_subquery()

    # Art. 30: a case repeats only earlier cases naming the same accused (none for most),
    # so whoever may read it may know every case its count counts — an accusation never
    # shows in the repeatCount of a case its accused may read. The same fields as
    # _petition (the batch's own earlier cases); no petitioner key, no count.
    earlier = (
        Case.tenant_id == tenant,
        Case.petitioner_key == item.c.petitioner_key,
        Case.category == item.c.category,
        func.coalesce(Case.accused_path, "") == item.c.accused_path,
        func.coalesce(Case.accused_username, "") == item.c.accused_username,
    )

    columns = [
        item.c.idx,
        Tenant.timezone,
        Tenant.case_prefix,
        first(TenantPolicy.data, TenantPolicy.tenant_id == tenant).label("policy_data"),
        first(
            Category.id,
            Category.tenant_id == tenant,
            Category.code == item.c.category,
            Category.active,
        ).label("category_id"),
        first(OrgUnit.id, OrgUnit.tenant_id == tenant, OrgUnit.path == item.c.location_path).label(
            "unit_id"
        ),
        first(OrgUnit.id, OrgUnit.tenant_id == tenant, OrgUnit.path == item.c.accused_path).label(
            "accused_id"
        ),
        first(Case.id, Case.tenant_id == tenant, Case.client_key == item.c.client_key).label(
            "existing_id"
        ),
        first(User.id, User.tenant_id == tenant, User.username == item.c.accused_username).label(
            "accused_user_id"
        ),
        # the candidates only: whether one is the same matter (a similar subject) is
        # decided by repeats.match over their rows (_with_repeats), read only when any
        select(func.count(Case.id)).where(*earlier).scalar_subquery().label("earlier_count"),
    ]
    return (
        select(*columns)
        .join_from(Tenant, item, true())
        .where(Tenant.id == tenant)
        .order_by(item.c.idx)
    )


async def _accused_at_intake(
    session: AsyncSession, tenant_id: uuid.UUID, data: RegisterCaseInput, accused_path: str | None
) -> Accused:
    """The accused units of a new accusation (need_to_know.py): the unit it names and the
    units where the person it names holds a staff role. BAD_USER_INPUT if they include
    the city root: everybody in the city holds a role inside it, so nobody here may
    receive, handle or even see it — Art. 30 sends it to the body above the city (the
    provincial petition bureau), outside this city's system (docs/security.md)."""
    facts = Accused(None, str(data.type), accused_path, data.accused_username)  # type: ignore[arg-type]
    if data.accused_username:
        units = await person_units(session, tenant_id, [data.accused_username])
        facts = dataclasses.replace(facts, person_paths=units.get(data.accused_username, ()))
    root = next((u for u in facts.accused_units if parent_path(u) is None), None)
    if root is not None:
        named_unit = accused_path is not None and parent_path(accused_path) is None
        raise BadUserInput(
            f"an accusation against the city itself ({root}"
            + ("" if named_unit else f", where {data.accused_username} holds a post")
            + ") cannot be handled in this city (Art. 30): forward it to the provincial "
            "petition bureau, the body above the city; it was not registered",
            field="accusedUnitPath" if named_unit else "accusedUsername",
        )
    return facts


async def _intake_holder(
    session: AsyncSession, grant: Grant, accused: Accused
) -> tuple[uuid.UUID, str]:
    """(id, path) of the unit holding a new case: the registrar's grant unit (known from the
    principal, no query) — unless it lies inside an accused unit (Art. 30: the named unit
    or one where the accused person holds a post): then the accusation goes straight to
    the nearest unit above that lies inside none (never the root: refused at intake)."""
    path = grant.unit_path
    if not accused.covers(path):
        return grant.unit_id, grant.unit_path
    while accused.covers(path):
        path = path.rsplit("/", 1)[0]
    holder = await unit_by_path(session, path)
    assert holder is not None  # an ancestor of the registrar's unit
    return holder.id, holder.path


async def _existing_by_key(
    session: AsyncSession, principal: Principal, client_key: str, payload_hash: str
) -> Case | None:
    existing = await session.scalar(select(Case).where(Case.client_key == client_key))
    if existing is None:
        return None
    if existing.registered_by_id != principal.account_id:
        raise _key_reused(by_another=True)
    if existing.payload_hash != payload_hash:
        raise _key_reused()
    return existing


def _key_reused(*, by_another: bool = False) -> Conflict:
    """CONFLICT on a reused key. A key is the city's (one case per key, whoever retries
    it), and only its registrar may replay it: another official's request says so rather
    than calling an identical petition "different". It tells nothing a CONFLICT does not."""
    if by_another:
        return Conflict(
            "clientKey is already in use in this city by another official; "
            "generate a new key for this petition",
            field="clientKey",
        )
    return Conflict("clientKey was already used for a different petition", field="clientKey")


async def _next_numbers(
    session: AsyncSession, tenant_id: uuid.UUID, prefix: str, timezone: str, at: datetime, n: int
) -> list[str]:
    """``SQ-2026-000123``…: the next ``n`` numbers of the year, in one counter bump; the
    counter row's lock serialises intakes, so no number is skipped.

    One upsert: the year's first intake creates the row with ``n``, every later one adds
    its ``n`` and holds the row lock until its transaction ends (a rolled-back intake
    gives its numbers back). A prebuilt Core statement on the session's connection (the
    counter is never loaded as an object, so the ORM has nothing to synchronise).
    """
    year = at.astimezone(ZoneInfo(timezone)).year
    conn = await session.connection()
    params = {"tenant_id": tenant_id, "id": new_id(), "year": year, "n": n, "created_at": now()}
    last = (await conn.execute(_counter_upsert(conn.dialect.name), params)).scalar_one()
    return [f"{prefix}-{year}-{k:06d}" for k in range(last - n + 1, last + 1)]


@cache
def _counter_upsert(dialect: str) -> Any:
    """The counter upsert of :func:`_next_numbers`, built once per dialect."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = CaseCounter.__table__
    n = bindparam("n", type_=Integer())
    return (
        insert(table)
        .values(
            tenant_id=bindparam("tenant_id"),
            id=bindparam("id"),
            year=bindparam("year"),
            last=n,
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "year"], set_={"last": table.c.last + n}
        )
        .returning(table.c.last)
    )


# --- lifecycle -------------------------------------------------------------------------


@dataclass
class Change:
    case: Case
    transition: lifecycle.Transition
    from_status: str
    clocks: deadlines.Clocks


# transitions whose name is not a verb phrase that reads well in "not allowed to … this case"
_VERBS = {
    "agree_objection": "decide the objection on",
    "refuse_objection": "decide the objection on",
    "report_back": "report back on",
    "start_mediation": "send to mediation",
    "record_mediation_outcome": "record the mediation of",
    "record_revisit": "re-visit",
}


def _verb(name: str) -> str:
    return _VERBS.get(name, name.replace("_", " "))


async def _begin(session: AsyncSession, principal: Principal, ref: CaseRef, name: str) -> Change:
    """Load, check version, state and scope — in that order — before anything changes."""
    transition = lifecycle.TRANSITIONS[name]
    require(principal, "case", transition.action)
    case = await find_case(session, principal, ref.case_id, lock=True)
    if case.version != ref.version:
        raise Conflict(
            f"case was changed by someone else (version {case.version}, you sent {ref.version})",
            field="version",
            currentVersion=case.version,
        )
    lifecycle.check(name, case.status)
    if (
        case.on_hold_since is not None
        and transition.target is not None
        and transition.target not in lifecycle.HANDLING
    ):
        # leaving the held step (reply, review decisions) would carry the hold, and the
        # days it already lasted, into the next step's clock: resume first
        raise InvalidTransition(
            f"the case is on hold (status {case.status}); resume it before you {_verb(name)} it",
            currentStatus=case.status,
        )
    if not acting_grants(principal, case, transition.action):
        raise Forbidden(f"not allowed to {_verb(name)} this case here")
    case.version = ref.version + 1
    return Change(case, transition, case.status, await deadlines.clocks_for(session, case))


async def _finish(
    session: AsyncSession,
    principal: Principal,
    change: Change,
    *,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> Case:
    case = change.case
    if change.transition.target is not None:
        case.status = change.transition.target
    case.updated_at = now()
    try:
        await session.flush()
    except StaleDataError as exc:
        raise Conflict("case was changed concurrently; reload and retry", field="version") from exc
    await append_event(
        session,
        case,
        principal,
        change.transition.kind,
        from_status=change.from_status,
        to_status=case.status,
        reason=reason,
        data=data,
    )
    await deadlines.refresh_due(session, case, change.clocks)
    return case


def _reason(value: str | None, field: str = "reason", *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    return v.text(value or "", field, max_len=5000)


async def route_case(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    *,
    to_unit_path: str,
    mode: RouteMode,
) -> Case:
    """转送 (TRANSFER) or 交办 (ASSIGN) to a unit in the router's scope (Art. 22)."""
    change = await _begin(session, principal, ref, "route")
    case = change.case
    await _no_pending_objection(session, case)
    v.path(to_unit_path, "toUnitPath")
    target = await unit_by_path(session, to_unit_path)
    routers = acting_grants(principal, case, "route")
    if target is None or not any(path_covers(g.unit_path, target.path) for g in routers):
        raise v.unit_out_of_reach(to_unit_path, "toUnitPath")
    if target.path == case.holder_path:
        raise BadUserInput("the case is already held by that unit", field="toUnitPath")
    if (await accused_of(session, case)).covers(target.path):
        # Art. 30: the accused unit, or a unit where the accused person holds a post
        raise BadUserInput(
            "an accusation cannot go to the accused unit or a unit of the accused person",
            field="toUnitPath",
        )
    data = {"from": case.holder_path, "to": target.path, "mode": RouteMode(mode).value}
    case.routed_from_path = case.holder_path
    case.holder_unit_id, case.holder_path = target.id, target.path
    await deadlines.finish_steps(session, case, steps={Step.ROUTING, Step.ACCEPTANCE})
    await deadlines.open_step(session, case, Step.ACCEPTANCE, now(), change.clocks)
    return await _finish(session, principal, change, data=data)


async def object_to_transfer(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str
) -> Case:
    """Art. 23: the receiving body objects within 5 working days, with its reasons.

    The case stays with it (``ROUTED``) and an ``OBJECTION_DECISION`` step opens for the
    routing office, which agrees or refuses (:func:`decide_objection`); the acceptance
    clock runs on meanwhile (a refused objection does not buy the body time).
    """
    change = await _begin(session, principal, ref, "object_transfer")
    case = change.case
    reason = _reason(reason)
    if case.routed_from_path is None:
        raise InvalidTransition("this case was not transferred", currentStatus=case.status)
    await _no_pending_objection(session, case)
    routed = await _last_seq(session, case, "ROUTE")
    if (await _last_seq(session, case, "OBJECT_TRANSFER")) > routed:
        raise InvalidTransition(
            "this transfer was already objected to and the routing office decided",
            currentStatus=case.status,
        )
    routed_at = await _last_event_at(session, case, "ROUTE")
    window = compute_due(Step.OBJECTION, routed_at, change.clocks.calendar, change.clocks.policy)
    if now() > window.due_at:
        raise InvalidTransition(
            "the 5-working-day objection window has passed", currentStatus=case.status
        )
    days = change.clocks.policy.limits.get(Step.OBJECTION_DECISION, OBJECTION_DECISION_DAYS)
    decision = await deadlines.open_step(
        session, case, Step.OBJECTION_DECISION, now(), change.clocks, days=days
    )
    decision.note = reason
    data = {"from": case.holder_path, "to": case.routed_from_path}
    return await _finish(session, principal, change, reason=reason, data=data)


async def decide_objection(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, agree: bool, reason: str
) -> Case:
    """The routing office's answer to an Art. 23 objection.

    Agreed: the case goes back to the office (``REGISTERED``, a new routing clock) and the
    objecting body's acceptance step ends ``OBJECTED`` — not met, not missed. Refused: the
    case stays with that body, whose acceptance clock runs on. Either way the office's
    ``OBJECTION_DECISION`` step is met. Only a grant covering the office that routed the
    case decides (the objecting body, below it, never can).
    """
    change = await _begin(
        session, principal, ref, "agree_objection" if agree else "refuse_objection"
    )
    case = change.case
    pending = await _pending_objection(session, case)
    if pending is None or case.routed_from_path is None:
        raise InvalidTransition(
            "no objection to this transfer is waiting for a decision", currentStatus=case.status
        )
    office = case.routed_from_path
    if not any(path_covers(g.unit_path, office) for g in acting_grants(principal, case, "route")):
        raise Forbidden("only the office that routed the case decides the objection to it")
    reason = _reason(reason)
    pending.status, pending.finished_at = DeadlineStatus.MET, now()
    data: dict[str, Any] = {"agree": bool(agree), "objectedBy": case.holder_path}
    if agree:
        back = await unit_by_path(session, office)
        data |= {"from": case.holder_path, "to": office}
        case.holder_unit_id, case.holder_path = back.id, back.path
        case.routed_from_path = None
        await deadlines.finish_steps(
            session, case, steps={Step.ACCEPTANCE}, status=DeadlineStatus.OBJECTED
        )
        await deadlines.open_step(session, case, Step.ROUTING, now(), change.clocks)
    return await _finish(session, principal, change, reason=reason, data=data)


async def _pending_objection(session: AsyncSession, case: Case) -> CaseDeadline | None:
    """The open ``OBJECTION_DECISION`` step of ``case`` (an objection awaiting the office)."""
    return await session.scalar(
        select(CaseDeadline).where(
            CaseDeadline.case_id == case.id,
            CaseDeadline.step == Step.OBJECTION_DECISION.value,
            CaseDeadline.status == DeadlineStatus.OPEN.value,
        )
    )


async def _no_pending_objection(session: AsyncSession, case: Case) -> None:
    """While the routing office decides an objection the case waits: nothing else moves it."""
    if await _pending_objection(session, case) is not None:
        raise InvalidTransition(
            "an objection to the transfer awaits the routing office's decision",
            currentStatus=case.status,
        )


async def divert_case(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    *,
    channel: DivertChannel,
    reason: str,
) -> Case:
    """诉访分离: litigation, arbitration or reconsideration matters leave the petition track."""
    change = await _begin(session, principal, ref, "divert")
    await _no_pending_objection(session, change.case)
    reason = _reason(reason)
    await deadlines.finish_steps(session, change.case, include_supervision=True)
    data = {"channel": DivertChannel(channel).value}
    return await _finish(session, principal, change, reason=reason, data=data)


async def accept_case(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str | None = None
) -> Case:
    """受理: the handling clock starts now — 60 days for claims (Art. 34), the tenant's own
    shorter limit for suggestions and accusations when its policy sets one (Arts. 32, 33).

    Art. 36: after a re-review decision the same facts are not accepted again. A case
    registered as the same matter as such a case (``final_of_id``) is normally rejected;
    accepting it anyway (new facts, a mistaken match) needs a ``reason``, recorded on the
    ACCEPT event with the earlier case (``data.finalOf``).
    """
    change = await _begin(session, principal, ref, "accept")
    await _no_pending_objection(session, change.case)
    data = None
    if change.case.final_of_id is not None:
        if not (reason or "").strip():
            raise BadUserInput(
                "the same matter's re-review (复核) was decided: the same facts are not "
                "accepted again (Art. 36); reject the case, or give the reason to accept it",
                field="reason",
                finalOf=str(change.case.final_of_id),
            )
        reason, data = _reason(reason), {"finalOf": str(change.case.final_of_id)}
    elif reason is not None:
        reason = _reason(reason) if reason.strip() else None
    await deadlines.finish_steps(session, change.case, steps={Step.ROUTING, Step.ACCEPTANCE})
    deadlines.open_handling(session, change.case, now(), change.clocks)
    return await _finish(session, principal, change, reason=reason, data=data)


async def reject_case(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str
) -> Case:
    change = await _begin(session, principal, ref, "reject")
    await _no_pending_objection(session, change.case)
    reason = _reason(reason)
    await deadlines.finish_steps(session, change.case)
    return await _finish(session, principal, change, reason=reason)


async def request_extension(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, days: int, reason: str
) -> Case:
    """One extension of at most 30 days (Art. 34), pending until a leader approves it."""
    change = await _begin(session, principal, ref, "request_extension")
    case = change.case
    if case.extension_days is not None:
        raise InvalidTransition(
            "an extension was already requested for this case", currentStatus=case.status
        )
    extended_handling_days(change.clocks.policy, days)  # Art. 34: 1-30 days, else field "days"
    case.extension_days, case.extension_reason = days, _reason(reason)
    return await _finish(session, principal, change, reason=reason, data={"days": days})


async def approve_extension(session: AsyncSession, principal: Principal, ref: CaseRef) -> Case:
    """The agency head (a leader whose unit covers the holder) approves; not the requester."""
    change = await _begin(session, principal, ref, "approve_extension")
    case = change.case
    if case.extension_days is None:
        raise InvalidTransition("no extension was requested", currentStatus=case.status)
    requester = await _last_event_actor(session, case, "REQUEST_EXTENSION")
    if requester == principal.username:
        raise Forbidden("the requester cannot approve its own extension")
    case.extension_approved = True
    await deadlines.extend_step(session, case, Step.HANDLING, case.extension_days, change.clocks)
    return await _finish(session, principal, change, data={"days": case.extension_days})


async def reply_case(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, opinion: str
) -> Case:
    """答复意见 delivered: the handling clock stops; the review window opens for the petitioner."""
    change = await _begin(session, principal, ref, "reply")
    case = change.case
    if await pending_mediation(session, case.id) is not None:
        # 四调联动 (seeds 001, 004): the reply follows the mediation, whose outcome it builds on
        raise InvalidTransition(
            "the case is in mediation: record the mediation's outcome before the reply",
            currentStatus=case.status,
        )
    case.reply_opinion = v.text(opinion, "opinion", max_len=MAX_CONTENT)
    case.replied_at = now()
    # the reply answers any 督办 order too (its SUPERVISION step closes with it)
    await deadlines.finish_steps(
        session, case, steps={Step.HANDLING, Step.SUPERVISION}, include_supervision=True
    )
    # the body that replied: the replier's own unit nearest the case (Art. 35 counts from it)
    unit = max((g.unit_path for g in acting_grants(principal, case, "handle")), key=len)
    return await _finish(session, principal, change, data={"unit": unit})


async def rate_satisfaction(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, rating: Satisfaction
) -> Case:
    """The petitioner's rating, recorded by the official who made the callback (回访)."""
    change = await _begin(session, principal, ref, "rate_satisfaction")
    change.case.rating, change.case.rated_at = Satisfaction(rating), now()
    return await _finish(session, principal, change, data={"rating": Satisfaction(rating).value})


async def _within_window(change: Change, step: Step, since: datetime, field: str) -> None:
    window = compute_due(step, since, change.clocks.calendar, change.clocks.policy)
    if now() > window.due_at:
        raise InvalidTransition(
            f"the 30-day window to ask for this ended on {window.due_date.isoformat()}",
            currentStatus=change.case.status,
            field=field,
            windowEndsOn=window.due_date.isoformat(),
        )


# Arts. 35-36: who decides each step is the body one level above the one that decided the
# step before — the reply for a review (复查), the review decision for a re-review (复核).
_DECIDED_BEFORE = {
    "request_review": "REPLY",
    "decide_review": "REPLY",
    "request_re_review": "DECIDE_REVIEW",
    "decide_re_review": "DECIDE_REVIEW",
}
_ARTICLE = {"REPLY": "Art. 35", "DECIDE_REVIEW": "Art. 36"}


def parent_path(path: str) -> str | None:
    """The unit one level above ``path`` in the city, None for the city itself."""
    parent = path.rsplit("/", 1)[0]
    return parent if parent.count("/") >= 1 else None


async def deciding_unit(session: AsyncSession, case: Case, name: str) -> tuple[str, str | None]:
    """(unit that decided the step before, unit that may decide ``name``'s step: its parent).

    The unit that replied is recorded on the REPLY event (the replier's unit nearest the
    case), the reviewing unit on DECIDE_REVIEW; an event without it (older data) counts
    as decided by the unit holding the case, and its reviewer as that unit's parent.
    """
    kind = _DECIDED_BEFORE[name]
    data = await _last_event_data(session, case, kind)
    before = (data or {}).get("unit")
    if before is None:
        before = case.holder_path if kind == "REPLY" else parent_path(case.holder_path)
    if before is None:
        return case.holder_path, None
    return before, parent_path(before)


async def _require_deciding_unit(
    session: AsyncSession, principal: Principal, case: Case, name: str
) -> str:
    """The unit the principal decides ``name`` for: exactly the parent of the previous
    decider (FORBIDDEN with ``extensions.decidingUnit`` otherwise)."""
    before, unit = await deciding_unit(session, case, name)
    what = "review (复查)" if "re_review" not in name else "re-review (复核)"
    article = _ARTICLE[_DECIDED_BEFORE[name]]
    if unit is None or not any(
        g.unit_path == unit for g in acting_grants(principal, case, "review")
    ):
        raise Forbidden(
            f"the {what} is decided by {unit or 'the body above this city'}, one level above "
            f"{before} which decided the step before ({article})",
            decidingUnit=unit,
        )
    return unit


async def _request_decision(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    name: str,
    *,
    window: Step,
    decision: Step,
    reason: str | None,
) -> Case:
    """The petitioner asks for 复查/复核 within the window; the decision clock starts."""
    change = await _begin(session, principal, ref, name)
    since = (
        change.case.replied_at if window is Step.REVIEW_REQUEST else change.case.review_decided_at
    )
    await _within_window(change, window, since, "caseId")
    before, unit = await deciding_unit(session, change.case, name)
    if unit is None:
        article = _ARTICLE[_DECIDED_BEFORE[name]]
        raise InvalidTransition(
            f"{before} is the city's own body: the body one level above it, which decides "
            f"this request ({article}), is outside the city; the petitioner asks it there",
            currentStatus=change.case.status,
            decidingUnit=None,
        )
    await deadlines.open_step(session, change.case, decision, now(), change.clocks)
    return await _finish(
        session,
        principal,
        change,
        reason=_reason(reason, required=False),
        data={"decidingUnit": unit},
    )


async def _decide(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    name: str,
    *,
    decision: Step,
    opinion: str,
) -> Case:
    change = await _begin(session, principal, ref, name)
    unit = await _require_deciding_unit(session, principal, change.case, name)
    opinion = v.text(opinion, "opinion", max_len=MAX_CONTENT)
    if decision is Step.REVIEW_DECISION:
        change.case.review_decided_at = now()
    await deadlines.finish_steps(session, change.case, steps={decision})
    return await _finish(session, principal, change, reason=opinion, data={"unit": unit})


async def request_review(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str | None = None
) -> Case:
    """复查: asked within 30 days of receiving the opinion (Art. 35)."""
    return await _request_decision(
        session,
        principal,
        ref,
        "request_review",
        window=Step.REVIEW_REQUEST,
        decision=Step.REVIEW_DECISION,
        reason=reason,
    )


async def decide_review(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, opinion: str
) -> Case:
    return await _decide(
        session, principal, ref, "decide_review", decision=Step.REVIEW_DECISION, opinion=opinion
    )


async def request_re_review(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str | None = None
) -> Case:
    """复核: asked within 30 days of the review decision (Art. 36)."""
    return await _request_decision(
        session,
        principal,
        ref,
        "request_re_review",
        window=Step.RE_REVIEW_REQUEST,
        decision=Step.RE_REVIEW_DECISION,
        reason=reason,
    )


async def decide_re_review(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, opinion: str
) -> Case:
    """After 复核 the same facts are not accepted again: only closing remains."""
    return await _decide(
        session,
        principal,
        ref,
        "decide_re_review",
        decision=Step.RE_REVIEW_DECISION,
        opinion=opinion,
    )


async def hold_case(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, reason: str
) -> Case:
    """听证 or suspension (中止), approved by a leader over the holder: the statutory clocks
    stop until resumed. Like an extension, no handler stops its own clock: the hold is
    put by the approving leader (``case:hold``), the handler's request is its reason."""
    change = await _begin(session, principal, ref, "hold")
    if change.case.on_hold_since is not None:
        raise InvalidTransition("the case is already on hold", currentStatus=change.case.status)
    change.case.on_hold_since = now()
    return await _finish(session, principal, change, reason=_reason(reason))


async def resume_case(session: AsyncSession, principal: Principal, ref: CaseRef) -> Case:
    change = await _begin(session, principal, ref, "resume")
    case = change.case
    if case.on_hold_since is None:
        raise InvalidTransition("the case is not on hold", currentStatus=case.status)
    held = await deadlines.shift_for_hold(session, case, case.on_hold_since, now(), change.clocks)
    case.on_hold_since = None
    return await _finish(session, principal, change, data={"heldDays": held})


_SATISFIED = frozenset({Satisfaction.SATISFIED, Satisfaction.BASICALLY_SATISFIED})


def _petitioner_windows_spent(change: Change) -> None:
    """Closing must not cut off the petitioner's review or re-review (Arts. 35, 36).

    A replied case closes once its 30-day review window has passed unused, a reviewed one
    once the re-review window has; either earlier when the petitioner declared itself
    (basically) satisfied after that reply or review decision. After the re-review
    decision, a rejection or a diversion nothing is left to wait for.
    """
    case = change.case
    if case.status == CaseStatus.REPLIED:
        step, since, what = Step.REVIEW_REQUEST, case.replied_at, "review (Art. 35)"
    elif case.status == CaseStatus.REVIEWED:
        step, since, what = Step.RE_REVIEW_REQUEST, case.review_decided_at, "re-review (Art. 36)"
    else:
        return
    if since is None:
        return
    rated = case.rated_at is not None and case.rated_at >= since
    if rated and case.rating is not None and Satisfaction(case.rating) in _SATISFIED:
        return
    window = compute_due(step, since, change.clocks.calendar, change.clocks.policy)
    if now() <= window.due_at:
        raise InvalidTransition(
            f"the petitioner may ask for {what} until {window.due_date.isoformat()}: close "
            "the case after that, or once the petitioner declares satisfaction",
            currentStatus=case.status,
            windowEndsOn=window.due_date.isoformat(),
        )


async def close_case(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, resolution: str
) -> Case:
    """Closed with a resolution, once the petitioner's windows allow it (see above)."""
    change = await _begin(session, principal, ref, "close")
    _petitioner_windows_spent(change)
    change.case.resolution = v.text(resolution, "resolution", max_len=MAX_CONTENT)
    change.case.closed_at = now()
    await deadlines.finish_steps(session, change.case, include_supervision=True)
    return await _finish(session, principal, change, reason=change.case.resolution)


async def assign_case_leader(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, username: str
) -> Case:
    """包案: a leader whose unit covers the case owns it."""
    change = await _begin(session, principal, ref, "assign_leader")
    case = change.case
    leader = await session.scalar(
        select(User).where(User.username == v.username(username, "username"))
    )
    grants = await grants_of(session, leader.id) if leader else []
    accused = await accused_of(session, case)
    if not any(
        r == Role.LEADER and path_covers(u.path, case.holder_path) and not accused.covers(u.path)
        for r, u in grants
    ):
        raise BadUserInput(f"{username} is not a leader over this case", field="username")
    if leader is not None and is_barred(accused, [u.path for _, u in grants], leader.username):
        # Art. 30: nor can anybody holding a role inside an accused unit — the named one or
        # one where the accused person holds a post (it cannot read it)
        raise BadUserInput("the accused cannot own the case", field="username")
    case.leader_id = leader.id
    return await _finish(session, principal, change, data={"leader": username})


async def issue_supervision_order(
    session: AsyncSession, principal: Principal, ref: CaseRef, *, due_date: date, note: str
) -> Case:
    """督办 with its own due date, shown on the warning board like any step."""
    change = await _begin(session, principal, ref, "issue_supervision_order")
    note = v.text(note, "note", max_len=5000)
    if due_date < change.clocks.local_date(now()):
        raise BadUserInput("dueDate is in the past", field="dueDate")
    deadlines.open_supervision(
        session, change.case, due_date, change.clocks, note=note, issued_by=principal.account_id
    )
    return await _finish(
        session, principal, change, reason=note, data={"dueDate": due_date.isoformat()}
    )


async def escalate_case(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    *,
    target: EscalationTarget,
    reason: str,
) -> Case:
    """Hard cases to the leadership group; 督查 / 执法 brigades for unsolved or unlawful demands."""
    change = await _begin(session, principal, ref, "escalate")
    data = {"target": EscalationTarget(target).value}
    return await _finish(session, principal, change, reason=_reason(reason), data=data)


async def record_joint_meeting(
    session: AsyncSession,
    principal: Principal,
    ref: CaseRef,
    *,
    notes: str,
    participants: list[str],
) -> Case:
    """一会四联: notes of the joint meeting on the case."""
    change = await _begin(session, principal, ref, "record_joint_meeting")
    notes = v.text(notes, "notes", max_len=MAX_CONTENT)
    participants = participants[:50]
    await _check_participants(session, change.case, participants)
    return await _finish(
        session, principal, change, reason=notes, data={"participants": participants}
    )


async def _check_participants(session: AsyncSession, case: Case, participants: list[str]) -> None:
    """Participants written as usernames get the check of 包案 (assign_case_leader): an
    official of another city, or one barred from the case (Art. 30: the accused person,
    anybody holding a role inside an accused unit), is BAD_USER_INPUT. Other texts
    (names, 住建局, 律师) are free."""
    names = {}
    for text in participants:
        canonical = (text or "").strip().lower()
        if v.USERNAME_RE.match(canonical):
            names.setdefault(canonical, text)
    if not names:
        return
    accounts = (
        await session.execute(
            select(Account.id, Account.username, Account.tenant_id).where(
                Account.username.in_(sorted(names))
            )
        )
    ).all()
    for _, username, tenant_id in accounts:
        if tenant_id != case.tenant_id:
            raise BadUserInput(
                f"participant {names[username]} is not an official of this city",
                field="participants",
            )
    allowed = set(await may_know(session, case.tenant_id, case, [i for i, *_ in accounts]))
    for account_id, username, _ in accounts:
        if account_id not in allowed:
            raise BadUserInput(
                f"participant {names[username]} may not take part: the accused cannot learn "
                "of the case (Art. 30)",
                field="participants",
            )


async def _last_event_at(session: AsyncSession, case: Case, kind: str) -> datetime:
    at = await session.scalar(
        select(CaseEvent.at)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )
    return at or case.received_at


async def _last_event_data(session: AsyncSession, case: Case, kind: str) -> Any:
    return await session.scalar(
        select(CaseEvent.data)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )


async def _last_seq(session: AsyncSession, case: Case, kind: str) -> int:
    """The sequence number of the case's last ``kind`` event (0: none)."""
    seq = await session.scalar(
        select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
    )
    return int(seq or 0)


async def _last_event_actor(session: AsyncSession, case: Case, kind: str) -> str | None:
    return await session.scalar(
        select(CaseEvent.actor_username)
        .where(CaseEvent.case_id == case.id, CaseEvent.kind == kind)
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    )


async def categories(session: AsyncSession, principal: Principal) -> list[Any]:
    """The tenant's category list (any official of the tenant may read it)."""
    require(principal, "org_unit", "read")
    return await list_categories(session)
