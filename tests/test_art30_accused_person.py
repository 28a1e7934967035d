"""Art. 30 when an accusation names a person: the units where the accused person holds a
post are accused units too (backend/cases/need_to_know.py), wherever the accused unit
is one — intake, routing, 包案, reading, the first receiver, joint-meeting participants
and the evaluation panel — and an accusation against the city itself is refused at
intake (it goes to the body above the city). Findings 1-3, 7 and 8 of the outside
probe (issue 17)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.authz.tokens import issue_token
from backend.core.db import TenantScope
from backend.rosters.models import DutyShift, ShiftKind, ShiftStatus
from backend.tenants import service
from backend.tenants.models import OrgUnit, User
from tests.clocks import frozen
from tests.helpers import City, build_city, id_number, unique
from tests.test_security_probe import ASSIGN, CREATE_SERVICE

SH = ZoneInfo("Asia/Shanghai")
REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id number version holderUnit { path } firstReceiver { username } } }"""
CASE = "query($id: ID!) { case(id: $id) { id version holderUnit { path } } }"
LIST = "{ cases(first: 100) { edges { node { id } } } }"
STEP = "mutation($i: {T}!) { {m}(input: $i) { id version holderUnit { path } } }"
ADD_EVALUATOR = """mutation($i: AddEvaluatorInput!) { addEvaluator(input: $i) { id } }"""
DRAW = """mutation($i: DrawEvaluationPanelInput!) { drawEvaluationPanel(input: $i) {
  id members { username } } }"""


def doc(name: str) -> str:
    return STEP.replace("{T}", name[0].upper() + name[1:] + "Input").replace("{m}", name)


def accusation(city: City, n: int = 0, **extra) -> dict:
    return {
        "clientKey": unique("a30p-"),
        "channel": "LETTER",
        "type": "ACCUSATION",
        "category": "land",
        "subject": "检举 县领导",
        "content": "举报内容",
        "petitioner": {"name": "赵六", "phone": "13900001111", "idNumber": id_number(900 + n)},
        "locationPath": city.path("c1/t1/v1"),
        **extra,
    }


async def add_user(db, city: City, short: str, grants: list[tuple[Role, str]]) -> str:
    username = f"{city.slug}_{short}"
    async with db.transaction() as session:
        await service.create_user(
            session, SYSTEM, tenant=city.slug, username=username, display_name=short
        )
        for role, rel in grants:
            await service.assign_role(
                session, SYSTEM, username=username, role=role, org_unit_path=city.path(rel)
            )
    city.tokens[short] = issue_token(username)
    return username


async def step(gql, token: str, name: str, case: dict, **fields):
    i = {"caseId": case["id"], "version": case["version"], **fields}
    return await gql(doc(name), {"i": i}, token=token)


async def sees(gql, city: City, who: str, case_id: str) -> bool:
    one = await gql(CASE, {"id": case_id}, token=city.token(who))
    listed = {
        e["node"]["id"] for e in (await gql(LIST, token=city.token(who))).ok()["cases"]["edges"]
    }
    assert (one.code is None) == (case_id in listed), (who, one.body)
    return one.code is None


# --- finding 1: the accused person's own units ---------------------------------------------


async def test_art30_an_accusation_against_a_person_never_reaches_the_units_he_serves(db, gql):
    """Probe 1: accused 县领导 c1_leader (LEADER at c1). His county and everything under it
    (c1_officer, t1_officer, the grid worker) may not read it, even though it is located
    in c1; the city may not route it there nor give it to anyone posted there."""
    city = await build_city(db, unique("ap"), unique("app"))
    mixed = await add_user(db, city, "mixlead", [(Role.LEADER, ""), (Role.GRID_WORKER, "c1/t2")])
    accused = f"{city.slug}_c1_leader"
    case = (
        await gql(
            REGISTER, {"i": accusation(city, accusedUsername=accused)}, token=city.token("officer")
        )
    ).ok()["registerCase"]
    assert case["holderUnit"]["path"] == city.path()
    for who in ("c1_leader", "c1_officer", "t1_officer", "grid", "mixlead"):
        assert not await sees(gql, city, who, case["id"]), who
    for who in ("officer", "leader"):
        assert await sees(gql, city, who, case["id"]), who

    officer = city.token("officer")
    for target in ("c1", "c1/t1", "c1/t1/v1"):
        got = await step(
            gql, officer, "routeCase", case, toUnitPath=city.path(target), mode="ASSIGN"
        )
        assert (got.code, got.field) == ("BAD_USER_INPUT", "toUnitPath"), target
    for leader in (accused, mixed):  # the accused, and a city leader also posted inside c1
        got = await step(gql, city.token("leader"), "assignCaseLeader", case, username=leader)
        assert (got.code, got.field) == ("BAD_USER_INPUT", "username"), leader
    assert (await gql(CASE, {"id": case["id"]}, token=officer)).ok()["case"]["version"] == case[
        "version"
    ]
    routed = (
        await step(gql, officer, "routeCase", case, toUnitPath=city.path("c2"), mode="ASSIGN")
    ).ok()["routeCase"]
    assert routed["holderUnit"]["path"] == city.path("c2")


async def test_art30_a_township_registering_against_its_county_leader_hands_it_above_the_county(
    db, gql
):
    """Intake: the registrar's unit lies inside a unit of the accused person, so the case
    goes to the nearest unit above all of them, and the registrar keeps a receipt."""
    city = await build_city(db, unique("ap"), unique("app"))
    accused = f"{city.slug}_c1_leader"
    got = (
        await gql(
            REGISTER,
            {"i": accusation(city, accusedUsername=accused)},
            token=city.token("t1_officer"),
        )
    ).ok()["registerCase"]
    assert got["holderUnit"] is None and got["number"]
    assert not await sees(gql, city, "t1_officer", got["id"])
    held = (await gql(CASE, {"id": got["id"]}, token=city.token("officer"))).ok()["case"]
    assert held["holderUnit"]["path"] == city.path()


# --- finding 2: an accusation against the city itself ---------------------------------------


async def test_art30_an_accusation_against_the_city_itself_is_refused_for_the_body_above(db, gql):
    """Probe 2: nobody in the city may handle an accusation against the city root unit, or
    against a person posted at it: BAD_USER_INPUT naming the field, nothing registered.
    An evaluator (a seat in the citizen pool at the root, not a post) is no such person."""
    city = await build_city(db, unique("ap"), unique("app"))
    officer = city.token("officer")
    before = await count_cases(db, city)
    root = accusation(city, accusedUnitPath=city.path())
    got = await gql(REGISTER, {"i": root}, token=officer)
    assert (got.code, got.field) == ("BAD_USER_INPUT", "accusedUnitPath")
    assert "provincial" in got.errors[0]["message"]
    for short in ("leader", "officer"):  # posted at the root
        named = accusation(city, accusedUsername=f"{city.slug}_{short}")
        got = await gql(REGISTER, {"i": named}, token=city.token("c1_officer"))
        assert (got.code, got.field) == ("BAD_USER_INPUT", "accusedUsername"), short
    assert await count_cases(db, city) == before
    pool = accusation(city, accusedUsername=f"{city.slug}_evaluator")
    kept = (await gql(REGISTER, {"i": pool}, token=officer)).ok()["registerCase"]
    assert kept["holderUnit"]["path"] == city.path()


async def count_cases(db, city: City) -> int:
    from backend.cases.models import Case

    async with db.transaction() as session:
        tenant = await service.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        return await session.scalar(select(func.count(Case.id)))


# --- finding 3: the first receiver ----------------------------------------------------------


async def test_art30_the_accused_on_duty_is_not_first_receiver_of_the_accusation(db, gql):
    """Probe 3: the accused county leader leads the city's reception shift (checked in);
    a visit accusing him names the next leader on duty, and with none the registrar."""
    city = await build_city(db, unique("ap"), unique("app"))
    accused = f"{city.slug}_c1_leader"
    day = datetime(2026, 10, 12, tzinfo=SH)
    async with db.transaction() as session:
        tenant = await service.tenant_by_slug(session, city.slug)
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        root = await session.scalar(select(OrgUnit).where(OrgUnit.path == city.path()))
        ids = {u.username: u.id for u in await session.scalars(select(User))}
        for slot, (who, status) in enumerate(
            [(accused, ShiftStatus.CHECKED_IN), (f"{city.slug}_leader", ShiftStatus.CONFIRMED)]
        ):
            session.add(
                DutyShift(
                    tenant_id=tenant.id,
                    period="2026-10",
                    day=day.date(),
                    slot=slot,
                    unit_id=root.id,
                    unit_path=root.path,
                    kind=ShiftKind.RECEPTION_HALL,
                    leader_id=ids[who],
                    starts_at=day + timedelta(hours=8),
                    ends_at=day + timedelta(hours=18),
                    status=status,
                    title="接访",
                )
            )
    at = (day + timedelta(hours=10)).isoformat()
    with frozen(day + timedelta(hours=10, minutes=5)):
        claim = {**accusation(city, 1), "type": "CLAIM", "channel": "VISIT", "receivedAt": at}
        plain = (await gql(REGISTER, {"i": claim}, token=city.token("officer"))).ok()
        assert plain["registerCase"]["firstReceiver"]["username"] == accused  # on duty
        visit = accusation(city, 2, channel="VISIT", receivedAt=at, accusedUsername=accused)
        got = (await gql(REGISTER, {"i": visit}, token=city.token("officer"))).ok()
        assert got["registerCase"]["firstReceiver"]["username"] == f"{city.slug}_leader"
        # the only other leader on duty works inside the accused county unit: the registrar
        alone = accusation(
            city, 3, channel="VISIT", receivedAt=at, accusedUnitPath=city.path("c1"),
            accusedUsername=f"{city.slug}_leader",
        )  # fmt: skip
        got = await gql(REGISTER, {"i": alone}, token=city.token("officer"))
        assert (got.code, got.field) == ("BAD_USER_INPUT", "accusedUsername")  # root post
        alone = accusation(city, 4, channel="VISIT", receivedAt=at, accusedUnitPath=city.path("c1"))
        got = (await gql(REGISTER, {"i": alone}, token=city.token("officer"))).ok()
        assert got["registerCase"]["firstReceiver"]["username"] == f"{city.slug}_leader"
        mixed = await add_user(db, city, "c2lead", [(Role.LEADER, "c2")])
        both = accusation(
            city, 5, channel="VISIT", receivedAt=at, accusedUnitPath=city.path("c1"),
            accusedUsername=mixed,
        )  # fmt: skip
        async with db.transaction(TenantScope.of([tenant.id])) as session:
            c2lead = await session.scalar(select(User.id).where(User.username == mixed))
            shift = await session.scalar(select(DutyShift).where(DutyShift.slot == 1))
            shift.leader_id = c2lead  # the other shift is now led by the accused person
        got = (await gql(REGISTER, {"i": both}, token=city.token("officer"))).ok()
        assert got["registerCase"]["firstReceiver"]["username"] == f"{city.slug}_officer"


# --- finding 7: service accounts and the evaluator pool -------------------------------------


async def test_a_service_account_cannot_join_the_evaluator_pool(db, gql):
    """Probe 7: an integration (12345 hotline) is no citizen evaluator: addEvaluator and an
    EVALUATOR role are BAD_USER_INPUT naming the field."""
    city = await build_city(db, unique("ap"), unique("app"))
    admin = city.token("admin")
    username = unique(f"{city.slug}_svc")
    created = await gql(
        CREATE_SERVICE,
        {"i": {"tenant": city.slug, "username": username, "displayName": "12345 热线"}},
        token=admin,
    )
    assert created.ok()["createServiceAccount"]["serviceAccount"] is True
    got = await gql(ADD_EVALUATOR, {"i": {"username": username, "category": "LAWYER"}}, token=admin)
    assert (got.code, got.field) == ("BAD_USER_INPUT", "username")
    assert "service account" in got.errors[0]["message"]
    grant = {"username": username, "role": "EVALUATOR", "orgUnitPath": city.path()}
    got = await gql(ASSIGN, {"i": grant}, token=admin)
    assert (got.code, got.field) == ("BAD_USER_INPUT", "role")
    person = {"username": f"{city.slug}_grid", "category": "VOLUNTEER"}
    (await gql(ADD_EVALUATOR, {"i": person}, token=admin)).ok()


# --- finding 8: joint-meeting participants ---------------------------------------------------


async def test_art30_joint_meeting_participants_named_by_username_get_the_baoan_check(db, gql):
    """Probe 8: recordJointMeeting refuses, like assignCaseLeader, a participant username
    of the accused, of anybody posted inside an accused unit (the named one or the accused
    person's) and of another city; free text and the city's other officials are kept."""
    city = await build_city(db, unique("ap"), unique("app"))
    other = await build_city(db, unique("ap"), unique("app"))
    officer = city.token("officer")
    data = accusation(
        city, accusedUnitPath=city.path("dept"), accusedUsername=f"{city.slug}_c1_leader"
    )
    case = (await gql(REGISTER, {"i": data}, token=officer)).ok()["registerCase"]
    for name in ("c1_leader", "c1_officer", "t1_officer", "handler"):
        got = await step(
            gql, officer, "recordJointMeeting", case, notes="一会四联",
            participants=["住建局张三", f"{city.slug}_{name}"],
        )  # fmt: skip
        assert (got.code, got.field) == ("BAD_USER_INPUT", "participants"), name
    got = await step(
        gql, officer, "recordJointMeeting", case, notes="一会四联",
        participants=[f" {other.slug}_officer".upper()],
    )  # fmt: skip
    assert (got.code, got.field) == ("BAD_USER_INPUT", "participants")
    ok = await step(
        gql, officer, "recordJointMeeting", case, notes="一会四联",
        participants=["住建局张三", "律师", f"{city.slug}_c2_officer", f"{city.slug}_leader"],
    )  # fmt: skip
    assert ok.ok()["recordJointMeeting"]["version"] == case["version"] + 1


# --- the panel draw ------------------------------------------------------------------------


async def test_art30_an_evaluator_posted_in_the_accused_persons_unit_is_never_drawn(db, gql):
    """Panel draw: evaluators who also work in the accused leader's county (in township
    t2, away from the case's location and holder) are conflicts; with them alone the
    pool is too small, then the panel is drawn from the others."""
    city = await build_city(db, unique("ap"), unique("app"))
    admin, officer = city.token("admin"), city.token("officer")
    inside = []
    for i, category in enumerate(["LAWYER", "VOLUNTEER", "EXPERT"]):
        name = await add_user(
            db, city, f"evin{i}", [(Role.EVALUATOR, ""), (Role.DEPARTMENT_HANDLER, "c1/t2")]
        )
        inside.append(name)
        (
            await gql(ADD_EVALUATOR, {"i": {"username": name, "category": category}}, token=admin)
        ).ok()
    accused = f"{city.slug}_c1_leader"
    case = (
        await gql(REGISTER, {"i": accusation(city, accusedUsername=accused)}, token=officer)
    ).ok()["registerCase"]
    case = (await step(gql, officer, "acceptCase", case)).ok()["acceptCase"]
    case = (await step(gql, officer, "replyCase", case, opinion="答复")).ok()["replyCase"]
    rated = await step(gql, officer, "rateSatisfaction", case, rating="DISSATISFIED")
    case = rated.ok()["rateSatisfaction"]
    got = await gql(DRAW, {"i": {"caseId": case["id"], "size": 3, "seed": 7}}, token=officer)
    assert got.code == "BAD_USER_INPUT", got.body  # only the three inside: nobody eligible
    outside = []
    for i, category in enumerate(["LAWYER", "VOLUNTEER", "EXPERT"]):
        name = await add_user(db, city, f"evout{i}", [(Role.EVALUATOR, "")])
        outside.append(name)
        (
            await gql(ADD_EVALUATOR, {"i": {"username": name, "category": category}}, token=admin)
        ).ok()
    got = await gql(DRAW, {"i": {"caseId": case["id"], "size": 3, "seed": 7}}, token=officer)
    members = {m["username"] for m in got.ok()["drawEvaluationPanel"]["members"]}
    assert members and members <= set(outside)
