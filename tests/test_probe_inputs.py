"""The outside probe's input findings 4, 5, 6 and 9 (issue 18: bad input is a clear 400 /
``BAD_USER_INPUT``, never a 500 or ``INTERNAL``), each replayed over HTTP.

4. Dates at the edge of Python's calendar (0001-01-01, 9999-12-31) crashed the exports and
   several GraphQL fields with ``OverflowError``: every date a client sends must lie within
   the supported dates (``backend/core/validation.py``: 1990-01-01..2100-12-31,
   docs/graphql-limits.md) — one check behind the ``Date``/``DateTime`` scalars and the REST
   query parameters.
5. A document of several operations without ``operationName`` ran the first one (even a
   mutation); an unknown ``operationName`` was a ``text/plain`` 400. Both are request errors.
6. A webhook URL with a named IPv6 zone (``[::1%25lo]``) passed the address check.
9. A request refused for holding too many id-number searches spent the allowance anyway.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date

import pytest
from sqlalchemy import text

from backend.core import clock
from backend.core.db import TenantScope
from backend.core.errors import BadUserInput
from backend.core.validation import FIRST_DATE, LAST_DATE, parse_date
from backend.notifications.channels import PermanentFailure, check_webhook_url, webhook_address
from backend.stats.indicators import Range
from backend.tenants.service import tenant_by_slug
from tests.case_helpers import make_id_number
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_rate_limits import BACKENDS, client

APOLLO = "application/graphql-response+json,application/json;q=0.9"
EDGES = ["0001-01-01", "0001-01-02", "1989-12-31", "2101-01-01", "9999-12-30", "9999-12-31"]
HOOK = """mutation($url: String!) { setNotificationWebhook(input: {url: $url,
  secret: "0123456789abcdef-secret"}) { webhookUrl } }"""


@pytest.fixture(scope="module")
async def city(db):
    province = unique("pip")
    city = await build_city(db, unique("pi"), province)
    city.tokens.update(await create_supervisors(db, {"sup": province}))
    return city


async def post(http, token: str | None, body: dict, accept: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if accept:
        headers["Accept"] = accept
    return await http.post("/graphql", content=json.dumps(body), headers={
        **headers, "content-type": "application/json",
    })  # fmt: skip


def assert_bad_input(resp, *, status: int = 400) -> dict:
    """A clean request error: the status, JSON, ``BAD_USER_INPUT`` only, no data."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/"), resp.headers
    body = resp.json()
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes == {"BAD_USER_INPUT"}, body
    assert not body.get("data"), body
    return body


# --- 4. dates at the edge of the calendar --------------------------------------------------


def test_the_supported_dates_are_the_calendars():
    assert (date(1990, 1, 1), date(2100, 12, 31)) == (FIRST_DATE, LAST_DATE)
    assert parse_date("2100-12-31", "to") == LAST_DATE
    for raw in EDGES:
        with pytest.raises(BadUserInput, match=re.escape("1990-01-01..2100-12-31")) as refused:
            parse_date(raw, "from")
        assert refused.value.extensions["field"] == "from"
    with pytest.raises(BadUserInput, match="to is before from"):
        Range.of(date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(BadUserInput, match="must lie within"):
        Range.of(date(1, 1, 1), date(1, 1, 2))  # the services refuse them too (CLI, jobs)


@pytest.mark.parametrize("route", ["/exports/statistics.csv", "/exports/cases.csv"])
@pytest.mark.parametrize(("first", "last"), [("9999-12-31", "9999-12-31"),
                                             ("0001-01-01", "0001-01-02"),
                                             ("2026-01-01", "9999-12-31"),
                                             ("0001-01-01", "2026-01-31")])  # fmt: skip
async def test_probe4_export_dates_outside_the_calendar_are_400(http, city, route, first, last):
    with frozen(clock.now()):  # the dates probed are the calendar's edges, not today's
        resp = await http.get(
            route,
            params={"from": first, "to": last},
            headers={"Authorization": f"Bearer {city.token('officer')}"},
        )
        body = assert_bad_input(resp)
        error = body["errors"][0]
        assert error["extensions"]["field"] == ("from" if first != "2026-01-01" else "to")
        assert "1990-01-01..2100-12-31" in error["message"]


async def test_probe4_exports_and_the_calendar_feed_take_the_edges_of_the_supported_range(
    http, city
):
    auth = {"Authorization": f"Bearer {city.token('officer')}"}
    for route in ("/exports/statistics.csv", "/exports/cases.csv"):
        for first, last in (("1990-01-01", "1990-01-31"), ("2100-12-01", "2100-12-31")):
            resp = await http.get(route, params={"from": first, "to": last}, headers=auth)
            assert resp.status_code == 200, (route, first, resp.text)
    feed = f"/rosters{city.path()}.ics"
    admin = {"Authorization": f"Bearer {city.token('admin')}"}
    ok = await http.get(feed, params={"from": "2100-12-01", "to": "2100-12-31"}, headers=admin)
    assert ok.status_code == 200, ok.text
    for edge in ("0001-01-01", "9999-12-31"):
        resp = await http.get(feed, params={"from": edge, "to": edge}, headers=admin)
        assert assert_bad_input(resp)["errors"][0]["extensions"]["field"] == "from"


def probe4_fields(city) -> list[tuple[str, str, str, dict]]:
    """(name, who, document with $d, other variables) of every field the probe named."""
    return [
        ("caseStatistics from", "officer",
         'query($d: Date!) { caseStatistics(from: $d, to: "2026-01-31") { received } }',
         {}),
        ("caseStatistics to", "officer",
         'query($d: Date!) { caseStatistics(from: "2026-01-01", to: $d) { received } }',
         {}),
        ("unitRanking week", "officer",
         "query($d: Date) { unitRanking(week: $d) { weekFrom } }", {}),
        ("cases receivedFrom", "officer",
         "query($d: Date) { cases(filter: {receivedFrom: $d}) { totalCount } }", {}),
        ("cases receivedTo", "officer",
         "query($d: Date) { cases(filter: {receivedTo: $d}) { totalCount } }", {}),
        ("evaluationStatistics from", "officer",
         'query($d: Date) { evaluationStatistics(from: $d, to: "2026-01-31") { evaluated } }',
         {}),
        ("evaluationStatistics to", "officer",
         'query($d: Date) { evaluationStatistics(from: "2026-01-01", to: $d) { evaluated } }',
         {}),
        ("provinceOverview", "sup",
         'query($d: Date!, $p: String!) { provinceOverview(province: $p, from: $d, to: $d) {'
         " total { received } } }",
         {"p": city.province}),
        ("dutyShifts", "admin",
         'query($d: Date!) { dutyShifts(from: $d, to: $d) { id } }', {}),
        ("registerCase receivedAt (DateTime)", "officer",
         "mutation($d: DateTime) { registerCase(input: {clientKey: \"pi-edge\", channel: VISIT,"
         ' type: CLAIM, category: "land", subject: "s", content: "c", locationPath: "/x",'
         ' petitioner: {name: "张三"}, receivedAt: $d}) { id } }', {}),
    ]  # fmt: skip


@pytest.mark.parametrize("edge", ["0001-01-01", "9999-12-31"])
async def test_probe4_every_date_argument_refuses_the_edges_of_the_calendar(http, gql, city, edge):
    """Each field of the finding, by variable and by literal, in both media types: a request
    error (``BAD_USER_INPUT``, no data; 400 in GraphQL-over-HTTP's media type), never
    ``INTERNAL``."""
    with frozen(clock.now()):  # the dates probed are the calendar's edges, not today's
        for name, who, document, extra in probe4_fields(city):
            if "registerCase" not in document:  # control: the document is valid, the date is not
                fine = {"d": "2026-01-31", **extra}
                assert (await gql(document, fine, token=city.token(who))).ok(), name
            value = edge + ("T00:00:00+08:00" if "DateTime" in name else "")
            by_variable = {"query": document, "variables": {"d": value, **extra}}
            header, rest = document.split("{", 1)  # the date written into the document instead
            header = re.sub(r"\$d: \w+!?(, )?", "", header).replace("()", "")
            literal = header + "{" + rest.replace("$d", json.dumps(value))
            by_literal = {"query": literal, "variables": extra}
            for body in (by_variable, by_literal):
                resp = await post(http, city.token(who), body, accept=APOLLO)
                error = assert_bad_input(resp)["errors"][0]
                assert "1990-01-01..2100-12-31" in error["message"], (name, error)
                legacy = await post(http, city.token(who), body)  # application/json: 200, no data
                assert legacy.status_code == 200 and legacy.json()["data"] is None, (
                    name,
                    legacy.text,
                )
                assert {e["extensions"]["code"] for e in legacy.json()["errors"]} == {
                    "BAD_USER_INPUT"
                }, (name, legacy.text)


async def test_probe4_the_edges_of_the_supported_range_are_answered(http, city, gql):
    officer = city.token("officer")
    for first, last in (("1990-01-01", "1990-01-31"), ("2100-12-01", "2100-12-31")):
        stats = await gql(
            "query($f: Date!, $t: Date!) { caseStatistics(from: $f, to: $t) { received } }",
            {"f": first, "t": last},
            token=officer,
        )
        assert stats.ok()["caseStatistics"]["received"] == 0
    ranking = await gql('{ unitRanking(week: "2100-12-31") { weekFrom weekTo } }', token=officer)
    assert ranking.ok()["unitRanking"] == {"weekFrom": "2100-12-27", "weekTo": "2101-01-02"}
    listed = await gql(
        '{ cases(filter: {receivedFrom: "1990-01-01", receivedTo: "2100-12-31"}) { totalCount } }',
        token=officer,
    )
    assert listed.ok()["cases"]["totalCount"] >= 0
    overview = await gql(
        'query($p: String!) { provinceOverview(province: $p, from: "2100-12-30", to: "2100-12-31")'
        " { total { received } } }",
        {"p": city.province},
        token=city.token("sup"),
    )
    assert overview.ok()["provinceOverview"]["total"]["received"] == 0


# --- reversed ranges: every from/to pair answers the same -------------------------------

REVERSED = [  # (who, document, the field named): from 2026-12-01, to 2026-01-01
    ("officer", '{ cases(filter: {receivedFrom: "2026-12-01", receivedTo: "2026-01-01"})'
     " { totalCount } }", "filter.receivedTo"),
    ("officer", '{ caseStatistics(from: "2026-12-01", to: "2026-01-01") { received } }', "to"),
    ("officer", '{ evaluationStatistics(from: "2026-12-01", to: "2026-01-01") { evaluated } }',
     "to"),
    ("admin", '{ dutyShifts(from: "2026-12-01", to: "2026-01-01") { id } }', "to"),
    ("officer", '{ receptionAnnouncements(from: "2026-12-01", to: "2026-01-01") { id } }', "to"),
    ("officer", '{ receptionCalendar(unitPath: "/nowhere", from: "2026-12-01",'
     ' to: "2026-01-01") }', "to"),
    ("leader", '{ sweepFindings(from: "2026-12-01", to: "2026-01-01") { id } }', "to"),
]  # fmt: skip


async def test_every_from_to_pair_refuses_a_reversed_range(http, gql, city):
    """GraphQL arguments, filters and the HTTP exports: a ``to`` before its ``from`` is
    BAD_USER_INPUT "to is before from" (400 on the routes), never an empty answer."""
    with frozen(sh(2026, 12, 2, 10)):  # the dates below are fixed: so is "now"
        for who, document, field in REVERSED:
            resp = await gql(document, token=city.token(who))
            assert (resp.code, resp.field) == ("BAD_USER_INPUT", field), (document, resp.body)
            assert "is before" in resp.errors[0]["message"], resp.body
            same_day = document.replace("2026-01-01", "2026-12-01")  # a one-day range is fine
            assert (await gql(same_day, token=city.token(who))).code != "BAD_USER_INPUT", same_day
        auth = {"Authorization": f"Bearer {city.token('officer')}"}
        for route in (
            "/exports/cases.csv",
            "/exports/statistics.xlsx",
            f"/rosters{city.path()}.ics",
        ):
            resp = await http.get(
                route, params={"from": "2026-12-31", "to": "2026-01-01"}, headers=auth
            )
            error = assert_bad_input(resp)["errors"][0]
            assert error["extensions"]["field"] == "to" and "is before" in error["message"], route


# --- 5. operation selection -------------------------------------------------------------


TWO_QUERIES = "query A { me { username } } query B { me { roles { role } } }"


@pytest.mark.parametrize("accept", [None, APOLLO], ids=["json", "graphql-response+json"])
async def test_probe5_several_operations_without_operation_name_are_a_request_error(
    http, city, accept
):
    resp = await post(http, city.token("officer"), {"query": TWO_QUERIES}, accept=accept)
    body = assert_bad_input(resp)
    expected = "application/json" if accept is None else "application/graphql-response+json"
    assert resp.headers["content-type"] == expected
    error = body["errors"][0]
    assert "operationName" in error["message"] and error["extensions"]["field"] == "operationName"
    named = await post(
        http, city.token("officer"), {"query": TWO_QUERIES, "operationName": "B"}, accept=accept
    )
    assert named.status_code == 200 and named.json()["data"]["me"]["roles"], named.text


async def test_probe5_a_mutation_first_in_the_document_does_not_run_unnamed(http, city, gql):
    slug = unique("opsel")
    document = (
        "mutation A { createOrgUnit(input: {parentPath: "
        f'"{city.path("c1")}", slug: "{slug}", name: "x", level: TOWNSHIP}}) {{ path }} }}'
        " query B { me { username } }"
    )
    resp = await post(http, city.token("admin"), {"query": document})
    assert_bad_input(resp)
    units = await gql("{ orgUnits { path } }", token=city.token("admin"))
    assert city.path(f"c1/{slug}") not in {u["path"] for u in units.ok()["orgUnits"]}


@pytest.mark.parametrize("accept", [None, APOLLO], ids=["json", "graphql-response+json"])
async def test_probe5_an_unknown_operation_name_is_a_json_request_error(http, city, accept):
    for document in (TWO_QUERIES, "query A { me { username } }", "{ me { username } }"):
        body = {"query": document, "operationName": "Z"}
        resp = await post(http, city.token("officer"), body, accept=accept)
        error = assert_bad_input(resp)["errors"][0]
        assert '"Z"' in error["message"], error
    anonymous = await post(http, None, {"query": TWO_QUERIES, "operationName": "Z"})
    assert_bad_input(anonymous)


async def test_probe5_persisted_documents_take_the_same_path(http, city):
    """A persisted query's hash sent with its text goes through the same selection."""
    digest = hashlib.sha256(TWO_QUERIES.encode()).hexdigest()
    apq = {"version": 1, "sha256Hash": digest}
    body = {"query": TWO_QUERIES, "extensions": {"persistedQuery": apq}}
    assert_bad_input(await post(http, city.token("officer"), body))
    unknown = {**body, "operationName": "Z"}
    assert_bad_input(await post(http, city.token("officer"), unknown, accept=APOLLO))


async def test_probe5_get_runs_no_operation_and_answers_json(http, city):
    resp = await http.get(
        "/graphql",
        params={"query": TWO_QUERIES, "operationName": "Z"},
        headers={"Authorization": f"Bearer {city.token('officer')}"},
    )
    assert_bad_input(resp, status=405)


# --- 6. webhook addresses with an IPv6 zone id -------------------------------------------

ZONED = [
    "http://[::1%25lo]:9999/hook",
    "http://[fe80::1%25lo]/hook",
    "http://[fd00::1%25eth0]/hook",
    "http://[::ffff:7f00:1%25lo]/hook",
    "http://[::1%251]/hook",
    "http://[2001:db8::1%25eth0]/hook",
    "https://[2606:4700::1111%25eth0]/hook",  # a public address, with a zone: still refused
]


async def test_probe6_a_webhook_url_with_any_ipv6_zone_id_is_refused(gql, city):
    admin = city.token("admin")
    for url in ZONED:
        resp = await gql(HOOK, {"url": url}, token=admin)
        assert (resp.code, resp.field) == ("BAD_USER_INPUT", "url"), (url, resp.body)
        assert "zone" in resp.errors[0]["message"]
    assert not (await gql(HOOK, {"url": "http://127.0.0.1:9/x"}, token=admin)).errors


async def test_probe6_zone_ids_are_refused_at_send_time_whatever_the_allow_list():
    allowed = "::1/128,fe80::/10,fd00::/8,127.0.0.0/8"
    for url in ZONED:
        assert "zone" in (check_webhook_url(url, env="dev", allowed=allowed) or ""), url
        with pytest.raises(PermanentFailure, match="zone"):
            await webhook_address(url, allowed=allowed)
    assert check_webhook_url("http://[::1]:9/x", env="dev", allowed=allowed) is None


# --- 9. a refused id-number search spends nothing ---------------------------------------


def searches(n: int) -> str:
    return "{ " + " ".join(
        f'a{i}: cases(filter: {{petitionerIdNumber: "{make_id_number()}"}}) {{ totalCount }}'
        for i in range(n)
    ) + " }"  # fmt: skip


@pytest.mark.parametrize("redis_url", BACKENDS)
async def test_probe9_a_refused_id_number_search_does_not_spend_the_allowance(db, redis_url):
    city = await build_city(db, unique("pis"), unique("pisp"))
    token = city.token("officer")
    async with client(redis_url, rate_limit_user=1000, rate_limit_id_search=5) as http:
        refused = await post(http, token, {"query": searches(25)})
        assert refused.status_code == 429, refused.text
        assert refused.json()["errors"][0]["extensions"]["bucket"] == "idSearch"
        assert refused.json()["data"] is None
        # the whole allowance is still there: five searches in one request, by variables too
        five = await post(http, token, {
            "query": "query($f: CaseFilter) { a: cases(filter: $f) { totalCount } "
                     "b: cases(filter: $f) { totalCount } }",
            "variables": {"f": {"petitionerIdNumber": make_id_number()}},
        })  # fmt: skip
        assert five.status_code == 200, five.text
        three = await post(http, token, {"query": searches(3)})
        assert three.status_code == 200, three.text
        over = await post(http, token, {"query": searches(1)})
        assert over.status_code == 429, over.text
    async with db.transaction() as session:
        tid = (await tenant_by_slug(session, city.slug)).id
    async with db.transaction(TenantScope.of([tid])) as session:
        logged = await session.scalar(
            text(
                "SELECT count(*) FROM pii_access_log WHERE username = :u AND case_id IS NULL"
                " AND petitioner_key IS NOT NULL"
            ),
            {"u": f"{city.slug}_officer"},
        )
    assert logged == 5  # the refused requests searched (and logged) nothing


async def test_probe9_an_invalid_id_number_spends_nothing(db):
    city = await build_city(db, unique("piv"), unique("pivp"))
    token = city.token("officer")
    async with client(None, rate_limit_user=1000, rate_limit_id_search=1) as http:
        bad = await post(http, token, {"query": '{ cases(filter: {petitionerIdNumber: "x"}) {'
                                                 " totalCount } }"})  # fmt: skip
        assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert (await post(http, token, {"query": searches(1)})).status_code == 200
