"""Scores, the panel's verdict and the follow-up work it orders (三到位一处理)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.cases import deadlines, need_to_know
from backend.cases.events import append_event
from backend.cases.models import (
    Case,
    CaseDeadline,
    DeadlineStatus,
)
from backend.cases.rules import Step
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import new_id, parse_id
from backend.evaluations.models import (
    Evaluation,
    EvaluationPanel,
    PanelMember,
    PanelStatus,
    Verdict,
)
from backend.evaluations.panels import draw_grant_reaches, official_panel
from backend.evaluations.policy import load_policy
from backend.evaluations.scoring import (
    DIMENSIONS,
    FOLLOW_UP_DUTIES,
    MAX_SCORE,
    MIN_SCORE,
    Scores,
    confirms,
    panel_result,
)
from backend.notifications.service import dedupe_key, enqueue


@dataclass(frozen=True)
class ScoreInput:
    facts: int
    procedure: int
    law_and_policy: int
    responsibility: int
    verdict: Verdict
    comment: str | None = None
    hardship_relief: bool = False  # seed 004: relief alongside the verdict


async def _may_know_case(session: AsyncSession, principal: Principal, case_id: Any) -> bool:
    """Art. 30 again at submission: a member barred since the draw votes on nothing (the
    panel reads as absent; its officials cancel it and draw again)."""
    barred = need_to_know.barred_clause(
        [g.unit_path for g in principal.grants], [principal.username]
    )
    found = await session.scalar(select(Case.id).where(Case.id == case_id, ~barred))
    return found is not None


async def submit_evaluation(
    session: AsyncSession, principal: Principal, *, panel_id: str, scores: ScoreInput
) -> Evaluation:
    """A member's scores (once). The last one concludes the panel: means, majority verdict,
    and a FOLLOW_UP step on the case with the verdict's deadline."""
    require(principal, "evaluation", "submit")
    pid = parse_id(panel_id, "Panel", "panelId")
    panel = member = None
    if pid is not None:
        member = await session.scalar(
            select(PanelMember).where(
                PanelMember.panel_id == pid, PanelMember.user_id == principal.account_id
            )
        )
    if member is not None and await _may_know_case(session, principal, member.case_id):
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
        hardship_relief=bool(scores.hardship_relief),
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
        result = await _scored(session, panel)
        if result["confirmed"]:
            await _conclude(session, principal, panel, result, Verdict(result["majority"]))
        else:
            await _await_confirmation(session, principal, panel, result)
    return row


async def _scored(session: AsyncSession, panel: EvaluationPanel) -> dict[str, Any]:
    rows = list(await session.scalars(select(Evaluation).where(Evaluation.panel_id == panel.id)))
    return panel_result(
        [
            Scores(
                r.facts,
                r.procedure,
                r.law_and_policy,
                r.responsibility,
                Verdict(r.verdict),
                bool(r.hardship_relief),
            )
            for r in rows
        ]
    )


async def _await_confirmation(
    session: AsyncSession, principal: Principal, panel: EvaluationPanel, result: dict[str, Any]
) -> None:
    """Every member scored, but the majority does not confirm what the scores propose: the
    panel stays OPEN until the office records the panel's decision (confirm_verdict)."""
    panel.result = {**result, "awaitingConfirmation": True}
    case = await session.scalar(select(Case).where(Case.id == panel.case_id).with_for_update())
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATION_VERDICT_PROPOSED",
        data={
            "panelId": str(panel.id),
            "proposedVerdict": result["proposedVerdict"],
            "majority": result["majority"],
            "means": result["means"],
            "votes": result["votes"],
        },
    )
    await enqueue(
        session,
        tenant_id=case.tenant_id,
        recipient_id=panel.drawn_by_id,
        kind="evaluation_verdict",
        subject=f"案件评价待确认 {case.number}",
        body=(
            f"评分建议决议 {result['proposedVerdict']}，多数意见 {result['majority']}，"
            "请组织评议组确认决议。"
        ),
        dedupe_key=(
            f"{dedupe_key(panel.drawn_by_id, 'evaluation_verdict', case.id, now().date())}"
            f":{panel.id}:proposed"
        ),
        case_id=case.id,
        data={"panelId": str(panel.id), "proposedVerdict": result["proposedVerdict"]},
    )


async def confirm_verdict(
    session: AsyncSession,
    principal: Principal,
    *,
    panel_id: str,
    verdict: Verdict,
    note: str,
    hardship_relief: bool | None = None,
) -> EvaluationPanel:
    """The petition office records the verdict the panel confirmed after deliberating, when
    the majority of the votes did not confirm the scores' proposal: a verdict of the
    proposal's band (scoring.CONFIRMING) or the majority's own. ``hardship_relief``: the
    panel's finding on hardship after deliberating (None: as the members found it)."""
    require(principal, "panel", "draw")
    panel, case = await official_panel(session, principal, panel_id)
    if not draw_grant_reaches(principal, case, "draw"):
        raise Forbidden("not allowed to confirm this panel's verdict here")
    result = dict(panel.result or {})
    if panel.status != PanelStatus.OPEN or not result.get("awaitingConfirmation"):
        raise InvalidTransition(
            "only a fully scored panel awaiting confirmation takes a confirmed verdict",
            currentStatus=panel.status,
        )
    try:
        verdict = Verdict(verdict)
    except ValueError:
        raise BadUserInput(f"unknown verdict {verdict!r}", field="verdict") from None
    proposal, voted = Verdict(result["proposedVerdict"]), Verdict(result["majority"])
    if not confirms(proposal, verdict) and verdict != voted:
        raise BadUserInput(
            f"the panel confirms the proposal ({proposal.value}) or its majority ({voted.value})",
            field="verdict",
        )
    note = v.text(note, "note", max_len=5000)
    result.pop("awaitingConfirmation", None)
    result["confirmation"] = {"by": principal.username, "note": note}
    if hardship_relief is not None:
        result["hardshipRelief"] = bool(hardship_relief)
    await _conclude(session, principal, panel, result, verdict)
    return panel


async def _follow_up(
    session: AsyncSession,
    case: Case,
    panel: EvaluationPanel,
    verdict: Verdict,
    started: Any,
    **rule: Any,
) -> CaseDeadline:
    """A FOLLOW_UP step on the case with ``verdict``'s duty and deadline (tenant policy)."""
    policy = await load_policy(session, case.tenant_id)
    clocks = await deadlines.clocks_for(session, case)
    days = policy.follow_up_days[verdict]
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
        **rule,
    }
    return step


async def _conclude(
    session: AsyncSession,
    principal: Principal,
    panel: EvaluationPanel,
    result: dict[str, Any],
    verdict: Verdict,
) -> None:
    """The verdict's follow-up step, and — when the panel found real hardship beside
    another verdict (seed 004: 部分有理 with 救助帮扶) — a second one for the relief."""
    result = {**result, "verdict": verdict.value}
    case = await session.scalar(select(Case).where(Case.id == panel.case_id).with_for_update())
    started = now()
    step = await _follow_up(session, case, panel, verdict, started)
    days = int(step.rule["days"])
    duties = FOLLOW_UP_DUTIES[verdict]
    extra: dict[str, Any] = {}
    if result.get("hardshipRelief") and verdict is not Verdict.HARDSHIP:
        relief = await _follow_up(
            session, case, panel, Verdict.HARDSHIP, started, alongside=verdict.value
        )
        extra = {"reliefDueDate": relief.due_date.isoformat(), "reliefDeadlineId": str(relief.id)}
        duties = f"{duties}；{FOLLOW_UP_DUTIES[Verdict.HARDSHIP]}"
    else:
        result["hardshipRelief"] = verdict is Verdict.HARDSHIP
    panel.status = PanelStatus.CONCLUDED
    panel.verdict = verdict
    panel.result = {
        **result,
        "followUpDays": days,
        "followUpDueDate": step.due_date.isoformat(),
        **extra,
    }
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
        reason=duties,
        data={
            "panelId": str(panel.id),
            "verdict": verdict.value,
            "proposedVerdict": result["proposedVerdict"],
            "confirmedBy": result.get("confirmation", {}).get("by", "VOTES"),
            "means": result["means"],
            "votes": result["votes"],
            "followUpDueDate": step.due_date.isoformat(),
            "hardshipRelief": bool(result.get("hardshipRelief")),
            **({"reliefDueDate": extra["reliefDueDate"]} if extra else {}),
        },
    )
    await deadlines.refresh_due(session, case, await deadlines.clocks_for(session, case))
    recipients = {panel.drawn_by_id, case.leader_id} - {None}
    for rid in sorted(recipients):
        await enqueue(
            session,
            tenant_id=case.tenant_id,
            recipient_id=rid,
            kind="evaluation_verdict",
            subject=f"案件评价决议 {case.number}: {verdict.value}",
            body=f"{duties}，期限 {step.due_date.isoformat()}。",
            dedupe_key=f"{dedupe_key(rid, 'evaluation_verdict', case.id, started.date())}:{panel.id}",
            case_id=case.id,
            data={"panelId": str(panel.id), "verdict": verdict.value},
        )


async def settle_panel(
    session: AsyncSession, principal: Principal, *, panel_id: str, note: str
) -> EvaluationPanel:
    """定分止争: the verdict's follow-up work is done; its step is met."""
    require(principal, "evaluation", "settle")
    panel, case = await official_panel(session, principal, panel_id)
    if not draw_grant_reaches(principal, case, "settle", obj="evaluation"):
        raise Forbidden("not allowed to settle this evaluation here")
    if panel.status != PanelStatus.CONCLUDED or panel.settled_at is not None:
        state = "SETTLED" if panel.settled_at else panel.status
        raise InvalidTransition(
            f"only a concluded, unsettled evaluation can be settled (it is {state})",
            currentStatus=state,
        )
    note = v.text(note, "note", max_len=5000)
    t = now()
    relief = (panel.result or {}).get("reliefDeadlineId")
    for step_id in (panel.follow_up_deadline_id, uuid.UUID(relief) if relief else None):
        if step_id is None:
            continue
        step = await session.get(CaseDeadline, (panel.tenant_id, step_id))
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
