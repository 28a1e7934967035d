"""Open, finish, shift and colour the clocks of a case's steps.

Each open step is a ``case_deadlines`` row carrying the rule that produced
its due date; the case's ``due_at``/``warning_color`` mirror the earliest
open step so lists can filter and sort on the case table alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.calendar import WorkingDayCalendar
from backend.cases.events import complete_values
from backend.cases.models import Case, CaseDeadline, DeadlineStatus, WarningColor
from backend.cases.policy import load_calendar, load_policy
from backend.cases.rules import (
    CARRIED_RULE_KEYS,
    OWED_OUTSIDE,
    DeadlinePolicy,
    DueDate,
    Step,
    compute_due,
    fixed_due,
    handling_due,
    held_days_between,
    warning_color,
)
from backend.core.clock import now
from backend.core.db import insert_values


@dataclass(frozen=True)
class Clocks:
    """What computing a due date needs: the tenant's policy and the national calendar."""

    policy: DeadlinePolicy
    calendar: WorkingDayCalendar

    def local_date(self, at: datetime) -> date:
        return at.astimezone(self.policy.tz).date()


async def clocks_for(session: AsyncSession, case: Case) -> Clocks:
    return Clocks(await load_policy(session, case.tenant_id), await load_calendar(session))


async def open_deadlines(session: AsyncSession, case: Case) -> list[CaseDeadline]:
    rows = await session.scalars(
        select(CaseDeadline).where(
            CaseDeadline.case_id == case.id, CaseDeadline.status == DeadlineStatus.OPEN
        )
    )
    return list(rows)


async def open_step(
    session: AsyncSession,
    case: Case,
    step: Step,
    start: datetime,
    clocks: Clocks,
    *,
    days: int | None = None,
) -> CaseDeadline:
    deadline = _deadline(
        case, step, start, compute_due(step, start, clocks.calendar, clocks.policy, days=days)
    )
    session.add(deadline)
    return deadline


def _deadline(case: Case, step: Step, start: datetime, due: DueDate, **extra: Any) -> CaseDeadline:
    """The row of one clock of ``case`` (not yet added to a session); ``extra`` may
    override the rule or set the other columns."""
    return CaseDeadline(
        **{
            "tenant_id": case.tenant_id,
            "case_id": case.id,
            "step": step,
            "started_at": start,
            "due_date": due.due_date,
            "due_at": due.due_at,
            "rule": due.rule,
            **extra,
        }
    )


def open_handling(session: AsyncSession, case: Case, start: datetime, clocks: Clocks) -> None:
    """受理: the handling clock, by the tenant's limit for the case's type (handling_due)."""
    due = handling_due(case.type, start, clocks.calendar, clocks.policy)
    session.add(_deadline(case, Step.HANDLING, start, due))


def first_step(case: Case, step: Step, start: datetime, clocks: Clocks) -> CaseDeadline:
    """The clock of a case being registered, coloured, with the case's mirror set.

    Called before the case's INSERT: its only open step is this one, so ``due_at`` and
    ``warning_color`` go into that INSERT and intake needs no :func:`refresh_due` (a
    SELECT and an UPDATE). The caller writes the returned row with :func:`insert_first_steps`
    once the case is inserted.
    """
    due = compute_due(step, start, clocks.calendar, clocks.policy)
    current = now()
    colour = warning_color(due.due_at, current, clocks.policy)
    case.due_at = due.due_at
    set_case_colour(case, colour, current)
    return _deadline(case, step, start, due, warning_color=colour)


async def insert_first_steps(session: AsyncSession, clocks: Sequence[CaseDeadline]) -> None:
    """Write the clocks :func:`first_step` built (one per case of an intake or a bulk
    intake's batch) as multi-row ``INSERT … VALUES`` (no unit of work; nothing reads them
    back in the intake's transaction; routable on Citus)."""
    await insert_values(session, CaseDeadline.__table__, [complete_values(d) for d in clocks])


def open_supervision(
    session: AsyncSession,
    case: Case,
    due_date: date,
    clocks: Clocks,
    *,
    note: str,
    issued_by: uuid.UUID,
) -> CaseDeadline:
    """督办 — a supervision order's own due date, rolled off holidays like any other."""
    start = now()
    due = fixed_due(Step.SUPERVISION, due_date, start, clocks.calendar, clocks.policy)
    rule = {
        **due.rule,
        "article": "督办 (supervision order)",
        "orderedDueDate": due_date.isoformat(),
    }
    deadline = _deadline(
        case, Step.SUPERVISION, start, due, note=note, issued_by_id=issued_by, rule=rule
    )
    session.add(deadline)
    return deadline


async def finish_steps(
    session: AsyncSession,
    case: Case,
    *,
    steps: set[Step] | None = None,
    include_supervision: bool = False,
    status: DeadlineStatus = DeadlineStatus.MET,
) -> None:
    """Stop the clocks of ``steps`` (default: every open statutory step).

    The default leaves the steps of :data:`OWED_OUTSIDE` open: the duties an evaluation
    verdict orders (explanation, relief, lawful handling) outlive the case's closure and
    end only when done (``settleEvaluation``), and so does the report owed to the bureau
    that assigned the case down (``reportAssignedCase``, seed 000); name the step to stop it.
    """
    for deadline in await open_deadlines(session, case):
        step = Step(deadline.step)
        if steps is not None and step not in steps:
            continue
        if steps is None and step in OWED_OUTSIDE:
            continue
        if step is Step.SUPERVISION and not include_supervision:
            continue
        deadline.status = status
        deadline.finished_at = now()


async def extend_step(
    session: AsyncSession, case: Case, step: Step, extra_days: int, clocks: Clocks
) -> None:
    """Recompute an open step's due date with ``extra_days`` added to its limit (Art. 34)."""
    for deadline in await open_deadlines(session, case):
        if Step(deadline.step) is step:
            base = int(deadline.rule.get("days", 0))
            due = compute_due(
                step,
                deadline.started_at,
                clocks.calendar,
                clocks.policy,
                days=base + extra_days,
                held_days=deadline.held_days,
            )
            deadline.due_date, deadline.due_at = due.due_date, due.due_at
            deadline.rule = {**due.rule, **_carried(deadline.rule), "extensionDays": extra_days}


async def shift_for_hold(
    session: AsyncSession, case: Case, hold_started: datetime, resumed: datetime, clocks: Clocks
) -> dict[str, int]:
    """A hold (hearing, approved suspension) stops the clock: push open statutory steps back.

    Each step's held time is measured in its own unit (calendar or working days);
    the due date is recomputed from the same start with the new total.
    """
    shifted: dict[str, int] = {}
    for deadline in await open_deadlines(session, case):
        step = Step(deadline.step)
        held = held_days_between(step, hold_started, resumed, clocks.calendar, clocks.policy)
        # an order's date and the assigning bureau's date are not ours to push back
        if step in (Step.SUPERVISION, Step.REPORT_BACK) or held <= 0:
            continue
        deadline.held_days += held
        due = compute_due(
            step,
            deadline.started_at,
            clocks.calendar,
            clocks.policy,
            days=int(deadline.rule.get("days", 0)),
            held_days=deadline.held_days,
        )
        deadline.due_date, deadline.due_at = due.due_date, due.due_at
        deadline.rule = {**due.rule, **_carried(deadline.rule)}
        shifted[step.value] = held
    return shifted


def _carried(rule: dict[str, Any]) -> dict[str, Any]:
    """What a recomputed rule keeps of the old one (extension, the type's own limit)."""
    return {k: v for k, v in rule.items() if k in CARRIED_RULE_KEYS}


async def refresh_due(session: AsyncSession, case: Case, clocks: Clocks) -> None:
    """Colour every open step and mirror the earliest onto the case."""
    await session.flush()
    current = now()
    deadlines = await open_deadlines(session, case)
    for deadline in deadlines:
        deadline.warning_color = warning_color(deadline.due_at, current, clocks.policy)
    earliest = min(deadlines, key=lambda d: d.due_at, default=None)
    case.due_at = earliest.due_at if earliest else None
    set_case_colour(
        case,
        warning_color(case.due_at, current, clocks.policy) if case.due_at else WarningColor.NONE,
        current,
    )


def set_case_colour(case: Case, colour: str, at: datetime) -> None:
    """The case's colour and its red-since clock together: the clock starts when the case
    turns red (here or in the deadline scan) and stops when it is no longer red.

    Mutations keep the two in step themselves because no index of ``cases`` may name
    either column (the scan's colour updates must stay HOT, migration 0011), so the scan
    cannot search for red cases without a stamp.
    """
    if colour == WarningColor.RED:
        if case.warning_color != WarningColor.RED or case.red_since is None:
            case.red_since = at
    else:
        case.red_since = None
    case.warning_color = colour
