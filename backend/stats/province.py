"""Provincial supervision: every city of a province side by side, and the supervision order.

A supervisor's sessions are read-only across its province's tenants. The one
write it has — 省级督办 on a city's case (``case, supervise_city``) — runs in
its own transaction whose scope is exactly that one tenant, not read-only:
the order is a case event on the hash chain and one outbox message to every
petition officer at the city's root unit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.authz.roles import Role
from backend.cases import deadlines, need_to_know
from backend.cases.events import append_event
from backend.cases.models import Case
from backend.cases.rules import Step, compute_due
from backend.core import validation as v
from backend.core.clock import local_today, now
from backend.core.db import TenantScope, use_scope
from backend.core.errors import BadUserInput, Forbidden, NotFound
from backend.core.ids import parse_id
from backend.notifications.service import enqueue
from backend.stats.indicators import Indicators, Range, merged
from backend.stats.summary import figures
from backend.tenants.models import OrgUnit, Province, RoleAssignment, Tenant

SUPERVISION_KIND = "PROVINCE_SUPERVISION"
# An order without a due date: 15 days, the term the regulation gives the city itself to route
# or assign a matter (《信访工作条例》第二十二条) — our choice, the regulation sets none for 督办;
# a city's policy may set its own (``limits.SUPERVISION``).
DEFAULT_SUPERVISION_DAYS = 15


@dataclass
class TenantFigures:
    tenant: Tenant
    indicators: Indicators


@dataclass
class Overview:
    province: Province | None
    range: Range
    tenants: list[TenantFigures]
    total: Indicators  # under the province-standard definition
    refreshed_at: datetime | None = None  # oldest summary refresh read (None: all live)


async def province_overview(
    session: AsyncSession,
    principal: Principal,
    province: str,
    first: date,
    last: date,
    *,
    live: bool = False,
) -> Overview:
    """Every tenant of ``province`` side by side: one GROUP BY tenant per aggregate.

    Complete days come from the daily summary, today (and days since a missed
    refresh) live (backend/stats/summary.py); ``live`` ignores the summary (the
    benchmark's baseline, and the test that both paths agree). Each city's
    figures carry its own indicator definition; the total is the province
    standard. Only provincial supervisors; a supervisor of another province
    sees nothing (an empty overview, the same answer as an unknown province).
    """
    require(principal, "stats", "read")
    if not principal.is_supervisor:
        raise Forbidden("the province overview is for provincial supervisors")
    rng = Range.of(first, last)
    row = await session.scalar(select(Province).where(Province.slug == province))
    if row is None or row.id != principal.province_id:
        return Overview(None, rng, [], Indicators())
    tenants = list(
        await session.scalars(
            select(Tenant)
            .where(
                Tenant.province_id == row.id, Tenant.id.in_(sorted(principal.province_tenant_ids))
            )
            .order_by(Tenant.slug)
        )
    )
    groups, refreshed = await figures(session, [t.id for t in tenants], rng, live_only=live)
    side_by_side = [TenantFigures(t, groups[t.id]) for t in tenants]
    total = merged({tid: one.standard() for tid, one in groups.items()})
    return Overview(row, rng, side_by_side, total, refreshed)


@dataclass
class SupervisionOrder:
    case_id: uuid.UUID
    tenant: str
    event_seq: int
    notified: int


def supervision_scope(principal: Principal) -> TenantScope:
    """The transaction of a supervision order: the supervisor's province, writable (its
    reading sessions are read-only); :func:`supervise_city` narrows it to one city."""
    return TenantScope.of(principal.province_tenant_ids)


async def supervise_city(
    session: AsyncSession,
    principal: Principal,
    case_id: str,
    *,
    note: str,
    due_date: date | None = None,
) -> SupervisionOrder:
    """省级督办: record the order on the case and tell the city's root petition officers
    (those who may know the case: need_to_know.py).

    The session spans the supervisor's province (writable: :func:`supervision_scope`);
    once the case's city is known, it is narrowed to that one city for every write.
    """
    require(principal, "case", "supervise_city")
    note = v.text(note, "note", max_len=5000)
    cid = parse_id(case_id, "Case", "caseId")
    tid = None
    if cid is not None:
        tid = await session.scalar(select(Case.tenant_id).where(Case.id == cid))
    if tid is None or tid not in principal.province_tenant_ids:
        raise NotFound(f"case {case_id} not found")
    await use_scope(session, TenantScope.of([tid]))  # the one write: that city only
    case = await session.scalar(select(Case).where(Case.tenant_id == tid, Case.id == cid))
    if case is None:
        raise NotFound(f"case {case_id} not found")
    tz = await session.scalar(select(Tenant.timezone).where(Tenant.id == tid))
    if due_date is not None and due_date < local_today(tz):
        raise BadUserInput("dueDate is in the past", field="dueDate")
    slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tid))
    # the order's clock: a SUPERVISION step on the case (warning board, digest, closed by
    # the city's reply or the case's closure); no due date given → the default term
    clocks = await deadlines.clocks_for(session, case)
    if due_date is None:
        days = clocks.policy.limits.get(Step.SUPERVISION, DEFAULT_SUPERVISION_DAYS)
        due_date = compute_due(
            Step.SUPERVISION, now(), clocks.calendar, clocks.policy, days=days
        ).due_date
    step = deadlines.open_supervision(
        session, case, due_date, clocks, note=note, issued_by=principal.account_id
    )
    step.rule = {**step.rule, "issuer": principal.username, "level": "province"}
    await deadlines.refresh_due(session, case, clocks)
    data = {"dueDate": due_date.isoformat(), "by": principal.username}
    event = await append_event(session, case, principal, SUPERVISION_KIND, reason=note, data=data)
    officers = list(
        await session.scalars(
            select(RoleAssignment.user_id)
            .join(
                OrgUnit,
                (OrgUnit.tenant_id == RoleAssignment.tenant_id)
                & (OrgUnit.id == RoleAssignment.org_unit_id),
            )
            .where(
                RoleAssignment.tenant_id == tid,
                RoleAssignment.role == Role.PETITION_OFFICER.value,
                OrgUnit.parent_id.is_(None),
            )
            .distinct()
        )
    )
    # Art. 30: not to a root officer who is the accused or holds a role inside the unit
    officers = await need_to_know.may_know(session, tid, case, officers)
    notified = 0
    for officer in officers:
        rows = await enqueue(
            session,
            tenant_id=tid,
            recipient_id=officer,
            kind="province_supervision",
            subject=f"省级督办 {case.number}",
            body=note,
            dedupe_key=f"province_supervision:{officer}:{case.id}:{event.seq}",
            case_id=case.id,
            data={"caseNumber": case.number, **data},
        )
        notified += 1 if rows else 0
    return SupervisionOrder(case.id, slug or "", event.seq, notified)
