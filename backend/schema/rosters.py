"""GraphQL for duty rosters: shifts, planning, swaps, leave, check-in, pairings, the feed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from strawberry.dataloader import DataLoader

from backend.core import validation
from backend.core.db import Database
from backend.core.errors import NotFound
from backend.rosters import ical, models, pairings, planning, receptions, rules, shifts, swaps
from backend.schema.cases import CaseNode, Leader, node
from backend.schema.context import Ctx, RequestContext
from backend.schema.loaders import load
from backend.schema.relay import Node
from backend.schema.roster_people import RosterPerson, person_by_id
from backend.schema.tenants import OrgUnitType
from backend.web.routes import rest_route

ShiftKind = strawberry.enum(models.ShiftKind, name="ShiftKind")
ShiftStatus = strawberry.enum(models.ShiftStatus, name="ShiftStatus")
SwapStatus = strawberry.enum(models.SwapStatus, name="SwapStatus")


async def _leader(info: Ctx, user_id: uuid.UUID | None) -> Leader | None:
    if user_id is None:
        return None
    user = await load(info.context, "user_by_id", user_id)
    return Leader(username=user.username, display_name=user.display_name) if user else None


CASES_LOADER = "rosters_cases"


def readable_cases(ctx: RequestContext) -> DataLoader[uuid.UUID, Any]:
    """Cases named by roster rows (appointments, sweep findings), by id, as far as the
    caller may read them (the case read predicate: scope and Art. 30)."""

    async def batch(keys: Sequence[uuid.UUID]) -> list[Any]:
        async with ctx.read() as session:
            found = await shifts.cases_by_ids(session, ctx.principal, list(keys))
        return [found.get(k) for k in keys]

    return DataLoader(load_fn=batch)


def _received_loader(ctx: RequestContext) -> DataLoader[uuid.UUID, list[Any]]:
    async def batch(keys: Sequence[uuid.UUID]) -> list[list[Any]]:
        async with ctx.read() as session:
            found = await shifts.cases_received(session, ctx.principal, list(set(keys)))
        return [found.get(k, []) for k in keys]

    return DataLoader(load_fn=batch)


@strawberry.type
class DutyShift(Node):
    _m: strawberry.Private[models.DutyShift]
    day: date = strawberry.field(description="The duty day (tenant time zone).")
    starts_at: datetime
    ends_at: datetime
    unit_path: str
    title: str
    location: str | None
    announced_at: datetime | None = strawberry.field(
        description="Public receptions: when the announcement was published."
    )
    checked_in_at: datetime | None
    check_in_location: str | None
    checked_out_at: datetime | None
    check_out_location: str | None

    @classmethod
    def of(cls, m: models.DutyShift, **private: Any) -> DutyShift:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(
            _m=m,
            **private,
            day=m.day,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            unit_path=m.unit_path,
            title=m.title,
            location=m.location,
            announced_at=m.announced_at,
            checked_in_at=m.checked_in_at,
            check_in_location=m.check_in_location,
            checked_out_at=m.checked_out_at,
            check_out_location=m.check_out_location,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def kind(self) -> ShiftKind:
        return models.ShiftKind(self._m.kind)

    @strawberry.field
    def status(self) -> ShiftStatus:
        return models.ShiftStatus(self._m.status)

    @strawberry.field
    async def unit(self, info: Ctx) -> OrgUnitType | None:
        unit = await load(info.context, "unit_by_path", self._m.unit_path)
        return OrgUnitType.of(unit) if unit else None

    @strawberry.field(description="The duty leader.")
    async def leader(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.leader_id)

    @strawberry.field
    async def person(self, info: Ctx) -> RosterPerson | None:
        return await person_by_id(info, self._m.person_id)

    @strawberry.field
    async def appointment_case(self, info: Ctx) -> CaseNode | None:
        if self._m.case_id is None:
            return None
        loader = info.context.loader(CASES_LOADER, readable_cases)
        found = await loader.load(self._m.case_id)
        return node(found) if found else None

    @strawberry.field(description="Visit cases received during the shift (首问: its leader).")
    async def cases_received(self, info: Ctx) -> list[CaseNode]:
        rows = await info.context.loader("rosters_received", _received_loader).load(self._m.id)
        return [node(c) for c in rows]


def shift(m: models.DutyShift) -> DutyShift:
    return DutyShift.of(m)


@strawberry.type
class RosterRule:
    id: strawberry.ID
    unit_path: str
    kind: ShiftKind
    leaders: list[Leader] = strawberry.field(
        description="The rotation in order; empty: the leaders held at the unit."
    )
    day_of_month: int | None
    start_time: str
    end_time: str
    location: str | None
    active: bool
    people: list[RosterPerson]

    @classmethod
    def of(cls, view: rules.RuleView) -> RosterRule:
        r = view.rule
        return cls(
            id=strawberry.ID(str(r.id)),
            unit_path=r.unit_path,
            kind=models.ShiftKind(r.kind),
            leaders=[
                Leader(username=u.username, display_name=u.display_name) for u in view.leaders
            ],
            day_of_month=r.day_of_month,
            start_time=r.start_time,
            end_time=r.end_time,
            location=r.location,
            active=r.active,
            people=[RosterPerson.of(p) for p in view.people],
        )


@strawberry.type
class ReceptionPlan:
    unit_path: str
    month: str
    created: int
    updated: int
    removed: int
    kept: int
    unfilled: list[date] = strawberry.field(description="Duty days nobody was free for.")
    shifts: list[DutyShift]
    unpaired_leaders: list[str] = strawberry.field(
        description=(
            "Down-visit (DOWN_VISIT) leaders paired with no unit below the rule's unit: "
            "they have no down-visit shift (assignTownshipPairing)."
        ),
        default_factory=list,
    )


@strawberry.type
class ShiftSwap:
    _m: strawberry.Private[models.ShiftSwap]
    reason: str | None
    comment: str | None
    decided_at: datetime | None

    @classmethod
    def of(cls, m: models.ShiftSwap, **private: Any) -> ShiftSwap:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(_m=m, **private, reason=m.reason, comment=m.comment, decided_at=m.decided_at)

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def status(self) -> SwapStatus:
        return models.SwapStatus(self._m.status)

    @strawberry.field
    async def from_leader(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.from_user_id)

    @strawberry.field
    async def to_leader(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.to_user_id)

    @strawberry.field
    async def requested_by(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.requested_by_id)

    @strawberry.field
    async def decided_by(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.decided_by_id)

    @strawberry.field
    async def shift(self, info: Ctx) -> DutyShift | None:
        return await _shift_by_id(info, self._m.shift_id)

    @strawberry.field(description="The shift given in exchange, if any.")
    async def other_shift(self, info: Ctx) -> DutyShift | None:
        return await _shift_by_id(info, self._m.other_shift_id)


async def _shift_by_id(info: Ctx, shift_id: uuid.UUID | None) -> DutyShift | None:
    if shift_id is None:
        return None
    ctx = info.context
    async with ctx.read() as session:
        try:
            return shift(await shifts.find_shift(session, ctx.principal, str(shift_id)))
        except NotFound:  # not visible to the caller
            return None


@strawberry.type
class LeaderLeave:
    id: strawberry.ID
    username: str
    from_: date = strawberry.field(name="from")
    to: date
    reason: str | None


@strawberry.type
class VillagePairing:
    _m: strawberry.Private[models.VillagePairing]
    village_path: str

    @classmethod
    def of(cls, m: models.VillagePairing, **private: Any) -> VillagePairing:
        """Plain attributes, copied once (no resolver round per field)."""
        return cls(_m=m, **private, village_path=m.village_path)

    @strawberry.field
    async def village(self, info: Ctx) -> OrgUnitType | None:
        unit = await load(info.context, "unit_by_path", self._m.village_path)
        return OrgUnitType.of(unit) if unit else None

    @strawberry.field
    async def cadre(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.cadre_id)


@strawberry.type(
    description="下访约访: the township a county (city) leader goes to on the 15th (seeds 002, 003)."
)
class TownshipPairing:
    _m: strawberry.Private[models.VillagePairing]
    township_path: str = strawberry.field(description="The paired township's path.")

    @classmethod
    def of(cls, m: models.VillagePairing) -> TownshipPairing:
        return cls(_m=m, township_path=m.village_path)

    @strawberry.field(description="The paired township.")
    async def township(self, info: Ctx) -> OrgUnitType | None:
        unit = await load(info.context, "unit_by_path", self._m.village_path)
        return OrgUnitType.of(unit) if unit else None

    @strawberry.field(description="Its contact leader (a LEADER at its county or city).")
    async def leader(self, info: Ctx) -> Leader | None:
        return await _leader(info, self._m.cadre_id)


@strawberry.type
class PairingCoverage:
    county_path: str
    villages: int
    paired: int
    rate: float | None = strawberry.field(description="Paired / villages; null without villages.")


@strawberry.type
class RosterQueries:
    @strawberry.field(description="Shifts in the caller's scope (and its own), by day.")
    async def duty_shifts(
        self,
        info: Ctx,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        unit_path: str | None = None,
    ) -> list[DutyShift]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await shifts.duty_shifts(
                session, ctx.principal, from_=from_, to=to, unit_path=unit_path
            )
        return [shift(s) for s in rows]

    @strawberry.field(
        description="One shift: null + NOT_FOUND when absent or not visible; other fields survive."
    )
    async def duty_shift(self, info: Ctx, id: strawberry.ID) -> DutyShift | None:
        ctx = info.context
        async with ctx.read() as session:
            return shift(await shifts.find_shift(session, ctx.principal, str(id), field="id"))

    @strawberry.field(description="Roster rules at unitPath and below, in the caller's scope.")
    async def roster_rules(self, info: Ctx, unit_path: str | None = None) -> list[RosterRule]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await rules.roster_rules(session, ctx.principal, unit_path=unit_path)
        return [RosterRule.of(r) for r in rows]

    @strawberry.field(description="Swap requests in the caller's scope or its own.")
    async def shift_swaps(
        self, info: Ctx, status: SwapStatus | None = None, unit_path: str | None = None
    ) -> list[ShiftSwap]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await swaps.shift_swaps(
                session, ctx.principal, status=status, unit_path=unit_path
            )
        return [ShiftSwap.of(s) for s in rows]

    @strawberry.field(description="Public feed: reception days of the city (any official).")
    async def reception_announcements(
        self,
        info: Ctx,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        unit_path: str | None = None,
    ) -> list[DutyShift]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await shifts.reception_announcements(
                session, ctx.principal, from_=from_, to=to, unit_path=unit_path
            )
        return [shift(s) for s in rows]

    @strawberry.field(
        description="The reception feed as iCalendar text (also GET /rosters/<path>.ics)."
    )
    async def reception_calendar(
        self,
        info: Ctx,
        unit_path: str,
        from_: Annotated[date | None, strawberry.argument(name="from")] = None,
        to: date | None = None,
    ) -> str:
        ctx = info.context
        async with ctx.read() as session:
            return await ical.reception_calendar(
                session, ctx.principal, unit_path=unit_path, from_=from_, to=to
            )

    @strawberry.field(description="Cadre ↔ village pairings at unitPath and below.")
    async def pairings(self, info: Ctx, unit_path: str | None = None) -> list[VillagePairing]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await pairings.pairings(session, ctx.principal, unit_path=unit_path)
        return [VillagePairing.of(p) for p in rows]

    @strawberry.field(description="Leader ↔ township pairings (下访约访) at unitPath and below.")
    async def township_pairings(
        self, info: Ctx, unit_path: str | None = None
    ) -> list[TownshipPairing]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await pairings.township_pairings(session, ctx.principal, unit_path=unit_path)
        return [TownshipPairing.of(p) for p in rows]

    @strawberry.field(description="Villages without a contact cadre.")
    async def unpaired_villages(self, info: Ctx, unit_path: str | None = None) -> list[OrgUnitType]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await pairings.unpaired_villages(session, ctx.principal, unit_path=unit_path)
        return [OrgUnitType.of(u) for u in rows]

    @strawberry.field(description="Pairing coverage per county.")
    async def pairing_coverage(
        self, info: Ctx, unit_path: str | None = None
    ) -> list[PairingCoverage]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await pairings.pairing_coverage(session, ctx.principal, unit_path=unit_path)
        return [
            PairingCoverage(
                county_path=c.county_path, villages=c.villages, paired=c.paired, rate=c.rate
            )
            for c in rows
        ]


# --- mutations -------------------------------------------------------------------------


@strawberry.input
class SetRosterRuleInput:
    unit_path: str
    kind: ShiftKind
    leaders: list[str] | None = strawberry.field(
        default=None, description="Usernames in rotation order; omit for the unit's leaders."
    )
    day_of_month: int | None = None
    start_time: str = "09:00"
    end_time: str = "17:00"
    location: str | None = None
    active: bool = True
    people: list[strawberry.ID] | None = None


@strawberry.input
class PlanReceptionDaysInput:
    unit_path: str
    month: str = strawberry.field(description="YYYY-MM, not before the current month")


@strawberry.input
class SchedulePublicReceptionInput:
    unit_path: str
    day: date
    leader: str
    title: str | None = None
    start_time: str = "09:00"
    end_time: str = "12:00"
    location: str | None = None
    announce_at: datetime | None = strawberry.field(
        default=None, description="When the announcement is published (default now)."
    )


@strawberry.input
class ScheduleAppointmentReceptionInput:
    case_id: strawberry.ID
    unit_path: str
    leader: str
    day: date
    start_time: str = "09:00"
    end_time: str = "10:00"
    location: str | None = None

    def to_service(self) -> dict[str, Any]:
        return {
            "case_id": str(self.case_id),
            "unit_path": self.unit_path,
            "leader": self.leader,
            "day": self.day,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "location": self.location,
        }


@strawberry.input
class ConfirmShiftInput:
    shift_id: strawberry.ID


@strawberry.input
class SwapShiftInput:
    shift_id: strawberry.ID
    to_username: str | None = None
    with_shift_id: strawberry.ID | None = None
    reason: str | None = None


@strawberry.input
class ApproveSwapInput:
    swap_id: strawberry.ID
    approve: bool = True
    comment: str | None = None


@strawberry.input
class RecordLeaveInput:
    username: str
    from_: date = strawberry.field(name="from")
    to: date
    reason: str | None = None


@strawberry.input
class CheckInShiftInput:
    shift_id: strawberry.ID
    location: str | None = None


@strawberry.input
class CheckOutShiftInput:
    shift_id: strawberry.ID
    location: str | None = None


@strawberry.input
class AssignPairingInput:
    village_path: str
    username: str


@strawberry.input(description="下访约访: pair a township with a county (city) leader.")
class AssignTownshipPairingInput:
    township_path: str = strawberry.field(description="A TOWNSHIP unit.")
    username: str = strawberry.field(description="A LEADER at the township's county or city.")


@strawberry.type
class RosterMutations:
    @strawberry.mutation(description="Create or replace the rule of one kind of duty at a unit.")
    async def set_roster_rule(self, info: Ctx, input: SetRosterRuleInput) -> RosterRule:
        view = await info.context.mutate(
            rules.set_roster_rule,
            unit_path=input.unit_path,
            kind=models.ShiftKind(input.kind),
            leaders=input.leaders,
            day_of_month=input.day_of_month,
            start_time=input.start_time,
            end_time=input.end_time,
            location=input.location,
            active=input.active,
            people=[str(p) for p in input.people] if input.people is not None else None,
        )
        return RosterRule.of(view)

    @strawberry.mutation(description="Generate a month of shifts from the rules (idempotent).")
    async def plan_reception_days(self, info: Ctx, input: PlanReceptionDaysInput) -> ReceptionPlan:
        r = await info.context.mutate(
            planning.plan_reception_days, unit_path=input.unit_path, month=input.month
        )
        return ReceptionPlan(
            unit_path=r.unit_path,
            month=r.month,
            created=r.created,
            updated=r.updated,
            removed=r.removed,
            kept=r.kept,
            unfilled=sorted(set(r.unfilled)),
            shifts=[shift(s) for s in r.shifts],
            unpaired_leaders=sorted(set(r.unpaired_leaders)),
        )

    @strawberry.mutation(description="季度公开接访, announced at least 3 days ahead.")
    async def schedule_public_reception(
        self, info: Ctx, input: SchedulePublicReceptionInput
    ) -> DutyShift:
        return shift(
            await info.context.mutate(
                receptions.schedule_public_reception,
                unit_path=input.unit_path,
                day=input.day,
                leader=input.leader,
                title=input.title,
                start_time=input.start_time,
                end_time=input.end_time,
                location=input.location,
                announce_at=input.announce_at,
            )
        )

    @strawberry.mutation
    async def schedule_appointment_reception(
        self, info: Ctx, input: ScheduleAppointmentReceptionInput
    ) -> DutyShift:
        return shift(
            await info.context.mutate(
                receptions.schedule_appointment_reception, **input.to_service()
            )
        )

    @strawberry.mutation(description="Fix a planned shift: regeneration no longer moves it.")
    async def confirm_shift(self, info: Ctx, input: ConfirmShiftInput) -> DutyShift:
        return shift(await info.context.mutate(shifts.confirm_shift, shift_id=str(input.shift_id)))

    @strawberry.mutation(description="Ask to hand a shift over (toUsername) or exchange it.")
    async def swap_shift(self, info: Ctx, input: SwapShiftInput) -> ShiftSwap:
        swap = await info.context.mutate(
            swaps.swap_shift,
            shift_id=str(input.shift_id),
            to_username=input.to_username,
            with_shift_id=str(input.with_shift_id) if input.with_shift_id else None,
            reason=input.reason,
        )
        return ShiftSwap.of(swap)

    @strawberry.mutation(description="A leader over the unit approves (or rejects) a swap.")
    async def approve_swap(self, info: Ctx, input: ApproveSwapInput) -> ShiftSwap:
        swap = await info.context.mutate(
            swaps.approve_swap,
            swap_id=str(input.swap_id),
            approve=input.approve,
            comment=input.comment,
        )
        return ShiftSwap.of(swap)

    @strawberry.mutation(description="Record a leader's leave; rotation skips it.")
    async def record_leave(self, info: Ctx, input: RecordLeaveInput) -> LeaderLeave:
        leave = await info.context.mutate(
            swaps.record_leave,
            username=input.username,
            first_day=input.from_,
            last_day=input.to,
            reason=input.reason,
        )
        return LeaderLeave(
            id=strawberry.ID(str(leave.id)),
            username=input.username.strip(),
            from_=leave.first_day,
            to=leave.last_day,
            reason=leave.reason,
        )

    @strawberry.mutation(description="The duty leader checks in (time and optional location).")
    async def check_in_shift(self, info: Ctx, input: CheckInShiftInput) -> DutyShift:
        return shift(
            await info.context.mutate(
                shifts.check_in_shift,
                shift_id=str(input.shift_id),
                location=input.location,
            )
        )

    @strawberry.mutation(description="The duty leader checks out.")
    async def check_out_shift(self, info: Ctx, input: CheckOutShiftInput) -> DutyShift:
        return shift(
            await info.context.mutate(
                shifts.check_out_shift,
                shift_id=str(input.shift_id),
                location=input.location,
            )
        )

    @strawberry.mutation(description="一对一联系: the village's contact cadre.")
    async def assign_pairing(self, info: Ctx, input: AssignPairingInput) -> VillagePairing:
        pairing = await info.context.mutate(
            pairings.assign_pairing,
            village_path=input.village_path,
            username=input.username,
        )
        return VillagePairing.of(pairing)

    @strawberry.mutation(
        description=(
            "下访约访: the township's contact leader (replaces any); the 15th-of-month "
            "down-visit plans one shift per leader and paired township."
        )
    )
    async def assign_township_pairing(
        self, info: Ctx, input: AssignTownshipPairingInput
    ) -> TownshipPairing:
        pairing = await info.context.mutate(
            pairings.assign_township_pairing,
            township_path=input.township_path,
            username=input.username,
        )
        return TownshipPairing.of(pairing)


# --- HTTP: the reception calendar feed -----------------------------------------------------


def _date_param(request: Request, name: str) -> date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return validation.parse_date(raw, name)  # YYYY-MM-DD within the supported dates


def ics_route(db: Database) -> Route:
    """``/rosters/{unit:path}.ics``: the reception days of a unit as iCalendar (docs/rosters.md)."""

    async def endpoint(request: Request, principal) -> Response:
        unit_path = "/" + request.path_params["unit"].strip("/")
        async with db.transaction(principal.scope()) as session:
            text = await ical.reception_calendar(
                session,
                principal,
                unit_path=unit_path,
                from_=_date_param(request, "from"),
                to=_date_param(request, "to"),
            )
        return Response(text, media_type="text/calendar; charset=utf-8")

    return rest_route("/rosters/{unit:path}.ics", endpoint)
