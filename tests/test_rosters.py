"""Duty rosters over HTTP: 三五 days on the real calendar, fair rotation, idempotent
re-planning, swaps and their conflicts, check-in and first receivers, the iCal feed,
pairings, tenant isolation and bad input."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import func, select

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.core import clock
from backend.core.db import TenantScope
from backend.notifications.models import Notification
from backend.tenants import service as tenants
from backend.tenants.models import OrgUnitLevel
from tests.case_helpers import REGISTER, register_input
from tests.clocks import frozen
from tests.helpers import City, build_city, unique

SH = ZoneInfo("Asia/Shanghai")

SHIFT = "id kind status day startsAt endsAt unitPath leader { username } title"
RULE = """mutation($i: SetRosterRuleInput!) {
  setRosterRule(input: $i) { id kind unitPath leaders { username } } }"""
PLAN = f"""mutation($i: PlanReceptionDaysInput!) {{
  planReceptionDays(input: $i) {{ month created updated removed kept unfilled shifts {{ {SHIFT} }} }} }}"""
SHIFTS = f"""query($from: Date!, $to: Date!, $unit: String) {{
  dutyShifts(from: $from, to: $to, unitPath: $unit) {{ {SHIFT} casesReceived {{ id }} }} }}"""
CONFIRM = f"mutation($i: ConfirmShiftInput!) {{ confirmShift(input: $i) {{ {SHIFT} }} }}"
SWAP = f"""mutation($i: SwapShiftInput!) {{ swapShift(input: $i) {{
  id status fromLeader {{ username }} toLeader {{ username }} shift {{ {SHIFT} }} }} }}"""
APPROVE = f"""mutation($i: ApproveSwapInput!) {{ approveSwap(input: $i) {{
  id status shift {{ {SHIFT} }} otherShift {{ {SHIFT} }} }} }}"""
LEAVE = "mutation($i: RecordLeaveInput!) { recordLeave(input: $i) { id username from to } }"
CHECK_IN = f"""mutation($i: CheckInShiftInput!) {{
  checkInShift(input: $i) {{ {SHIFT} checkedInAt checkInLocation }} }}"""
CHECK_OUT = f"mutation($i: CheckOutShiftInput!) {{ checkOutShift(input: $i) {{ {SHIFT} }} }}"
PUBLIC = f"""mutation($i: SchedulePublicReceptionInput!) {{
  schedulePublicReception(input: $i) {{ {SHIFT} announcedAt }} }}"""
FEED = f"""query($from: Date!, $to: Date!, $unit: String) {{
  receptionAnnouncements(from: $from, to: $to, unitPath: $unit) {{ {SHIFT} }} }}"""
ICS = "query($unit: String!, $from: Date, $to: Date) { receptionCalendar(unitPath: $unit, from: $from, to: $to) }"
PAIR = """mutation($i: AssignPairingInput!) {
  assignPairing(input: $i) { villagePath cadre { username } } }"""
PAIRINGS = """query($unit: String) {
  pairings(unitPath: $unit) { villagePath cadre { username } }
  unpairedVillages(unitPath: $unit) { path }
  pairingCoverage(unitPath: $unit) { countyPath villages paired rate } }"""

# Leaders added to the standard test city: four at the city, one more at county c1, three
# at township c1/t1, one at county c2.
EXTRA_LEADERS = [
    ("l1", ""),
    ("l2", ""),
    ("l3", ""),
    ("l4", ""),
    ("c1_l2", "c1"),
    ("t1_l1", "c1/t1"),
    ("t1_l2", "c1/t1"),
    ("t1_l3", "c1/t1"),
    ("c2_leader", "c2"),
]


async def roster_city(db) -> City:
    city = await build_city(db, unique("r"), unique("p"))
    async with db.transaction() as session:
        await tenants.create_org_unit(
            session,
            SYSTEM,
            parent_path=city.path("c2/t1"),
            slug="v2",
            name="v2",
            level=OrgUnitLevel.VILLAGE,
        )
        for short, rel in EXTRA_LEADERS:
            username = f"{city.slug}_{short}"
            await tenants.create_user(
                session, SYSTEM, tenant=city.slug, username=username, display_name=f"领导{short}"
            )
            await tenants.assign_role(
                session, SYSTEM, username=username, role=Role.LEADER, org_unit_path=city.path(rel)
            )
            city.tokens[short] = issue_token(username)
    return city


def user(city: City, short: str) -> str:
    return f"{city.slug}_{short}"


def sh(y: int, m: int, d: int, hh: int = 10, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


async def set_rule(gql, city: City, rel: str, kind: str, leaders=None, **extra) -> dict:
    data = {"unitPath": city.path(rel), "kind": kind, **extra}
    if leaders is not None:
        data["leaders"] = [user(city, s) for s in leaders]
    return (await gql(RULE, {"i": data}, token=city.token("admin"))).ok()["setRosterRule"]


async def plan(gql, city: City, month: str, rel: str = "", who: str = "admin") -> dict:
    resp = await gql(
        PLAN, {"i": {"unitPath": city.path(rel), "month": month}}, token=city.token(who)
    )
    return resp.ok()["planReceptionDays"]


async def shifts(gql, city: City, who: str, start: str, end: str, rel: str | None = None) -> list:
    variables = {"from": start, "to": end, "unit": city.path(rel) if rel is not None else None}
    return (await gql(SHIFTS, variables, token=city.token(who))).ok()["dutyShifts"]


def by_day(rows: list[dict]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["day"], []).append(r["leader"]["username"])
    return out


# --- generation on the real calendar -------------------------------------------------------


async def test_october_2026_grassroots_days_move_past_national_day(gql, db):
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "", "GRASSROOTS_DAY", ["l1", "l2"])
        await set_rule(gql, city, "c1", "GRASSROOTS_DAY")  # the leaders held at c1
        await set_rule(gql, city, "c1/t1", "GRASSROOTS_DAY")
        await set_rule(gql, city, "", "RECEPTION_HALL", ["l1", "l2", "l3", "l4"])
        result = await plan(gql, city, "2026-10")
    grassroots = [s for s in result["shifts"] if s["kind"] == "GRASSROOTS_DAY"]
    days = {(s["unitPath"], s["day"]) for s in grassroots}
    # township: the 5th is inside the National Day holiday (Oct 1-7) → Thursday Oct 8
    # county: the 15th is a Thursday → stays; city: the 25th is a Sunday → Monday Oct 26
    assert days == {
        (city.path("c1/t1"), "2026-10-08"),
        (city.path("c1"), "2026-10-15"),
        (city.path(), "2026-10-26"),
    }
    per_unit = Counter(s["unitPath"] for s in grassroots)
    assert per_unit == {city.path(): 2, city.path("c1"): 2, city.path("c1/t1"): 3}
    hall = by_day([s for s in result["shifts"] if s["kind"] == "RECEPTION_HALL"])
    assert not any(d.startswith("2026-10-0") and d < "2026-10-08" for d in hall)
    assert "2026-10-10" in hall  # Saturday make-up working day (调休)
    assert "2026-10-11" not in hall and "2026-10-31" not in hall
    assert len(hall) == 18 and all(len(v) == 1 for v in hall.values())
    # on the city's 三五 day l1 and l2 are out in the villages: the hall rotation skips them
    assert hall["2026-10-26"][0] in {user(city, "l3"), user(city, "l4")}
    start = next(s for s in grassroots if s["day"] == "2026-10-26")["startsAt"]
    assert datetime.fromisoformat(start) == sh(2026, 10, 26, 9)
    assert result["created"] == len(result["shifts"]) and result["unfilled"] == []


async def test_a_year_of_hall_duty_is_fair_round_robin_and_skips_leave(gql, db):
    city = await roster_city(db)
    leaders = ["l1", "l2", "l3", "l4"]
    with frozen(sh(2026, 12, 10)):
        await set_rule(gql, city, "", "RECEPTION_HALL", leaders)
        leave = {"username": user(city, "l2"), "from": "2027-03-01", "to": "2027-03-19"}
        (await gql(LEAVE, {"i": leave}, token=city.token("admin"))).ok()
        for month in range(1, 13):
            await plan(gql, city, f"2027-{month:02d}")
        rows = await shifts(gql, city, "officer", "2027-01-01", "2027-12-31")
    days = by_day(rows)
    assert all(len(v) == 1 for v in days.values())
    counts = Counter(v[0] for v in days.values())
    assert set(counts) == {user(city, s) for s in leaders}
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    on_leave = [
        d for d, v in days.items() if "2027-03-01" <= d <= "2027-03-19" and v[0] == user(city, "l2")
    ]
    assert on_leave == []
    # plain round-robin while nobody is away: January cycles l1, l2, l3, l4, l1, ...
    january = [days[d][0] for d in sorted(days) if d.startswith("2027-01")]
    assert january[:8] == [user(city, s) for s in leaders * 2]


async def test_replanning_is_idempotent_and_keeps_confirmed_and_swapped_shifts(gql, db):
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "c1/t1", "WINDOW_DUTY")
        first = await plan(gql, city, "2026-10", "c1/t1", who="t1_officer")
        again = await plan(gql, city, "2026-10", "c1/t1", who="t1_officer")
        assert (again["created"], again["updated"], again["removed"]) == (0, 0, 0)
        assert again["kept"] == len(first["shifts"]) == 18
        assert [(s["id"], s["leader"]["username"]) for s in again["shifts"]] == [
            (s["id"], s["leader"]["username"]) for s in first["shifts"]
        ]
        reminders = await reminder_count(db, city)
        assert reminders == 18  # one per shift; re-planning enqueued nothing new

        mine = [s for s in first["shifts"] if s["leader"]["username"] == user(city, "t1_l1")]
        confirmed = await gql(CONFIRM, {"i": {"shiftId": mine[0]["id"]}}, token=city.token("t1_l1"))
        assert confirmed.ok()["confirmShift"]["status"] == "CONFIRMED"
        # a role that reads no shift: FORBIDDEN before any lookup, the same for any id
        # (the role is checked before the object, as in every mutation; the dutyShift(id)
        # lookup alone answers NOT_FOUND)
        for shift_id in (mine[1]["id"], "01a24934-0000-7000-8000-000000000000"):
            refused = await gql(
                CONFIRM, {"i": {"shiftId": shift_id}}, token=city.token("evaluator")
            )
            assert refused.code == "FORBIDDEN", refused.body
        swapped_shift = next(
            s for s in first["shifts"] if s["leader"]["username"] == user(city, "t1_l2")
        )
        swap = await request_swap(gql, city, "t1_l2", swapped_shift["id"], to=user(city, "t1_l3"))
        (await gql(APPROVE, {"i": {"swapId": swap["id"]}}, token=city.token("c1_leader"))).ok()

        # t1_l1 goes on leave for the whole month: planned shifts move, fixed ones stay
        leave = {"username": user(city, "t1_l1"), "from": "2026-10-01", "to": "2026-10-31"}
        (await gql(LEAVE, {"i": leave}, token=city.token("t1_officer"))).ok()
        third = await plan(gql, city, "2026-10", "c1/t1", who="t1_officer")
    after = {s["id"]: s for s in third["shifts"]}
    assert after[mine[0]["id"]]["leader"]["username"] == user(city, "t1_l1")
    assert after[mine[0]["id"]]["status"] == "CONFIRMED"
    assert after[swapped_shift["id"]]["leader"]["username"] == user(city, "t1_l3")
    assert after[swapped_shift["id"]]["status"] == "SWAPPED"
    moved = [s for s in mine[1:]]
    assert moved and all(after[s["id"]]["leader"]["username"] != user(city, "t1_l1") for s in moved)
    assert third["updated"] >= len(moved) and third["created"] == 0 and third["removed"] == 0


async def reminder_count(db, city: City) -> int:
    async with db.transaction() as session:
        tenant = await tenants.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        return await session.scalar(
            select(func.count(Notification.id)).where(
                Notification.kind == "shift_reminder", Notification.channel == "inapp"
            )
        )


async def request_swap(gql, city: City, who: str, shift_id: str, *, to=None, with_shift=None):
    data = {"shiftId": shift_id, "toUsername": to, "withShiftId": with_shift, "reason": "出差"}
    return (await gql(SWAP, {"i": data}, token=city.token(who))).ok()["swapShift"]


# --- swaps ------------------------------------------------------------------------------------


async def test_swaps_refuse_double_booking_and_leave_and_need_a_third_leader(gql, db):
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "", "RECEPTION_HALL", ["l1", "l2", "l3", "l4"])
        result = await plan(gql, city, "2026-10")
        hall = result["shifts"]
        s1 = next(s for s in hall if s["leader"]["username"] == user(city, "l1"))
        day = s1["day"]
        # l3 holds a public reception that morning; l4 is on leave that day
        busy = {
            "unitPath": city.path(),
            "day": day,
            "leader": user(city, "l3"),
            "startTime": "10:00",
            "endTime": "11:00",
        }
        busy_day = date.fromisoformat(day)
        taken = [s for s in hall if s["day"] == day and s["leader"]["username"] == user(city, "l3")]
        assert not taken
        (await gql(PUBLIC, {"i": busy}, token=city.token("admin"))).ok()
        leave = {"username": user(city, "l4"), "from": day, "to": day}
        (await gql(LEAVE, {"i": leave}, token=city.token("admin"))).ok()

        def swap_to(name):
            data = {"shiftId": s1["id"], "toUsername": name}
            return gql(SWAP, {"i": data}, token=city.token("l1"))

        resp = await swap_to(user(city, "l3"))
        assert (resp.code, resp.field) == ("CONFLICT", "toUsername"), resp.body
        resp = await swap_to(user(city, "l4"))
        assert (resp.code, resp.field) == ("CONFLICT", "toUsername")
        assert "leave" in resp.errors[0]["message"]
        resp = await swap_to("nobody-" + city.slug)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "toUsername")
        resp = await swap_to(user(city, "c1_leader"))  # a county leader: outside the city hall
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "toUsername")
        other = await gql(
            SWAP,
            {"i": {"shiftId": s1["id"], "toUsername": user(city, "l2")}},
            token=city.token("l2"),
        )
        assert other.code == "FORBIDDEN"  # not l2's shift

        swap = await request_swap(gql, city, "l1", s1["id"], to=user(city, "l2"))
        assert swap["status"] == "REQUESTED"
        again = await swap_to(user(city, "l2"))
        assert (again.code, again.field) == ("CONFLICT", "shiftId")
        for party in ("l1", "l2"):
            resp = await gql(APPROVE, {"i": {"swapId": swap["id"]}}, token=city.token(party))
            assert resp.code == "FORBIDDEN"
        approved = (
            await gql(APPROVE, {"i": {"swapId": swap["id"]}}, token=city.token("leader"))
        ).ok()
        assert approved["approveSwap"]["status"] == "APPROVED"
        assert approved["approveSwap"]["shift"]["leader"]["username"] == user(city, "l2")
        assert approved["approveSwap"]["shift"]["status"] == "SWAPPED"

        # an exchange that would put l1 on two shifts at once is refused at approval time
        s2 = next(
            s for s in hall if s["leader"]["username"] == user(city, "l2") and s["day"] != day
        )
        s3 = next(
            s
            for s in hall
            if s["leader"]["username"] == user(city, "l3") and s["day"] not in (day, s2["day"])
        )
        exchange = await request_swap(gql, city, "l2", s2["id"], with_shift=s3["id"])
        clash = {
            "unitPath": city.path(),
            "day": s3["day"],
            "leader": user(city, "l2"),
            "title": "另一场公开接访",
        }
        # a second public reception the same quarter is refused; record leave instead
        resp = await gql(PUBLIC, {"i": clash}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("CONFLICT", "day")
        leave = {"username": user(city, "l2"), "from": s3["day"], "to": s3["day"]}
        (await gql(LEAVE, {"i": leave}, token=city.token("admin"))).ok()
        resp = await gql(APPROVE, {"i": {"swapId": exchange["id"]}}, token=city.token("leader"))
        assert (resp.code, resp.field) == ("CONFLICT", "swapId")
        assert busy_day.month == 10


# --- check-in and first receivers -----------------------------------------------------------


async def test_a_visit_during_window_duty_names_the_duty_leader_first_receiver(gql, db):
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "c1/t1", "WINDOW_DUTY", location="东风乡信访接待窗口")
        planned = await plan(gql, city, "2026-10", "c1/t1", who="t1_officer")
    duty = next(s for s in planned["shifts"] if s["day"] == "2026-10-12")
    leader_short = duty["leader"]["username"].removeprefix(city.slug + "_")
    with frozen(sh(2026, 10, 12, 7)):
        early = await gql(CHECK_IN, {"i": {"shiftId": duty["id"]}}, token=city.token(leader_short))
        assert early.code == "INVALID_TRANSITION"
    with frozen(sh(2026, 10, 12, 8, 45)):
        other = "t1_l1" if leader_short != "t1_l1" else "t1_l2"
        resp = await gql(CHECK_IN, {"i": {"shiftId": duty["id"]}}, token=city.token(other))
        assert resp.code == "FORBIDDEN"
        checked = (
            await gql(
                CHECK_IN,
                {"i": {"shiftId": duty["id"], "location": "34.41,115.65"}},
                token=city.token(leader_short),
            )
        ).ok()["checkInShift"]
        assert checked["status"] == "CHECKED_IN" and checked["checkInLocation"] == "34.41,115.65"
    with frozen(sh(2026, 10, 12, 10)):
        visit = await register_first_receiver(gql, city, channel="VISIT")
        letter = await register_first_receiver(gql, city, channel="LETTER")
        sunday = await register_first_receiver(
            gql, city, channel="VISIT", receivedAt=sh(2026, 10, 11, 10).isoformat()
        )
        rows = await shifts(gql, city, "t1_officer", "2026-10-12", "2026-10-12")
    assert visit["firstReceiver"]["username"] == duty["leader"]["username"]
    assert letter["firstReceiver"]["username"] == user(city, "t1_officer")
    assert sunday["firstReceiver"]["username"] == user(city, "t1_officer")
    assert [c["id"] for c in rows[0]["casesReceived"]] == [visit["id"]]
    with frozen(sh(2026, 10, 12, 17, 5)):
        out = await gql(CHECK_OUT, {"i": {"shiftId": duty["id"]}}, token=city.token(leader_short))
        assert out.ok()["checkOutShift"]["status"] == "COMPLETED"


async def register_first_receiver(gql, city: City, **overrides) -> dict:

    query = REGISTER.replace("deadlines {", "firstReceiver { username } deadlines {")
    data = register_input(
        city, locationPath=city.path("c1/t1/v1"), receivedAt=clock.now().isoformat()
    )
    data.update(overrides)
    return (await gql(query, {"i": data}, token=city.token("t1_officer"))).ok()["registerCase"]


# --- the public feed and iCalendar ---------------------------------------------------------


async def test_ical_feed_parses_back_with_one_event_per_reception_day(gql, db, http):
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "", "RECEPTION_HALL", ["l1", "l2", "l3", "l4"])
        result = await plan(gql, city, "2026-10")
        later = {
            "unitPath": city.path(),
            "day": "2026-10-20",
            "leader": user(city, "leader"),
            "startTime": "18:00",
            "endTime": "20:00",
            "announceAt": sh(2026, 10, 1, 9).isoformat(),  # not published yet
        }
        (await gql(PUBLIC, {"i": later}, token=city.token("admin"))).ok()
        auth = {"Authorization": f"Bearer {city.token('t1_officer')}"}
        url = f"/rosters{city.path()}.ics?from=2026-10-01&to=2026-10-31"
        resp = await http.get(url, headers=auth)
        anonymous = await http.get(url)
        text = (
            await gql(
                ICS,
                {"unit": city.path(), "from": "2026-10-01", "to": "2026-10-31"},
                token=city.token("officer"),
            )
        ).ok()
    assert anonymous.status_code == 401
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/calendar")
    cal = Calendar.from_ical(resp.text)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 18
    assert {str(e["uid"]) for e in events} == {f"{s['id']}@xinfang" for s in result["shifts"]}
    first = min(events, key=lambda e: e.decoded("dtstart"))
    assert first.decoded("dtstart") == sh(2026, 10, 8, 9)
    assert first.decoded("dtend") == sh(2026, 10, 8, 17)
    assert "领导接访日" in str(first["summary"])
    assert len(list(Calendar.from_ical(text["receptionCalendar"]).walk("VEVENT"))) == 18
    with frozen(sh(2026, 10, 2)):
        feed = (
            await gql(FEED, {"from": "2026-10-01", "to": "2026-10-31"}, token=city.token("grid"))
        ).ok()
    kinds = Counter(s["kind"] for s in feed["receptionAnnouncements"])
    assert kinds == {"RECEPTION_HALL": 18, "PUBLIC_RECEPTION": 1}


# --- pairings -----------------------------------------------------------------------------------


async def test_each_village_gets_one_contact_cadre_and_coverage_is_per_county(gql, db):
    city = await roster_city(db)
    assign = {"villagePath": city.path("c1/t1/v1"), "username": user(city, "t1_l1")}
    (await gql(PAIR, {"i": assign}, token=city.token("admin"))).ok()
    assign["username"] = user(city, "c1_leader")  # re-assigning replaces the cadre
    paired = (await gql(PAIR, {"i": assign}, token=city.token("c1_officer"))).ok()["assignPairing"]
    assert paired["cadre"]["username"] == user(city, "c1_leader")
    data = (await gql(PAIRINGS, {"unit": None}, token=city.token("officer"))).ok()
    assert [p["villagePath"] for p in data["pairings"]] == [city.path("c1/t1/v1")]
    assert [u["path"] for u in data["unpairedVillages"]] == [city.path("c2/t1/v2")]
    assert data["pairingCoverage"] == [
        {"countyPath": city.path("c1"), "villages": 1, "paired": 1, "rate": 1.0},
        {"countyPath": city.path("c2"), "villages": 1, "paired": 0, "rate": 0.0},
    ]
    mine = (await gql(PAIRINGS, {"unit": None}, token=city.token("c2_officer"))).ok()
    assert mine["pairings"] == [] and len(mine["pairingCoverage"]) == 1
    wrong = {"villagePath": city.path("c2/t1/v2"), "username": user(city, "c1_leader")}
    resp = await gql(PAIR, {"i": wrong}, token=city.token("admin"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    resp = await gql(
        PAIR, {"i": {**wrong, "villagePath": city.path("c2/t1")}}, token=city.token("admin")
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "villagePath")
    resp = await gql(PAIR, {"i": wrong}, token=city.token("c1_officer"))  # c2 is not its scope
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "villagePath")


# --- scope and tenant isolation ------------------------------------------------------------------


async def test_a_township_sees_its_own_shifts_the_city_all_and_other_cities_none(gql, db, http):
    a = await roster_city(db)
    b = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, a, "", "RECEPTION_HALL", ["l1", "l2"])
        await set_rule(gql, a, "c1/t1", "WINDOW_DUTY")
        await plan(gql, a, "2026-10")
        rng = ("2026-10-01", "2026-10-31")
        everything = await shifts(gql, a, "officer", *rng)
        township = await shifts(gql, a, "t1_officer", *rng)
        sibling = await shifts(gql, a, "c2_officer", *rng)
        other_city = await shifts(gql, b, "officer", *rng, rel=None)
        peek = await gql(
            SHIFTS, {"from": rng[0], "to": rng[1], "unit": a.path()}, token=b.token("admin")
        )
        resp = await gql(
            PLAN, {"i": {"unitPath": a.path(), "month": "2026-11"}}, token=b.token("admin")
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "unitPath")
        resp = await gql(CONFIRM, {"i": {"shiftId": everything[0]["id"]}}, token=b.token("l1"))
        assert resp.code == "NOT_FOUND"
        swap = await gql(
            SWAP,
            {"i": {"shiftId": everything[0]["id"], "toUsername": user(a, "l2")}},
            token=b.token("l1"),
        )
        assert swap.code == "NOT_FOUND"
        ics = await http.get(
            f"/rosters{a.path()}.ics?from=2026-10-01&to=2026-10-31",
            headers={"Authorization": f"Bearer {b.token('officer')}"},
        )
    assert {s["unitPath"] for s in everything} == {a.path(), a.path("c1/t1")}
    assert {s["unitPath"] for s in township} == {a.path("c1/t1")}
    assert sibling == []
    assert other_city == [] and peek.ok()["dutyShifts"] == []
    assert ics.status_code == 404  # another city's unit does not exist for it (issue 22)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"kind": "WINDOW_DUTY"}, "kind"),  # a window is a township's, not the city's
        ({"kind": "RECEPTION_HALL", "leaders": ["nobody"]}, "leaders"),
        ({"kind": "RECEPTION_HALL", "leaders": ["c1_leader"]}, "leaders"),  # a county leader
        ({"kind": "RECEPTION_HALL", "startTime": "17:00", "endTime": "09:00"}, "endTime"),
        ({"kind": "MAIN_LEADER", "leaders": ["l1", "l2"]}, "leaders"),
        ({"kind": "PUBLIC_RECEPTION"}, "kind"),
    ],
)
async def test_bad_roster_rules_name_the_field(gql, world, rule, field):
    city = world.a
    data = {"unitPath": city.path(), **rule}
    if "leaders" in data:
        data["leaders"] = [f"{city.slug}_{s}" for s in data["leaders"]]
    resp = await gql(RULE, {"i": data}, token=city.token("admin"))
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), resp.body


async def test_bad_plans_and_late_announcements_are_refused(gql, db):
    city = await roster_city(db)
    await set_rule(gql, city, "", "RECEPTION_HALL", ["l1", "l2"])
    with frozen(sh(2026, 11, 20)):  # October 2026 is past
        for month in ("2026-10", "2026-13", "october"):
            resp = await gql(
                PLAN, {"i": {"unitPath": city.path(), "month": month}}, token=city.token("admin")
            )
            assert (resp.code, resp.field) == ("BAD_USER_INPUT", "month"), month
    resp = await gql(
        PLAN, {"i": {"unitPath": city.path(), "month": "2099-01"}}, token=city.token("leader")
    )
    assert resp.code == "FORBIDDEN"
    with frozen(sh(2026, 9, 15)):
        base = {"unitPath": city.path(), "leader": user(city, "l3")}
        resp = await gql(PUBLIC, {"i": {**base, "day": "2026-09-17"}}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "day")
        assert "3 days" in resp.errors[0]["message"]
        late = {**base, "day": "2026-10-20", "announceAt": sh(2026, 10, 18).isoformat()}
        resp = await gql(PUBLIC, {"i": late}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "announceAt")
        resp = await gql(
            PUBLIC,
            {"i": {**base, "day": "2026-10-20", "leader": "ghost"}},
            token=city.token("admin"),
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "leader")
        outside = {**base, "day": "2026-10-20", "leader": user(city, "c1_leader")}
        resp = await gql(PUBLIC, {"i": outside}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "leader")
        result = await plan(gql, city, "2026-10")
        busy = result["shifts"][0]
        overlap = {**base, "day": busy["day"], "leader": busy["leader"]["username"]}
        resp = await gql(PUBLIC, {"i": overlap}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("CONFLICT", "leader")
        resp = await gql(
            SHIFTS, {"from": "2026-10-31", "to": "2026-10-01"}, token=city.token("admin")
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "to")
        leave = {"username": user(city, "l1"), "from": "2026-10-05", "to": "2026-10-01"}
        resp = await gql(LEAVE, {"i": leave}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "to")


def test_three_five_days_follow_the_deadline_calendar():
    from backend.cases.calendar import WorkingDayCalendar
    from backend.rosters.days import duty_days
    from backend.rosters.models import ShiftKind

    cal = WorkingDayCalendar()
    assert duty_days(ShiftKind.GRASSROOTS_DAY, "TOWNSHIP", 2026, 10, cal) == [date(2026, 10, 8)]
    assert duty_days(ShiftKind.GRASSROOTS_DAY, "COUNTY", 2026, 10, cal) == [date(2026, 10, 15)]
    assert duty_days(ShiftKind.GRASSROOTS_DAY, "CITY", 2026, 10, cal) == [date(2026, 10, 26)]
    fridays = duty_days(ShiftKind.VILLAGE_OFFICE, "VILLAGE", 2026, 10, cal)
    assert date(2026, 10, 2) not in fridays and date(2026, 10, 9) in fridays
    # a loaded State Council notice moves the day too (same calendar as deadlines)
    notice = WorkingDayCalendar({date(2026, 10, 15): False}, ())
    assert duty_days(ShiftKind.GRASSROOTS_DAY, "COUNTY", 2026, 10, notice) == [date(2026, 10, 16)]
