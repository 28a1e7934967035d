"""Art. 30 at each way out, one finding of issue 17 per test (the egress property,
tests/test_egress.py, sweeps them all at once on random cities)."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.cases.models import CaseType
from backend.cases.need_to_know import NEUTRAL_BODY
from backend.notifications import service as notify
from backend.notifications.channels import PermanentFailure, webhook_address
from backend.notifications.dispatcher import dispatch
from backend.notifications.models import Notification, NotificationStatus
from backend.tenants import service
from tests.helpers import unique
from tests.test_jobs_support import register as register_case
from tests.test_notifications import Receiver, new_town, settings_for

REGISTER = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id number status version replyOpinion holderUnit { path } events { kind } } }"""
STEP = "mutation($i: {T}!) { {m}(input: $i) { id version status } }"
INBOX = "{ notifications(first: 50) { subject body caseId } }"
HOOK = """mutation($url: String!) { setNotificationWebhook(input: {url: $url,
  secret: "0123456789abcdef-secret"}) { webhookUrl } }"""


def accusation(town, **extra) -> dict:
    return {
        "clientKey": unique("a30-"),
        "channel": "VISIT",
        "type": "ACCUSATION",
        "category": "land",
        "subject": "检举 乡镇干部",
        "content": "举报内容",
        "petitioner": {"name": "赵六"},
        "locationPath": town.city.path("c1/t1/v1"),
        **extra,
    }


async def step(gql, token, name: str, case: dict, **fields) -> dict:
    doc = STEP.replace("{T}", name[0].upper() + name[1:] + "Input").replace("{m}", name)
    i = {"caseId": case["id"], "version": case["version"], **fields}
    return (await gql(doc, {"i": i}, token=token)).ok()[name]


async def test_intake_replay_answers_a_receipt_after_the_case_moved_on(db, gql):
    """Item 1: the township registers an accusation against itself; the county replies;
    the township's replay gets id, number and what it typed — no status, no opinion."""
    town = await new_town(db)
    data = accusation(town, accusedUnitPath=town.city.path("c1/t1"))
    first = (await gql(REGISTER, {"i": data}, token=town.token("t1_officer"))).ok()
    first = first["registerCase"]
    assert first["holderUnit"] is None and first["events"] == []
    county = town.token("c1_officer")
    case = (await gql("query($id: ID!) { case(id: $id) { id version } }", {"id": first["id"]},
                      token=county)).ok()["case"]  # fmt: skip
    case = await step(gql, county, "acceptCase", case)
    case = await step(gql, county, "replyCase", case, opinion="答复：查无实据")
    again = (await gql(REGISTER, {"i": data}, token=town.token("t1_officer"))).ok()
    again = again["registerCase"]
    assert (again["id"], again["number"]) == (first["id"], first["number"])
    assert (again["status"], again["replyOpinion"], again["events"]) == ("REGISTERED", None, [])
    assert "查无实据" not in str(again)


async def test_accused_username_is_normalised_and_an_unknown_one_refused(db, gql):
    """Item 5 of what to build: ``SQ_Officer`` names sq_officer; a name nobody has is refused."""
    town = await new_town(db)
    officer = town.token("officer")
    shouted = town.city.slug.upper() + "_C1_OFFICER"
    got = (await gql(REGISTER, {"i": accusation(town, accusedUsername=f"  {shouted} ")},
                     token=officer)).ok()["registerCase"]  # fmt: skip
    resp = await gql("query($id: ID!) { case(id: $id) { id } }", {"id": got["id"]},
                     token=town.token("c1_officer"))  # fmt: skip
    assert resp.code == "NOT_FOUND"  # the accused reads nothing
    ghost = await gql(REGISTER, {"i": accusation(town, accusedUsername="nobody-here")},
                      token=officer)  # fmt: skip
    assert (ghost.code, ghost.field) == ("BAD_USER_INPUT", "accusedUsername")
    bad = await gql(REGISTER, {"i": accusation(town, accusedUsername="Bad Name!")}, token=officer)
    assert (bad.code, bad.field) == ("BAD_USER_INPUT", "accusedUsername")


async def test_a_role_taken_inside_the_accused_unit_after_the_message_hides_it(db, gql):
    """The gate again when read and when delivered: roles change after a message is written."""
    town = await new_town(db)
    hook = Receiver()
    try:
        (await gql(HOOK, {"url": hook.url()}, token=town.token("admin"))).ok()
        data = accusation(town, accusedUnitPath=town.city.path("c2"))
        case = (await gql(REGISTER, {"i": data}, token=town.token("officer"))).ok()
        case_id = uuid.UUID(case["registerCase"]["id"])
        async with db.transaction(town.scope) as session:
            await notify.enqueue(
                session,
                tenant_id=town.tenant_id,
                recipient_id=town.users["leader"],
                kind="reminder",
                subject="检举 乡镇干部 督办",
                body="请阅",
                dedupe_key=unique("k"),
                case_id=case_id,
            )
        assert (await gql(INBOX, token=town.token("leader"))).ok()["notifications"]
        async with db.transaction() as session:  # the city leader is posted to the county
            await service.assign_role(
                session, SYSTEM, username=f"{town.city.slug}_leader", role=Role.LEADER,
                org_unit_path=town.city.path("c2"),
            )  # fmt: skip
        assert (await gql(INBOX, token=town.token("leader"))).ok()["notifications"] == []
        await dispatch(db, settings_for(), tenant_ids=[town.tenant_id])
        assert not hook.requests  # the webhook copy was withheld, not sent
        async with db.session(town.scope) as session:
            rows = list(await session.scalars(select(Notification)))
        dead = [r for r in rows if r.channel == "webhook"]
        assert dead and dead[0].status == NotificationStatus.DEAD
        assert "Art. 30" in (dead[0].last_error or "")
    finally:
        hook.close()


async def test_outside_channels_carry_no_accusation_content(db):
    """Item 6: webhook, SMS and e-mail copies of a message about an accusation are neutral."""
    hook = Receiver()
    try:
        town = await new_town(db, webhook=hook.url())
        case_id = await register_case(db, town.city, type=CaseType.ACCUSATION, location="c1/t1")
        async with db.transaction(town.scope) as session:
            await notify.enqueue(
                session,
                tenant_id=town.tenant_id,
                recipient_id=town.users["officer"],
                kind="reminder",
                subject="检举 乡镇干部 督办",
                body="督办内容",
                dedupe_key=unique("k"),
                case_id=case_id,
            )
        await dispatch(db, settings_for(), tenant_ids=[town.tenant_id])
        (sent,) = hook.requests
        body = sent.json
        assert (body["subject"], body["body"], body["data"], body["caseId"]) == (
            "信访事项提醒",
            NEUTRAL_BODY,
            {},
            None,
        )
    finally:
        hook.close()


async def test_webhooks_may_not_point_inside_the_network(db, gql):
    """Item 6: a city admin cannot aim the webhook at loopback, private or link-local
    addresses (the tests allow 127.0.0.0/8 only, as an operator's allow-list would)."""
    town = await new_town(db)
    admin = town.token("admin")
    for url in (
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/x",
        "http://localhost:9000/x",
        "http://db.internal/x",
        "http://192.168.1.1/",
        "http://0x0a000001/x",  # 10.0.0.1
        "http://167772161/x",  # 10.0.0.1
        "http://012.0.0.1/x",  # 10.0.0.1 in octal
        "http://[64:ff9b::a00:1]/x",  # NAT64 of 10.0.0.1
        "http://[2002:a00:1::]/x",  # 6to4 of 10.0.0.1
    ):
        resp = await gql(HOOK, {"url": url}, token=admin)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "url"), url
    assert not (await gql(HOOK, {"url": "http://127.0.0.1:9/x"}, token=admin)).errors


async def test_a_webhook_name_is_resolved_and_checked_when_sending():
    """DNS rebinding: a name is judged by the address it resolves to at send time."""
    with pytest.raises(PermanentFailure, match="public address"):
        await webhook_address("http://localhost:9/x", allowed="")
    assert await webhook_address("http://localhost:9/x", allowed="127.0.0.0/8") == "127.0.0.1"


async def test_a_member_of_the_accused_unit_gets_its_digest_without_the_accusation(db):
    """The digest of a root officer also posted inside the accused village lists its other
    red cases — the accusation is left out before counting, not the whole message dropped."""
    from backend.cases.models import Case
    from backend.jobs.deadlines import scan_tenant
    from backend.jobs.digest import build_digest
    from backend.tenants.models import Tenant
    from tests.clocks import frozen, sh

    town = await new_town(db)
    async with db.transaction() as session:
        await service.assign_role(
            session, SYSTEM, username=f"{town.city.slug}_officer", role=Role.GRID_WORKER,
            org_unit_path=town.city.path("c1/t1/v1/g1"),
        )  # fmt: skip
    with frozen(sh(2026, 11, 2)):
        accusation_id = await register_case(
            db, town.city, type=CaseType.ACCUSATION, location="c2/t1"
        )
        claim_id = await register_case(db, town.city, location="c2/t1")
    async with db.transaction(town.scope) as session:
        case = await session.scalar(select(Case).where(Case.id == accusation_id))
        case.accused_path = town.city.path("c1/t1/v1")
    with frozen(sh(2026, 11, 16, 9)):
        await scan_tenant(db, town.tenant_id)
        async with db.transaction(town.scope) as session:
            tenant = await session.scalar(select(Tenant).where(Tenant.id == town.tenant_id))
            await build_digest(session, tenant, day=sh(2026, 11, 16).date())
    async with db.session(town.scope) as session:
        digests = list(
            await session.scalars(
                select(Notification).where(
                    Notification.kind == "digest",
                    Notification.recipient_id == town.users["officer"],
                    Notification.channel == "inapp",
                )
            )
        )
    assert len(digests) == 1, "the officer's digest was dropped"
    listed = {c["id"] for c in digests[0].data["cases"]}
    assert listed == {str(claim_id)} and digests[0].data["total"] == 1
    # the data's instants as the API writes a DateTime: the city's zone, to the second
    [row] = digests[0].data["cases"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", row["dueAt"]), row


async def test_repeat_counts_never_count_an_accusation_the_registrar_may_not_know(db, gql):
    """Found by the outside probe: the accused county registered a harmless suggestion with
    the suspected accuser's id number and category, and repeatCount 1 confirmed it."""
    town = await new_town(db)
    petitioner = {"name": "赵六", "idNumber": "411403199001011238"}
    data = accusation(town, petitioner=petitioner, accusedUnitPath=town.city.path("c1"))
    (await gql(REGISTER, {"i": data}, token=town.token("officer"))).ok()
    probe = {
        **accusation(town, petitioner=petitioner),
        "type": "SUGGESTION",
        "locationPath": town.city.path("c1/t1"),
    }
    got = (await gql(REGISTER_REPEAT, {"i": probe}, token=town.token("c1_officer"))).ok()
    assert got["registerCase"]["repeatCount"] == 0
    # the same accused again is a repeat, for those who may know both
    again = accusation(town, petitioner=petitioner, accusedUnitPath=town.city.path("c1"))
    got = (await gql(REGISTER_REPEAT, {"i": again}, token=town.token("officer"))).ok()
    assert got["registerCase"]["repeatCount"] == 1


REGISTER_REPEAT = """mutation($i: RegisterCaseInput!) { registerCase(input: $i) {
  id repeatCount } }"""


async def test_a_panel_member_barred_since_the_draw_neither_reads_the_panel_nor_votes(db, gql):
    """Found by the outside probe: a member given a role inside the accused unit after the
    draw still read the panel (case id, reasons, members) and voted."""
    from tests.test_evaluations import DRAW, PANEL, SPEC, make_town, submit

    town = await make_town(db, gql, SPEC)
    city = town.city
    petitioner = {"name": "赵六", "phone": "13955550019"}
    for _ in range(3):  # the third petition to the province on the matter is eligible
        data = {
            **accusation(town, accusedUnitPath=city.path("c2"), petitioner=petitioner),
            "skipLevel": "PROVINCE",
            "locationPath": city.path("c1/t1"),
        }
        case = (await gql(REGISTER, {"i": data}, token=city.token("officer"))).ok()
        case = case["registerCase"]
    drawn = await gql(DRAW, {"i": {"caseId": case["id"], "size": 3, "seed": 7}},
                      token=city.token("officer"))  # fmt: skip
    panel = drawn.ok()["drawEvaluationPanel"]
    member = panel["members"][0]["username"]
    token = town.evaluators[member.removeprefix(city.slug + "_")]
    (await gql(PANEL, {"id": panel["id"]}, token=token)).ok()
    async with db.transaction() as session:
        await service.assign_role(
            session, SYSTEM, username=member, role=Role.GRID_WORKER,
            org_unit_path=city.path("c2/t1"),
        )  # fmt: skip
    assert (await gql(PANEL, {"id": panel["id"]}, token=token)).code == "NOT_FOUND"
    assert (await submit(gql, token, panel["id"], "UNREASONABLE")).code == "NOT_FOUND"
