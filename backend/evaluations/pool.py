"""The evaluator pool (评价员库): enrolment, status, declared conflicts, contact details.

Like every service: (session, principal), contract errors naming the field, never
commits. The pool is the city's; officers and leaders read it with contacts masked
unless they administer the pool.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import may, require
from backend.authz.principal import Principal
from backend.authz.roles import AccountKind, Role
from backend.cases import need_to_know, pii
from backend.cases.models import Case
from backend.core import validation as v
from backend.core.clock import now
from backend.core.db import TenantScope, use_scope
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import parse_id
from backend.evaluations.models import (
    Evaluator,
    EvaluatorCategory,
    EvaluatorStatus,
    PanelMember,
)
from backend.tenants.models import OrgUnit, RoleAssignment, Tenant, User
from backend.tenants.service import account_kind, tenant_by_slug

MAX_EXCLUDED_PATHS = 50


MAX_RELATED = 20


EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


STATUS_MOVES: dict[EvaluatorStatus, set[EvaluatorStatus]] = {
    EvaluatorStatus.APPLIED: {EvaluatorStatus.ACTIVE, EvaluatorStatus.RETIRED},
    EvaluatorStatus.ACTIVE: {EvaluatorStatus.SUSPENDED, EvaluatorStatus.RETIRED},
    EvaluatorStatus.SUSPENDED: {EvaluatorStatus.ACTIVE, EvaluatorStatus.RETIRED},
    EvaluatorStatus.RETIRED: set(),
}


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


async def pool_tenant(
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
    await pool_tenant(session, principal, "read")
    stmt = select(Evaluator, User.username, User.display_name).join(
        User, and_(User.tenant_id == Evaluator.tenant_id, User.id == Evaluator.user_id)
    )
    if status is not None:
        stmt = stmt.where(Evaluator.status == EvaluatorStatus(status))
    if category is not None:
        stmt = stmt.where(Evaluator.category == EvaluatorCategory(category))
    rows = (await session.execute(stmt.order_by(User.username))).all()
    # panels on cases the reader may not know (Art. 30) are not counted either
    barred = need_to_know.barred_clause(
        [g.unit_path for g in principal.grants], [principal.username]
    )
    served = dict(
        (
            await session.execute(
                select(PanelMember.evaluator_id, func.count(PanelMember.id))
                .join(
                    Case,
                    and_(Case.tenant_id == PanelMember.tenant_id, Case.id == PanelMember.case_id),
                )
                .where(~barred)
                .group_by(PanelMember.evaluator_id)
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


def checked_email(value: str | None, field: str = "email") -> str | None:
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


async def add_evaluator(  # noqa: PLR0913 — one keyword per field of addEvaluator's input
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
    tenant_id = await pool_tenant(session, principal, "manage", tenant)
    v.username(username)
    status = EvaluatorStatus(status)
    if status not in (EvaluatorStatus.ACTIVE, EvaluatorStatus.APPLIED):
        raise BadUserInput("a new evaluator is ACTIVE or APPLIED", field="status")
    user = await session.scalar(
        select(User).where(User.username == v.username(username, "username"))
    )
    if user is None:
        raise BadUserInput(f"unknown user {username} in this city", field="username")
    if await account_kind(session, user.id) is AccountKind.SERVICE_ACCOUNT:
        # an integration holds integration roles only: it sits on no panel, reads no case
        raise BadUserInput(
            f"{username} is a service account (an integration): only people join the "
            "evaluator pool",
            field="username",
        )
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
        contact_email=checked_email(email),
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
    eid = parse_id(evaluator_id, "Evaluator", "evaluatorId")
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
    await pool_tenant(session, principal, "manage")
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
    await pool_tenant(session, principal, "manage")
    row, user = await _evaluator(session, evaluator_id)
    if category is not None:
        row.category = EvaluatorCategory(category)
    await _apply_conflicts(session, row, excluded_unit_paths, related_persons)
    if phone is not None:
        row.contact_phone = v.phone(phone)
    if email is not None:
        row.contact_email = checked_email(email)
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
