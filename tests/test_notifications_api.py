"""GraphQL of notifications from the outside: the inbox is one's own, dead letters and
settings are the city admin's, and no tenant reaches another's rows (NOT_FOUND, never a hint)."""

from __future__ import annotations

import os

import httpx
import pytest

from backend.app import create_app
from backend.core.ids import to_global_id
from backend.core.settings import Settings
from backend.notifications.dispatcher import dispatch
from backend.notifications.models import NotificationKind
from backend.schema import build_schema
from tests.helpers import GraphQLClient
from tests.test_notifications import SECRET, Town, new_town, put, settings_for

INBOX = """query($unread: Boolean, $first: Int) {
  notifications(unreadOnly: $unread, first: $first) {
    id kind channel subject body status readAt sentAt recipient deliveryId data contentHidden
  }
}"""
MARK = "mutation($id: ID!) { markNotificationRead(input: {id: $id}) { id readAt status } }"
DEAD = """query { deadLetterNotifications(first: 20) {
  id channel status lastError attempts recipient nextAttemptAt subject body data contentHidden } }"""
RETRY = "mutation($id: ID!) { retryNotification(input: {id: $id}) { id status attempts } }"
HOOK = """mutation($url: String!, $secret: String!) {
  setNotificationWebhook(input: {url: $url, secret: $secret}) {
    webhookUrl webhookConfigured updatedBy } }"""
SETTINGS = "query { notificationSettings { webhookUrl webhookConfigured updatedBy } }"
EMAIL = """mutation($email: String, $username: String) {
  setNotificationEmail(input: {email: $email, username: $username}) { username email } }"""


@pytest.fixture(scope="module")
async def towns(db) -> tuple[Town, Town]:
    """Two cities of the same province layout, with in-app rows for several people."""
    a, b = await new_town(db), await new_town(db)
    for town in (a, b):
        await put(db, town, "officer", "o1", channels=["inapp"], subject="first")
        await put(db, town, "officer", "o2", channels=["inapp"], subject="second")
        await put(db, town, "leader", "l1", channels=["inapp"], subject="for the leader")
    return a, b


async def inbox(gql, token: str, **variables) -> list[dict]:
    return (await gql(INBOX, variables, token=token)).ok()["notifications"]


async def test_the_inbox_holds_only_the_callers_own_rows(gql, towns):
    a, b = towns
    mine = await inbox(gql, a.token("officer"))
    assert [n["subject"] for n in mine] == ["second", "first"]
    assert {n["recipient"] for n in mine} == {f"{a.city.slug}_officer"}
    assert {(n["channel"], n["status"], n["kind"]) for n in mine} == {("inapp", "SENT", "REMINDER")}
    assert {(n["body"], n["contentHidden"]) for n in mine} == {("案件即将超期", False)}
    assert [n["subject"] for n in await inbox(gql, a.token("leader"))] == ["for the leader"]
    assert await inbox(gql, a.token("admin")) == []
    ids_b = {n["id"] for n in await inbox(gql, b.token("officer"))}
    assert ids_b and not ids_b & {n["id"] for n in mine}


async def test_kind_is_a_notification_kind_named_in_upper_case_over_its_stored_value(db, gql):
    """Issue 20 item 8: ``kind`` is the enum NotificationKind (DIGEST), the row keeps
    ``digest``; every stored kind has its GraphQL name."""
    town = await new_town(db)
    [row] = await put(db, town, "leader", "digest-1", channels=["inapp"], kind="digest")
    assert row.kind == "digest"
    [shown] = await inbox(gql, town.token("leader"))
    assert shown["kind"] == "DIGEST"
    enum = build_schema()._schema.type_map["NotificationKind"]
    assert set(enum.values) == {k.name for k in NotificationKind}
    assert {k.value for k in NotificationKind} == {k.name.lower() for k in NotificationKind}


async def test_mark_read_is_own_only_and_unread_filter_follows(gql, towns):
    a, b = towns
    token = a.token("officer")
    first, *_ = await inbox(gql, token, unread=True)
    read = (await gql(MARK, {"id": first["id"]}, token=token)).ok()["markNotificationRead"]
    assert read["readAt"] and read["id"] == first["id"]
    again = (await gql(MARK, {"id": first["id"]}, token=token)).ok()["markNotificationRead"]
    assert again["readAt"] == read["readAt"]  # idempotent
    assert first["id"] not in {n["id"] for n in await inbox(gql, token, unread=True)}
    assert first["id"] in {n["id"] for n in await inbox(gql, token)}
    leaders = await inbox(gql, a.token("leader"))
    for other_token, target in (
        (a.token("officer"), leaders[0]["id"]),  # same city, someone else's
        (b.token("officer"), leaders[0]["id"]),  # another city
        (b.token("admin"), first["id"]),
        (token, "00000000-0000-0000-0000-000000000000"),
        (token, to_global_id("Case", first["id"])),  # its key under another type's name
    ):
        res = await gql(MARK, {"id": target}, token=other_token)
        assert res.code == "NOT_FOUND", res.body
    assert (await gql(MARK, {"id": "not-an-id"}, token=token)).code == "BAD_USER_INPUT"
    assert (await inbox(gql, a.token("leader")))[0]["readAt"] is None


async def test_inbox_page_size_is_bounded(gql, towns):
    a, _ = towns
    assert len(await inbox(gql, a.token("officer"), first=1)) == 1
    for bad in (0, 201):
        res = await gql(INBOX, {"first": bad}, token=a.token("officer"))
        assert (res.code, res.field) == ("BAD_USER_INPUT", "first")


async def test_staff_and_anonymous_callers_have_no_inbox(gql, world):
    for who in ("sup1", "platform"):
        res = await gql(INBOX, token=world.tokens[who])
        assert res.code == "FORBIDDEN", res.body
    assert (await gql(INBOX)).code == "UNAUTHENTICATED"


async def test_dead_letters_are_the_admins_of_the_tenant_only_and_retryable(db, gql, towns):
    a, b = towns
    (dead,) = await put(db, a, "nophone", "dl-1", channels=["sms"])
    (city_wide,) = await put(db, a, None, "dl-3", channels=["inapp"], data={"n": 1})
    (sent,) = await put(db, a, "officer", "dl-2", channels=["inapp"])
    settings = settings_for(sms_url="http://127.0.0.1:9/unused")
    assert (await dispatch(db, settings, tenant_ids=[a.tenant_id]))["dead"] == 2

    rows = (await gql(DEAD, token=a.token("admin"))).ok()["deadLetterNotifications"]
    (row,) = [r for r in rows if r["id"] == str(dead.id)]
    assert row["lastError"] == "recipient has no phone"
    assert (row["status"], row["channel"], row["nextAttemptAt"]) == ("DEAD", "sms", None)
    assert row["recipient"] == f"{a.city.slug}_nophone"
    # someone else's message: the admin sees why it failed, not what it says
    assert (row["subject"], row["body"], row["data"], row["contentHidden"]) == (None,) * 3 + (True,)
    (wide,) = [r for r in rows if r["id"] == str(city_wide.id)]  # addressed to the city
    assert (wide["subject"], wide["data"], wide["contentHidden"]) == ("红色预警", {"n": 1}, False)
    b_rows = (await gql(DEAD, token=b.token("admin"))).ok()["deadLetterNotifications"]
    assert str(dead.id) not in {r["id"] for r in b_rows}
    for who in ("officer", "leader", "handler"):
        assert (await gql(DEAD, token=a.token(who))).code == "FORBIDDEN"
        assert (await gql(RETRY, {"id": str(dead.id)}, token=a.token(who))).code == "FORBIDDEN"

    assert (await gql(RETRY, {"id": str(dead.id)}, token=b.token("admin"))).code == "NOT_FOUND"
    res = await gql(RETRY, {"id": str(sent.id)}, token=a.token("admin"))
    assert res.code == "INVALID_TRANSITION"
    retried = (await gql(RETRY, {"id": str(dead.id)}, token=a.token("admin"))).ok()
    assert retried["retryNotification"] == {"id": str(dead.id), "status": "PENDING", "attempts": 0}
    rows = (await gql(DEAD, token=a.token("admin"))).ok()["deadLetterNotifications"]
    assert str(dead.id) not in {r["id"] for r in rows}


async def test_webhook_settings_are_the_city_admins_and_stay_in_the_city(gql, towns):
    a, b = towns
    ok = await gql(
        HOOK, {"url": "https://hooks.example.org/xf", "secret": SECRET}, token=a.token("admin")
    )
    assert ok.ok()["setNotificationWebhook"] == {
        "webhookUrl": "https://hooks.example.org/xf",
        "webhookConfigured": True,
        "updatedBy": f"{a.city.slug}_admin",
    }
    shown = (await gql(SETTINGS, token=a.token("admin"))).ok()["notificationSettings"]
    assert shown["webhookUrl"] == "https://hooks.example.org/xf" and "secret" not in str(shown)
    other = (await gql(SETTINGS, token=b.token("admin"))).ok()["notificationSettings"]
    assert other == {"webhookUrl": None, "webhookConfigured": False, "updatedBy": None}
    for who in ("officer", "leader"):
        res = await gql(HOOK, {"url": "https://x.example/h", "secret": SECRET}, token=a.token(who))
        assert res.code == "FORBIDDEN"
        assert (await gql(SETTINGS, token=a.token(who))).code == "FORBIDDEN"
    for url, secret, field in (
        ("not a url", SECRET, "url"),
        ("mailto:x@example.org", SECRET, "url"),
        ("https://user:pw@example.org/h", SECRET, "url"),
        ("https://example.org/h", "too-short", "secret"),
    ):
        res = await gql(HOOK, {"url": url, "secret": secret}, token=a.token("admin"))
        assert (res.code, res.field) == ("BAD_USER_INPUT", field), url
    # a refused change changed nothing
    kept = (await gql(SETTINGS, token=a.token("admin"))).ok()["notificationSettings"]
    assert kept["webhookUrl"] == "https://hooks.example.org/xf"


async def test_production_refuses_a_plain_http_webhook(migrated, towns):
    a, _ = towns
    prod = Settings(env="prod", jwt_secret=os.environ["XF_JWT_SECRET"])
    app = create_app(prod, run_jobs=False)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            gql = GraphQLClient(http)
            res = await gql(
                HOOK,
                {"url": "http://hooks.example.org/xf", "secret": SECRET},
                token=a.token("admin"),
            )
            assert (res.code, res.field) == ("BAD_USER_INPUT", "url")
            assert "HTTPS" in res.errors[0]["message"]
            res = await gql(
                HOOK,
                {"url": "https://hooks.example.org/p", "secret": SECRET},
                token=a.token("admin"),
            )
            assert res.ok()["setNotificationWebhook"]["webhookUrl"] == "https://hooks.example.org/p"
    finally:
        await app.state.db.dispose()


async def test_email_address_is_ones_own_unless_one_is_the_city_admin(gql, towns):
    a, b = towns
    me = (await gql(EMAIL, {"email": "me@example.org"}, token=a.token("officer"))).ok()
    assert me["setNotificationEmail"] == {
        "username": f"{a.city.slug}_officer",
        "email": "me@example.org",
    }
    leader = f"{a.city.slug}_leader"
    res = await gql(EMAIL, {"email": "x@example.org", "username": leader}, token=a.token("officer"))
    assert res.code == "FORBIDDEN"
    by_admin = await gql(
        EMAIL, {"email": "lead@example.org", "username": leader}, token=a.token("admin")
    )
    assert by_admin.ok()["setNotificationEmail"]["email"] == "lead@example.org"
    res = await gql(EMAIL, {"email": "x@example.org", "username": leader}, token=b.token("admin"))
    assert (res.code, res.field) == ("BAD_USER_INPUT", "username")  # not B's user
    res = await gql(EMAIL, {"email": "no-at-sign"}, token=a.token("officer"))
    assert (res.code, res.field) == ("BAD_USER_INPUT", "email")
    cleared = (await gql(EMAIL, {"email": None}, token=a.token("officer"))).ok()
    assert cleared["setNotificationEmail"]["email"] is None
