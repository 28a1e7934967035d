"""案件办理质量评价 from the outside, with real tokens: the pool (admin API, masked contacts,
CSV all-or-nothing), eligibility, reproducible and conflict-free draws (and `verify-draw`),
what an evaluator may see, scores and the majority verdict, the follow-up step on the
warning board, settlement and the statistics hooks, and the tenant wall around all of it."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from backend.authz.principal import SYSTEM
from backend.authz.tokens import issue_token
from backend.cli import app as cli_app
from backend.core.db import TenantScope
from backend.evaluations.models import EvaluationPanel, Evaluator
from backend.evaluations.panels import verify_draw
from backend.notifications.models import Notification
from backend.tenants import service
from backend.tenants.models import User
from tests.clocks import sh, ticking
from tests.helpers import City, build_city, create_supervisors, id_number, unique

REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id number status version } }"""
CASE = """query($id: ID!) { case(id: $id) { id status replyOpinion
  petitioner { name phone idNumber masked } events { kind } deadlines { step status dueAt rule }
  warningColor dueAt version } }"""
CASES = "{ cases(first: 200) { totalCount edges { node { id } } } }"
POOL = """{ evaluatorPool { totalCount activeCount
  evaluators { id username category active status excludedUnitPaths phone email panelsServed
    relatedPersons { name idNumber } } } }"""
ADD = """mutation($i: AddEvaluatorInput!) { addEvaluator(input: $i) {
  id username category active excludedUnitPaths phone } }"""
DRAW = """mutation($i: DrawEvaluationPanelInput!) { drawEvaluationPanel(input: $i) {
  id seed size status poolHash eligibleCount members { username category } } }"""
PANEL = """query($id: ID!) { evaluationPanel(id: $id) {
  id status seed members { username submitted }
  evaluations { username facts verdict comment }
  myEvaluation { verdict }
  result { verdict tieBroken followUpDays followUpDueDate duty
    means { facts procedure lawAndPolicy responsibility } votes { verdict count } }
  case { id petitioner { phone idNumber masked } } } }"""
SUBMIT = """mutation($i: SubmitEvaluationInput!) { submitEvaluation(input: $i) {
  id verdict facts panel { id status } } }"""
SETTLE = """mutation($i: SettleEvaluationInput!) { settleEvaluation(input: $i) {
  id status settledAt } }"""
CANCEL = """mutation($i: CancelEvaluationPanelInput!) { cancelEvaluationPanel(input: $i) {
  id status } }"""
IMPORT = """mutation($i: ImportEvaluatorsInput!) { importEvaluators(input: $i) {
  imported createdUsers } }"""
ELIGIBLE = """query { evaluationEligibleCases(first: 200) { totalCount edges { node { id } } } }"""
STATS = """query($u: String) { evaluationStatistics(unitPath: $u) {
  evaluated settled pending verdictMix { verdict count } } }"""
POLICY = """mutation($i: UpdateEvaluationPolicyInput!) { updateEvaluationPolicy(input: $i) {
  defaultSize minNonOfficial minimums { category count } } }"""
BOARD = """{ warningBoard { red yellow blue
  r: cases(color: RED, first: 200) { edges { node { id } } }
  y: cases(color: YELLOW, first: 200) { edges { node { id } } }
  b: cases(color: BLUE, first: 200) { edges { node { id } } } } }"""
STEP = """mutation($i: {T}!) { {m}(input: $i) { id version status } }"""

_n = iter(range(100, 10_000))


def step_doc(name: str) -> str:
    return STEP.replace("{T}", name[0].upper() + name[1:] + "Input").replace("{m}", name)


async def register(gql, token: str, city: City, rel: str = "c1/t1", **extra: Any) -> dict:
    n = next(_n)
    data = {
        "clientKey": unique("ev-"),
        "channel": "VISIT",
        "type": "CLAIM",
        "category": "land",
        "subject": f"评价 {n}",
        "content": "事项详情",
        "petitioner": {"name": "李四", "phone": f"139{n:04d}5678", "idNumber": id_number(n)},
        "locationPath": city.path(rel),
        **extra,
    }
    return (await gql(REGISTER, {"i": data}, token=token)).ok()["registerCase"]


async def step(gql, token: str, name: str, case: dict, **fields: Any) -> dict:
    i = {"caseId": case["id"], "version": case["version"], **fields}
    return (await gql(step_doc(name), {"i": i}, token=token)).ok()[name]


async def dissatisfied_case(gql, city: City, rel: str = "c1/t1") -> dict:
    """Registered, accepted, replied and rated DISSATISFIED by the city petition office."""
    officer = city.token("officer")
    case = await register(gql, officer, city, rel)
    case = await step(gql, officer, "acceptCase", case)
    case = await step(gql, officer, "replyCase", case, opinion="答复意见：依政策处理。")
    return await step(gql, officer, "rateSatisfaction", case, rating="DISSATISFIED")


async def skip_level_case(gql, city: City, rel: str = "c1/t1", **extra: Any) -> dict:
    """The third petition to the province on one matter (seed 000: 赴京到省重复信访3次以上)."""
    n = next(_n)
    same = {
        "subject": f"评价 {n}",
        "petitioner": {"name": "李四", "phone": f"139{n:04d}5678", "idNumber": id_number(n)},
        "skipLevel": "PROVINCE",
        **extra,
    }
    for _ in range(2):
        await register(gql, city.token("officer"), city, rel, **same)
    return await register(gql, city.token("officer"), city, rel, **same)


@dataclass
class Town:
    city: City
    tenant_id: uuid.UUID
    evaluators: dict[str, str] = field(default_factory=dict)  # short name -> token


async def add_users(db, city: City, names: list[str]) -> dict[str, str]:
    """Plain city users (no role yet); tokens by short name."""
    tokens = {}
    async with db.transaction() as session:
        for name in names:
            await service.create_user(
                session,
                SYSTEM,
                tenant=city.slug,
                username=f"{city.slug}_{name}",
                display_name=name,
                phone="13900001111",
            )
            tokens[name] = issue_token(f"{city.slug}_{name}")
    return tokens


async def enrol(gql, city: City, name: str, category: str, **extra: Any) -> dict:
    data = {"username": f"{city.slug}_{name}", "category": category, **extra}
    return (await gql(ADD, {"i": data}, token=city.token("admin"))).ok()["addEvaluator"]


async def make_town(db, gql, spec: list[tuple[str, str]], **kw: Any) -> Town:
    city = await build_city(db, unique("ev"), unique("evp"))
    async with db.transaction() as session:
        tid = (await service.tenant_by_slug(session, city.slug)).id
    town = Town(city, tid)
    town.evaluators = await add_users(db, city, [n for n, _ in spec])
    for name, category in spec:
        await enrol(gql, city, name, category, **kw.get(name, {}))
    return town


SPEC = [
    ("law1", "LAWYER"),
    ("law2", "LAWYER"),
    ("off1", "OFFICIAL"),
    ("off2", "OFFICIAL"),
    ("vol1", "VOLUNTEER"),
    ("psy1", "PSYCHOLOGIST"),
    ("eld1", "ELDER"),
    ("exp1", "EXPERT"),
]


@pytest.fixture(scope="module")
async def town(db, gql) -> Town:
    return await make_town(db, gql, SPEC)


def usernames(panel: dict) -> list[str]:
    return [m["username"] for m in panel["members"]]


async def draw(gql, town: Town, case: dict, size: int = 3, seed: Any = 42) -> Any:
    i = {"caseId": case["id"], "size": size, "seed": seed}
    return await gql(DRAW, {"i": i}, token=town.city.token("officer"))


async def draw_as(gql, token: str, case: dict, size: int = 3, seed: Any = 42) -> Any:
    return await gql(DRAW, {"i": {"caseId": case["id"], "size": size, "seed": seed}}, token=token)


def member_tokens(town: Town, panel: dict) -> list[str]:
    prefix = town.city.slug + "_"
    return [town.evaluators[u.removeprefix(prefix)] for u in usernames(panel)]


async def submit(gql, token: str, panel_id: str, verdict: str, score: int = 4, **kw: Any):
    i = {
        "panelId": panel_id,
        "facts": score,
        "procedure": score,
        "lawAndPolicy": score,
        "responsibility": score,
        "verdict": verdict,
        "comment": "意见",
        **kw,
    }
    return await gql(SUBMIT, {"i": i}, token=token)


# --- the pool --------------------------------------------------------------------------------


async def test_admin_enrols_evaluators_and_officials_see_contacts_masked(db, gql, town):
    city = town.city
    admin = (await gql(POOL, token=city.token("admin"))).ok()["evaluatorPool"]
    assert admin["totalCount"] == admin["activeCount"] == len(SPEC)
    by_name = {e["username"]: e for e in admin["evaluators"]}
    assert by_name[f"{city.slug}_law1"]["category"] == "LAWYER"
    assert by_name[f"{city.slug}_law1"]["active"] is True
    assert by_name[f"{city.slug}_law1"]["phone"] == "13900001111"
    officer = (await gql(POOL, token=city.token("officer"))).ok()["evaluatorPool"]
    assert {e["phone"] for e in officer["evaluators"]} == {"139****1111"}
    for who in ("evaluator", "grid", "handler"):
        assert (await gql(POOL, token=city.token(who))).code == "FORBIDDEN", who
    # the enrolled user now holds the EVALUATOR role
    me = await gql("{ me { roles { role } } }", token=town.evaluators["law1"])
    assert "EVALUATOR" in {r["role"] for r in me.ok()["me"]["roles"]}


async def test_add_evaluator_checks_its_input(db, gql, town):
    city, admin = town.city, town.city.token("admin")
    bad_unit = {"username": f"{city.slug}_officer", "category": "EXPERT"}
    resp = await gql(
        ADD, {"i": {**bad_unit, "excludedUnitPaths": [city.path("nowhere")]}}, token=admin
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "excludedUnitPaths")
    resp = await gql(ADD, {"i": {"username": "nobody-here", "category": "EXPERT"}}, token=admin)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    resp = await gql(
        ADD, {"i": {"username": f"{city.slug}_law1", "category": "EXPERT"}}, token=admin
    )
    assert (resp.code, resp.field) == ("CONFLICT", "username")
    resp = await gql(ADD, {"i": bad_unit}, token=city.token("officer"))
    assert resp.code == "FORBIDDEN"


async def test_csv_import_is_all_or_nothing_with_row_errors(db, gql, town):
    city, admin = town.city, town.city.token("admin")
    names = [unique(f"{city.slug}_csv") for _ in range(4)]  # the city's username namespace
    good = [
        f"{names[0]},甲,律师,13700000001,,{city.path('c1')},",
        f"{names[1]},乙,VOLUNTEER,,a@example.org,,",
        f"{names[2]},丙,五老,,,,张三:{id_number(7)}",
    ]
    bad = [
        f"{names[3]},丁,astronaut,,,,",  # unknown category
        f"{names[0]},重复,LAWYER,,,,",  # duplicate username
        f"bad user!,戊,LAWYER,,,{city.path('c9')},",  # bad username
    ]
    header = "username,display_name,category,phone,email,excluded_unit_paths,related_persons"
    before = (await gql(POOL, token=admin)).ok()["evaluatorPool"]["totalCount"]
    resp = await gql(IMPORT, {"i": {"csv": "\n".join([header, *good, *bad])}}, token=admin)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "csv")
    errors = resp.errors[0]["extensions"]["rowErrors"]
    assert {(e["row"], e["field"]) for e in errors} >= {
        (5, "category"),
        (6, "username"),
        (7, "username"),
    }
    assert all(e["row"] >= 5 for e in errors)
    assert (await gql(POOL, token=admin)).ok()["evaluatorPool"]["totalCount"] == before
    async with db.session(TenantScope.of([town.tenant_id])) as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(User).where(User.username.in_(names))
            )
            == 0
        )
    ok = (await gql(IMPORT, {"i": {"csv": "\n".join([header, *good])}}, token=admin)).ok()
    assert ok["importEvaluators"] == {"imported": 3, "createdUsers": 3}
    pool = (await gql(POOL, token=admin)).ok()["evaluatorPool"]
    by_name = {e["username"]: e for e in pool["evaluators"]}
    assert by_name[names[0]]["category"] == "LAWYER"
    assert by_name[names[0]]["excludedUnitPaths"] == [city.path("c1")]
    assert by_name[names[2]]["relatedPersons"][0]["idNumber"].count("*") == 10
    again = await gql(IMPORT, {"i": {"csv": "\n".join([header, *good])}}, token=admin)
    assert again.code == "BAD_USER_INPUT"
    assert len(again.errors[0]["extensions"]["rowErrors"]) == 3
    # they are active pool members: keep the module's pool as it was for the draws below
    async with db.transaction(TenantScope.of([town.tenant_id])) as session:
        await session.execute(
            update(Evaluator)
            .where(Evaluator.user_id.in_(select(User.id).where(User.username.in_(names))))
            .values(status="RETIRED")
        )


async def test_cli_import_reports_rows_and_imports_nothing_on_error(db, town, tmp_path):
    city = town.city
    name = unique("cli")
    header = "username,display_name,category"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"{header}\n{name},甲,LAWYER\n{name}x,乙,nope\n", encoding="utf-8")
    code, out, err = await xinfang("evaluations", "import", str(bad), "--tenant", city.slug)
    assert code == 1 and "row 3 category" in err
    good = tmp_path / "good.csv"
    good.write_text(f"{header}\n{name},甲,ELDER\n", encoding="utf-8")
    code, out, err = await xinfang("evaluations", "import", str(good), "--tenant", city.slug)
    assert code == 0, err
    assert "1 evaluators imported" in out
    async with db.transaction(TenantScope.of([town.tenant_id])) as session:
        await session.execute(
            update(Evaluator)
            .where(Evaluator.user_id.in_(select(User.id).where(User.username == name)))
            .values(status="RETIRED")
        )


# --- eligibility and the draw ------------------------------------------------------------


async def test_only_eligible_cases_can_be_drawn_and_are_listed(db, gql, town):
    city = town.city
    plain = await register(gql, city.token("officer"), city)
    resp = await draw(gql, town, plain)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "caseId")
    eligible = await dissatisfied_case(gql, city)
    listed = (await gql(ELIGIBLE, token=city.token("officer"))).ok()["evaluationEligibleCases"]
    ids = {e["node"]["id"] for e in listed["edges"]}
    assert eligible["id"] in ids and plain["id"] not in ids
    assert (await gql(ELIGIBLE, token=city.token("evaluator"))).code == "FORBIDDEN"
    panel = (await draw(gql, town, eligible)).ok()["drawEvaluationPanel"]
    listed = (await gql(ELIGIBLE, token=city.token("officer"))).ok()["evaluationEligibleCases"]
    assert eligible["id"] not in {e["node"]["id"] for e in listed["edges"]}
    again = await draw(gql, town, eligible)
    assert (again.code, again.field) == ("CONFLICT", "caseId")
    (
        await gql(
            CANCEL,
            {"i": {"panelId": panel["id"], "reason": "成员回避"}},
            token=city.token("officer"),
        )
    ).ok()
    redrawn = (await draw(gql, town, eligible)).ok()["drawEvaluationPanel"]
    # whoever sat on the cancelled panel of the same petitioner is not drawn again
    assert not set(usernames(redrawn)) & set(usernames(panel))


async def test_same_seed_on_the_same_pool_draws_the_same_panel_and_verify_draw_agrees(
    db, gql, town
):
    one, two = await skip_level_case(gql, town.city), await skip_level_case(gql, town.city)
    p1 = (await draw(gql, town, one, size=4, seed=2026)).ok()["drawEvaluationPanel"]
    p2 = (await draw(gql, town, two, size=4, seed=2026)).ok()["drawEvaluationPanel"]
    assert p1["poolHash"] == p2["poolHash"] and p1["eligibleCount"] == p2["eligibleCount"]
    assert usernames(p1) == usernames(p2) and p1["seed"] == 2026
    assert "LAWYER" in {m["category"] for m in p1["members"]}
    assert {m["category"] for m in p1["members"]} - {"OFFICIAL"}
    three = await skip_level_case(gql, town.city)
    p3 = (await draw(gql, town, three, size=4, seed="审计-7")).ok()["drawEvaluationPanel"]
    assert p3["seed"] == "审计-7"
    async with db.session(TenantScope.of([town.tenant_id])) as session:
        check = await verify_draw(session, p1["id"])
        assert check.ok and check.current_hash == p1["poolHash"]
    code, out, err = await xinfang("evaluations", "verify-draw", p3["id"])
    assert code == 0 and "OK: the draw is reproducible" in out, (out, err)
    # tampering with the stored pool is detected
    async with db.transaction(TenantScope.of([town.tenant_id])) as session:
        panel = await session.get(EvaluationPanel, (town.tenant_id, uuid.UUID(p2["id"])))
        panel.pool_snapshot = list(reversed(panel.pool_snapshot))[1:]
    code, out, _ = await xinfang("evaluations", "verify-draw", p2["id"], "--tenant", town.city.slug)
    assert code == 1 and "MISMATCH" in out


async def test_members_are_notified_through_the_outbox(db, gql, town):
    case = await skip_level_case(gql, town.city)
    panel = (await draw(gql, town, case)).ok()["drawEvaluationPanel"]
    async with db.session(TenantScope.of([town.tenant_id])) as session:
        rows = list(
            await session.scalars(
                select(Notification).where(
                    Notification.kind == "evaluation_panel",
                    Notification.case_id == uuid.UUID(case["id"]),
                )
            )
        )
    assert len({n.recipient_id for n in rows}) == len(panel["members"])


async def test_conflicted_evaluators_are_never_drawn(db, gql):
    case_no = next(_n)
    petitioner = id_number(case_no)
    spec = [
        ("lawyer", "LAWYER"),
        ("vol", "VOLUNTEER"),
        ("sibling", "ELDER"),  # excludes /c10: a sibling whose path starts like /c1
        ("covers", "EXPERT"),  # excludes /c1: covers the case's location
        ("relative", "VETERAN"),  # related to the petitioner
        ("handled", "OFFICIAL"),  # acted on the case
        ("paused", "DEPUTY"),  # suspended
    ]
    town = await make_town(db, gql, [])
    city = town.city
    town.evaluators = await add_users(db, city, [n for n, _ in spec])
    async with db.transaction() as session:
        await service.create_org_unit(
            session, SYSTEM, parent_path=city.path(), slug="c10", name="c10", level="COUNTY"
        )
    extra = {
        "sibling": {"excludedUnitPaths": [city.path("c10")]},
        "covers": {"excludedUnitPaths": [city.path("c1")]},
        "relative": {"relatedPersons": [{"name": "李四", "idNumber": petitioner}]},
    }
    for name, category in spec:
        await enrol(gql, city, name, category, **extra.get(name, {}))
    async with db.transaction() as session:
        await service.assign_role(
            session,
            SYSTEM,
            username=f"{city.slug}_handled",
            role="PETITION_OFFICER",
            org_unit_path=city.path(),
        )
    officer = city.token("officer")
    data = {"petitioner": {"name": "李四", "phone": "13912345678", "idNumber": petitioner}}
    case = await skip_level_case(gql, city, "c1/t1", skipLevel="BEIJING", **data)
    handled = issue_token(f"{city.slug}_handled")
    await step(gql, handled, "acceptCase", case)
    pool = (await gql(POOL, token=city.token("admin"))).ok()["evaluatorPool"]["evaluators"]
    paused = next(e for e in pool if e["username"].endswith("_paused"))
    resp = await gql(
        "mutation($i: SetEvaluatorStatusInput!) { setEvaluatorStatus(input: $i) { status } }",
        {"i": {"evaluatorId": paused["id"], "status": "SUSPENDED"}},
        token=city.token("admin"),
    )
    assert resp.ok()["setEvaluatorStatus"]["status"] == "SUSPENDED"
    for size in (4, 5):  # only lawyer, vol and sibling are free of conflicts
        resp = await gql(
            DRAW, {"i": {"caseId": case["id"], "size": size, "seed": 1}}, token=officer
        )
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "size")
        assert resp.errors[0]["extensions"]["category"] == "ANY"
    panel = (
        await gql(DRAW, {"i": {"caseId": case["id"], "size": 3, "seed": 7}}, token=officer)
    ).ok()
    names = {u.removeprefix(city.slug + "_") for u in usernames(panel["drawEvaluationPanel"])}
    assert names == {"lawyer", "vol", "sibling"}


async def test_a_pool_short_of_a_category_is_named(db, gql):
    town = await make_town(db, gql, [("o1", "OFFICIAL"), ("o2", "OFFICIAL"), ("v1", "VOLUNTEER")])
    case = await skip_level_case(gql, town.city)
    resp = await draw(gql, town, case, size=2)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "size")
    assert (
        resp.errors[0]["extensions"]["category"] == "LAWYER"
        and "LAWYER" in resp.errors[0]["message"]
    )
    policy = {"minimums": [{"category": "PSYCHOLOGIST", "count": 1}], "minNonOfficial": 2}
    (await gql(POLICY, {"i": policy}, token=town.city.token("admin"))).ok()
    resp = await draw(gql, town, case, size=3)
    assert resp.errors[0]["extensions"]["category"] == "PSYCHOLOGIST"
    policy = {"minimums": [], "minNonOfficial": 2}
    (await gql(POLICY, {"i": policy}, token=town.city.token("admin"))).ok()
    resp = await draw(gql, town, case, size=3)
    assert resp.errors[0]["extensions"]["category"] == "NON_OFFICIAL"
    resp = await draw(gql, town, case, size=1)
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "size")  # the mix needs two seats


# --- the evaluator's view -----------------------------------------------------------------


async def test_evaluator_sees_only_its_panels_cases_masked_and_no_scores_before_its_own(
    db, gql, town
):
    city = town.city
    case = await dissatisfied_case(gql, city)
    other = await dissatisfied_case(gql, city)
    panel = (await draw(gql, town, case, size=3, seed=11)).ok()["drawEvaluationPanel"]
    first, second, _third = member_tokens(town, panel)
    outsider_name = next(n for n in town.evaluators if f"{city.slug}_{n}" not in usernames(panel))
    outsider = town.evaluators[outsider_name]
    got = (await gql(CASE, {"id": case["id"]}, token=first)).ok()["case"]
    assert got["petitioner"]["masked"] is True and "*" in got["petitioner"]["idNumber"]
    assert got["replyOpinion"] and {"REPLY", "EVALUATION_PANEL_DRAWN"} <= {
        e["kind"] for e in got["events"]
    }
    assert (await gql(CASE, {"id": other["id"]}, token=first)).code == "NOT_FOUND"
    listed = (await gql(CASES, token=first)).ok()["cases"]
    assert case["id"] in {e["node"]["id"] for e in listed["edges"]}
    assert other["id"] not in {e["node"]["id"] for e in listed["edges"]}
    assert (await gql(CASE, {"id": case["id"]}, token=outsider)).code == "NOT_FOUND"
    assert (await gql(PANEL, {"id": panel["id"]}, token=outsider)).code == "NOT_FOUND"
    assert (await submit(gql, outsider, panel["id"], "REASONABLE")).code == "NOT_FOUND"
    view = (await gql(PANEL, {"id": panel["id"]}, token=first)).ok()["evaluationPanel"]
    assert view["case"]["petitioner"]["masked"] is True

    (await submit(gql, second, panel["id"], "UNREASONABLE", score=2)).ok()
    before = (await gql(PANEL, {"id": panel["id"]}, token=first)).ok()["evaluationPanel"]
    assert before["evaluations"] == [] and before["myEvaluation"] is None
    assert before["result"] is None
    assert [m["submitted"] for m in before["members"]].count(True) == 1
    bad = await submit(gql, first, panel["id"], "REASONABLE", score=6)
    assert (bad.code, bad.field) == ("BAD_USER_INPUT", "facts")
    (await submit(gql, first, panel["id"], "REASONABLE")).ok()
    twice = await submit(gql, first, panel["id"], "REASONABLE")
    assert (twice.code, twice.field) == ("CONFLICT", "panelId")
    after = (await gql(PANEL, {"id": panel["id"]}, token=first)).ok()["evaluationPanel"]
    assert {e["verdict"] for e in after["evaluations"]} == {"REASONABLE", "UNREASONABLE"}
    assert after["myEvaluation"] == {"verdict": "REASONABLE"}
    # the petition office sees every submitted score
    office = (await gql(PANEL, {"id": panel["id"]}, token=city.token("officer"))).ok()
    assert len(office["evaluationPanel"]["evaluations"]) == 2
    assert office["evaluationPanel"]["case"]["petitioner"]["masked"] is False


# --- verdict, follow-up, settlement, figures ---------------------------------------------


async def test_verdict_opens_a_follow_up_step_on_the_warning_board_and_settles(db, gql, town):
    # Mon 2026-11-02: the 10-day follow-up falls due on Thu 11-12, ten days ahead (YELLOW);
    # on the real date it could roll past a weekend or holiday into BLUE.
    with ticking(sh(2026, 11, 2, 9)):
        city = town.city
        officer = city.token("officer")
        stats_before = (await gql(STATS, token=officer)).ok()["evaluationStatistics"]
        case = await dissatisfied_case(gql, city)
        assert (await gql(CASE, {"id": case["id"]}, token=officer)).ok()["case"][
            "warningColor"
        ] == "NONE"
        panel = (await draw(gql, town, case, size=4, seed=5)).ok()["drawEvaluationPanel"]
        tokens = member_tokens(town, panel)
        verdicts = ["REASONABLE", "UNLAWFUL", "REASONABLE", "UNLAWFUL"]  # a tie → the stricter one
        for token, verdict, score in zip(tokens, verdicts, (5, 4, 3, 2), strict=True):
            (await submit(gql, token, panel["id"], verdict, score=score)).ok()
        done = (await gql(PANEL, {"id": panel["id"]}, token=officer)).ok()["evaluationPanel"]
        result = done["result"]
        assert done["status"] == "CONCLUDED"
        assert (result["verdict"], result["tieBroken"], result["followUpDays"]) == (
            "UNLAWFUL",
            True,
            10,
        )
        assert result["means"]["facts"] == 3.5
        assert {v["verdict"]: v["count"] for v in result["votes"]}["UNLAWFUL"] == 2
        late = await submit(gql, tokens[0], panel["id"], "REASONABLE")
        assert late.code in ("CONFLICT", "INVALID_TRANSITION")

        got = (await gql(CASE, {"id": case["id"]}, token=officer)).ok()["case"]
        follow = [d for d in got["deadlines"] if d["step"] == "FOLLOW_UP" and d["status"] == "OPEN"]
        assert len(follow) == 1 and follow[0]["rule"]["verdict"] == "UNLAWFUL"
        assert got["dueAt"] == follow[0]["dueAt"] and got["warningColor"] == "YELLOW"
        assert "EVALUATED" in {e["kind"] for e in got["events"]}
        board = (await gql(BOARD, token=officer)).ok()["warningBoard"]
        key = {"RED": "r", "YELLOW": "y"}[got["warningColor"]]
        assert case["id"] in {e["node"]["id"] for e in board[key]["edges"]}

        mid = (await gql(STATS, token=officer)).ok()["evaluationStatistics"]
        assert mid["evaluated"] == stats_before["evaluated"] + 1
        assert mid["settled"] == stats_before["settled"]
        mix = {v["verdict"]: v["count"] for v in mid["verdictMix"]}
        assert (
            mix["UNLAWFUL"]
            == {v["verdict"]: v["count"] for v in stats_before["verdictMix"]}["UNLAWFUL"] + 1
        )

        assert (
            await gql(SETTLE, {"i": {"panelId": panel["id"], "note": "x"}}, token=tokens[0])
        ).code == "FORBIDDEN"
        settled = (
            await gql(
                SETTLE, {"i": {"panelId": panel["id"], "note": "依法处理完毕"}}, token=officer
            )
        ).ok()
        assert settled["settleEvaluation"]["settledAt"]
        got = (await gql(CASE, {"id": case["id"]}, token=officer)).ok()["case"]
        assert [d["status"] for d in got["deadlines"] if d["step"] == "FOLLOW_UP"] == ["MET"]
    assert got["warningColor"] == "NONE"
    end = (await gql(STATS, token=officer)).ok()["evaluationStatistics"]
    assert (end["evaluated"], end["settled"]) == (mid["evaluated"], mid["settled"] + 1)
    # a sibling county's officer counts none of it
    c2 = (await gql(STATS, token=city.token("c2_officer"))).ok()["evaluationStatistics"]
    assert c2["evaluated"] == 0


# --- the tenant wall ----------------------------------------------------------------------


async def test_pools_and_panels_do_not_cross_tenants(db, gql, town, world):
    city, b = town.city, world.b
    case = await skip_level_case(gql, city)
    panel = (await draw(gql, town, case)).ok()["drawEvaluationPanel"]
    b_pool = (await gql(POOL, token=b.token("admin"))).ok()["evaluatorPool"]["evaluators"]
    assert not [e for e in b_pool if e["username"].startswith(city.slug)]
    resp = await gql(
        ADD, {"i": {"username": f"{city.slug}_law1", "category": "LAWYER"}}, token=b.token("admin")
    )
    assert (resp.code, resp.field) == ("BAD_USER_INPUT", "username")
    resp = await gql(
        DRAW, {"i": {"caseId": case["id"], "size": 3, "seed": 1}}, token=b.token("officer")
    )
    assert resp.code == "NOT_FOUND"
    for token in (b.token("evaluator"), b.token("officer"), world.tokens["sup2"]):
        assert (await gql(PANEL, {"id": panel["id"]}, token=token)).code == "NOT_FOUND"
    assert (await submit(gql, b.token("evaluator"), panel["id"], "REASONABLE")).code == "NOT_FOUND"
    i = {"panelId": panel["id"], "note": "x"}
    assert (await gql(SETTLE, {"i": i}, token=b.token("officer"))).code == "NOT_FOUND"
    assert (await gql(PANEL, {"id": panel["id"]}, token=world.tokens["sup1"])).code == "NOT_FOUND"
    # the supervisor of the town's own province reads it, PII masked
    sup = (await create_supervisors(db, {"s": city.province}))["s"]
    seen = (await gql(PANEL, {"id": panel["id"]}, token=sup)).ok()["evaluationPanel"]
    assert seen["case"]["petitioner"]["masked"] is True
    assert (await draw_as(gql, sup, case)).code == "FORBIDDEN"
    async with db.session(TenantScope.of([town.tenant_id])) as session:
        assert await session.scalar(select(func.count()).select_from(Evaluator)) >= len(SPEC)


# --- helpers ----------------------------------------------------------------------------


async def xinfang(*args: str) -> tuple[int, str, str]:
    """The console command in-process (a worker thread: each command runs its own loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, list(args))
    return result.exit_code, result.stdout, result.stderr


async def test_a_role_that_reads_no_panel_gets_not_found_as_the_schema_says(gql, world):
    """evaluationPanel(id) promises null + NOT_FOUND when absent or not visible; a grid
    worker (no panel reading at all) got FORBIDDEN instead (outside probe of issue 21).
    The same answer for a made-up id: nothing to infer."""
    made_up = "01a24919-1a47-7000-8000-000000000000"
    resp = await gql(PANEL, {"id": made_up}, token=world.a.token("grid"))
    assert resp.code == "NOT_FOUND" and resp.data == {"evaluationPanel": None}, resp.body
