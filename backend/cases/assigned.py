"""京、省交办 (seed 000): cases the national or provincial petition bureau assigned down.

Shangqiu's platform "实时动态监测京、省、市交办的重点案件办理情况": such a case is
registered with the bureau (origin), the bureau's number (交办单号) and the bureau's
deadline, tracked on its own board and in the red digest, and reported back (报结) to
the bureau. The bureau's deadline is a ``REPORT_BACK`` step on the case beside its
statutory clocks: the case's ``dueAt`` and colour follow the earliest open step, so
whichever date comes first — ours or the bureau's — governs (docs/deadlines.md). The
step is owed outside the case's own path (``rules.OWED_OUTSIDE``): a reply, rejection or
closure leaves it open; only the report back ends it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.cases import deadlines, practices, service
from backend.cases.events import append_event
from backend.cases.models import Case, CaseDeadline
from backend.cases.practices import AssignedCase, AssignedDown, AssignmentOrigin
from backend.cases.rules import Step, end_of_day
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import AppError, BadUserInput, InvalidTransition
from backend.core.ids import new_id

ARTICLE = "京、省交办 (seed 000): the assigning bureau's 交办单 deadline"


async def intake(
    session: AsyncSession, principal: Principal, data: service.RegisterCaseInput
) -> service.Registered:
    """:func:`service.intake`, recording where a case the bureau assigned down
    (``assigned_down``) came from, in the same transaction.

    The 交办单 is part of the petition's payload: a replay of a ``clientKey`` with the
    same one replays the case, with another one (or none where there was one) it is a
    CONFLICT on ``clientKey`` (service.RegisterCaseInput.payload_hash).
    """
    data = _checked(data)
    registered = await service.intake(session, principal, data)
    await _record(session, principal, registered.case, data.assigned_down)
    return registered


async def intake_many(
    session: AsyncSession, principal: Principal, items: Sequence[service.RegisterCaseInput]
) -> list[service.Registered]:
    """:func:`service.intake_many` (all or nothing), recording each 交办单 like :func:`intake`;
    a refused 交办单 names its item (``extensions.index``) as the service's refusals do."""
    checked = []
    for index, data in enumerate(items):
        with _item(index):
            checked.append(_checked(data))
    done = await service.intake_many(session, principal, checked)
    for index, (registered, data) in enumerate(zip(done, checked, strict=True)):
        with _item(index):
            await _record(session, principal, registered.case, data.assigned_down)
    return done


@contextmanager
def _item(index: int) -> Iterator[None]:
    try:
        yield
    except AppError as exc:
        exc.extensions["index"] = index
        raise


def _checked(data: service.RegisterCaseInput) -> service.RegisterCaseInput:
    down = data.assigned_down
    if down is None:
        return data
    number = v.text(down.external_number, "assignedDown.externalNumber", max_len=64)
    return dataclasses.replace(
        data,
        assigned_down=AssignedDown(AssignmentOrigin(down.origin), number, down.external_due_date),
    )


async def _record(
    session: AsyncSession, principal: Principal, case: Case, down: AssignedDown | None
) -> None:
    """The assignment, its ``REPORT_BACK`` clock and an ``ASSIGNED_DOWN`` event; nothing on
    a replay (the same payload recorded them already)."""
    if down is None:
        return
    existing = await session.scalar(select(AssignedCase.id).where(AssignedCase.case_id == case.id))
    if existing is not None:
        return
    clocks = await deadlines.clocks_for(session, case)
    if down.external_due_date < clocks.local_date(case.received_at):
        raise BadUserInput(
            "the bureau's deadline cannot be before the day the case was received",
            field="assignedDown.externalDueDate",
        )
    session.add(
        AssignedCase(
            id=new_id(),
            tenant_id=case.tenant_id,
            case_id=case.id,
            origin=down.origin.value,
            external_number=down.external_number,
            external_due_date=down.external_due_date,
        )
    )
    facts = _facts(down)
    session.add(
        CaseDeadline(
            tenant_id=case.tenant_id,
            case_id=case.id,
            step=Step.REPORT_BACK,
            started_at=case.received_at,
            due_date=down.external_due_date,
            # the bureau's date as written: not rolled past a holiday (a report after it
            # is late in the bureau's system, whatever our calendar says)
            due_at=end_of_day(down.external_due_date, clocks.policy),
            rule={"step": Step.REPORT_BACK.value, "article": ARTICLE, "counting": "fixed", **facts},
        )
    )
    await append_event(session, case, principal, "ASSIGNED_DOWN", data=facts)
    await deadlines.refresh_due(session, case, clocks)


def _facts(down: AssignedDown) -> dict[str, Any]:
    return {
        "origin": down.origin.value,
        "externalNumber": down.external_number,
        "externalDueDate": down.external_due_date.isoformat(),
    }


async def report_back(
    session: AsyncSession, principal: Principal, ref: service.CaseRef, *, report: str
) -> Case:
    """报结: the petition office reports the outcome to the bureau that assigned the case.

    Once the case has an answer (replied, reviewed, not accepted, diverted or closed):
    the ``REPORT_BACK`` step is met and the event records whether it was on time.
    """
    change = await service._begin(session, principal, ref, "report_back")
    case = change.case
    row = await session.scalar(select(AssignedCase).where(AssignedCase.case_id == case.id))
    if row is None:
        raise InvalidTransition(
            "this case was not assigned down by a bureau", currentStatus=case.status
        )
    if row.reported_at is not None:
        raise InvalidTransition("the report back was already made", currentStatus=case.status)
    row.report = v.text(report, "report", max_len=service.MAX_CONTENT)
    row.reported_at, row.reported_by = now(), principal.username
    on_time = row.reported_at <= end_of_day(row.external_due_date, change.clocks.policy)
    await deadlines.finish_steps(session, case, steps={Step.REPORT_BACK})
    data = {
        "origin": row.origin,
        "externalNumber": row.external_number,
        "externalDueDate": row.external_due_date.isoformat(),
        "onTime": on_time,
    }
    return await service._finish(session, principal, change, reason=row.report, data=data)


async def board(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str | None = None,
    include_reported: bool = False,
    first: int = 50,
) -> list[tuple[AssignedCase, Case]]:
    """京、省交办 board: the assigned-down cases the caller may read (tenant, scope and Art.
    30 in SQL, the read predicate of every case list), not yet reported back unless
    ``include_reported``, the bureau's earliest deadline first."""
    return await practices.with_visible_cases(
        session,
        principal,
        AssignedCase,
        *([] if include_reported else [AssignedCase.reported_at.is_(None)]),
        unit_path=unit_path,
        first=first,
        order_by=(AssignedCase.external_due_date, Case.number),
    )
