"""GraphQL for cases: the ``Case`` type, queries and every lifecycle mutation of the contract.

Thin: inputs become service dataclasses, services do the rules, loaders do
the nested reads (constant statements per page).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types.nodes import SelectedField

from backend.authz.principal import Principal
from backend.cases import agents, assigned, models, policy, practices, queries, rules, service
from backend.cases.pii import mask_id_number, mask_phone
from backend.cases.rules import Step
from backend.cases.visibility import sees_pii
from backend.core.errors import BadUserInput
from backend.core.ids import parse_id
from backend.core.pagination import PageArgs
from backend.schema import compiled
from backend.schema.context import Ctx
from backend.schema.loaders import now_or_later, prefetch
from backend.schema.relay import After, Before, First, Last, Node, PageInfo
from backend.schema.stats import IndicatorDefinitionInput, IndicatorDefinitionType
from backend.schema.tenants import OrgUnitType
from backend.stats.definitions import set_definition

Channel = strawberry.enum(models.Channel, name="Channel")
CaseTypeEnum = strawberry.enum(models.CaseType, name="CaseType")
CaseStatus = strawberry.enum(models.CaseStatus, name="CaseStatus")
WarningColor = strawberry.enum(models.WarningColor, name="WarningColor")
Satisfaction = strawberry.enum(models.Satisfaction, name="Satisfaction")
SkipLevel = strawberry.enum(models.SkipLevel, name="SkipLevel")
DeadlineStep = strawberry.enum(Step, name="DeadlineStep")
DeadlineStatus = strawberry.enum(models.DeadlineStatus, name="DeadlineStatus")
AgentKind = strawberry.enum(models.AgentKind, name="AgentKind")


RouteMode = strawberry.enum(models.RouteMode, name="RouteMode")
DivertChannel = strawberry.enum(models.DivertChannel, name="DivertChannel")
EscalationTarget = strawberry.enum(models.EscalationTarget, name="EscalationTarget")


@strawberry.type
class Petitioner:
    name: str
    phone: str | None
    id_number: str | None
    masked: bool


@strawberry.type
class Actor:
    username: str


@strawberry.type
class Leader:
    username: str
    display_name: str


@strawberry.type
class CaseAgent:
    username: str
    display_name: str
    kind: AgentKind


@strawberry.type
class Deadline:
    step: DeadlineStep
    status: DeadlineStatus
    started_at: datetime
    due_date: date
    due_at: datetime
    warning_color: WarningColor
    rule: strawberry.scalars.JSON = strawberry.field(
        description="Why this date: article, start, days, counting, holidays rolled over."
    )
    note: str | None

    @classmethod
    def of(cls, d: models.CaseDeadline) -> Deadline:
        return cls(
            step=Step(d.step),
            status=models.DeadlineStatus(d.status),
            started_at=d.started_at,
            due_date=d.due_date,
            due_at=d.due_at,
            warning_color=models.WarningColor(d.warning_color),
            rule=d.rule,
            note=d.note,
        )


@strawberry.type
class CaseEvent:
    seq: int
    kind: str
    at: datetime
    actor: Actor
    from_status: CaseStatus | None
    to_status: CaseStatus | None
    reason: str | None
    data: strawberry.scalars.JSON
    hash: str

    @classmethod
    def of(cls, e: models.CaseEvent) -> CaseEvent:
        return cls(
            seq=e.seq,
            kind=e.kind,
            at=e.at,
            actor=Actor(username=e.actor_username),
            from_status=models.CaseStatus(e.from_status) if e.from_status else None,
            to_status=models.CaseStatus(e.to_status) if e.to_status else None,
            reason=e.reason,
            data=e.data,
            hash=e.hash,
        )


@strawberry.type(name="Case")
class CaseNode(Node):
    """A case as the API shows it.

    Scalars are plain attributes copied once from the row by :func:`node`: strawberry
    resolves an attribute on its fast path, while a method field builds an ``Info`` and
    goes through the argument machinery for every case on the page (a 50-case page
    asked ~450 of them; docs/performance.md).
    """

    _m: strawberry.Private[models.Case]
    id: strawberry.ID
    number: str
    status: CaseStatus
    type: CaseTypeEnum
    channel: Channel
    category: str
    subject: str
    content: str
    version: int
    received_at: datetime
    due_at: datetime | None = strawberry.field(
        description="End of the current open step's due day, tenant time zone."
    )
    warning_color: WarningColor
    repeat_count: int
    skip_level: SkipLevel
    head_count: int
    tags: list[str]
    priority: str
    on_hold: bool
    reply_opinion: str | None
    rating: Satisfaction | None
    resolution: str | None
    extension_days: int | None
    extension_approved: bool
    accused_unit_path: str | None = strawberry.field(
        description="检举控告: the accused unit (only readers who may know the case see it)."
    )
    accused_username: str | None = strawberry.field(
        description="检举控告: the accused person's username, if named."
    )
    final_after_re_review: bool
    # a receipt (registerCase of a case the caller may not read): nothing nested is shown
    _receipt: strawberry.Private[bool] = False

    # The nested objects answer from the page's prefetch (schema/loaders.py) when the
    # list resolver made one, and through the batched loader otherwise.
    @strawberry.field
    def location_unit(self, info: Ctx) -> OrgUnitType | None:
        return now_or_later(info.context, "unit_by_path", self._m.location_path, _unit)

    @strawberry.field
    def holder_unit(self, info: Ctx) -> OrgUnitType | None:
        if self._receipt:
            return None
        return now_or_later(info.context, "unit_by_path", self._m.holder_path, _unit)

    @strawberry.field(description="包案 leader.")
    def leader(self, info: Ctx) -> Leader | None:
        if self._m.leader_id is None or self._receipt:
            return None
        return now_or_later(info.context, "user_by_id", self._m.leader_id, _leader)

    @strawberry.field(description="首问负责人.")
    def first_receiver(self, info: Ctx) -> Leader | None:
        if self._m.first_receiver_id is None or self._receipt:
            return None
        return now_or_later(info.context, "user_by_id", self._m.first_receiver_id, _leader)

    @strawberry.field(description="Masked for everyone but officials handling the case in scope.")
    def petitioner(self, info: Ctx) -> Petitioner:
        ctx, m = info.context, self._m
        if not self._receipt and sees_pii(ctx.principal, m):
            ctx.pii_reads[m.id] = (m.tenant_id, m.id, ("phone", "idNumber"))
            return Petitioner(
                name=m.petitioner_name,
                phone=m.petitioner_phone,
                id_number=m.petitioner_id_number,
                masked=False,
            )
        return Petitioner(
            name=m.petitioner_name,
            phone=mask_phone(m.petitioner_phone),
            id_number=mask_id_number(m.petitioner_id_number),
            masked=True,
        )

    @strawberry.field
    def agent(self, info: Ctx) -> CaseAgent | None:
        m = self._m
        if m.agent_id is None or self._receipt:
            return None
        kind = models.AgentKind(m.agent_kind)
        return now_or_later(info.context, "user_by_id", m.agent_id, lambda u: _agent(u, kind))

    @strawberry.field
    def repeat_of(self, info: Ctx) -> CaseNode | None:
        return self._linked(info, self._m.repeat_of_id)

    @strawberry.field
    def final_of(self, info: Ctx) -> CaseNode | None:
        return self._linked(info, self._m.final_of_id)

    def _linked(self, info: Ctx, case_id: Any) -> CaseNode | None:
        """Another case this one points to, when the caller may read it (else null)."""
        if case_id is None or self._receipt:
            return None
        return now_or_later(info.context, "visible_case_by_id", case_id, _case_node)

    @strawberry.field
    def deadlines(self, info: Ctx) -> list[Deadline]:
        if self._receipt:
            return []
        return now_or_later(info.context, "deadlines_by_case", self._m.id, _deadlines)

    @strawberry.field
    def events(self, info: Ctx) -> list[CaseEvent]:
        if self._receipt:
            return []
        return now_or_later(info.context, "events_by_case", self._m.id, _events)


def _agent(user: Any, kind: models.AgentKind) -> CaseAgent | None:
    if user is None:
        return None
    return CaseAgent(username=user.username, display_name=user.display_name, kind=kind)


def _case_node(case: models.Case | None) -> CaseNode | None:
    return node(case) if case else None


def _unit(unit: Any) -> OrgUnitType | None:
    return OrgUnitType.of(unit) if unit else None


def _leader(user: Any) -> Leader | None:
    return Leader(username=user.username, display_name=user.display_name) if user else None


def _deadlines(rows: list[models.CaseDeadline]) -> list[Deadline]:
    return [Deadline.of(d) for d in rows]


def _events(rows: list[models.CaseEvent]) -> list[CaseEvent]:
    return [CaseEvent.of(e) for e in rows]


# Nested fields of ``Case`` → (loader, key of a case row) for a page's prefetch.
_PREFETCH: dict[str, tuple[str, Callable[[models.Case], Any]]] = {
    "holderUnit": ("unit_by_path", lambda c: c.holder_path),
    "locationUnit": ("unit_by_path", lambda c: c.location_path),
    "leader": ("user_by_id", lambda c: c.leader_id),
    "firstReceiver": ("user_by_id", lambda c: c.first_receiver_id),
    "agent": ("user_by_id", lambda c: c.agent_id),
    "deadlines": ("deadlines_by_case", lambda c: c.id),
    "events": ("events_by_case", lambda c: c.id),
}


def _selected(selections: list[Any], *path: str) -> set[str]:
    """Names of the fields selected at ``path`` below ``selections`` (fragments flattened)."""

    def named(level: list[Any]) -> list[Any]:
        out: list[Any] = []
        for sel in level:
            out.extend([sel] if isinstance(sel, SelectedField) else named(sel.selections))
        return out

    level = selections
    for step in path:
        level = [child for sel in named(level) if sel.name == step for child in sel.selections]
    return {sel.name for sel in named(level)}


async def connection(info: Ctx, page: queries.Page) -> CaseConnection:
    """The page as a connection, with the nested objects its selection asks for prefetched.

    One statement per loader, as the DataLoaders would batch them, but without a
    coroutine per case and field.
    """
    wanted = _selected(info.selected_fields[0].selections, "edges", "node")
    keys: dict[str, set[Any]] = {}
    for field in wanted & _PREFETCH.keys():
        name, key = _PREFETCH[field]
        keys.setdefault(name, set()).update(key(c) for c in page.cases)
    for name, batch in keys.items():
        await prefetch(info.context, name, batch)
    return CaseConnection.of(page)


def node(case: models.Case) -> CaseNode:
    return CaseNode(
        _m=case,
        id=strawberry.ID(str(case.id)),
        number=case.number,
        status=models.CaseStatus(case.status),
        type=models.CaseType(case.type),
        channel=models.Channel(case.channel),
        category=case.category,
        subject=case.subject,
        content=case.content,
        version=case.version,
        received_at=case.received_at,
        due_at=case.due_at,
        warning_color=models.WarningColor(case.warning_color),
        repeat_count=case.repeat_count,
        skip_level=models.SkipLevel(case.skip_level),
        head_count=case.head_count,
        tags=list(case.tags or []),
        priority=case.priority,
        on_hold=case.on_hold_since is not None,
        reply_opinion=case.reply_opinion,
        rating=models.Satisfaction(case.rating) if case.rating else None,
        resolution=case.resolution,
        extension_days=case.extension_days,
        extension_approved=case.extension_approved,
        accused_unit_path=case.accused_path,
        accused_username=case.accused_username,
        final_after_re_review=case.final_of_id is not None,
    )


def receipt(case: models.Case) -> CaseNode:
    """回执 (Art. 30): the id, number and what its registrar submitted — nothing the case
    became (status as registered, no clock, holder, handlers, events or outcome)."""
    shown = node(case)
    return dataclasses.replace(
        shown,
        status=models.CaseStatus.REGISTERED,
        version=1,
        due_at=None,
        warning_color=models.WarningColor.NONE,
        repeat_count=0,
        on_hold=False,
        reply_opinion=None,
        rating=None,
        resolution=None,
        extension_days=None,
        extension_approved=False,
        final_after_re_review=False,
        _receipt=True,
    )


@strawberry.type
class CaseEdge:
    cursor: str
    node: CaseNode


@strawberry.type
class CaseConnection:
    total_count: int
    edges: list[CaseEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, page: queries.Page) -> CaseConnection:
        return cls(
            total_count=page.total,
            edges=[CaseEdge(cursor=queries.encode_cursor(c), node=node(c)) for c in page.cases],
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
        )


@strawberry.input
class CaseFilter:
    tenant: str | None = strawberry.field(
        default=None,
        description=(
            "A city in the caller's scope (for supervisors: a city of their province); "
            "FORBIDDEN otherwise, the same answer for a slug that does not exist"
        ),
    )
    status: CaseStatus | None = None
    type: CaseTypeEnum | None = None
    unit_path: str | None = None
    warning_color: WarningColor | None = None
    received_from: date | None = None
    received_to: date | None = None
    leader: str | None = None
    search: str | None = None
    petitioner_id_number: str | None = strawberry.field(
        default=None,
        description="Exact id-card number (matched by its keyed hash; handling officials only)",
    )
    agent: str | None = None

    def to_service(self) -> queries.CaseFilter:
        return queries.CaseFilter(
            **{k: getattr(self, k) for k in queries.CaseFilter.__annotations__}
        )


async def _page(info: Ctx, f: queries.CaseFilter, args: PageArgs) -> CaseConnection:
    ctx = info.context
    answer = await compiled.case_page(info, f, args)  # one statement, when it can
    if answer is not None:
        return answer  # type: ignore[return-value]  # the finished JSON (execution.py)
    async with ctx.read() as session:
        page = await queries.list_cases(
            session,
            ctx.principal,
            f,
            first=args.first,
            after=args.after,
            last=args.last,
            before=args.before,
        )
    return await connection(info, page)


@strawberry.type
class WarningBoard:
    red: int
    yellow: int
    blue: int
    _unit_path: strawberry.Private[str | None]
    # pages answered with the counts (compiled.warning_board), by response key
    _pages: strawberry.Private[dict[str, Any]] = dataclasses.field(default_factory=dict)

    @strawberry.field(description="Open cases of one colour, most recent first.")
    async def cases(
        self,
        info: Ctx,
        color: WarningColor,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> CaseConnection:
        done = self._pages.get(info.path.key)
        if done is not None:
            return done  # type: ignore[no-any-return]  # the finished JSON (execution.py)
        f = queries.CaseFilter(unit_path=self._unit_path, warning_color=color)
        return await _page(info, f, PageArgs(first, after, last, before))


@strawberry.type
class CaseQueries:
    @strawberry.field(
        description="One case: null + NOT_FOUND when absent or not visible; other fields survive."
    )
    async def case(self, info: Ctx, id: strawberry.ID) -> CaseNode | None:
        parse_id(id, "Case", "id")  # malformed: BAD_USER_INPUT naming this argument
        answer = await compiled.case_detail(info, str(id))  # one statement, when it can
        if answer is not None:
            return answer  # type: ignore[return-value]  # the finished JSON (execution.py)
        ctx = info.context
        async with ctx.read() as session:
            return node(await service.find_case(session, ctx.principal, str(id)))

    @strawberry.field(description="Cases visible to the caller, newest first (keyset cursors).")
    async def cases(
        self,
        info: Ctx,
        filter: CaseFilter | None = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> CaseConnection:
        f = filter.to_service() if filter else queries.CaseFilter()
        if f.petitioner_id_number:  # counted against a tight limit, and logged
            key = queries.id_number_search_key(info.context.principal, f.petitioner_id_number)
            await info.context.search_by_id_number(key)
        return await _page(info, f, PageArgs(first, after, last, before))

    @strawberry.field(description="红黄蓝 warning board of the caller's scope.")
    async def warning_board(self, info: Ctx, unit_path: str | None = None) -> WarningBoard:
        answered = await compiled.warning_board(info, unit_path)  # one statement, when it can
        if answered is not None:
            counts, pages = answered
            return WarningBoard(
                red=counts.red,
                yellow=counts.yellow,
                blue=counts.blue,
                _unit_path=unit_path,
                _pages=pages,
            )
        ctx = info.context
        async with ctx.read() as session:
            counts = await queries.warning_counts(session, ctx.principal, unit_path)
        return WarningBoard(
            red=counts.red, yellow=counts.yellow, blue=counts.blue, _unit_path=unit_path
        )

    @strawberry.field(description="The tenant's case categories.")
    async def case_categories(self, info: Ctx) -> list[CaseCategory]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await service.categories(session, ctx.principal)
        return [CaseCategory(code=c.code, name=c.name) for c in rows]


compiled.register(CaseNode, OrgUnitType, Leader, Deadline, CaseEvent, Actor)


@strawberry.type
class CaseCategory:
    code: str
    name: str


# --- mutations -------------------------------------------------------------------------


@strawberry.input
class PetitionerInput:
    name: str
    phone: str | None = None
    id_number: str | None = None

    def to_service(self) -> service.PetitionerInput:
        return service.PetitionerInput(self.name, self.phone, self.id_number)


AssignmentOrigin = strawberry.enum(practices.AssignmentOrigin, name="AssignmentOrigin")


@strawberry.input
class AssignedDownInput:
    origin: AssignmentOrigin
    external_number: str
    external_due_date: date

    def to_service(self) -> practices.AssignedDown:
        return practices.AssignedDown(self.origin, self.external_number, self.external_due_date)


@strawberry.input
class CaseAgentInput:
    kind: AgentKind
    username: str | None = None

    def to_service(self) -> agents.AgentInput:
        return agents.AgentInput(models.AgentKind(self.kind), self.username)


@strawberry.input
class RegisterCaseInput:
    client_key: str
    channel: Channel
    type: CaseTypeEnum
    category: str
    subject: str
    content: str
    petitioner: PetitionerInput
    location_path: str
    received_at: datetime | None = None
    accused_unit_path: str | None = None
    accused_username: str | None = None
    head_count: int = 1
    tags: list[str] = strawberry.field(default_factory=list)
    priority: str = "NORMAL"
    skip_level: SkipLevel = models.SkipLevel.NONE
    agent: CaseAgentInput | None = None
    assigned_down: AssignedDownInput | None = None

    def to_service(self) -> service.RegisterCaseInput:
        """The domain's input: the same fields (enums are the domain's own)."""
        same = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(service.RegisterCaseInput)
        }
        down = self.assigned_down.to_service() if self.assigned_down else None
        return service.RegisterCaseInput(
            **{
                **same,
                "petitioner": self.petitioner.to_service(),
                "tags": list(self.tags),
                "agent": self.agent.to_service() if self.agent else None,
                "assigned_down": down,
            }
        )


@strawberry.input
class CaseRefInput:
    case_id: strawberry.ID
    version: int

    def ref(self) -> service.CaseRef:
        return service.CaseRef(str(self.case_id), self.version)


@strawberry.input
class RouteCaseInput(CaseRefInput):
    to_unit_path: str
    mode: RouteMode


@strawberry.input
class DivertCaseInput(CaseRefInput):
    channel: DivertChannel
    reason: str


@strawberry.input
class AcceptCaseInput(CaseRefInput):
    reason: str | None = None


@strawberry.input
class RejectCaseInput(CaseRefInput):
    reason: str


@strawberry.input
class ObjectToTransferInput(CaseRefInput):
    reason: str


@strawberry.input(
    description="The routing office's answer to an Art. 23 objection against its transfer."
)
class DecideObjectionInput(CaseRefInput):
    agree: bool = strawberry.field(
        description="true: the case comes back to the routing office to be routed again; "
        "false: it stays with the body that objected."
    )
    reason: str = strawberry.field(description="Why (recorded on the case's event).")


@strawberry.input
class RequestExtensionInput(CaseRefInput):
    days: int
    reason: str


@strawberry.input
class ApproveExtensionInput(CaseRefInput):
    pass


@strawberry.input
class ReplyCaseInput(CaseRefInput):
    opinion: str


@strawberry.input
class RateSatisfactionInput(CaseRefInput):
    rating: Satisfaction


@strawberry.input
class RequestReviewInput(CaseRefInput):
    reason: str | None = None


@strawberry.input
class DecideReviewInput(CaseRefInput):
    opinion: str


@strawberry.input
class RequestReReviewInput(CaseRefInput):
    reason: str | None = None


@strawberry.input
class DecideReReviewInput(CaseRefInput):
    opinion: str


@strawberry.input
class HoldCaseInput(CaseRefInput):
    reason: str


@strawberry.input
class ResumeCaseInput(CaseRefInput):
    pass


@strawberry.input
class CloseCaseInput(CaseRefInput):
    resolution: str


@strawberry.input
class AssignCaseLeaderInput(CaseRefInput):
    username: str


@strawberry.input
class IssueSupervisionOrderInput(CaseRefInput):
    due_date: date
    note: str


@strawberry.input
class EscalateCaseInput(CaseRefInput):
    target: EscalationTarget
    reason: str


@strawberry.input
class RecordJointMeetingInput(CaseRefInput):
    notes: str
    participants: list[str] = strawberry.field(default_factory=list)


async def _mutate(
    info: Ctx, action: Callable[..., Awaitable[models.Case]], *args: Any, **kwargs: Any
) -> CaseNode:
    return node(await info.context.mutate(action, *args, **kwargs))


@strawberry.type
class CaseMutations:
    @strawberry.mutation(
        description=(
            "Register a petition; idempotent by clientKey. Answers the case as the caller "
            "may read it now; a case it may not read (an accusation against its own unit, "
            "Art. 30) is answered by its receipt: id, number and what was submitted."
        )
    )
    async def register_case(self, info: Ctx, input: RegisterCaseInput) -> CaseNode:
        registered = await info.context.mutate(assigned.intake, input.to_service())
        return node(registered.case) if registered.readable else receipt(registered.case)

    @strawberry.mutation
    async def register_cases(self, info: Ctx, inputs: list[RegisterCaseInput]) -> list[CaseNode]:
        data = [item.to_service() for item in inputs]
        registered = await info.context.mutate(assigned.intake_many, data)
        return [node(r.case) if r.readable else receipt(r.case) for r in registered]

    @strawberry.mutation(description="转送 / 交办 to a unit in scope.")
    async def route_case(self, info: Ctx, input: RouteCaseInput) -> CaseNode:
        return await _mutate(
            info,
            service.route_case,
            input.ref(),
            to_unit_path=input.to_unit_path,
            mode=input.mode,
        )

    @strawberry.mutation(
        description=(
            "Art. 23 objection by the receiving body (5 working days): the case waits with it "
            "for the routing office's decideObjection (an OBJECTION_DECISION step)."
        )
    )
    async def object_to_transfer(self, info: Ctx, input: ObjectToTransferInput) -> CaseNode:
        return await _mutate(info, service.object_to_transfer, input.ref(), reason=input.reason)

    @strawberry.mutation(
        description=(
            "The routing office agrees to an Art. 23 objection (the case comes back, REGISTERED; "
            "the objecting body's acceptance step ends OBJECTED) or refuses it (the case stays)."
        )
    )
    async def decide_objection(self, info: Ctx, input: DecideObjectionInput) -> CaseNode:
        return await _mutate(
            info, service.decide_objection, input.ref(), agree=input.agree, reason=input.reason
        )

    @strawberry.mutation(description="诉访分离: divert to litigation/arbitration/reconsideration.")
    async def divert_case(self, info: Ctx, input: DivertCaseInput) -> CaseNode:
        return await _mutate(
            info,
            service.divert_case,
            input.ref(),
            channel=input.channel,
            reason=input.reason,
        )

    @strawberry.mutation
    async def accept_case(self, info: Ctx, input: AcceptCaseInput) -> CaseNode:
        return await _mutate(info, service.accept_case, input.ref(), reason=input.reason)

    @strawberry.mutation
    async def reject_case(self, info: Ctx, input: RejectCaseInput) -> CaseNode:
        return await _mutate(info, service.reject_case, input.ref(), reason=input.reason)

    @strawberry.mutation
    async def request_extension(self, info: Ctx, input: RequestExtensionInput) -> CaseNode:
        return await _mutate(
            info, service.request_extension, input.ref(), days=input.days, reason=input.reason
        )

    @strawberry.mutation
    async def approve_extension(self, info: Ctx, input: ApproveExtensionInput) -> CaseNode:
        return await _mutate(info, service.approve_extension, input.ref())

    @strawberry.mutation
    async def reply_case(self, info: Ctx, input: ReplyCaseInput) -> CaseNode:
        return await _mutate(info, service.reply_case, input.ref(), opinion=input.opinion)

    @strawberry.mutation
    async def rate_satisfaction(self, info: Ctx, input: RateSatisfactionInput) -> CaseNode:
        return await _mutate(info, service.rate_satisfaction, input.ref(), rating=input.rating)

    @strawberry.mutation
    async def request_review(self, info: Ctx, input: RequestReviewInput) -> CaseNode:
        return await _mutate(info, service.request_review, input.ref(), reason=input.reason)

    @strawberry.mutation(
        description=(
            "复查 decision (Art. 35), only by the unit one level above the one that replied "
            "(else FORBIDDEN with extensions.decidingUnit)."
        )
    )
    async def decide_review(self, info: Ctx, input: DecideReviewInput) -> CaseNode:
        return await _mutate(info, service.decide_review, input.ref(), opinion=input.opinion)

    @strawberry.mutation
    async def request_re_review(self, info: Ctx, input: RequestReReviewInput) -> CaseNode:
        return await _mutate(info, service.request_re_review, input.ref(), reason=input.reason)

    @strawberry.mutation(
        description=(
            "复核 decision (Art. 36), only by the unit one level above the reviewer "
            "(else FORBIDDEN with extensions.decidingUnit)."
        )
    )
    async def decide_re_review(self, info: Ctx, input: DecideReReviewInput) -> CaseNode:
        return await _mutate(info, service.decide_re_review, input.ref(), opinion=input.opinion)

    @strawberry.mutation(
        description=(
            "听证 or suspension (中止): statutory clocks stop. Put by a leader over the "
            "holding unit, which is the approval (a handler cannot stop its own clock)."
        )
    )
    async def hold_case(self, info: Ctx, input: HoldCaseInput) -> CaseNode:
        return await _mutate(info, service.hold_case, input.ref(), reason=input.reason)

    @strawberry.mutation(description="Lift a hold: the clocks run again (handler or leader).")
    async def resume_case(self, info: Ctx, input: ResumeCaseInput) -> CaseNode:
        return await _mutate(info, service.resume_case, input.ref())

    @strawberry.mutation(
        description=(
            "Close with a resolution. A replied or reviewed case only once the petitioner's "
            "30-day window has passed unused or the petitioner declared satisfaction (else "
            "INVALID_TRANSITION with extensions.windowEndsOn)."
        )
    )
    async def close_case(self, info: Ctx, input: CloseCaseInput) -> CaseNode:
        return await _mutate(info, service.close_case, input.ref(), resolution=input.resolution)

    @strawberry.mutation(description="包案: a leader owns the case.")
    async def assign_case_leader(self, info: Ctx, input: AssignCaseLeaderInput) -> CaseNode:
        return await _mutate(info, service.assign_case_leader, input.ref(), username=input.username)

    @strawberry.mutation(description="督办: a supervision order with its own due date.")
    async def issue_supervision_order(
        self, info: Ctx, input: IssueSupervisionOrderInput
    ) -> CaseNode:
        return await _mutate(
            info,
            service.issue_supervision_order,
            input.ref(),
            due_date=input.due_date,
            note=input.note,
        )

    @strawberry.mutation(
        description="To the leadership group or a supervision/enforcement brigade."
    )
    async def escalate_case(self, info: Ctx, input: EscalateCaseInput) -> CaseNode:
        return await _mutate(
            info,
            service.escalate_case,
            input.ref(),
            target=input.target,
            reason=input.reason,
        )

    @strawberry.mutation(description="一会四联: notes of a joint meeting.")
    async def record_joint_meeting(self, info: Ctx, input: RecordJointMeetingInput) -> CaseNode:
        return await _mutate(
            info,
            service.record_joint_meeting,
            input.ref(),
            notes=input.notes,
            participants=list(input.participants),
        )


@strawberry.type
class StepLimit:
    step: DeadlineStep
    days: int


@strawberry.type
class CaseTypeLimit:
    type: CaseTypeEnum
    days: int


@strawberry.type
class TenantPolicy:
    """Deadline policy of the caller's city: limits (shorter than statutory only) and colours."""

    limits: list[StepLimit]
    handling_limits_by_type: list[CaseTypeLimit]
    counting: str
    red_days: int
    yellow_days: int
    timezone: str

    @strawberry.field(description="How the city forms its statistics rates (docs/indicators.md).")
    async def indicators(self, info: Ctx) -> IndicatorDefinitionType:
        from backend.stats.definitions import tenant_definition

        ctx = info.context
        async with ctx.read() as session:
            return IndicatorDefinitionType.of(
                await tenant_definition(session, ctx.principal.tenant_id)
            )

    @classmethod
    def of(cls, p: rules.DeadlinePolicy) -> TenantPolicy:
        return cls(
            limits=[StepLimit(step=s, days=d) for s, d in sorted(p.limits.items())],
            handling_limits_by_type=[
                CaseTypeLimit(type=models.CaseType(t), days=d)
                for t, d in sorted(p.handling_by_type.items())
            ],
            counting=p.counting,
            red_days=p.red_days,
            yellow_days=p.yellow_days,
            timezone=p.timezone,
        )


@strawberry.input
class StepLimitInput:
    step: DeadlineStep
    days: int


@strawberry.input
class CaseTypeLimitInput:
    type: CaseTypeEnum
    days: int


@strawberry.input
class UpdateTenantPolicyInput:
    limits: list[StepLimitInput] = strawberry.field(default_factory=list)
    handling_limits_by_type: list[CaseTypeLimitInput] | None = None
    counting: str = "calendar"
    red_days: int = 3
    yellow_days: int = 10
    indicators: IndicatorDefinitionInput | None = strawberry.field(
        default=None, description="Statistics options; omitted: unchanged."
    )


@strawberry.type
class PolicyQueries:
    @strawberry.field(description="The caller's city deadline policy.")
    async def tenant_policy(self, info: Ctx) -> TenantPolicy:
        ctx = info.context
        async with ctx.read() as session:
            return TenantPolicy.of(await policy.tenant_policy(session, ctx.principal))


def _limits_by_type(items: list[CaseTypeLimitInput] | None) -> dict[str, int] | None:
    """The input's type limits as the service takes them; a type named twice is refused
    rather than the last one silently winning."""
    if items is None:
        return None
    types = [models.CaseType(i.type).value for i in items]
    if len(set(types)) != len(types):
        raise BadUserInput("name each case type once", field="handlingLimitsByType")
    return dict(zip(types, (i.days for i in items), strict=True))


@strawberry.type
class PolicyMutations:
    @strawberry.mutation(
        description="City admin: shorten limits, choose counting, colours. Replaces the "
        "policy: omitted limits, counting and colours take their defaults; omitted "
        "handlingLimitsByType and indicators stay as they are."
    )
    async def update_tenant_policy(self, info: Ctx, input: UpdateTenantPolicyInput) -> TenantPolicy:

        async def change(session: AsyncSession, principal: Principal) -> Any:
            updated = await policy.update_policy(
                session,
                principal,
                limits={Step(item.step).value: item.days for item in input.limits},
                counting=input.counting,
                red_days=input.red_days,
                yellow_days=input.yellow_days,
                handling_by_type=_limits_by_type(input.handling_limits_by_type),
            )
            if input.indicators is not None:
                await set_definition(session, principal, input.indicators.as_data())
            return updated

        return TenantPolicy.of(await info.context.mutate(change))
