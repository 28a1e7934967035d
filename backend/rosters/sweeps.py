"""矛盾纠纷排查 — scheduled dispute sweeps and what they find (seeds 001, 003).

Seed 003 (Yiwu): 坚持日常时期，村级每周、工作片每旬、镇街每月一次集中排查调处矛盾纠纷; seed 001
(Hami): 分层"过筛子"、分类"抱孩子". The sweeps are roster rules (``VILLAGE_SWEEP``,
``WORK_AREA_SWEEP``, ``TOWNSHIP_SWEEP``) planned into shifts like any duty, checked in
with the ordinary check-in. Each sweep shift keeps a list of **findings** (place,
parties, category, description, risk level); a finding can become a case through the
ordinary intake (``backend.cases.service.intake``), which links the finding to it.

Findings are tenant data, read by scope in SQL like shifts (the subtree of the caller's
``shift read`` grants, and those it recorded itself); a finding that became a case
carries that case's content, so Art. 30 hides it, in the same statement, from anyone
barred from the case (``access.case_known``).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.authz.scope import subtree_filter
from backend.cases import service as cases
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import parse_id
from backend.rosters.access import readable
from backend.rosters.models import SWEEP_KINDS, RiskLevel, ShiftStatus, SweepFinding
from backend.rosters.shifts import manages_shift, shift_to_act_on

SWEPT = (ShiftStatus.CHECKED_IN, ShiftStatus.COMPLETED)


async def record_sweep_finding(
    session: AsyncSession,
    principal: Principal,
    *,
    shift_id: str,
    place: str,
    parties: str,
    category: str,
    description: str,
    risk_level: RiskLevel,
) -> SweepFinding:
    """A dispute found on a sweep: by its duty leader or the roster office, once the sweep
    has been checked in (排查 happens on the spot, 痕迹化: the check-in is the trace)."""
    shift = await shift_to_act_on(session, principal, shift_id)
    if shift.kind not in SWEEP_KINDS:
        raise BadUserInput("findings are recorded on dispute sweeps only", field="shiftId")
    if shift.leader_id != principal.account_id and not manages_shift(principal, shift):
        raise Forbidden("only the sweep's duty leader or the roster office records findings")
    if shift.status not in SWEPT:
        raise InvalidTransition(
            "check in to the sweep before recording what it found", currentStatus=shift.status
        )
    finding = SweepFinding(
        tenant_id=shift.tenant_id,
        shift_id=shift.id,
        unit_path=shift.unit_path,
        day=shift.day,
        place=v.text(place, "place", max_len=200),
        parties=v.text(parties, "parties", max_len=2000),
        category=v.text(category, "category", max_len=64),
        description=v.text(description, "description", max_len=5000),
        risk_level=RiskLevel(risk_level),
        recorded_by_id=principal.account_id,
        updated_at=now(),
    )
    session.add(finding)
    await session.flush()
    return finding


def finding_predicate(principal: Principal) -> ColumnElement[bool]:
    """The findings ``principal`` may read: scope (its ``shift read`` subtrees, and what it
    recorded) and Art. 30 for a finding that became a case."""
    return readable(principal, SweepFinding, SweepFinding.recorded_by_id)


async def sweep_findings(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str | None = None,
    from_: date | None = None,
    to: date | None = None,
    shift_id: str | None = None,
    case_id: str | None = None,
) -> list[SweepFinding]:
    """Findings in scope, newest sweep first; filters by subtree, sweep days, one sweep or
    the case a finding became."""
    require(principal, "shift", "read")
    stmt = select(SweepFinding).where(finding_predicate(principal))
    if unit_path:
        stmt = stmt.where(subtree_filter(SweepFinding.unit_path, [v.path(unit_path, "unitPath")]))
    v.date_range(from_, to, max_days=366)
    if from_ is not None:
        stmt = stmt.where(SweepFinding.day >= from_)
    if to is not None:
        stmt = stmt.where(SweepFinding.day <= to)
    for value, column, kind, field in (
        (shift_id, SweepFinding.shift_id, "DutyShift", "shiftId"),
        (case_id, SweepFinding.case_id, "Case", "caseId"),
    ):
        if value is not None:
            key = parse_id(value, kind, field)  # another type's id: nothing, not IS NULL
            stmt = stmt.where(column == key if key is not None else false())
    order = (SweepFinding.day.desc(), SweepFinding.created_at, SweepFinding.id)
    return list(await session.scalars(stmt.order_by(*order)))


async def register_case_from_finding(
    session: AsyncSession,
    principal: Principal,
    *,
    finding_id: str,
    data: cases.RegisterCaseInput,
) -> cases.Registered:
    """A finding becomes a case through the ordinary intake (validation, authorisation,
    idempotency by ``clientKey``, Art. 30 at intake); the finding then names the case.
    A finding already linked to another case is a CONFLICT; the same ``clientKey`` again
    replays (the link is already there)."""
    fid = parse_id(finding_id, "SweepFinding", "findingId")
    finding = (
        await session.scalar(
            select(SweepFinding).where(SweepFinding.id == fid, finding_predicate(principal))
        )
        if fid
        else None
    )
    if finding is None:
        raise NotFound(f"finding {finding_id} not found", field="findingId")
    registered = await cases.intake(session, principal, data)
    taken = await session.scalar(
        select(SweepFinding.id).where(
            SweepFinding.case_id == registered.case.id, SweepFinding.id != finding.id
        )
    )
    if finding.case_id not in (None, registered.case.id) or taken is not None:
        raise Conflict("the finding has already become a case", field="findingId")
    finding.case_id, finding.updated_at = registered.case.id, now()
    await session.flush()
    return registered
