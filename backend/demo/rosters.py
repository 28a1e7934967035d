"""Duty rosters in the demo: rules, planned months, check-ins, swaps, pairings, a reception.

Two weeks ago the petition office set the roster rules (a mornings' reception
hall at the city and, in Shangqiu, at Suiyang with two district leaders in
rotation; the 三五 grassroots days) and planned the months up to two weeks
from now. Since then the duty leaders checked in and out of their shifts
(one city shift was missed), the outbox delivered each reminder the morning
before its shift (seed.py runs it each morning), a walk-in petitioner was received by the leader on duty
(首问负责), one swap was approved and one waits for the city leader; a
quarterly public reception is announced for the coming days. Villages are
paired with cadres (two are left unpaired, to show the list), and one also with a
party member among the 两代表一委员; a lawyer and a counsellor take the city's
律师坐班 and 心理咨询 duty days (seeds 000, 001).
"""

from __future__ import annotations

from datetime import date, time, timedelta

from backend.cases import service as cases
from backend.core.errors import Conflict
from backend.demo.cases import Story, Tale, petitioner, registration_input
from backend.demo.timeline import Timeline
from backend.demo.world import DemoTenant
from backend.rosters.access import users_by_ids
from backend.rosters.models import PersonKind, ShiftKind
from backend.rosters.pairings import assign_pairing
from backend.rosters.people import add_roster_person, assign_person_pairing
from backend.rosters.planning import plan_reception_days
from backend.rosters.receptions import schedule_public_reception
from backend.rosters.rules import set_roster_rule
from backend.rosters.shifts import check_in_shift, check_out_shift, duty_shifts, find_shift
from backend.rosters.swaps import approve_swap, swap_shift

PLANNED_DAYS_AGO = 15
PLANNED_AHEAD_DAYS = 14
HALL = ("09:00", "12:00")
PUBLIC_RECEPTION = ("14:30", "17:00")
WALK_IN = Story("walk-in", 0, "VISIT", "CLAIM", "urban-management", "占道经营影响通行", "city")
PAIRINGS = [("village", "county_leader"), ("village2", "deputy_leader")]
# (kind, name, organisation) of the named people on the city's duty days (seed 001)
ON_DUTY = {
    ShiftKind.LAWYER_DUTY: (PersonKind.LAWYER, "律师 钱文博", "公益律师团"),
    ShiftKind.COUNSELLING: (PersonKind.COUNSELLOR, "心理咨询师 林静", "市心理援助中心"),
}


def _months(first: date, last: date) -> list[str]:
    months, day = [], first.replace(day=1)
    while day <= last:
        months.append(f"{day.year:04d}-{day.month:02d}")
        day = (day + timedelta(days=32)).replace(day=1)
    return months


class Rosters:
    def __init__(self, timeline: Timeline, demo: DemoTenant, city_index: int) -> None:
        self.timeline, self.demo, self.city_index = timeline, demo, city_index
        self.county_rotation = "county_leader" in demo.actors and "deputy_leader" in demo.actors

    def schedule(self) -> None:
        t = self.timeline
        if "leader" in self.demo.actors:
            t.schedule(t.moment(PLANNED_DAYS_AGO, time(8, 0)), self._label("pairings"), self._pair)
        if not self.demo.rosters:
            return
        t.schedule(t.moment(PLANNED_DAYS_AGO, time(8, 30)), self._label("plan"), self._plan)
        if self.county_rotation:
            t.schedule(t.moment(5), self._label("public-reception"), self._public_reception)
            t.schedule(t.moment(2), self._label("swap"), self._swap)
            t.schedule(t.moment(1), self._label("swap-approved"), self._approve)
            t.schedule(t.moment(1, time(11, 0)), self._label("swap-asked"), self._ask_swap)

    def _label(self, what: str) -> str:
        return f"{self.demo.slug}:rosters:{what}"

    async def _pair(self) -> None:
        async with self.timeline.acting(self.demo.actor("officer")) as (session, principal):
            for place, part in PAIRINGS:
                await assign_pairing(
                    session,
                    principal,
                    village_path=self.demo.path(place),
                    username=self.demo.actor(part),
                )
            member = await add_roster_person(
                session,
                principal,
                unit_path=self.demo.path("village"),
                name="党员 王德厚",
                kind=PersonKind.PARTY_MEMBER,
                organisation="村党支部",
            )
            await assign_person_pairing(
                session, principal, village_path=self.demo.path("village"), person_id=str(member.id)
            )

    async def _plan(self) -> None:
        t, demo = self.timeline, self.demo
        rules = [("", ShiftKind.RECEPTION_HALL, None), ("", ShiftKind.GRASSROOTS_DAY, None)]
        if self.county_rotation:
            pair = [demo.actor("county_leader"), demo.actor("deputy_leader")]
            rules += [
                ("county", ShiftKind.RECEPTION_HALL, pair),
                ("county", ShiftKind.GRASSROOTS_DAY, pair),
            ]
        async with t.acting(demo.actor("officer")) as (session, principal):
            for kind, (person_kind, name, organisation) in ON_DUTY.items():
                person = await add_roster_person(
                    session,
                    principal,
                    unit_path=demo.path(""),
                    name=name,
                    kind=person_kind,
                    organisation=organisation,
                )
                await set_roster_rule(
                    session,
                    principal,
                    unit_path=demo.path(""),
                    kind=kind,
                    people=[str(person.id)],
                    start_time=HALL[0],
                    end_time=HALL[1],
                    location="市信访接待中心",
                )
            for place, kind, leaders in rules:
                start, end = HALL if kind is ShiftKind.RECEPTION_HALL else ("08:30", "17:30")
                await set_roster_rule(
                    session,
                    principal,
                    unit_path=demo.path(place),
                    kind=kind,
                    leaders=leaders,
                    start_time=start,
                    end_time=end,
                    location="市信访接待中心" if place == "" else "区信访接待大厅",
                )
            shifts = []
            ahead = t.today + timedelta(days=PLANNED_AHEAD_DAYS)
            for month in _months(t.today - timedelta(days=PLANNED_DAYS_AGO), ahead):
                plan = await plan_reception_days(
                    session, principal, unit_path=demo.path(""), month=month
                )
                shifts += plan.shifts
        self._schedule_the_days(shifts)

    def _schedule_the_days(self, shifts: list) -> None:
        """Check-ins and -outs of the past shifts, the morning reminders, one walk-in."""
        t = self.timeline
        halls = [s for s in shifts if s.kind == ShiftKind.RECEPTION_HALL]
        city_halls = [s for s in halls if s.unit_path == self.demo.path("")]
        missed = city_halls[0].id if len(city_halls) > 1 else None
        for shift in halls:
            if shift.id == missed:
                continue
            check_in = shift.starts_at + timedelta(minutes=5 + shift.day.day % 7)
            if check_in < t.started:
                t.schedule(check_in, self._label("check-in"), self._check(shift.id, "in"))
            check_out = shift.ends_at - timedelta(minutes=10)
            if check_out < t.started:
                t.schedule(check_out, self._label("check-out"), self._check(shift.id, "out"))
        walk_ins = [s for s in city_halls if s.starts_at + timedelta(minutes=40) < t.started]
        if walk_ins:
            t.schedule(
                walk_ins[-1].starts_at + timedelta(minutes=40),
                self._label("walk-in"),
                self._walk_in,
            )

    def _check(self, shift_id, way: str):
        async def run() -> None:
            async with self.timeline.acting(self.demo.actor("officer")) as (session, officer):
                shift = await find_shift(session, officer, str(shift_id))
                leader = (await users_by_ids(session, [shift.leader_id]))[shift.leader_id]
            async with self.timeline.acting(leader.username) as (session, principal):
                act = check_in_shift if way == "in" else check_out_shift
                await act(session, principal, shift_id=str(shift_id), location=shift.location)

        return run

    async def _walk_in(self) -> None:
        tale = Tale(self.demo, WALK_IN, 90, self.city_index)
        async with self.timeline.acting(self.demo.actor("officer")) as (session, principal):
            person = petitioner(self.city_index, tale.number)
            await cases.register_case(session, principal, registration_input(tale, person))

    async def _future_shifts(self, part: str, from_day: date) -> list:
        """The county hall shifts of ``part``'s leader from ``from_day`` on, earliest first."""
        t = self.timeline
        leader = await t.principal(self.demo.actor(part))
        async with t.acting(self.demo.actor("officer")) as (session, principal):
            found = await duty_shifts(
                session,
                principal,
                from_=from_day,
                to=t.today + timedelta(days=PLANNED_AHEAD_DAYS),
                unit_path=self.demo.path("county"),
            )
        return [
            s
            for s in found
            if s.kind == ShiftKind.RECEPTION_HALL and s.leader_id == leader.account_id
        ]

    async def _hand_over(self, giver: str, taker: str, from_day: date, reason: str) -> str | None:
        """The first of ``giver``'s shifts that ``taker`` is free to take: the swap's id."""
        for shift in await self._future_shifts(giver, from_day):
            try:
                async with self.timeline.acting(self.demo.actor(giver)) as (session, principal):
                    swap = await swap_shift(
                        session,
                        principal,
                        shift_id=str(shift.id),
                        to_username=self.demo.actor(taker),
                        reason=reason,
                    )
                    return str(swap.id)
            except Conflict:
                continue
        return None

    async def _swap(self) -> None:
        self.swap_id = await self._hand_over(
            "deputy_leader",
            "county_leader",
            self.timeline.today + timedelta(days=2),
            "赴省参加培训",
        )

    async def _approve(self) -> None:
        if getattr(self, "swap_id", None) is None:
            return
        async with self.timeline.acting(self.demo.actor("leader")) as (session, principal):
            await approve_swap(session, principal, swap_id=self.swap_id, comment="同意")

    async def _ask_swap(self) -> None:
        await self._hand_over(
            "county_leader",
            "deputy_leader",
            self.timeline.today + timedelta(days=3),
            "当日需陪同上级督导检查",
        )

    async def _public_reception(self) -> None:
        t = self.timeline
        for ahead in range(3, 30):
            day = t.today + timedelta(days=ahead)
            if day.weekday() >= 5:
                continue
            try:
                async with t.acting(self.demo.actor("officer")) as (session, principal):
                    await schedule_public_reception(
                        session,
                        principal,
                        unit_path=self.demo.path("county"),
                        day=day,
                        leader=self.demo.actor("county_leader"),
                        start_time=PUBLIC_RECEPTION[0],
                        end_time=PUBLIC_RECEPTION[1],
                        location="区政务服务中心一楼",
                    )
                return
            except Conflict:
                continue
