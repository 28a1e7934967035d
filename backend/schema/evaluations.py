"""GraphQL for 案件办理质量评价: the evaluator pool, panels, scores, verdicts and figures.

Thin like the other modules: inputs become service calls, the services hold
the rules (who may draw, who sees which score, what a verdict opens).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from strawberry.dataloader import DataLoader

from backend.cases.pii import mask_phone
from backend.cases.service import find_case
from backend.core.pagination import PageArgs, encode
from backend.evaluations import csv_import, models, panels, pool, scoring, statistics, verdicts
from backend.evaluations import draw as drawing
from backend.evaluations import policy as eval_policy
from backend.schema.cases import CaseConnection, CaseNode, connection, node
from backend.schema.context import Ctx, RequestContext
from backend.schema.loaders import load
from backend.schema.relay import After, Before, Connection, First, Last, Node, connection_of

EvaluatorCategory = strawberry.enum(models.EvaluatorCategory, name="EvaluatorCategory")
EvaluatorStatus = strawberry.enum(models.EvaluatorStatus, name="EvaluatorStatus")
Verdict = strawberry.enum(models.Verdict, name="Verdict")
PanelStatus = strawberry.enum(models.PanelStatus, name="PanelStatus")


# A seed is an integer or a string (1-128 characters), echoed back as given: JSON carries
# both without a custom scalar; anything else is BAD_USER_INPUT (field "seed").
Seed = strawberry.scalars.JSON


# --- pool ------------------------------------------------------------------------------------


@strawberry.type
class RelatedPerson:
    name: str
    id_number: str | None = strawberry.field(description="Always masked.")
    phone: str | None = strawberry.field(description="Always masked.")


@strawberry.type(name="Evaluator")
class EvaluatorType:
    id: strawberry.ID
    username: str
    display_name: str
    category: EvaluatorCategory
    status: EvaluatorStatus
    active: bool
    excluded_unit_paths: list[str]
    related_persons: list[RelatedPerson]
    phone: str | None = strawberry.field(description="Masked unless the caller manages the pool.")
    email: str | None = strawberry.field(description="Masked unless the caller manages the pool.")
    panels_served: int
    approved_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, entry: pool.PoolEntry, show_contacts: bool) -> EvaluatorType:
        e = entry.evaluator
        return cls(
            id=strawberry.ID(str(e.id)),
            username=entry.username,
            display_name=entry.display_name,
            category=models.EvaluatorCategory(e.category),
            status=models.EvaluatorStatus(e.status),
            active=e.status == models.EvaluatorStatus.ACTIVE,
            excluded_unit_paths=list(e.excluded_unit_paths or []),
            related_persons=[
                RelatedPerson(
                    name=r["name"], id_number=r.get("idMasked"), phone=r.get("phoneMasked")
                )
                for r in e.related_persons or []
            ],
            phone=e.contact_phone if show_contacts else mask_phone(e.contact_phone),
            email=e.contact_email if show_contacts else pool.mask_email(e.contact_email),
            panels_served=entry.panels_served,
            approved_at=e.approved_at,
            note=e.note if show_contacts else None,
        )


@strawberry.type
class CategoryCount:
    category: EvaluatorCategory
    count: int


@strawberry.type
class EvaluatorPool:
    _entries: strawberry.Private[list[pool.PoolEntry]]
    _show: strawberry.Private[bool]

    @strawberry.field(description="Pool members by username, optionally filtered.")
    def evaluators(
        self,
        status: EvaluatorStatus | None = None,
        category: EvaluatorCategory | None = None,
        active: bool | None = None,
    ) -> list[EvaluatorType]:
        out = []
        for entry in self._entries:
            e = entry.evaluator
            if status is not None and e.status != models.EvaluatorStatus(status):
                continue
            if category is not None and e.category != models.EvaluatorCategory(category):
                continue
            if active is not None and (e.status == models.EvaluatorStatus.ACTIVE) != active:
                continue
            out.append(EvaluatorType.of(entry, self._show))
        return out

    @strawberry.field
    def total_count(self) -> int:
        return len(self._entries)

    @strawberry.field
    def active_count(self) -> int:
        return sum(e.evaluator.status == models.EvaluatorStatus.ACTIVE for e in self._entries)

    @strawberry.field(description="Active members per category.")
    def by_category(self) -> list[CategoryCount]:
        counts = {c: 0 for c in models.EvaluatorCategory}
        for e in self._entries:
            if e.evaluator.status == models.EvaluatorStatus.ACTIVE:
                counts[models.EvaluatorCategory(e.evaluator.category)] += 1
        return [CategoryCount(category=c, count=n) for c, n in counts.items()]


# --- panels ----------------------------------------------------------------------------------


@strawberry.type(name="PanelMember")
class PanelMemberType:
    username: str
    display_name: str
    category: EvaluatorCategory
    position: int
    submitted: bool


@strawberry.type
class DimensionMeans:
    facts: float
    procedure: float
    law_and_policy: float
    responsibility: float


@strawberry.type
class VerdictCount:
    verdict: Verdict
    count: int


@strawberry.type
class PanelResult:
    verdict: Verdict
    means: DimensionMeans
    votes: list[VerdictCount]
    tie_broken: bool = strawberry.field(description="A tie was resolved to the stricter verdict.")
    follow_up_days: int
    follow_up_due_date: date
    duty: str
    proposed_verdict: Verdict | None = strawberry.field(
        description=(
            "The verdict the four dimension means proposed (docs/evaluations.md); null on "
            "panels concluded before the rule."
        ),
        default=None,
    )
    confirmed_by: str | None = strawberry.field(
        description=(
            "VOTES when the majority confirmed the proposal, else the username of the "
            "official who recorded the panel's confirmed verdict."
        ),
        default=None,
    )
    hardship_relief: bool = False
    relief_due_date: date | None = None


@strawberry.type(
    description="What the scores propose once every member has scored, and whether it stands."
)
class VerdictProposal:
    proposed_verdict: Verdict = strawberry.field(description="From the four dimension means.")
    majority: Verdict = strawberry.field(description="The majority vote (ties → stricter).")
    awaiting_confirmation: bool = strawberry.field(
        description="The majority does not confirm the proposal: confirmEvaluationVerdict."
    )


@strawberry.type(name="Evaluation")
class EvaluationType:
    id: strawberry.ID
    username: str
    facts: int
    procedure: int
    law_and_policy: int
    responsibility: int
    verdict: Verdict
    comment: str | None
    submitted_at: datetime
    _panel_id: strawberry.Private[str]

    @classmethod
    def of(cls, e: models.Evaluation, username: str) -> EvaluationType:
        return cls(
            id=strawberry.ID(str(e.id)),
            username=username,
            facts=e.facts,
            procedure=e.procedure,
            law_and_policy=e.law_and_policy,
            responsibility=e.responsibility,
            verdict=models.Verdict(e.verdict),
            comment=e.comment,
            submitted_at=e.submitted_at,
            _panel_id=str(e.panel_id),
        )

    @strawberry.field
    async def panel(self, info: Ctx) -> PanelType:
        ctx = info.context
        async with ctx.read() as session:
            return PanelType.of(await panels.get_panel(session, ctx.principal, self._panel_id))


def _members_loader(ctx: RequestContext) -> DataLoader[Any, Any]:
    async def batch(keys: Sequence[Any]) -> list[list[panels.MemberView]]:
        async with ctx.read() as session:
            found = await panels.members_of(session, list(keys))
        return [found.get(k, []) for k in keys]

    return DataLoader(load_fn=batch)


@strawberry.type(name="Panel")
class PanelType(Node):
    _m: strawberry.Private[models.EvaluationPanel]
    size: int
    pool_hash: str = strawberry.field(
        description="SHA-256 of the eligible pool and the category mix at the draw."
    )
    policy: strawberry.scalars.JSON = strawberry.field(
        description="The category mix the draw applied."
    )
    drawn_at: datetime
    concluded_at: datetime | None
    settled_at: datetime | None
    settled_note: str | None
    cancelled_reason: str | None

    @classmethod
    def of(cls, m: models.EvaluationPanel, **private: Any) -> PanelType:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(
            _m=m,
            **private,
            size=m.size,
            pool_hash=m.pool_hash,
            policy=m.policy,
            drawn_at=m.drawn_at,
            concluded_at=m.concluded_at,
            settled_at=m.settled_at,
            settled_note=m.settled_note,
            cancelled_reason=m.cancelled_reason,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def seed(self) -> Seed:
        return drawing.loaded_seed(self._m.seed, self._m.seed_is_int)

    @strawberry.field
    def status(self) -> PanelStatus:
        return models.PanelStatus(self._m.status)

    @strawberry.field(
        description=(
            "Why the case was eligible: DISSATISFIED; UPWARD_REPEATS_n (n ≥ 3 petitions to the "
            "province or Beijing on the matter) with TO_PROVINCE_p / TO_BEIJING_b. Panels drawn "
            "before 2026-12 may say REPEAT_n or SKIP_LEVEL_x."
        )
    )
    def reasons(self) -> list[str]:
        return list(self._m.reasons or [])

    @strawberry.field
    def eligible_count(self) -> int:
        return len(self._m.pool_snapshot or [])

    @strawberry.field
    def case_id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.case_id))

    @strawberry.field(description="The case (PII masked for evaluators).")
    async def case(self, info: Ctx) -> CaseNode:
        ctx = info.context
        async with ctx.read() as session:
            return node(await find_case(session, ctx.principal, str(self._m.case_id)))

    @strawberry.field
    async def drawn_by(self, info: Ctx) -> str | None:
        user = await load(info.context, "user_by_id", self._m.drawn_by_id)
        return user.username if user else None

    @strawberry.field
    async def members(self, info: Ctx) -> list[PanelMemberType]:
        rows = await info.context.loader("evaluation_members", _members_loader).load(self._m.id)
        return [
            PanelMemberType(
                username=r.username,
                display_name=r.display_name,
                category=models.EvaluatorCategory(r.member.category),
                position=r.member.position,
                submitted=r.submitted,
            )
            for r in rows
        ]

    @strawberry.field(
        description="Submitted scores; a member sees none until it has submitted its own."
    )
    async def evaluations(self, info: Ctx) -> list[EvaluationType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await panels.scores_visible_to(session, ctx.principal, self._m)
        return [EvaluationType.of(s.evaluation, s.username) for s in rows or []]

    @strawberry.field(description="The caller's own scores on this panel, if submitted.")
    async def my_evaluation(self, info: Ctx) -> EvaluationType | None:
        ctx = info.context
        async with ctx.read() as session:
            row = await panels.own_score(session, ctx.principal, self._m)
        return EvaluationType.of(row, ctx.principal.username) if row else None

    @strawberry.field(
        description="Once every member has scored: the proposed verdict and the majority."
    )
    def proposal(self) -> VerdictProposal | None:
        r = self._m.result or {}
        if not r.get("proposedVerdict"):
            return None
        return VerdictProposal(
            proposed_verdict=models.Verdict(r["proposedVerdict"]),
            majority=models.Verdict(r.get("majority", r["verdict"])),
            awaiting_confirmation=bool(r.get("awaitingConfirmation")),
        )

    @strawberry.field(description="Means, majority verdict (ties → stricter) and follow-up.")
    def result(self) -> PanelResult | None:
        r = self._m.result or {}
        if self._m.status != models.PanelStatus.CONCLUDED or not r:
            return None
        verdict = models.Verdict(r["verdict"])
        means = r["means"]
        return PanelResult(
            verdict=verdict,
            means=DimensionMeans(
                facts=means["facts"],
                procedure=means["procedure"],
                law_and_policy=means["lawAndPolicy"],
                responsibility=means["responsibility"],
            ),
            votes=[VerdictCount(verdict=models.Verdict(k), count=n) for k, n in r["votes"].items()],
            tie_broken=bool(r.get("tieBroken")),
            follow_up_days=int(r["followUpDays"]),
            follow_up_due_date=date.fromisoformat(r["followUpDueDate"]),
            duty=scoring.FOLLOW_UP_DUTIES[verdict],
            proposed_verdict=models.Verdict(r["proposedVerdict"])
            if r.get("proposedVerdict")
            else None,
            confirmed_by=(r.get("confirmation") or {}).get("by")
            or ("VOTES" if r.get("proposedVerdict") else None),
            hardship_relief=bool(r.get("hardshipRelief", verdict is models.Verdict.HARDSHIP)),
            relief_due_date=date.fromisoformat(r["reliefDueDate"])
            if r.get("reliefDueDate")
            else None,
        )


# --- policy and figures ----------------------------------------------------------------------


@strawberry.type
class CategoryMinimum:
    category: EvaluatorCategory
    count: int


@strawberry.type
class VerdictDays:
    verdict: Verdict
    days: int


@strawberry.type(name="EvaluationPolicy")
class EvaluationPolicyType:
    default_size: int
    max_size: int
    minimums: list[CategoryMinimum]
    min_non_official: int
    follow_up_days: list[VerdictDays]

    @classmethod
    def of(cls, p: eval_policy.EvaluationPolicy) -> EvaluationPolicyType:
        return cls(
            default_size=p.default_size,
            max_size=p.max_size,
            minimums=[CategoryMinimum(category=c, count=n) for c, n in sorted(p.minimums.items())],
            min_non_official=p.min_non_official,
            follow_up_days=[VerdictDays(verdict=k, days=n) for k, n in p.follow_up_days.items()],
        )


@strawberry.type
class EvaluationStatistics:
    evaluated: int
    settled: int
    pending: int
    verdict_mix: list[VerdictCount]


@strawberry.type
class EvaluationQueries:
    @strawberry.field(description="The city's evaluator pool (city admin, officers, leaders).")
    async def evaluator_pool(self, info: Ctx) -> EvaluatorPool:
        ctx = info.context
        async with ctx.read() as session:
            entries = await pool.list_pool(session, ctx.principal)
        return EvaluatorPool(_entries=entries, _show=pool.sees_contact_details(ctx.principal))

    @strawberry.field(
        description="One panel: null + NOT_FOUND when absent or not visible; other fields survive."
    )
    async def evaluation_panel(self, info: Ctx, id: strawberry.ID) -> PanelType | None:
        ctx = info.context
        async with ctx.read() as session:
            return PanelType.of(await panels.get_panel(session, ctx.principal, str(id)))

    @strawberry.field(
        description="Visible panels, newest first; mine: those the caller sits on.",
        deprecation_reason="Use evaluationPanelsConnection: Relay cursors in both directions (first/after, last/before).",
    )
    async def evaluation_panels(
        self,
        info: Ctx,
        case_id: strawberry.ID | None = None,
        status: PanelStatus | None = None,
        mine: bool = False,
        first: int = 50,
    ) -> list[PanelType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await panels.list_panels(
                session,
                ctx.principal,
                case_id=str(case_id) if case_id is not None else None,
                status=status,
                mine=mine,
                first=first,
            )
        return [PanelType.of(p) for p in rows]

    @strawberry.field(
        description=(
            "Visible panels, newest draw first, as a Relay connection; mine: those the "
            "caller sits on."
        )
    )
    async def evaluation_panels_connection(
        self,
        info: Ctx,
        case_id: strawberry.ID | None = None,
        status: PanelStatus | None = None,
        mine: bool = False,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[PanelType]:
        ctx = info.context
        args = PageArgs(first, after, last, before)
        async with ctx.read() as session:
            window = await panels.panel_page(
                session,
                ctx.principal,
                args,
                case_id=str(case_id) if case_id is not None else None,
                status=status,
                mine=mine,
            )
        return connection_of(window, PanelType.of, lambda row: encode(panels.PANEL_KEYS, row))

    @strawberry.field(
        description=(
            "Cases eligible for evaluation: dissatisfied, or ≥ 3 petitions to the province or "
            "Beijing on the same matter (赴京到省重复信访3次以上)."
        )
    )
    async def evaluation_eligible_cases(
        self,
        info: Ctx,
        first: First = None,
        after: After = None,
        include_evaluated: bool = False,
        last: Last = None,
        before: Before = None,
    ) -> CaseConnection:
        ctx = info.context
        async with ctx.read() as session:
            page = await panels.eligible_cases(
                session,
                ctx.principal,
                first=first,
                after=after,
                include_evaluated=include_evaluated,
                last=last,
                before=before,
            )
        return await connection(info, page)

    @strawberry.field(description="The city's panel size, category mix and follow-up days.")
    async def evaluation_policy(self, info: Ctx) -> EvaluationPolicyType:
        ctx = info.context
        async with ctx.read() as session:
            return EvaluationPolicyType.of(await eval_policy.tenant_policy(session, ctx.principal))

    @strawberry.field(description="Evaluated, settled and open panels and the verdict mix.")
    async def evaluation_statistics(
        self,
        info: Ctx,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
        unit_path: str | None = None,
    ) -> EvaluationStatistics:
        ctx = info.context
        async with ctx.read() as session:
            out = await statistics.evaluation_stats(
                session, ctx.principal, since=from_, until=to, unit_path=unit_path
            )
        return EvaluationStatistics(
            evaluated=out.evaluated,
            settled=out.settled,
            pending=out.pending,
            verdict_mix=[VerdictCount(verdict=k, count=n) for k, n in out.verdict_mix.items()],
        )


# --- mutations -------------------------------------------------------------------------------


@strawberry.input
class RelatedPersonInput:
    name: str
    id_number: str | None = None
    phone: str | None = None


def _people(items: list[RelatedPersonInput] | None) -> list[pool.RelatedPersonInput] | None:
    if items is None:
        return None
    return [pool.RelatedPersonInput(p.name, p.id_number, p.phone) for p in items]


@strawberry.input
class AddEvaluatorInput:
    username: str
    category: EvaluatorCategory
    excluded_unit_paths: list[str] = strawberry.field(default_factory=list)
    related_persons: list[RelatedPersonInput] = strawberry.field(default_factory=list)
    phone: str | None = None
    email: str | None = None
    status: EvaluatorStatus = models.EvaluatorStatus.ACTIVE
    note: str | None = None
    tenant: str | None = strawberry.field(default=None, description="Platform staff only")


@strawberry.input
class SetEvaluatorStatusInput:
    evaluator_id: strawberry.ID
    status: EvaluatorStatus
    reason: str | None = None


@strawberry.input
class UpdateEvaluatorInput:
    evaluator_id: strawberry.ID
    category: EvaluatorCategory | None = None
    excluded_unit_paths: list[str] | None = None
    related_persons: list[RelatedPersonInput] | None = None
    phone: str | None = None
    email: str | None = None


@strawberry.input
class DeclareEvaluatorConflictsInput:
    excluded_unit_paths: list[str] | None = None
    related_persons: list[RelatedPersonInput] | None = None


@strawberry.input
class ImportEvaluatorsInput:
    csv: str
    tenant: str | None = strawberry.field(default=None, description="Platform staff only")


@strawberry.type
class ImportEvaluatorsResult:
    imported: int
    created_users: int


@strawberry.input
class DrawEvaluationPanelInput:
    case_id: strawberry.ID
    size: int | None = strawberry.field(default=None, description="Default: tenant policy")
    seed: Seed | None = strawberry.field(
        default=None, description="An integer or a string (echoed back); default: a random one"
    )


@strawberry.input
class CancelEvaluationPanelInput:
    panel_id: strawberry.ID
    reason: str


@strawberry.input
class SubmitEvaluationInput:
    panel_id: strawberry.ID
    facts: int
    procedure: int
    law_and_policy: int
    responsibility: int
    verdict: Verdict
    comment: str | None = None
    hardship_relief: bool = False


@strawberry.input
class SettleEvaluationInput:
    panel_id: strawberry.ID
    note: str


@strawberry.input(
    description="The verdict the panel confirmed when its majority did not confirm the proposal."
)
class ConfirmEvaluationVerdictInput:
    panel_id: strawberry.ID
    verdict: Verdict = strawberry.field(
        description="One confirming the proposal (its band) or the majority's verdict."
    )
    note: str = strawberry.field(description="The panel's reasons (评议意见).")
    hardship_relief: bool | None = None


@strawberry.input
class CategoryMinimumInput:
    category: EvaluatorCategory
    count: int


@strawberry.input
class VerdictDaysInput:
    verdict: Verdict
    days: int


@strawberry.input
class UpdateEvaluationPolicyInput:
    default_size: int = 5
    max_size: int = 15
    minimums: list[CategoryMinimumInput] = strawberry.field(
        default_factory=lambda: [
            CategoryMinimumInput(category=models.EvaluatorCategory.LAWYER, count=1)
        ]
    )
    min_non_official: int = 1
    follow_up_days: list[VerdictDaysInput] = strawberry.field(default_factory=list)


async def _pool_change(info: Ctx, action: Any, **kwargs: Any) -> EvaluatorType:
    """A pool mutation (``ctx.mutate``), answered as the pool entry it changed."""
    ctx = info.context
    entry = await ctx.mutate(action, **kwargs)
    return EvaluatorType.of(entry, pool.sees_contact_details(ctx.principal))


async def _panel_change(info: Ctx, action: Any, **kwargs: Any) -> PanelType:
    """A panel mutation (``ctx.mutate``), answered as the panel it changed."""
    return PanelType.of(await info.context.mutate(action, **kwargs))


@strawberry.type
class EvaluationMutations:
    @strawberry.mutation(description="Enrol a city user in the evaluator pool (city admin).")
    async def add_evaluator(self, info: Ctx, input: AddEvaluatorInput) -> EvaluatorType:
        return await _pool_change(
            info,
            pool.add_evaluator,
            username=input.username,
            category=models.EvaluatorCategory(input.category),
            excluded_unit_paths=list(input.excluded_unit_paths),
            related_persons=_people(input.related_persons) or [],
            phone=input.phone,
            email=input.email,
            status=models.EvaluatorStatus(input.status),
            note=input.note,
            tenant=input.tenant,
        )

    @strawberry.mutation(description="Approve an application, suspend, reinstate or retire.")
    async def set_evaluator_status(
        self, info: Ctx, input: SetEvaluatorStatusInput
    ) -> EvaluatorType:
        return await _pool_change(
            info,
            pool.set_evaluator_status,
            evaluator_id=str(input.evaluator_id),
            status=models.EvaluatorStatus(input.status),
            reason=input.reason,
        )

    @strawberry.mutation(description="Change category, declared conflicts or contact details.")
    async def update_evaluator(self, info: Ctx, input: UpdateEvaluatorInput) -> EvaluatorType:
        return await _pool_change(
            info,
            pool.update_evaluator,
            evaluator_id=str(input.evaluator_id),
            category=models.EvaluatorCategory(input.category) if input.category else None,
            excluded_unit_paths=input.excluded_unit_paths,
            related_persons=_people(input.related_persons),
            phone=input.phone,
            email=input.email,
        )

    @strawberry.mutation(description="An evaluator declares its own conflicts of interest.")
    async def declare_evaluator_conflicts(
        self, info: Ctx, input: DeclareEvaluatorConflictsInput
    ) -> EvaluatorType:
        return await _pool_change(
            info,
            pool.declare_conflicts,
            excluded_unit_paths=input.excluded_unit_paths,
            related_persons=_people(input.related_persons),
        )

    @strawberry.mutation(description="CSV bulk enrolment: every row valid, or nothing imported.")
    async def import_evaluators(
        self, info: Ctx, input: ImportEvaluatorsInput
    ) -> ImportEvaluatorsResult:
        result = await info.context.mutate(
            csv_import.import_evaluators, text=input.csv, tenant=input.tenant
        )
        return ImportEvaluatorsResult(imported=result.imported, created_users=result.created_users)

    @strawberry.mutation(description="随机抽选: a reproducible panel for an eligible case.")
    async def draw_evaluation_panel(self, info: Ctx, input: DrawEvaluationPanelInput) -> PanelType:
        return await _panel_change(
            info,
            panels.draw_panel,
            case_id=str(input.case_id),
            size=input.size,
            seed=input.seed,
        )

    @strawberry.mutation(description="Cancel an open panel so that a new one can be drawn.")
    async def cancel_evaluation_panel(
        self, info: Ctx, input: CancelEvaluationPanelInput
    ) -> PanelType:
        return await _panel_change(
            info, panels.cancel_panel, panel_id=str(input.panel_id), reason=input.reason
        )

    @strawberry.mutation(description="A panel member's scores (1-5) and verdict, once.")
    async def submit_evaluation(self, info: Ctx, input: SubmitEvaluationInput) -> EvaluationType:
        ctx = info.context
        scores = verdicts.ScoreInput(
            facts=input.facts,
            procedure=input.procedure,
            law_and_policy=input.law_and_policy,
            responsibility=input.responsibility,
            verdict=models.Verdict(input.verdict),
            comment=input.comment,
            hardship_relief=input.hardship_relief,
        )
        row = await ctx.mutate(
            verdicts.submit_evaluation, panel_id=str(input.panel_id), scores=scores
        )
        return EvaluationType.of(row, ctx.principal.username)

    @strawberry.mutation(
        description=(
            "Record the verdict the panel confirmed after deliberating, when its majority did "
            "not confirm the proposal of the scores (petition office); concludes the panel."
        )
    )
    async def confirm_evaluation_verdict(
        self, info: Ctx, input: ConfirmEvaluationVerdictInput
    ) -> PanelType:
        return await _panel_change(
            info,
            verdicts.confirm_verdict,
            panel_id=str(input.panel_id),
            verdict=models.Verdict(input.verdict),
            note=input.note,
            hardship_relief=input.hardship_relief,
        )

    @strawberry.mutation(description="定分止争: the verdict's follow-up work is done.")
    async def settle_evaluation(self, info: Ctx, input: SettleEvaluationInput) -> PanelType:
        return await _panel_change(
            info, verdicts.settle_panel, panel_id=str(input.panel_id), note=input.note
        )

    @strawberry.mutation(description="City admin: panel size, category mix, follow-up days.")
    async def update_evaluation_policy(
        self, info: Ctx, input: UpdateEvaluationPolicyInput
    ) -> EvaluationPolicyType:
        new = eval_policy.EvaluationPolicy(
            default_size=input.default_size,
            max_size=input.max_size,
            minimums={models.EvaluatorCategory(m.category): m.count for m in input.minimums},
            min_non_official=input.min_non_official,
            follow_up_days={models.Verdict(d.verdict): d.days for d in input.follow_up_days},
        )
        return EvaluationPolicyType.of(await info.context.mutate(eval_policy.update_policy, new))
