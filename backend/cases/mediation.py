"""四调联动 (seeds 001, 004): a case sent to mediation and the mediation's outcome.

Hami (seed 001) links the petition office's own mediation with people's,
administrative and judicial mediation (信访调解与人民调解、行政调解、司法调解"四调联动");
Zhoukou (seed 004) mediates and hears cases inside the handling. Mediation is a way of
handling an accepted case, not a new step: it happens **within the handling period and
its clock runs on**. When the mediation needs time the period does not leave, the
existing approved suspension (中止: ``holdCase`` by a leader over the holder) stops the
clock — no new clock rule. One mediation at a time; the reply waits for its outcome,
and an agreement leads to the reply and closure as usual (docs/lifecycle.md).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import service
from backend.cases.models import Case, CaseDeadline, DeadlineStatus
from backend.cases.practices import (
    CaseMediation,
    MediationKind,
    MediationOutcome,
    pending_mediation,
)
from backend.cases.rules import Step
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import InvalidTransition
from backend.core.ids import new_id


async def start_mediation(
    session: AsyncSession,
    principal: Principal,
    ref: service.CaseRef,
    *,
    kind: MediationKind,
    body: str,
    note: str | None = None,
) -> Case:
    """Send an accepted case to mediation by ``body`` (the mediating committee, office or
    court). The event names the handling due date that keeps running."""
    change = await service._begin(session, principal, ref, "start_mediation")
    case = change.case
    if await pending_mediation(session, case.id) is not None:
        raise InvalidTransition(
            "the case is already in mediation: record its outcome first", currentStatus=case.status
        )
    body = v.text(body, "body", max_len=200)
    row = CaseMediation(
        id=new_id(),
        tenant_id=case.tenant_id,
        case_id=case.id,
        kind=MediationKind(kind).value,
        body=body,
        started_at=now(),
        started_by=principal.username,
    )
    session.add(row)
    handling = await session.scalar(
        select(CaseDeadline.due_date).where(
            CaseDeadline.case_id == case.id,
            CaseDeadline.step == Step.HANDLING.value,
            CaseDeadline.status == DeadlineStatus.OPEN.value,
        )
    )
    data = {
        "mediationId": str(row.id),
        "kind": row.kind,
        "body": body,
        # the clock runs on: what the mediation has to fit in, unless a hold is approved
        "handlingDueDate": handling.isoformat() if handling else None,
    }
    reason = None if note is None else v.text(note, "note", max_len=5000)
    return await service._finish(session, principal, change, reason=reason, data=data)


async def record_mediation_outcome(
    session: AsyncSession,
    principal: Principal,
    ref: service.CaseRef,
    *,
    outcome: MediationOutcome,
    terms: str,
) -> Case:
    """调解协议 reached (its terms) or 调解不成 (why): the open mediation ends; the case goes
    on to the reply as usual."""
    change = await service._begin(session, principal, ref, "record_mediation_outcome")
    case = change.case
    row = await pending_mediation(session, case.id)
    if row is None:
        raise InvalidTransition("the case is not in mediation", currentStatus=case.status)
    row.terms = v.text(terms, "terms", max_len=service.MAX_CONTENT)
    row.outcome, row.ended_at = MediationOutcome(outcome).value, now()
    data = {"mediationId": str(row.id), "kind": row.kind, "body": row.body, "outcome": row.outcome}
    return await service._finish(session, principal, change, reason=row.terms, data=data)


async def mediations(
    session: AsyncSession, principal: Principal, case_id: str
) -> list[CaseMediation]:
    """The mediations of a case the caller may read (:func:`service.find_case`: NOT_FOUND
    otherwise — Art. 30 included), oldest first."""
    case = await service.find_case(session, principal, case_id)
    rows = await session.scalars(
        select(CaseMediation)
        .where(CaseMediation.case_id == case.id)
        .order_by(CaseMediation.started_at, CaseMediation.id)
    )
    return list(rows)
