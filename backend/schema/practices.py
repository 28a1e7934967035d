"""GraphQL of the seed practices around a case: 京、省交办 (seed 000), 四调联动 mediation
(seeds 001, 004) and the 三不限"回头看" re-visit list (seed 004). Thin: services do the rules.
"""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from backend.cases import assigned, mediation, practices, revisits
from backend.schema.cases import AssignmentOrigin, CaseNode, CaseRefInput, _mutate, node
from backend.schema.context import Ctx


@strawberry.type
class AssignedDownCase:
    case: CaseNode
    origin: AssignmentOrigin
    external_number: str
    external_due_date: date
    reported_at: datetime | None
    reported_by: str | None
    report: str | None

    @classmethod
    def of(cls, row: practices.AssignedCase, case: object) -> AssignedDownCase:
        return cls(
            case=node(case),  # type: ignore[arg-type]
            origin=practices.AssignmentOrigin(row.origin),
            external_number=row.external_number,
            external_due_date=row.external_due_date,
            reported_at=row.reported_at,
            reported_by=row.reported_by,
            report=row.report,
        )


@strawberry.input
class ReportAssignedCaseInput(CaseRefInput):
    report: str


MediationKind = strawberry.enum(practices.MediationKind, name="MediationKind")
MediationOutcome = strawberry.enum(practices.MediationOutcome, name="MediationOutcome")


@strawberry.type
class Mediation:
    id: strawberry.ID
    kind: MediationKind
    body: str
    started_at: datetime
    started_by: str
    outcome: MediationOutcome | None
    ended_at: datetime | None
    terms: str | None

    @classmethod
    def of(cls, row: practices.CaseMediation) -> Mediation:
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=practices.MediationKind(row.kind),
            body=row.body,
            started_at=row.started_at,
            started_by=row.started_by,
            outcome=practices.MediationOutcome(row.outcome) if row.outcome else None,
            ended_at=row.ended_at,
            terms=row.terms,
        )


@strawberry.input
class StartMediationInput(CaseRefInput):
    kind: MediationKind
    body: str
    note: str | None = None


@strawberry.input
class RecordMediationOutcomeInput(CaseRefInput):
    outcome: MediationOutcome
    terms: str


RevisitOutcome = strawberry.enum(practices.RevisitOutcome, name="RevisitOutcome")


@strawberry.type
class Revisit:
    id: strawberry.ID
    period: str
    case: CaseNode
    visited_on: date | None
    visited_by: str | None
    outcome: RevisitOutcome | None
    note: str | None

    @classmethod
    def of(cls, row: practices.CaseRevisit, case: object) -> Revisit:
        return cls(
            id=strawberry.ID(str(row.id)),
            period=row.period,
            case=node(case),  # type: ignore[arg-type]
            visited_on=row.visited_on,
            visited_by=row.visited_by,
            outcome=practices.RevisitOutcome(row.outcome) if row.outcome else None,
            note=row.note,
        )


@strawberry.input
class RecordRevisitInput(CaseRefInput):
    visited_on: date
    outcome: RevisitOutcome
    note: str


@strawberry.type
class PracticeQueries:
    @strawberry.field
    async def assigned_down_cases(
        self,
        info: Ctx,
        unit_path: str | None = None,
        include_reported: bool = False,
        first: int = 50,
    ) -> list[AssignedDownCase]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await assigned.board(
                session,
                ctx.principal,
                unit_path=unit_path,
                include_reported=include_reported,
                first=first,
            )
        return [AssignedDownCase.of(row, case) for row, case in rows]

    @strawberry.field
    async def case_mediations(self, info: Ctx, case_id: strawberry.ID) -> list[Mediation]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await mediation.mediations(session, ctx.principal, str(case_id))
        return [Mediation.of(row) for row in rows]

    @strawberry.field
    async def revisits(
        self,
        info: Ctx,
        period: str | None = None,
        pending_only: bool = True,
        unit_path: str | None = None,
        first: int = 50,
    ) -> list[Revisit]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await revisits.revisit_list(
                session,
                ctx.principal,
                period=period,
                pending_only=pending_only,
                unit_path=unit_path,
                first=first,
            )
        return [Revisit.of(row, case) for row, case in rows]


@strawberry.type
class PracticeMutations:
    @strawberry.mutation
    async def report_assigned_case(self, info: Ctx, input: ReportAssignedCaseInput) -> CaseNode:
        return await _mutate(info, assigned.report_back, input.ref(), report=input.report)

    @strawberry.mutation
    async def start_mediation(self, info: Ctx, input: StartMediationInput) -> CaseNode:
        return await _mutate(
            info,
            mediation.start_mediation,
            input.ref(),
            kind=input.kind,
            body=input.body,
            note=input.note,
        )

    @strawberry.mutation
    async def record_mediation_outcome(
        self, info: Ctx, input: RecordMediationOutcomeInput
    ) -> CaseNode:
        return await _mutate(
            info,
            mediation.record_mediation_outcome,
            input.ref(),
            outcome=input.outcome,
            terms=input.terms,
        )

    @strawberry.mutation
    async def record_revisit(self, info: Ctx, input: RecordRevisitInput) -> CaseNode:
        return await _mutate(
            info,
            revisits.record_revisit,
            input.ref(),
            visited_on=input.visited_on,
            outcome=input.outcome,
            note=input.note,
        )
