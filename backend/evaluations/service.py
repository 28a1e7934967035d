"""案件办理质量评价: the evaluator pool, eligible cases, panel draws, scores and verdicts.

Functions take the session and the principal, raise the contract's errors and
never commit. A concluded panel opens a FOLLOW_UP step on the case, so the
verdict's duty shows on the case's deadlines and the warning board.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.scope import path_covers, subtree_filter
from backend.cases import deadlines, need_to_know, pii
from backend.cases import queries as case_queries
from backend.cases.events import append_event
from backend.cases.models import (
    Case,
    CaseDeadline,
    CaseEvent,
    DeadlineStatus,
    Satisfaction,
    SkipLevel,
)
from backend.cases.rules import Step
from backend.cases.service import find_case
from backend.cases.visibility import inside_accused, read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.db import TenantScope, use_scope
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import new_id, parse_id
from backend.evaluations import draw as drawing
from backend.evaluations.models import (
    Evaluation,
    EvaluationPanel,
    Evaluator,
    EvaluatorCategory,
    EvaluatorStatus,
    PanelMember,
    PanelStatus,
    Verdict,
)
from backend.evaluations.policy import EvaluationPolicy, load_policy
from backend.evaluations.scoring import (
    DIMENSIONS,
    FOLLOW_UP_DUTIES,
    MAX_SCORE,
    MIN_SCORE,
    Scores,
    panel_result,
)
from backend.notifications.service import dedupe_key, enqueue
from backend.tenants.models import OrgUnit, Role, RoleAssignment, Tenant, User
from backend.tenants.service import tenant_by_slug

REPEAT_THRESHOLD = 3  # 赴京到省重复信访3次以上
MAX_EXCLUDED_PATHS = 50
MAX_RELATED = 20
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
STATUS_MOVES: dict[EvaluatorStatus, set[EvaluatorStatus]] = {
    EvaluatorStatus.APPLIED: {EvaluatorStatus.ACTIVE, EvaluatorStatus.RETIRED},
    EvaluatorStatus.ACTIVE: {EvaluatorStatus.SUSPENDED, EvaluatorStatus.RETIRED},
    EvaluatorStatus.SUSPENDED: {EvaluatorStatus.ACTIVE, EvaluatorStatus.RETIRED},
    EvaluatorStatus.RETIRED: set(),
}


# --- the pool -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelatedPersonInput:
    name: str
    id_number: str | None = None
    phone: str | None = None


@dataclass
class PoolEntry:
    evaluator: Evaluator
    username: str
    display_name: str
    panels_served: int = 0


async def _pool_tenant(
    session: AsyncSession, principal: Principal, act: str, tenant_slug: str | None = None
) -> uuid.UUID:
    """The city whose pool the principal acts on (platform staff name it; others own theirs)."""
    require(principal, "pool", act)
    if principal.is_platform_admin:
        tenant = await tenant_by_slug(session, tenant_slug or "")
        if tenant is None:
            raise BadUserInput(f"unknown tenant {tenant_slug}", field="tenant")
        await use_scope(session, TenantScope.of([tenant.id]))
        return tenant.id
    if principal.tenant_id is None:
        raise Forbidden("the evaluator pool belongs to a city")
    if tenant_slug is not None and tenant_slug != principal.tenant_slug:
        raise BadUserInput(f"unknown tenant {tenant_slug}", field="tenant")
    return principal.tenant_id


async def list_pool(
    session: AsyncSession,
    principal: Principal,
    *,
    status: EvaluatorStatus | None = None,
    category: EvaluatorCategory | None = None,
) -> list[PoolEntry]:
    """The city's evaluators by username, with the number of panels each sat on."""
    await _pool_tenant(session, principal, "read")
    stmt = select(Evaluator, User.username, User.display_name).join(
        User, and_(User.tenant_id == Evaluator.tenant_id, User.id == Evaluator.user_id)
    )
    if status is not None:
        stmt = stmt.where(Evaluator.status == EvaluatorStatus(status))
    if category is not None:
        stmt = stmt.where(Evaluator.category == EvaluatorCategory(category))
    rows = (await session.execute(stmt.order_by(User.username))).all()
    served = dict(
        (
            await session.execute(
                select(PanelMember.evaluator_id, func.count(PanelMember.id)).group_by(
                    PanelMember.evaluator_id
                )
            )
        ).all()
    )
    return [PoolEntry(e, u, d, int(served.get(e.id, 0))) for e, u, d in rows]


def sees_contact_details(principal: Principal) -> bool:
    """Evaluators' phone and e-mail: unmasked only for whoever manages the pool."""
    return may(principal, "pool", "manage")


def mask_email(value: str | None) -> str | None:
    if not value or "@" not in value:
        return value
    local, _, domain = value.partition("@")
    return local[:1] + "***@" + domain


async def _valid_paths(session: AsyncSession, paths: Sequence[str], field: str) -> list[str]:
    if len(paths) > MAX_EXCLUDED_PATHS:
        raise BadUserInput(f"at most {MAX_EXCLUDED_PATHS} excluded units", field=field)
    clean = sorted({v.path(p.strip(), field) for p in paths})
    if clean:
        found = set(await session.scalars(select(OrgUnit.path).where(OrgUnit.path.in_(clean))))
        missing = [p for p in clean if p not in found]
        if missing:
            raise BadUserInput(f"unknown org unit {missing[0]}", field=field)
    return clean


def related_entries(
    tenant_id: uuid.UUID, people: Sequence[RelatedPersonInput], field: str = "relatedPersons"
) -> list[dict[str, Any]]:
    """Declared relatives: only a salted key (for matching petitioners) and masked ids are kept."""
    if len(people) > MAX_RELATED:
        raise BadUserInput(f"at most {MAX_RELATED} related persons", field=field)
    out = []
    for p in people:
        name = v.text(p.name, f"{field}.name", max_len=100)
        id_no = pii.id_number(p.id_number, f"{field}.idNumber")
        phone = v.phone(p.phone, f"{field}.phone")
        if not (id_no or phone):
            raise BadUserInput(
                "a related person needs an id number or a phone to be matched", field=field
            )
        out.append(
            {
                "name": name,
                "idMasked": pii.mask_id_number(id_no),
                "phoneMasked": pii.mask_phone(phone),
                "key": pii.petitioner_key(tenant_id, id_no, phone),
            }
        )
    return out


def _email(value: str | None, field: str = "email") -> str | None:
    if not value:
        return None
    value = value.strip()
    if len(value) > 254 or not EMAIL_RE.match(value):
        raise BadUserInput("not an e-mail address", field=field)
    return value


async def ensure_evaluator_role(session: AsyncSession, tenant_id: uuid.UUID, user: User) -> None:
    """Pool members hold the EVALUATOR role; enrolment grants it at the city root if missing."""
    held = await session.scalar(
        select(RoleAssignment.id).where(
            RoleAssignment.user_id == user.id, RoleAssignment.role == Role.EVALUATOR
        )
    )
    if held is not None:
        return
    tenant = await session.get(Tenant, tenant_id)
    root = await session.scalar(select(OrgUnit).where(OrgUnit.path == f"/{tenant.slug}"))
    session.add(
        RoleAssignment(
            tenant_id=tenant_id, user_id=user.id, role=Role.EVALUATOR, org_unit_id=root.id
        )
    )


async def add_evaluator(
    session: AsyncSession,
    principal: Principal,
    *,
    username: str,
    category: EvaluatorCategory,
    excluded_unit_paths: Sequence[str] = (),
    related_persons: Sequence[RelatedPersonInput] = (),
    phone: str | None = None,
    email: str | None = None,
    status: EvaluatorStatus = EvaluatorStatus.ACTIVE,
    note: str | None = None,
    tenant: str | None = None,
) -> PoolEntry:
    """Enrol an existing user of the city (ACTIVE: approved at enrolment; or APPLIED)."""
    tenant_id = await _pool_tenant(session, principal, "manage", tenant)
    v.username(username)
    status = EvaluatorStatus(status)
    if status not in (EvaluatorStatus.ACTIVE, EvaluatorStatus.APPLIED):
        raise BadUserInput("a new evaluator is ACTIVE or APPLIED", field="status")
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise BadUserInput(f"unknown user {username} in this city", field="username")
    if await session.scalar(select(Evaluator.id).where(Evaluator.user_id == user.id)):
        raise Conflict(f"{username} is already in the pool", field="username")
    row = Evaluator(
        tenant_id=tenant_id,
        user_id=user.id,
        category=EvaluatorCategory(category),
        status=status,
        excluded_unit_paths=await _valid_paths(session, excluded_unit_paths, "excludedUnitPaths"),
        related_persons=related_entries(tenant_id, related_persons),
        contact_phone=v.phone(phone) if phone else user.phone,
        contact_email=_email(email),
        note=v.text(note or "", "note", max_len=2000, required=False) or None,
        status_changed_at=now(),
    )
    if status is EvaluatorStatus.ACTIVE:
        row.approved_by_id, row.approved_at = _actor_id(principal), now()
    await ensure_evaluator_role(session, tenant_id, user)
    session.add(row)
    await session.flush()
    return PoolEntry(row, user.username, user.display_name)


def _actor_id(principal: Principal) -> uuid.UUID | None:
    return principal.account_id if principal.tenant_id else None


async def _evaluator(session: AsyncSession, evaluator_id: str) -> tuple[Evaluator, User]:
    eid = parse_id(evaluator_id)
    row = None
    if eid is not None:
        row = (
            await session.execute(
                select(Evaluator, User)
                .join(
                    User, and_(User.tenant_id == Evaluator.tenant_id, User.id == Evaluator.user_id)
                )
                .where(Evaluator.id == eid)
            )
        ).first()
    if row is None:
        raise NotFound(f"evaluator {evaluator_id} not found")
    return row[0], row[1]


async def set_evaluator_status(
    session: AsyncSession,
    principal: Principal,
    *,
    evaluator_id: str,
    status: EvaluatorStatus,
    reason: str | None = None,
) -> PoolEntry:
    """审核批准 (APPLIED → ACTIVE), suspend, reinstate, retire (terminal)."""
    await _pool_tenant(session, principal, "manage")
    row, user = await _evaluator(session, evaluator_id)
    target = EvaluatorStatus(status)
    current = EvaluatorStatus(row.status)
    if target not in STATUS_MOVES[current]:
        raise InvalidTransition(
            f"an evaluator cannot go from {current} to {target}", currentStatus=current.value
        )
    if target is EvaluatorStatus.ACTIVE and current is EvaluatorStatus.APPLIED:
        row.approved_by_id, row.approved_at = _actor_id(principal), now()
    row.status, row.status_changed_at = target, now()
    if reason:
        row.note = v.text(reason, "reason", max_len=2000)
    await session.flush()
    return PoolEntry(row, user.username, user.display_name)


async def update_evaluator(
    session: AsyncSession,
    principal: Principal,
    *,
    evaluator_id: str,
    category: EvaluatorCategory | None = None,
    excluded_unit_paths: Sequence[str] | None = None,
    related_persons: Sequence[RelatedPersonInput] | None = None,
    phone: str | None = None,
    email: str | None = None,
) -> PoolEntry:
    """Administrator: change category, declared conflicts or contact details (None = keep)."""
    await _pool_tenant(session, principal, "manage")
    row, user = await _evaluator(session, evaluator_id)
    if category is not None:
        row.category = EvaluatorCategory(category)
    await _apply_conflicts(session, row, excluded_unit_paths, related_persons)
    if phone is not None:
        row.contact_phone = v.phone(phone)
    if email is not None:
        row.contact_email = _email(email)
    await session.flush()
    return PoolEntry(row, user.username, user.display_name)


async def declare_conflicts(
    session: AsyncSession,
    principal: Principal,
    *,
    excluded_unit_paths: Sequence[str] | None = None,
    related_persons: Sequence[RelatedPersonInput] | None = None,
) -> PoolEntry:
    """An evaluator declares its own conflicts of interest (replacing the previous lists)."""
    require(principal, "pool", "declare")
    row = await session.scalar(select(Evaluator).where(Evaluator.user_id == principal.account_id))
    if row is None:
        raise NotFound("you are not in the evaluator pool")
    await _apply_conflicts(session, row, excluded_unit_paths, related_persons)
    await session.flush()
    user = await session.get(User, (row.tenant_id, row.user_id))
    return PoolEntry(row, user.username, user.display_name)


async def _apply_conflicts(
    session: AsyncSession,
    row: Evaluator,
    paths: Sequence[str] | None,
    people: Sequence[RelatedPersonInput] | None,
) -> None:
    if paths is not None:
        row.excluded_unit_paths = await _valid_paths(session, paths, "excludedUnitPaths")
    if people is not None:
        row.related_persons = related_entries(row.tenant_id, people)


# --- eligibility ------------------------------------------------------------------------------


def eligibility_clause() -> ColumnElement[bool]:
    """Dissatisfied with the reply, or ≥ 3 repeat petitions, or a skip-level petition."""
    return or_(
        Case.rating == Satisfaction.DISSATISFIED,
        Case.repeat_count >= REPEAT_THRESHOLD,
        Case.skip_level != SkipLevel.NONE,
    )


def eligibility_reasons(case: Case) -> list[str]:
    reasons = []
    if case.rating == Satisfaction.DISSATISFIED:
        reasons.append("DISSATISFIED")
    if case.repeat_count >= REPEAT_THRESHOLD:
        reasons.append(f"REPEAT_{case.repeat_count}")
    if case.skip_level != SkipLevel.NONE:
        reasons.append(f"SKIP_LEVEL_{case.skip_level}")
    return reasons


def _has_panel(statuses: Sequence[PanelStatus]) -> ColumnElement[bool]:
    return exists(
        select(EvaluationPanel.id).where(
            EvaluationPanel.tenant_id == Case.tenant_id,
            EvaluationPanel.case_id == Case.id,
            EvaluationPanel.status.in_([s.value for s in statuses]),
        )
    )


async def eligible_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int = 50,
    after: str | None = None,
    include_evaluated: bool = False,
) -> case_queries.Page:
    """Eligible cases the official can see, newest first; without a panel unless asked."""
    if not may(principal, "case", "read"):
        raise Forbidden("not allowed to list eligible cases")
    if not 0 <= first <= case_queries.MAX_PAGE:
        raise BadUserInput(f"first must be between 0 and {case_queries.MAX_PAGE}", field="first")
    clauses = [read_predicate(principal), eligibility_clause()]
    if not include_evaluated:
        clauses.append(~_has_panel([PanelStatus.OPEN, PanelStatus.CONCLUDED]))
    total = await session.scalar(select(func.count(Case.id)).where(*clauses))
    page = list(clauses)
    if after:
        at, cid = case_queries.decode_cursor(after)
        page.append(or_(Case.received_at < at, and_(Case.received_at == at, Case.id < cid)))
    rows = list(
        await session.scalars(
            select(Case)
            .where(*page)
            .order_by(Case.received_at.desc(), Case.id.desc())
            .limit(first + 1)
        )
    )
    return case_queries.Page(rows[:first], int(total or 0), len(rows) > first)


# --- the draw ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolMember:
    candidate: drawing.Candidate
    user_id: uuid.UUID
    username: str


async def eligible_pool(
    session: AsyncSession, case: Case, *, ignore_panel: uuid.UUID | None = None
) -> list[PoolMember]:
    """Active evaluators holding the role, minus every conflict with ``case``.

    Excluded: a declared unit covering the case's location or holder unit; a
    declared relative who is the petitioner; anyone who acted on the case (its
    events), its 包案 leader, registrar and first receiver; whoever may not know the
    case (Art. 30: the accused person, anyone holding a role inside the accused unit);
    and whoever sat on any earlier panel of the same petitioner (or case).
    """
    has_role = exists(
        select(RoleAssignment.id).where(
            RoleAssignment.tenant_id == Evaluator.tenant_id,
            RoleAssignment.user_id == Evaluator.user_id,
            RoleAssignment.role == Role.EVALUATOR,
        )
    )
    rows = (
        await session.execute(
            select(Evaluator, User.username)
            .join(User, and_(User.tenant_id == Evaluator.tenant_id, User.id == Evaluator.user_id))
            .where(
                Evaluator.tenant_id == case.tenant_id,
                Evaluator.status == EvaluatorStatus.ACTIVE,
                has_role,
            )
        )
    ).all()
    handlers = set(
        await session.scalars(
            select(CaseEvent.actor_id).where(
                CaseEvent.case_id == case.id, CaseEvent.actor_id.is_not(None)
            )
        )
    )
    handlers |= {u for u in (case.leader_id, case.registered_by_id, case.first_receiver_id) if u}
    same = EvaluationPanel.case_id == case.id
    if case.petitioner_key:
        same = or_(same, EvaluationPanel.petitioner_key == case.petitioner_key)
    served_q = (
        select(PanelMember.evaluator_id)
        .join(
            EvaluationPanel,
            and_(
                EvaluationPanel.tenant_id == PanelMember.tenant_id,
                EvaluationPanel.id == PanelMember.panel_id,
            ),
        )
        .where(same)
    )
    if ignore_panel is not None:
        served_q = served_q.where(EvaluationPanel.id != ignore_panel)
    served = set(await session.scalars(served_q))
    known = await need_to_know.people(session, case.tenant_id, (ev.user_id for ev, _ in rows))
    roles = {uid: person.unit_paths for uid, person in known.items()}
    return eligible_members([(ev, u) for ev, u in rows], case, handlers, served, roles)


def eligible_members(
    rows: Sequence[tuple[Evaluator, str]],
    case: Case,
    handlers: set[uuid.UUID],
    served: set[uuid.UUID],
    roles: Mapping[uuid.UUID, Sequence[str]] | None = None,
) -> list[PoolMember]:
    """The pure half of :func:`eligible_pool`: active and free of every conflict.

    ``roles``: the unit paths of every role each evaluator's user holds (Art. 30).
    """
    pool = []
    for ev, username in rows:
        if ev.status != EvaluatorStatus.ACTIVE or ev.id in served:
            continue
        if conflicts(ev, username, case, handlers, (roles or {}).get(ev.user_id, ())):
            continue
        cand = drawing.Candidate(str(ev.id), EvaluatorCategory(ev.category))
        pool.append(PoolMember(cand, ev.user_id, username))
    return pool


def conflicts(
    ev: Evaluator,
    username: str,
    case: Case,
    handlers: set[uuid.UUID],
    role_paths: Sequence[str] = (),
) -> bool:
    """A declared or factual conflict of interest between one evaluator and one case.

    Art. 30 first: an evaluator who may not know the case (the accused person, or
    holding any role inside the accused unit — need_to_know.py) is never drawn.
    """
    if need_to_know.is_barred(case, role_paths, username):
        return True
    if any(
        path_covers(p, case.location_path) or path_covers(p, case.holder_path)
        for p in ev.excluded_unit_paths or []
    ):
        return True
    if case.petitioner_key and any(
        r.get("key") == case.petitioner_key for r in ev.related_persons or []
    ):
        return True
    return ev.user_id in handlers


def _draw_grant_reaches(principal: Principal, case: Case, act: str, obj: str = "panel") -> bool:
    return any(
        (path_covers(g.unit_path, case.holder_path) or path_covers(g.unit_path, case.location_path))
        and not inside_accused(case, g.unit_path)
        for g in allowed_grants(principal, obj, act)
    )


async def draw_panel(
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: str,
    size: int | None = None,
    seed: int | str | None = None,
) -> EvaluationPanel:
    """随机抽选 a panel for an eligible case; same seed + same pool → same panel."""
    require(principal, "panel", "draw")
    case = await find_case(session, principal, case_id, lock=True)
    if not _draw_grant_reaches(principal, case, "draw"):
        raise Forbidden("not allowed to draw a panel for this case here")
    reasons = eligibility_reasons(case)
    if not reasons:
        raise BadUserInput(
            "the case is not eligible: the petitioner was not dissatisfied, it has fewer than "
            f"{REPEAT_THRESHOLD} repeat petitions and no skip-level petition",
            field="caseId",
        )
    busy = await session.scalar(
        select(EvaluationPanel.id).where(
            EvaluationPanel.case_id == case.id,
            EvaluationPanel.status.in_([PanelStatus.OPEN, PanelStatus.CONCLUDED]),
        )
    )
    if busy is not None:
        raise Conflict("the case already has a panel (cancel it to draw again)", field="caseId")
    policy = await load_policy(session, case.tenant_id)
    size = policy.default_size if size is None else size
    if not 1 <= size <= policy.max_size:
        raise BadUserInput(f"size must be between 1 and {policy.max_size}", field="size")
    if size < policy.required_size():
        raise BadUserInput(
            f"the category mix needs at least {policy.required_size()} members", field="size"
        )
    try:
        seed = drawing.parse_seed(secrets.randbelow(2**31) if seed is None else seed)
    except ValueError as exc:
        raise BadUserInput(str(exc), field="seed") from exc
    pool = await eligible_pool(session, case)
    by_id = {m.candidate.id: m for m in pool}
    snap = drawing.snapshot(m.candidate for m in pool)
    mix = policy.mix()
    try:
        chosen = drawing.draw(drawing.candidates_of(snap), size=size, seed=seed, mix=mix)
    except drawing.PoolShort as short:
        raise BadUserInput(
            f"the pool is short of {short.category}: the panel needs {short.needed}, "
            f"{short.available} eligible",
            field="size",
            category=short.category,
            needed=short.needed,
            available=short.available,
        ) from short
    seed_text, seed_is_int = drawing.stored_seed(seed)
    panel = EvaluationPanel(
        tenant_id=case.tenant_id,
        id=new_id(),
        case_id=case.id,
        petitioner_key=case.petitioner_key,
        status=PanelStatus.OPEN,
        size=size,
        seed=seed_text,
        seed_is_int=seed_is_int,
        policy=mix,
        pool_snapshot=snap,
        pool_hash=drawing.pool_hash(snap, mix),
        reasons=reasons,
        drawn_by_id=principal.account_id,
        drawn_at=now(),
    )
    session.add(panel)
    await session.flush()
    members = []
    for position, cand in enumerate(chosen, start=1):
        m = by_id[cand.id]
        members.append(
            PanelMember(
                tenant_id=case.tenant_id,
                panel_id=panel.id,
                evaluator_id=uuid.UUID(cand.id),
                user_id=m.user_id,
                case_id=case.id,
                category=cand.category,
                position=position,
            )
        )
    session.add_all(members)
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATION_PANEL_DRAWN",
        data={
            "panelId": str(panel.id),
            "seed": seed,
            "size": size,
            "poolHash": panel.pool_hash,
            "eligible": len(snap),
            "members": [by_id[c.id].username for c in chosen],
        },
    )
    day = now().date()
    for member in members:
        await enqueue(
            session,
            tenant_id=case.tenant_id,
            recipient_id=member.user_id,
            kind="evaluation_panel",
            subject=f"案件评价邀请 {case.number}",
            body=f"您已被随机抽选为案件 {case.number} 的评价员，请登录系统查看案情并提交评价。",
            dedupe_key=f"{dedupe_key(member.user_id, 'evaluation_panel', case.id, day)}:{panel.id}",
            case_id=case.id,
            data={"panelId": str(panel.id), "caseNumber": case.number},
        )
    return panel


async def cancel_panel(
    session: AsyncSession, principal: Principal, *, panel_id: str, reason: str
) -> EvaluationPanel:
    """Cancel an open panel (e.g. a member cannot serve); a new draw is then possible."""
    require(principal, "panel", "draw")
    panel, case = await _official_panel(session, principal, panel_id)
    if not _draw_grant_reaches(principal, case, "draw"):
        raise Forbidden("not allowed to cancel this panel here")
    if panel.status != PanelStatus.OPEN:
        raise InvalidTransition(
            f"only an OPEN panel can be cancelled (it is {panel.status})",
            currentStatus=panel.status,
        )
    panel.status = PanelStatus.CANCELLED
    panel.cancelled_reason = v.text(reason, "reason", max_len=2000)
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATION_PANEL_CANCELLED",
        reason=panel.cancelled_reason,
        data={"panelId": str(panel.id)},
    )
    return panel


# --- reading panels ---------------------------------------------------------------------------


def panel_read_clause(principal: Principal) -> ColumnElement[bool]:
    """Officials: panels of the cases they can read; evaluators: panels they sit on."""
    clauses: list[ColumnElement[bool]] = []
    if may(principal, "case", "read"):
        clauses.append(
            exists(
                select(Case.id).where(
                    Case.tenant_id == EvaluationPanel.tenant_id,
                    Case.id == EvaluationPanel.case_id,
                    read_predicate(principal),
                )
            )
        )
    if principal.tenant_id is not None:
        clauses.append(
            exists(
                select(PanelMember.id).where(
                    PanelMember.tenant_id == EvaluationPanel.tenant_id,
                    PanelMember.panel_id == EvaluationPanel.id,
                    PanelMember.user_id == principal.account_id,
                )
            )
        )
    return or_(*clauses) if clauses else false()


async def get_panel(session: AsyncSession, principal: Principal, panel_id: str) -> EvaluationPanel:
    require(principal, "panel", "read")
    pid = parse_id(panel_id)
    panel = None
    if pid is not None:
        panel = await session.scalar(
            select(EvaluationPanel).where(EvaluationPanel.id == pid, panel_read_clause(principal))
        )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    return panel


async def list_panels(
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: str | None = None,
    status: PanelStatus | None = None,
    mine: bool = False,
    first: int = 50,
) -> list[EvaluationPanel]:
    """Visible panels, newest first; ``mine``: only those the caller sits on."""
    require(principal, "panel", "read")
    if not 1 <= first <= 200:
        raise BadUserInput("first must be between 1 and 200", field="first")
    stmt = select(EvaluationPanel).where(panel_read_clause(principal))
    if case_id is not None:
        cid = parse_id(case_id)
        stmt = stmt.where(EvaluationPanel.case_id == cid if cid else false())
    if status is not None:
        stmt = stmt.where(EvaluationPanel.status == PanelStatus(status))
    if mine:
        stmt = stmt.where(
            exists(
                select(PanelMember.id).where(
                    PanelMember.tenant_id == EvaluationPanel.tenant_id,
                    PanelMember.panel_id == EvaluationPanel.id,
                    PanelMember.user_id == principal.account_id,
                )
            )
        )
    stmt = stmt.order_by(EvaluationPanel.drawn_at.desc(), EvaluationPanel.id.desc()).limit(first)
    return list(await session.scalars(stmt))


@dataclass
class MemberView:
    member: PanelMember
    username: str
    display_name: str
    submitted: bool


async def members_of(
    session: AsyncSession, panel_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MemberView]]:
    if not panel_ids:
        return {}
    rows = (
        await session.execute(
            select(PanelMember, User.username, User.display_name, Evaluation.id)
            .join(
                User, and_(User.tenant_id == PanelMember.tenant_id, User.id == PanelMember.user_id)
            )
            .outerjoin(
                Evaluation,
                and_(
                    Evaluation.tenant_id == PanelMember.tenant_id,
                    Evaluation.member_id == PanelMember.id,
                ),
            )
            .where(PanelMember.panel_id.in_(list(set(panel_ids))))
            .order_by(PanelMember.position)
        )
    ).all()
    out: defaultdict[uuid.UUID, list[MemberView]] = defaultdict(list)
    for m, username, display, eid in rows:
        out[m.panel_id].append(MemberView(m, username, display, eid is not None))
    return dict(out)


@dataclass
class ScoreView:
    evaluation: Evaluation
    username: str


async def scores_visible_to(
    session: AsyncSession, principal: Principal, panel: EvaluationPanel
) -> list[ScoreView] | None:
    """The scores the caller may see: a member sees none until it has submitted its own;
    after that (and for officials who read the case) all submitted scores."""
    rows = (
        await session.execute(
            select(Evaluation, User.username)
            .join(User, and_(User.tenant_id == Evaluation.tenant_id, User.id == Evaluation.user_id))
            .where(Evaluation.panel_id == panel.id)
            .order_by(Evaluation.submitted_at, Evaluation.id)
        )
    ).all()
    seat = await session.scalar(
        select(PanelMember.id).where(
            PanelMember.panel_id == panel.id, PanelMember.user_id == principal.account_id
        )
    )
    if seat is not None and not any(e.member_id == seat for e, _ in rows):
        return None
    if seat is None and not may(principal, "case", "read"):
        return None
    return [ScoreView(e, u) for e, u in rows]


async def own_score(
    session: AsyncSession, principal: Principal, panel: EvaluationPanel
) -> Evaluation | None:
    return await session.scalar(
        select(Evaluation).where(
            Evaluation.panel_id == panel.id, Evaluation.user_id == principal.account_id
        )
    )


async def _official_panel(
    session: AsyncSession, principal: Principal, panel_id: str
) -> tuple[EvaluationPanel, Case]:
    pid = parse_id(panel_id)
    panel = None
    if pid is not None and may(principal, "case", "read"):
        panel = await session.scalar(
            select(EvaluationPanel)
            .where(EvaluationPanel.id == pid, panel_read_clause(principal))
            .with_for_update()
        )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    case = await session.scalar(select(Case).where(Case.id == panel.case_id).with_for_update())
    return panel, case


# --- scores, verdict, follow-up -----------------------------------------------------------


@dataclass(frozen=True)
class ScoreInput:
    facts: int
    procedure: int
    law_and_policy: int
    responsibility: int
    verdict: Verdict
    comment: str | None = None


async def submit_evaluation(
    session: AsyncSession, principal: Principal, *, panel_id: str, scores: ScoreInput
) -> Evaluation:
    """A member's scores (once). The last one concludes the panel: means, majority verdict,
    and a FOLLOW_UP step on the case with the verdict's deadline."""
    require(principal, "evaluation", "submit")
    pid = parse_id(panel_id)
    panel = member = None
    if pid is not None:
        member = await session.scalar(
            select(PanelMember).where(
                PanelMember.panel_id == pid, PanelMember.user_id == principal.account_id
            )
        )
    if member is not None:
        panel = await session.scalar(
            select(EvaluationPanel).where(EvaluationPanel.id == pid).with_for_update()
        )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    if panel.status != PanelStatus.OPEN:
        raise InvalidTransition(
            f"the panel is {panel.status}; scores are no longer accepted",
            currentStatus=panel.status,
        )
    values = {
        "facts": scores.facts,
        "procedure": scores.procedure,
        "lawAndPolicy": scores.law_and_policy,
        "responsibility": scores.responsibility,
    }
    for name in DIMENSIONS:
        value = values[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not MIN_SCORE <= value <= MAX_SCORE
        ):
            raise BadUserInput(f"{name} must be {MIN_SCORE}-{MAX_SCORE}", field=name)
    if await session.scalar(select(Evaluation.id).where(Evaluation.member_id == member.id)):
        raise Conflict("you have already submitted your evaluation", field="panelId")
    comment = v.text(scores.comment or "", "comment", max_len=5000, required=False) or None
    row = Evaluation(
        tenant_id=panel.tenant_id,
        panel_id=panel.id,
        member_id=member.id,
        user_id=principal.account_id,
        facts=scores.facts,
        procedure=scores.procedure,
        law_and_policy=scores.law_and_policy,
        responsibility=scores.responsibility,
        verdict=Verdict(scores.verdict),
        comment=comment,
        submitted_at=now(),
    )
    session.add(row)
    await session.flush()
    seats = await session.scalar(
        select(func.count(PanelMember.id)).where(PanelMember.panel_id == panel.id)
    )
    done = await session.scalar(
        select(func.count(Evaluation.id)).where(Evaluation.panel_id == panel.id)
    )
    if done >= seats:
        await _conclude(session, principal, panel)
    return row


async def _conclude(session: AsyncSession, principal: Principal, panel: EvaluationPanel) -> None:
    rows = list(await session.scalars(select(Evaluation).where(Evaluation.panel_id == panel.id)))
    result = panel_result(
        [
            Scores(r.facts, r.procedure, r.law_and_policy, r.responsibility, Verdict(r.verdict))
            for r in rows
        ]
    )
    verdict = Verdict(result["verdict"])
    case = await session.scalar(select(Case).where(Case.id == panel.case_id).with_for_update())
    policy = await load_policy(session, case.tenant_id)
    clocks = await deadlines.clocks_for(session, case)
    days = policy.follow_up_days[verdict]
    started = now()
    step = await deadlines.open_step(session, case, Step.FOLLOW_UP, started, clocks, days=days)
    step.id = new_id()
    step.note = FOLLOW_UP_DUTIES[verdict]
    step.issued_by_id = panel.drawn_by_id
    step.rule = {
        **step.rule,
        "article": "案件办理质量评价决议 (evaluation verdict)",
        "verdict": verdict.value,
        "panelId": str(panel.id),
        "duty": FOLLOW_UP_DUTIES[verdict],
    }
    panel.status = PanelStatus.CONCLUDED
    panel.verdict = verdict
    panel.result = {**result, "followUpDays": days, "followUpDueDate": step.due_date.isoformat()}
    panel.concluded_at = started
    panel.follow_up_deadline_id = step.id
    case.version += 1
    case.updated_at = started
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATED",
        reason=FOLLOW_UP_DUTIES[verdict],
        data={
            "panelId": str(panel.id),
            "verdict": verdict.value,
            "means": result["means"],
            "votes": result["votes"],
            "followUpDueDate": step.due_date.isoformat(),
        },
    )
    await deadlines.refresh_due(session, case, clocks)
    recipients = {panel.drawn_by_id, case.leader_id} - {None}
    for rid in sorted(recipients):
        await enqueue(
            session,
            tenant_id=case.tenant_id,
            recipient_id=rid,
            kind="evaluation_verdict",
            subject=f"案件评价决议 {case.number}: {verdict.value}",
            body=f"{FOLLOW_UP_DUTIES[verdict]}，期限 {step.due_date.isoformat()}。",
            dedupe_key=f"{dedupe_key(rid, 'evaluation_verdict', case.id, started.date())}:{panel.id}",
            case_id=case.id,
            data={"panelId": str(panel.id), "verdict": verdict.value},
        )


async def settle_panel(
    session: AsyncSession, principal: Principal, *, panel_id: str, note: str
) -> EvaluationPanel:
    """定分止争: the verdict's follow-up work is done; its step is met."""
    require(principal, "evaluation", "settle")
    panel, case = await _official_panel(session, principal, panel_id)
    if not _draw_grant_reaches(principal, case, "settle", obj="evaluation"):
        raise Forbidden("not allowed to settle this evaluation here")
    if panel.status != PanelStatus.CONCLUDED or panel.settled_at is not None:
        state = "SETTLED" if panel.settled_at else panel.status
        raise InvalidTransition(
            f"only a concluded, unsettled evaluation can be settled (it is {state})",
            currentStatus=state,
        )
    note = v.text(note, "note", max_len=5000)
    t = now()
    if panel.follow_up_deadline_id is not None:
        step = await session.get(CaseDeadline, (panel.tenant_id, panel.follow_up_deadline_id))
        if step is not None and step.status == DeadlineStatus.OPEN:
            step.status, step.finished_at = DeadlineStatus.MET, t
    panel.settled_at, panel.settled_note = t, note
    case.version += 1
    case.updated_at = t
    await session.flush()
    await append_event(
        session, case, principal, "EVALUATION_SETTLED", reason=note, data={"panelId": str(panel.id)}
    )
    await deadlines.refresh_due(session, case, await deadlines.clocks_for(session, case))
    return panel


# --- audit: re-run a draw ---------------------------------------------------------------


@dataclass
class DrawCheck:
    panel: EvaluationPanel
    case_number: str
    hash_ok: bool
    members_ok: bool
    stored_members: list[str]
    redrawn_members: list[str]
    current_hash: str
    pool_changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.hash_ok and self.members_ok


async def verify_draw(session: AsyncSession, panel_id: str) -> DrawCheck:
    """Re-run a stored draw: hash of the stored pool, then the draw from seed and snapshot.

    Also reports how today's eligible pool differs from the stored one (evaluators
    join, leave and serve on other panels; that is drift, not tampering).
    """
    pid = parse_id(panel_id)
    panel = (
        await session.scalar(select(EvaluationPanel).where(EvaluationPanel.id == pid))
        if pid
        else None
    )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    case = await session.scalar(select(Case).where(Case.id == panel.case_id))
    stored = list(
        await session.scalars(
            select(PanelMember.evaluator_id)
            .where(PanelMember.panel_id == panel.id)
            .order_by(PanelMember.position)
        )
    )
    hash_ok = drawing.pool_hash(panel.pool_snapshot, panel.policy) == panel.pool_hash
    seed = drawing.loaded_seed(panel.seed, panel.seed_is_int)
    try:
        redrawn = drawing.draw(
            drawing.candidates_of(panel.pool_snapshot), size=panel.size, seed=seed, mix=panel.policy
        )
    except drawing.PoolShort:
        redrawn = []
    current = await eligible_pool(session, case, ignore_panel=panel.id)
    now_snap = drawing.snapshot(m.candidate for m in current)
    before = {tuple(p) for p in panel.pool_snapshot}
    after = {tuple(p) for p in now_snap}
    return DrawCheck(
        panel=panel,
        case_number=case.number,
        hash_ok=hash_ok,
        members_ok=[str(s) for s in stored] == [c.id for c in redrawn],
        stored_members=[str(s) for s in stored],
        redrawn_members=[c.id for c in redrawn],
        current_hash=drawing.pool_hash(now_snap, panel.policy),
        pool_changes={
            "joined": sorted(i for i, _ in after - before),
            "left": sorted(i for i, _ in before - after),
        },
    )


# --- statistics hooks ---------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationOutcomes:
    """评价 figures: concluded panels (evaluated), of which settled, open, verdict mix."""

    evaluated: int
    settled: int
    pending: int
    verdict_mix: dict[Verdict, int]


def _window(column: Any, since: datetime | None, until: datetime | None) -> ColumnElement[bool]:
    clauses = []
    if since is not None:
        clauses.append(column >= since)
    if until is not None:
        clauses.append(column < until)
    return and_(true(), *clauses)


async def evaluation_outcomes(
    session: AsyncSession,
    *,
    case_clause: ColumnElement[bool] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EvaluationOutcomes:
    """Counts over the session's tenants for the statistics module (no authorisation here:
    the caller passes the case predicate of its viewer, e.g. ``read_predicate``)."""
    joined = and_(
        Case.tenant_id == EvaluationPanel.tenant_id,
        Case.id == EvaluationPanel.case_id,
        case_clause if case_clause is not None else true(),
    )
    concluded = and_(
        EvaluationPanel.status == PanelStatus.CONCLUDED,
        _window(EvaluationPanel.concluded_at, since, until),
    )
    base = select(EvaluationPanel.verdict, func.count(EvaluationPanel.id)).join(Case, joined)
    mix_rows = (
        await session.execute(base.where(concluded).group_by(EvaluationPanel.verdict))
    ).all()
    settled = await session.scalar(
        select(func.count(EvaluationPanel.id))
        .join(Case, joined)
        .where(concluded, EvaluationPanel.settled_at.is_not(None))
    )
    pending = await session.scalar(
        select(func.count(EvaluationPanel.id))
        .join(Case, joined)
        .where(
            EvaluationPanel.status == PanelStatus.OPEN,
            _window(EvaluationPanel.drawn_at, since, until),
        )
    )
    mix = {verdict: 0 for verdict in Verdict}
    for verdict, n in mix_rows:
        mix[Verdict(verdict)] = int(n)
    return EvaluationOutcomes(sum(mix.values()), int(settled or 0), int(pending or 0), mix)


def local_day_start(d: date, tz: str = "Asia/Shanghai") -> datetime:
    return datetime.combine(d, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


async def evaluation_stats(
    session: AsyncSession,
    principal: Principal,
    *,
    since: date | None = None,
    until: date | None = None,
    unit_path: str | None = None,
) -> EvaluationOutcomes:
    """The viewer's figures: cases it may read, optionally one subtree, local dates inclusive."""
    require(principal, "stats", "read")
    clause = read_predicate(principal)
    if unit_path:
        v.path(unit_path, "unitPath")
        clause = and_(
            clause,
            or_(
                subtree_filter(Case.holder_path, [unit_path]),
                subtree_filter(Case.location_path, [unit_path]),
            ),
        )
    return await evaluation_outcomes(
        session,
        case_clause=clause,
        since=local_day_start(since) if since else None,
        until=local_day_start(until + timedelta(days=1)) if until else None,
    )


__all__ = [
    "EvaluationOutcomes",
    "EvaluationPolicy",
    "add_evaluator",
    "draw_panel",
    "eligible_cases",
    "evaluation_outcomes",
    "evaluation_stats",
    "submit_evaluation",
    "verify_draw",
]
