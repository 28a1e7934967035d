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

from sqlalchemy import ColumnElement, Uuid, bindparam, func, literal, null, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Grant, Principal
from backend.authz.roles import Role
from backend.authz.scope import path_covers
from backend.cases import deadlines, lifecycle, pii
from backend.cases.categories import list_categories
from backend.cases.events import append_event, insert_first_event
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
    # 京、省交办 (seed 000): recorded by backend/cases/assigned.py; in the hash, so a replay
    # with another 交办单 is a CONFLICT (left out when absent: older hashes stay valid)
    assigned_down: AssignedDown | None = None

    def payload_hash(self) -> str:
        # what dataclasses.asdict gave, without its deep copy: every field but the key
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "client_key"}
        body["petitioner"] = vars(self.petitioner)
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
    id (NOT_FOUND, as an invisible case). Shared with the compiled reads (compiled.py)."""
    if not (may(principal, "case", "read") or may(principal, "case", "read_own")):
        raise Forbidden("not allowed to read cases")
    cid = parse_id(case_id)
    return None if cid is None else [Case.id == cid, read_predicate(principal)]


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
    case, replay = await _register(session, principal, data)
    if replay:  # the case may have moved since: the read rule decides, in SQL
        seen = await session.scalar(
            select(Case.id).where(Case.id == case.id, read_predicate(principal))
        )
        return Registered(case, seen is not None)
    # a new case is held in the registrar's scope: only Art. 30 can hide it from it
    facts = await accused_of(session, case)
    barred = is_barred(facts, [g.unit_path for g in principal.grants], principal.username)
    return Registered(case, not barred)


MAX_BULK_INTAKE = 500
"""Most petitions one :func:`intake_many` takes (a hotline's or the online portal's batch)."""


async def intake_many(
    session: AsyncSession, principal: Principal, items: Sequence[RegisterCaseInput]
) -> list[Registered]:
    """Bulk intake (hotline/online imports): each item exactly as :func:`intake` takes it
    — same validation, authorization, Art. 30 answer and ``clientKey`` replay — in the
    caller's one transaction, so the batch is all or nothing.

    A refused item aborts the whole batch: its error carries ``extensions.index`` (the
    item's position, from 0) and the caller's transaction rolls back, numbers included
    (the counter row is part of it), so numbers stay gap-free. Items are registered in
    order: numbers follow the batch's order, and a ``clientKey`` repeated inside the
    batch replays its first item like a retry would.
    """
    if not 1 <= len(items) <= MAX_BULK_INTAKE:
        raise BadUserInput(
            f"between 1 and {MAX_BULK_INTAKE} petitions per batch, not {len(items)}",
            field="inputs",
        )
    done: list[Registered] = []  # each item opens the transaction before its savepoint
    for index, data in enumerate(items):
        try:
            done.append(await intake(session, principal, data))
        except AppError as exc:
            exc.extensions["index"] = index
            raise
    return done


async def _open_for_savepoints(session: AsyncSession) -> None:
    """Make sure ``session``'s transaction is really open before a SAVEPOINT on SQLite.

    The SQLite driver (pysqlite's legacy transaction mode, kept on purpose) sends
    ``BEGIN`` only before a write; a ``SAVEPOINT`` sent earlier opens the transaction
    itself, and its ``RELEASE`` then *commits* it — a registered case (the first item of
    a batch) would survive the rollback of its transaction. A no-op UPDATE first makes the driver send its
    ``BEGIN``. Nothing on PostgreSQL.
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
    case, _ = await _register(session, principal, data)
    return case


async def _register(
    session: AsyncSession, principal: Principal, data: RegisterCaseInput
) -> tuple[Case, bool]:
    """The case registered, or the one already under this ``clientKey`` (replay: True).

    Hot path (docs/performance.md "Intake"): one statement reads everything the checks
    need (:func:`_intake_facts`), the counter upsert and the case INSERT share a
    savepoint, and the first event and clock are Core INSERTs.
    """
    require(principal, "case", "register")
    data = _normalised(data)
    facts = await _validate_intake(session, principal, data)
    payload_hash = data.payload_hash()  # of the normalised copy
    if facts.existing_id is not None:
        existing = await _existing_by_key(session, principal, data.client_key, payload_hash)
        if existing:
            return existing, True
    assert principal.tenant_id is not None and facts.unit_id is not None
    received_at = facts.received_at
    grant = max(
        (
            g
            for g in allowed_grants(principal, "case", "register")
            if path_covers(g.unit_path, data.location_path)
        ),
        key=lambda g: len(g.unit_path),
    )
    accused = await _accused_at_intake(session, principal.tenant_id, data, facts.accused_path)
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
        received_at=received_at,
        repeat_count=facts.repeat_count,
        repeat_of_id=facts.repeat_of,
        skip_level=data.skip_level,
        updated_at=now(),
    )
    clocks = deadlines.Clocks(
        policy_from(facts.policy_data, facts.timezone), await load_calendar(session)
    )
    routing = deadlines.first_step(case, Step.ROUTING, received_at, clocks)
    await _open_for_savepoints(session)  # the savepoint must not commit the case (SQLite)
    try:
        async with session.begin_nested():
            case.number = await _next_number(
                session, principal.tenant_id, facts.case_prefix, facts.timezone, now()
            )
            session.add(case)
            await session.flush()
    except IntegrityError:
        # the savepoint's rollback already expunged the pending case (and undid the counter)
        existing = await _existing_by_key(session, principal, data.client_key, payload_hash)
        if existing:
            return existing, True
        raise
    for take_part in case_registered:  # 首问负责: a visit's duty leader (rosters)
        await take_part(session, case)
    await insert_first_event(
        session,
        case,
        principal,
        "REGISTERED",
        to_status=CaseStatus.REGISTERED,
        data={
            "number": case.number,
            "channel": data.channel.value,
            "repeatCount": facts.repeat_count,
            "skipLevel": data.skip_level.value,
        },
    )
    await deadlines.insert_first_step(session, routing)
    return case, False


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
    repeat_of: uuid.UUID | None


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


async def _validate_intake(
    session: AsyncSession, principal: Principal, data: RegisterCaseInput
) -> _IntakeFacts:
    """Check the normalised input against the city; errors come in the order the fields
    are checked below (input shape, category, receivedAt, location, accused)."""
    phone, id_no = data.petitioner.phone, data.petitioner.id_number
    if data.head_count < 1 or data.head_count > 10_000:
        raise BadUserInput("headCount must be between 1 and 10000", field="headCount")
    if principal.tenant_id is None:
        raise Forbidden("cases are registered in a city")
    current = now()
    received_at = data.received_at or current
    key = pii.petitioner_key(principal.tenant_id, id_no, phone)
    row = await _intake_facts(session, principal.tenant_id, data, key, received_at)
    if row.category_id is None:
        raise BadUserInput(f"unknown category {data.category}", field="category")
    if received_at.tzinfo is None:
        raise BadUserInput("receivedAt needs a time zone offset", field="receivedAt")
    if received_at > current + CLOCK_SKEW:
        raise BadUserInput("receivedAt cannot be in the future", field="receivedAt")
    v.path(data.location_path, "locationPath")
    if row.unit_id is None or not any(
        path_covers(g.unit_path, data.location_path)
        for g in allowed_grants(principal, "case", "register")
    ):
        raise BadUserInput(f"unknown org unit {data.location_path}", field="locationPath")
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
        petitioner_key=key,
        repeat_count=int(row.repeat_count or 0),
        repeat_of=row.repeat_of if row.repeat_count else None,
    )


async def _intake_facts(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    data: RegisterCaseInput,
    key: str | None,
    received_at: datetime,
) -> Any:
    """One round trip instead of seven: the category, location and accused units, a case
    already under this clientKey, the tenant's time zone, prefix and deadline policy, and
    重复访 — how many earlier cases of the same petitioner and category fall within the
    window, and the first of them (the new case links to it).

    Run on the session's connection as a prebuilt Core statement (no per-call statement
    building, cache-key walk or ORM hook): every subquery names the tenant itself, and on
    PostgreSQL row-level security applies as to any statement of the transaction.
    """
    repeats = key is not None and received_at.tzinfo is not None
    params = {
        "tenant_id": tenant_id,
        "category": data.category,
        "location_path": data.location_path,
        "accused_path": data.accused_unit_path or "",
        "accused_username": data.accused_username or "",
        "client_key": data.client_key,
    }
    if repeats:
        params["petitioner_key"] = key
        params["since"] = received_at - timedelta(days=REPEAT_WINDOW_DAYS)
    conn = await session.connection()
    return (await conn.execute(_intake_facts_statement(repeats), params)).one()


@cache
def _intake_facts_statement(repeats: bool) -> Any:
    """The statement of :func:`_intake_facts`, built once per shape (with or without the
    repeat count) with bound parameters."""
    tenant = bindparam("tenant_id", type_=Uuid())

    def first(column: Any, *where: Any) -> Any:
        return select(column).where(*where).limit(1).scalar_subquery()

    columns = [
        Tenant.timezone,
        Tenant.case_prefix,
        first(TenantPolicy.data, TenantPolicy.tenant_id == tenant).label("policy_data"),
        first(
            Category.id,
            Category.tenant_id == tenant,
            Category.code == bindparam("category"),
            Category.active,
        ).label("category_id"),
        first(
            OrgUnit.id, OrgUnit.tenant_id == tenant, OrgUnit.path == bindparam("location_path")
        ).label("unit_id"),
        first(
            OrgUnit.id, OrgUnit.tenant_id == tenant, OrgUnit.path == bindparam("accused_path")
        ).label("accused_id"),
        first(Case.id, Case.tenant_id == tenant, Case.client_key == bindparam("client_key")).label(
            "existing_id"
        ),
        first(
            User.id, User.tenant_id == tenant, User.username == bindparam("accused_username")
        ).label("accused_user_id"),
    ]
    if repeats:
        earlier = (
            Case.tenant_id == tenant,
            Case.petitioner_key == bindparam("petitioner_key"),
            Case.category == bindparam("category"),
            Case.received_at >= bindparam("since"),
            # Art. 30: a case repeats only earlier cases naming the same accused (none for
            # most), so whoever may read it may know every case its count counts — an
            # accusation never shows in the repeatCount of a case its accused may read
            func.coalesce(Case.accused_path, "") == bindparam("accused_path"),
            func.coalesce(Case.accused_username, "") == bindparam("accused_username"),
        )
        columns += [
            select(func.count(Case.id)).where(*earlier).scalar_subquery().label("repeat_count"),
            select(Case.id)
            .where(*earlier)
            .order_by(Case.received_at, Case.id)
            .limit(1)
            .scalar_subquery()
            .label("repeat_of"),
        ]
    else:
        columns += [literal(0).label("repeat_count"), null().label("repeat_of")]
    return select(*columns).where(Tenant.id == tenant)


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
    if existing.payload_hash != payload_hash or existing.registered_by_id != principal.account_id:
        raise Conflict("clientKey was already used for a different petition", field="clientKey")
    return existing


async def _next_number(
    session: AsyncSession, tenant_id: uuid.UUID, prefix: str, timezone: str, at: datetime
) -> str:
    """``SQ-2026-000123``: the counter row's lock serialises intakes, so no number is skipped.

    One upsert: the year's first case creates the row with 1, every later one bumps it and
    holds the row lock until its transaction ends (a rolled-back intake gives it back).
    A prebuilt Core statement on the session's connection (the counter is never loaded as
    an object, so the ORM has nothing to synchronise).
    """
    year = at.astimezone(ZoneInfo(timezone)).year
    conn = await session.connection()
    params = {"tenant_id": tenant_id, "id": new_id(), "year": year, "created_at": now()}
    last = (await conn.execute(_counter_upsert(conn.dialect.name), params)).scalar_one()
    return f"{prefix}-{year}-{last:06d}"


@cache
def _counter_upsert(dialect: str) -> Any:
    """The counter upsert of :func:`_next_number`, built once per dialect."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = CaseCounter.__table__
    return (
        insert(table)
        .values(
            tenant_id=bindparam("tenant_id"),
            id=bindparam("id"),
            year=bindparam("year"),
            last=1,
            created_at=bindparam("created_at"),
        )
        .on_conflict_do_update(
            index_elements=["tenant_id", "year"], set_={"last": table.c.last + 1}
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
        raise BadUserInput(f"unknown org unit {to_unit_path}", field="toUnitPath")
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


async def accept_case(session: AsyncSession, principal: Principal, ref: CaseRef) -> Case:
    """受理: the handling clock (60 days for claims, Art. 34) starts now."""
    change = await _begin(session, principal, ref, "accept")
    await _no_pending_objection(session, change.case)
    await deadlines.finish_steps(session, change.case, steps={Step.ROUTING, Step.ACCEPTANCE})
    await deadlines.open_step(session, change.case, Step.HANDLING, now(), change.clocks)
    return await _finish(session, principal, change)


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
