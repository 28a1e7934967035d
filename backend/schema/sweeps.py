"""GraphQL for 矛盾纠纷排查 findings (seeds 001, 003): record, list, turn into a case.
Thin: parses, calls ``backend.rosters.sweeps``, shapes the answer. The sweeps themselves
are roster rules and shifts (``backend/schema/rosters.py``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import strawberry

from backend.rosters import models, sweeps
from backend.schema.cases import CaseNode, Leader, RegisterCaseInput, node, receipt
from backend.schema.context import Ctx
from backend.schema.loaders import load
from backend.schema.rosters import CASES_LOADER, readable_cases

SweepRiskLevel = strawberry.enum(models.RiskLevel, name="SweepRiskLevel")


@strawberry.type
class SweepFinding:
    _m: strawberry.Private[models.SweepFinding]
    day: date
    unit_path: str
    place: str
    parties: str
    category: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, m: models.SweepFinding) -> SweepFinding:
        return cls(
            _m=m,
            day=m.day,
            unit_path=m.unit_path,
            place=m.place,
            parties=m.parties,
            category=m.category,
            description=m.description,
            created_at=m.created_at,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def shift_id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.shift_id))

    @strawberry.field
    def risk_level(self) -> SweepRiskLevel:
        return models.RiskLevel(self._m.risk_level)

    @strawberry.field
    async def recorded_by(self, info: Ctx) -> Leader | None:
        user = await load(info.context, "user_by_id", self._m.recorded_by_id)
        return Leader(username=user.username, display_name=user.display_name) if user else None

    @strawberry.field
    async def case(self, info: Ctx) -> CaseNode | None:
        if self._m.case_id is None:
            return None
        found = await info.context.loader(CASES_LOADER, readable_cases).load(self._m.case_id)
        return node(found) if found else None


@strawberry.type
class SweepQueries:
    @strawberry.field
    async def sweep_findings(
        self,
        info: Ctx,
        unit_path: str | None = None,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        shift_id: strawberry.ID | None = None,
        case_id: strawberry.ID | None = None,
    ) -> list[SweepFinding]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await sweeps.sweep_findings(
                session,
                ctx.principal,
                unit_path=unit_path,
                from_=from_,
                to=to,
                shift_id=str(shift_id) if shift_id is not None else None,
                case_id=str(case_id) if case_id is not None else None,
            )
        return [SweepFinding.of(f) for f in rows]


@strawberry.input
class RecordSweepFindingInput:
    shift_id: strawberry.ID
    place: str
    parties: str
    category: str
    description: str
    risk_level: SweepRiskLevel

    def to_service(self) -> dict[str, Any]:
        return {
            "shift_id": str(self.shift_id),
            "place": self.place,
            "parties": self.parties,
            "category": self.category,
            "description": self.description,
            "risk_level": models.RiskLevel(self.risk_level),
        }


@strawberry.input
class RegisterCaseFromFindingInput:
    finding_id: strawberry.ID
    case: RegisterCaseInput

    def to_service(self) -> dict[str, Any]:
        return {"finding_id": str(self.finding_id), "data": self.case.to_service()}


@strawberry.type
class SweepMutations:
    @strawberry.mutation
    async def record_sweep_finding(self, info: Ctx, input: RecordSweepFindingInput) -> SweepFinding:
        found = await info.context.mutate(sweeps.record_sweep_finding, **input.to_service())
        return SweepFinding.of(found)

    @strawberry.mutation
    async def register_case_from_finding(
        self, info: Ctx, input: RegisterCaseFromFindingInput
    ) -> CaseNode:
        registered = await info.context.mutate(
            sweeps.register_case_from_finding, **input.to_service()
        )
        return node(registered.case) if registered.readable else receipt(registered.case)
