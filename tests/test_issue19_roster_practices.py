"""Issue 19, the roster practices of seeds 000, 001 and 003: window duty at township and
department level, 两代表一委员 party members paired with villages, roster kinds with their
own people (appointments, joint receptions, the lawyer on duty, counselling) and the
scheduled dispute sweeps (矛盾纠纷排查) with their findings."""

from __future__ import annotations

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.tenants import service as tenants
from tests.case_helpers import register, register_input
from tests.clocks import frozen
from tests.helpers import City
from tests.test_rosters import plan, roster_city, set_rule, sh, shifts, user


async def add_leaders(db, city: City, rel: str, *shorts: str) -> None:
    """Leaders held at ``rel`` (e.g. the department's leadership members)."""
    async with db.transaction() as session:
        for short in shorts:
            username = user(city, short)
            await tenants.create_user(
                session, SYSTEM, tenant=city.slug, username=username, display_name=short
            )
            await tenants.assign_role(
                session, SYSTEM, username=username, role=Role.LEADER, org_unit_path=city.path(rel)
            )
            city.tokens[short] = issue_token(username)


# --- 1. window duty at township AND department level (seed 003) ------------------------------


async def test_seed003_department_window_duty_every_working_day(gql, db):
    """Seed 003 (Yiwu): 全市各镇街、各部门 … 每个工作日都安排一名班子成员在窗口接待."""
    city = await roster_city(db)
    await add_leaders(db, city, "dept", "d_l1", "d_l2")
    with frozen(sh(2026, 9, 15)):
        rule = await set_rule(gql, city, "dept", "WINDOW_DUTY")
        await set_rule(gql, city, "c1/t1", "WINDOW_DUTY")
        assert (rule["kind"], rule["unitPath"]) == ("WINDOW_DUTY", city.path("dept"))
        planned = await plan(gql, city, "2026-10")
    dept = [s for s in planned["shifts"] if s["unitPath"] == city.path("dept")]
    town = [s for s in planned["shifts"] if s["unitPath"] == city.path("c1/t1")]
    # October 2026: National Day Oct 1-7, make-up Saturday Oct 10 → 18 working days
    assert len(dept) == len(town) == 18
    assert "2026-10-10" in {s["day"] for s in dept}
    assert all(s["kind"] == "WINDOW_DUTY" and s["title"] == "dept窗口值班" for s in dept)
    names = [s["leader"]["username"] for s in sorted(dept, key=lambda s: s["day"])]
    assert names[:4] == [user(city, "d_l1"), user(city, "d_l2")] * 2  # fair rotation
    assert planned["unfilled"] == []
    # the department's handler reads its own window roster; a county officer does not
    with frozen(sh(2026, 9, 15)):
        own = await shifts(gql, city, "handler", "2026-10-01", "2026-10-31")
        county = await shifts(gql, city, "c1_officer", "2026-10-01", "2026-10-31")
    assert {s["unitPath"] for s in own} == {city.path("dept")}
    assert city.path("dept") not in {s["unitPath"] for s in county}


async def test_seed003_window_duty_stays_refused_at_city_county_and_village(gql, db):
    city = await roster_city(db)
    for rel in ("", "c1", "c1/t1/v1"):
        resp = await gql(
            "mutation($i: SetRosterRuleInput!) { setRosterRule(input: $i) { id } }",
            {"i": {"unitPath": city.path(rel), "kind": "WINDOW_DUTY"}},
            token=city.token("admin"),
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "kind")


# --- 2. village pairings with the party members among the 两代表一委员 (seed 000) -----------

ADD_PERSON = """mutation($i: AddRosterPersonInput!) { addRosterPerson(input: $i) {
  id name kind partyMember unitPath phone active } }"""
PAIR_PERSON = """mutation($i: AssignPersonPairingInput!) { assignPersonPairing(input: $i) {
  villagePath person { name kind } } }"""
PEOPLE = """query($unit: String) { rosterPeople(unitPath: $unit) { id name kind phone }
  personPairings(unitPath: $unit) { villagePath person { name } }
  unpairedVillages(unitPath: $unit) { path }
  pairingCoverage(unitPath: $unit) { countyPath villages paired } }"""


async def add_person(gql, city: City, rel: str, name: str, kind: str, **extra) -> dict:
    data = {"unitPath": city.path(rel), "name": name, "kind": kind, **extra}
    return (await gql(ADD_PERSON, {"i": data}, token=city.token("admin"))).ok()["addRosterPerson"]


async def test_seed000_party_members_among_deputies_are_paired_with_villages(gql, db, world):
    """Seed 000: 市、县、乡三级党员干部及"两代表一委员"中的党员同志，一对一联系行政村."""
    city = await roster_city(db)
    npc_party = await add_person(
        gql, city, "c1", "张代表", "NPC_DEPUTY", partyMember=True, phone="13912345678"
    )
    npc = await add_person(gql, city, "c1", "李代表", "NPC_DEPUTY")
    party = await add_person(gql, city, "c1/t1", "王党员", "PARTY_MEMBER")
    elsewhere = await add_person(gql, city, "c2", "赵委员", "CPPCC_MEMBER", partyMember=True)
    assert (npc_party["partyMember"], npc["partyMember"], party["partyMember"]) == (
        True,
        False,
        True,  # 党员 are party members whatever the input says
    )
    assert npc_party["phone"] == "13912345678"  # the roster office sees it

    async def pair(village: str, person: dict):
        data = {"villagePath": city.path(village), "personId": person["id"]}
        return await gql(PAIR_PERSON, {"i": data}, token=city.token("admin"))

    # not a party member, registered in another county, not a village: refused
    assert (await pair("c1/t1/v1", npc)).field == "personId"
    assert (await pair("c1/t1/v1", elsewhere)).field == "personId"
    assert (await pair("c1/t1", npc_party)).field == "villagePath"
    before = (await gql(PEOPLE, {"unit": city.path("c1")}, token=city.token("admin"))).ok()
    assert before["unpairedVillages"] == [{"path": city.path("c1/t1/v1")}]
    paired = (await pair("c1/t1/v1", npc_party)).ok()["assignPersonPairing"]
    assert paired == {
        "villagePath": city.path("c1/t1/v1"),
        "person": {"name": "张代表", "kind": "NPC_DEPUTY"},
    }
    (await pair("c1/t1/v1", party)).ok()  # one contact per village: replaced
    seen = (await gql(PEOPLE, {"unit": city.path("c1")}, token=city.token("c1_leader"))).ok()
    assert seen["personPairings"] == [
        {"villagePath": city.path("c1/t1/v1"), "person": {"name": "王党员"}}
    ]
    # the village counts as covered (seed 000: 结对联系全覆盖) though no cadre is paired
    assert seen["unpairedVillages"] == []
    assert seen["pairingCoverage"] == [{"countyPath": city.path("c1"), "villages": 1, "paired": 1}]
    # a reader who does not manage the roster sees the phone masked (PII)
    phones = {p["name"]: p["phone"] for p in seen["rosterPeople"]}
    assert phones["张代表"] == "139****5678"
    # scope: the county c2 officer does not see c1's people; another city sees none
    c2 = (await gql(PEOPLE, {"unit": None}, token=city.token("c2_officer"))).ok()
    assert {p["name"] for p in c2["rosterPeople"]} == {"赵委员"}
    other = (await gql(PEOPLE, {"unit": None}, token=world.b.token("admin"))).ok()
    assert other["rosterPeople"] == [] and other["personPairings"] == []
    stolen = await gql(
        PAIR_PERSON,
        {"i": {"villagePath": world.b.path("c1/t1/v1"), "personId": party["id"]}},
        token=world.b.token("admin"),
    )
    assert (stolen.code, stolen.field) == ("BAD_USER_INPUT", "personId")


async def test_seed000_people_input_is_checked(gql, db):
    city = await roster_city(db)
    for data, field in (
        ({"unitPath": city.path("c1"), "name": "", "kind": "LAWYER"}, "name"),
        ({"unitPath": city.path("c1"), "name": "律师", "kind": "LAWYER", "phone": "x"}, "phone"),
        ({"unitPath": "/nowhere", "name": "律师", "kind": "LAWYER"}, "unitPath"),
    ):
        resp = await gql(ADD_PERSON, {"i": data}, token=city.token("admin"))
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), resp.body
    resp = await gql(
        ADD_PERSON,
        {"i": {"unitPath": city.path("c1"), "name": "律师", "kind": "LAWYER"}},
        token=city.token("c1_leader"),
    )
    assert resp.code == "FORBIDDEN"


# --- 3. roster kinds with their own people (seeds 001, 003) ----------------------------------

PEOPLE_SHIFT = "id kind day unitPath title leader { username } person { name kind }"
PEOPLE_PLAN = f"""mutation($i: PlanReceptionDaysInput!) {{
  planReceptionDays(input: $i) {{ unfilled shifts {{ {PEOPLE_SHIFT} }} }} }}"""
PEOPLE_RULE = """mutation($i: SetRosterRuleInput!) {
  setRosterRule(input: $i) { id kind leaders { username } people { name kind } } }"""
FEED = f"""query($from: Date!, $to: Date!) {{
  receptionAnnouncements(from: $from, to: $to) {{ {PEOPLE_SHIFT} }}
  receptionCalendar(unitPath: "{{root}}", from: $from, to: $to) }}"""
APPOINT = f"""mutation($i: ScheduleAppointmentReceptionInput!) {{
  scheduleAppointmentReception(input: $i) {{ {PEOPLE_SHIFT} status appointmentCase {{ id }} }} }}"""
APPOINTMENTS = f"""query($from: Date!, $to: Date!) {{
  dutyShifts(from: $from, to: $to) {{ {PEOPLE_SHIFT} appointmentCase {{ id }} }} }}"""


async def people_rule(gql, city: City, rel: str, kind: str, people: list[dict], **extra):
    data = {"unitPath": city.path(rel), "kind": kind, "people": [p["id"] for p in people]}
    return await gql(PEOPLE_RULE, {"i": {**data, **extra}}, token=city.token("admin"))


async def test_seed001_lawyer_and_counsellor_on_duty_every_working_day(gql, db):
    """Seed 001 (Hami): 相关部门人员进驻接访大厅，每日1名律师坐班，心理咨询师提供心理干预服务."""
    city = await roster_city(db)
    law1 = await add_person(gql, city, "", "律师甲", "LAWYER", organisation="甲律师事务所")
    law2 = await add_person(gql, city, "", "律师乙", "LAWYER")
    counsellor = await add_person(gql, city, "", "咨询师丙", "COUNSELLOR")
    with frozen(sh(2026, 9, 15)):
        # the right people for the kind, people instead of leaders, only at a hall
        assert (await people_rule(gql, city, "", "LAWYER_DUTY", [counsellor])).field == "people"
        assert (await people_rule(gql, city, "", "LAWYER_DUTY", [])).field == "people"
        assert (await people_rule(gql, city, "c1/t1", "LAWYER_DUTY", [law1])).field == "kind"
        refused = await gql(
            PEOPLE_RULE,
            {"i": {"unitPath": city.path(), "kind": "LAWYER_DUTY", "leaders": [user(city, "l1")]}},
            token=city.token("admin"),
        )
        assert (refused.code, refused.field) == ("BAD_USER_INPUT", "leaders")
        rule = (await people_rule(gql, city, "", "LAWYER_DUTY", [law1, law2])).ok()
        assert rule["setRosterRule"]["people"] == [
            {"name": "律师甲", "kind": "LAWYER"},
            {"name": "律师乙", "kind": "LAWYER"},
        ]
        (await people_rule(gql, city, "", "COUNSELLING", [counsellor])).ok()
        # a counsellor and a leader's hall duty at the same hours do not compete
        await set_rule(gql, city, "", "RECEPTION_HALL", ["l1", "l2"])
        planned = await gql(
            PEOPLE_PLAN,
            {"i": {"unitPath": city.path(), "month": "2026-10"}},
            token=city.token("admin"),
        )
        planned = planned.ok()["planReceptionDays"]
        feed = await gql(
            FEED.replace("{root}", city.path()),
            {"from": "2026-10-01", "to": "2026-10-31"},
            token=city.token("c1_officer"),
        )
    lawyers = sorted(
        (s for s in planned["shifts"] if s["kind"] == "LAWYER_DUTY"), key=lambda s: s["day"]
    )
    counselling = [s for s in planned["shifts"] if s["kind"] == "COUNSELLING"]
    assert len(lawyers) == len(counselling) == 18 and planned["unfilled"] == []
    assert [s["person"]["name"] for s in lawyers[:4]] == ["律师甲", "律师乙"] * 2
    assert all(s["leader"] is None for s in lawyers + counselling)
    assert {s["person"]["name"] for s in counselling} == {"咨询师丙"}
    assert lawyers[0]["title"].endswith("律师坐班")
    published = feed.ok()
    kinds = {s["kind"] for s in published["receptionAnnouncements"]}
    assert {"LAWYER_DUTY", "COUNSELLING", "RECEPTION_HALL"} <= kinds
    ics = published["receptionCalendar"].replace("\r\n ", "")
    assert "律师坐班：律师甲" in ics and "心理咨询：咨询师丙" in ics


async def test_seed003_joint_reception_seats_every_deputy_monthly(gql, db):
    """Seed 003 (Yiwu): 积极推行"两代表一委员"联合接访机制，定期接待群众来访."""
    city = await roster_city(db)
    npc = await add_person(gql, city, "c1", "人大代表甲", "NPC_DEPUTY")
    cppcc = await add_person(gql, city, "c1", "政协委员乙", "CPPCC_MEMBER")
    member = await add_person(gql, city, "c1", "党员丙", "PARTY_MEMBER")
    with frozen(sh(2026, 9, 15)):
        # a party member who is no deputy or committee member does not sit in it
        refused = await people_rule(gql, city, "c1", "JOINT_RECEPTION", [npc, member])
        assert (refused.code, refused.field) == ("BAD_USER_INPUT", "people")
        (await people_rule(gql, city, "c1", "JOINT_RECEPTION", [npc, cppcc], dayOfMonth=10)).ok()
        planned = (
            await gql(
                PEOPLE_PLAN,
                {"i": {"unitPath": city.path("c1"), "month": "2026-10"}},
                token=city.token("admin"),
            )
        ).ok()["planReceptionDays"]
    joint = [s for s in planned["shifts"] if s["kind"] == "JOINT_RECEPTION"]
    # Oct 10 2026 is the make-up working Saturday after National Day: it stays
    assert sorted((s["day"], s["person"]["name"]) for s in joint) == [
        ("2026-10-10", "人大代表甲"),
        ("2026-10-10", "政协委员乙"),
    ]


async def test_seed003_appointment_reception_respects_art30(gql, db):
    """Seed 003: 针对具体信访问题实行预约接访 — a leader receives one case's petitioner. Art. 30:
    never a leader inside the accused unit, and nobody barred from the case sees it."""
    city = await roster_city(db)
    with frozen(sh(2026, 11, 2)):
        accusation = await register(
            gql,
            city.token("officer"),
            city,
            type="ACCUSATION",
            locationPath=city.path("c1/t1/v1"),
            accusedUnitPath=city.path("c1/t1"),
        )
        claim = await register(gql, city.token("officer"), city, locationPath=city.path("c1/t1"))

        async def book(case: dict, leader: str, who: str = "officer", **extra):
            data = {
                "caseId": case["id"],
                "unitPath": city.path("c1/t1"),
                "leader": user(city, leader),
                "day": "2026-11-10",
                "startTime": "10:00",
                "endTime": "11:00",
                **extra,
            }
            return await gql(APPOINT, {"i": data}, token=city.token(who))

        barred = await book(accusation, "t1_l1")  # a leader of the accused township
        assert (barred.code, barred.field) == ("BAD_USER_INPUT", "leader")
        assert (await book(claim, "l1", day="2026-11-01")).field == "day"
        assert (await book(claim, "c2_leader")).field == "leader"  # not over the township
        hidden = await book(accusation, "c1_leader", who="t1_officer")  # cannot read it
        assert hidden.code == "NOT_FOUND"
        booked = (await book(accusation, "c1_leader")).ok()["scheduleAppointmentReception"]
        assert booked["kind"] == "APPOINTMENT" and booked["status"] == "CONFIRMED"
        assert booked["appointmentCase"] == {"id": accusation["id"]}
        assert "土地" not in booked["title"]  # the title carries nothing of the case
        (await book(claim, "t1_l1", startTime="14:00", endTime="15:00")).ok()
        # the accused township's officer books the same leader over the hidden appointment:
        # refused, without naming the shift it may not see (Art. 30, outside probe)
        clash = await book(claim, "c1_leader", who="t1_officer", startTime="10:30")
        assert clash.code == "CONFLICT" and booked["id"] not in str(clash.errors)
        span = {"from": "2026-11-10", "to": "2026-11-10"}
        as_officer = (await gql(APPOINTMENTS, span, token=city.token("officer"))).ok()
        as_township = (await gql(APPOINTMENTS, span, token=city.token("t1_officer"))).ok()
        as_leader = (await gql(APPOINTMENTS, span, token=city.token("c1_leader"))).ok()
        feed = (
            await gql(FEED.replace("{root}", city.path()), span, token=city.token("officer"))
        ).ok()
        swap = await gql(
            "mutation($i: SwapShiftInput!) { swapShift(input: $i) { id } }",
            {"i": {"shiftId": booked["id"], "toUsername": user(city, "c1_l2")}},
            token=city.token("officer"),
        )
    appointments = [s for s in as_officer["dutyShifts"] if s["kind"] == "APPOINTMENT"]
    assert {s["leader"]["username"] for s in appointments} == {
        user(city, "c1_leader"),
        user(city, "t1_l1"),
    }
    # the accused township's officer sees the claim's appointment, not the accusation's
    township = [s for s in as_township["dutyShifts"] if s["kind"] == "APPOINTMENT"]
    assert [s["leader"]["username"] for s in township] == [user(city, "t1_l1")]
    assert booked["id"] in {s["id"] for s in as_leader["dutyShifts"]}  # its own shift
    # never published: an appointment is a private meeting
    assert all(s["kind"] != "APPOINTMENT" for s in feed["receptionAnnouncements"])
    assert (swap.code, swap.field) == ("BAD_USER_INPUT", "shiftId")


# --- 4. scheduled dispute sweeps (矛盾纠纷排查, seeds 001 and 003) -----------------------------

SWEEP_SHIFT = "id kind day status unitPath leader { username }"
SWEEP_PLAN = f"""mutation($i: PlanReceptionDaysInput!) {{
  planReceptionDays(input: $i) {{ unfilled shifts {{ {SWEEP_SHIFT} }} }} }}"""
CHECK_IN = "mutation($i: CheckInShiftInput!) { checkInShift(input: $i) { id status } }"
FINDING = "id day unitPath place parties category riskLevel recordedBy { username } case { id }"
RECORD = f"""mutation($i: RecordSweepFindingInput!) {{
  recordSweepFinding(input: $i) {{ {FINDING} }} }}"""
FINDINGS = f"""query($unit: String, $case: ID) {{
  sweepFindings(unitPath: $unit, caseId: $case) {{ {FINDING} }} }}"""
TO_CASE = """mutation($i: RegisterCaseFromFindingInput!) {
  registerCaseFromFinding(input: $i) { id number subject } }"""


async def test_seed003_sweeps_village_weekly_work_area_every_ten_days_township_monthly(gql, db):
    """Seed 003 (Yiwu): 村级每周、工作片每旬、镇街每月一次集中排查调处矛盾纠纷 — on the deadline
    calendar (October 2026: National Day Oct 1-7, make-up Saturday Oct 10)."""
    city = await roster_city(db)
    await add_leaders(db, city, "c1/t1/v1", "v_l1", "v_l2")
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "c1/t1/v1", "VILLAGE_SWEEP")
        await set_rule(gql, city, "c1/t1", "WORK_AREA_SWEEP", ["t1_l1", "t1_l2"])
        await set_rule(gql, city, "c1/t1", "TOWNSHIP_SWEEP", ["t1_l3"])
        bad = await gql(
            "mutation($i: SetRosterRuleInput!) { setRosterRule(input: $i) { id } }",
            {"i": {"unitPath": city.path("c1/t1/v1"), "kind": "TOWNSHIP_SWEEP"}},
            token=city.token("admin"),
        )
        planned = (
            await gql(
                SWEEP_PLAN,
                {"i": {"unitPath": city.path("c1"), "month": "2026-10"}},
                token=city.token("admin"),
            )
        ).ok()["planReceptionDays"]
    assert (bad.code, bad.field) == ("BAD_USER_INPUT", "kind")  # a township's sweep
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for s in planned["shifts"]:
        by_kind.setdefault(s["kind"], []).append((s["day"], s["leader"]["username"]))
    # weekly: the first working day of each week; the week of Sep 28 began in September
    assert [d for d, _ in sorted(by_kind["VILLAGE_SWEEP"])] == [
        "2026-10-08",
        "2026-10-12",
        "2026-10-19",
        "2026-10-26",
    ]
    assert {u for _, u in by_kind["VILLAGE_SWEEP"]} == {user(city, "v_l1"), user(city, "v_l2")}
    # every 旬: the 1st (→ Oct 8), the 11th (a Sunday → Oct 12), the 21st; both work areas
    assert sorted(by_kind["WORK_AREA_SWEEP"]) == sorted(
        (d, user(city, u))
        for d in ("2026-10-08", "2026-10-12", "2026-10-21")
        for u in ("t1_l1", "t1_l2")
    )
    assert by_kind["TOWNSHIP_SWEEP"] == [("2026-10-08", user(city, "t1_l3"))]
    assert planned["unfilled"] == []


async def test_seed001_sweep_findings_with_check_in_become_cases(gql, db, world):
    """Seeds 001, 003: a sweep is checked in, records its findings, and a finding becomes a
    case through the ordinary intake. Findings are read by scope; Art. 30 hides a finding
    that became an accusation from the accused unit."""
    city = await roster_city(db)
    with frozen(sh(2026, 9, 15)):
        await set_rule(gql, city, "c1/t1", "WORK_AREA_SWEEP", ["t1_l1", "t1_l2"])
        planned = (
            await gql(
                SWEEP_PLAN,
                {"i": {"unitPath": city.path("c1/t1"), "month": "2026-10"}},
                token=city.token("admin"),
            )
        ).ok()["planReceptionDays"]
    mine = {s["leader"]["username"]: s["id"] for s in planned["shifts"] if s["day"] == "2026-10-08"}

    def finding(shift_id: str, place: str, risk: str = "MEDIUM") -> dict:
        return {
            "shiftId": shift_id,
            "place": place,
            "parties": "村民甲与村民乙",
            "category": "land",
            "description": "宅基地边界纠纷",
            "riskLevel": risk,
        }

    with frozen(sh(2026, 10, 8, 9, 30)):
        early = await gql(
            RECORD, {"i": finding(mine[user(city, "t1_l2")], "李庄")}, token=city.token("t1_l2")
        )
        assert early.code == "INVALID_TRANSITION"  # not checked in: no trace of the sweep
        own = mine[user(city, "t1_l1")]
        other = await gql(RECORD, {"i": finding(own, "李庄")}, token=city.token("t1_l2"))
        assert other.code == "FORBIDDEN"  # not its sweep
        (await gql(CHECK_IN, {"i": {"shiftId": own}}, token=city.token("t1_l1"))).ok()
        first = (
            await gql(RECORD, {"i": finding(own, "李庄东头")}, token=city.token("t1_l1"))
        ).ok()["recordSweepFinding"]
        second = (
            await gql(RECORD, {"i": finding(own, "镇政府", "HIGH")}, token=city.token("t1_l1"))
        ).ok()["recordSweepFinding"]
        bad = await gql(
            RECORD, {"i": {**finding(own, ""), "place": " "}}, token=city.token("t1_l1")
        )
        assert (bad.code, bad.field) == ("BAD_USER_INPUT", "place")
        assert first["recordedBy"] == {"username": user(city, "t1_l1")} and first["case"] is None
        # the township registers the first as a claim: the finding names the case
        claim = register_input(city, locationPath=city.path("c1/t1/v1"))
        made = await gql(
            TO_CASE,
            {"i": {"findingId": first["id"], "case": claim}},
            token=city.token("t1_officer"),
        )
        case = made.ok()["registerCaseFromFinding"]
        again = await gql(
            TO_CASE,
            {"i": {"findingId": first["id"], "case": register_input(city)}},
            token=city.token("t1_officer"),
        )
        # the second, about the township's own staff, goes up as an accusation against it
        accusation = register_input(
            city,
            type="ACCUSATION",
            locationPath=city.path("c1/t1/v1"),
            accusedUnitPath=city.path("c1/t1"),
        )
        (
            await gql(
                TO_CASE,
                {"i": {"findingId": second["id"], "case": accusation}},
                token=city.token("officer"),
            )
        ).ok()
        as_county = (await gql(FINDINGS, {"unit": None}, token=city.token("c1_officer"))).ok()
        as_township = (await gql(FINDINGS, {"unit": None}, token=city.token("t1_officer"))).ok()
        as_recorder = (await gql(FINDINGS, {"unit": None}, token=city.token("t1_l1"))).ok()
        by_case = (
            await gql(FINDINGS, {"unit": None, "case": case["id"]}, token=city.token("officer"))
        ).ok()
        sibling = (await gql(FINDINGS, {"unit": None}, token=city.token("c2_officer"))).ok()
        foreign = (await gql(FINDINGS, {"unit": None}, token=world.b.token("officer"))).ok()
        steal = await gql(
            TO_CASE,
            {"i": {"findingId": first["id"], "case": register_input(world.b)}},
            token=world.b.token("officer"),
        )
    assert (again.code, again.field) == ("CONFLICT", "findingId")
    assert {f["place"] for f in as_county["sweepFindings"]} == {"李庄东头", "镇政府"}
    assert [f["case"] for f in by_case["sweepFindings"]] == [{"id": case["id"]}]
    # Art. 30: the accused township (its officer, and the leader who recorded it) no
    # longer sees the finding that became the accusation against it
    assert [f["place"] for f in as_township["sweepFindings"]] == ["李庄东头"]
    assert [f["place"] for f in as_recorder["sweepFindings"]] == ["李庄东头"]
    assert sibling["sweepFindings"] == [] and foreign["sweepFindings"] == []
    assert (steal.code, steal.field) == ("NOT_FOUND", "findingId")
