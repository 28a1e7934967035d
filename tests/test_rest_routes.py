"""The REST routes (/exports, /reports, /rosters/*.ics) share GraphQL's authentication, rate
limiter and error mapping (issue 18, items 2 and 5); the calendar feed answers 404 for units
the caller cannot see, and a monthly report opens from a signed link (issue 22, items 6-7)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from backend.authz.tokens import issue_token
from backend.jobs.reports import monthly_report
from backend.stats.report import list_reports
from tests.clocks import frozen, sh
from tests.helpers import build_city, unique
from tests.test_jobs_support import who
from tests.test_rate_limits import client, post
from tests.test_security_probe import ASSIGN, CREATE_USER, mint, service_account

LINK = "query($id: ID!) { monthlyReport(id: $id) { htmlUrl htmlLink } }"
REVOKE = "mutation($i: RevokeRoleInput!) { revokeRole(input: $i) { username } }"


@pytest.fixture(scope="module")
async def city(db):
    """A city with November 2026's monthly reports (city and counties)."""
    built = await build_city(db, unique("rr"), unique("rrp"))
    with frozen(sh(2026, 12, 1, 9)):
        await monthly_report({"db": db, "runner": "test", "tenant": built.slug})
    return built


async def report_ids(db, city) -> dict[str, str]:
    admin = await who(db, city, "admin")
    async with db.transaction(admin.scope()) as session:
        return {r.unit_path: str(r.id) for r in await list_reports(session, admin)}


def rest_urls(city, report_id: str) -> list[str]:
    return [
        "/exports/cases.csv",
        "/exports/statistics.csv?from=2026-11-01&to=2026-11-30",
        f"/rosters{city.path()}.ics?from=2026-11-01&to=2026-11-30",
        f"/reports/{report_id}.html",
        f"/reports/{report_id}.xlsx",
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- one authentication ----------------------------------------------------------------------


async def test_an_api_key_opens_every_rest_route(gql, db, http, city):
    username = await service_account(gql, city, role="PETITION_OFFICER", rel="")
    key = (await mint(gql, city, username))["key"]
    reports = await report_ids(db, city)
    for url in rest_urls(city, reports[city.path()]):
        for header in (f"ApiKey {key}", f"Bearer {key}"):
            resp = await http.get(url, headers={"Authorization": header})
            assert resp.status_code == 200, (url, header[:6], resp.text[:300])


async def test_every_rest_route_refuses_alike_without_or_with_a_bad_credential(http, db, city):
    reports = await report_ids(db, city)
    for url in rest_urls(city, reports[city.path()]):
        for headers in ({}, bearer("nope"), {"Authorization": "ApiKey xfk.nope"}):
            resp = await http.get(url, headers=headers)
            assert resp.status_code == 401, (url, headers, resp.text[:200])
            assert resp.headers["www-authenticate"].startswith("Bearer")
            body = resp.json()
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body


# --- one rate limiter --------------------------------------------------------------------------


@pytest.mark.parametrize("route", range(5))
async def test_after_a_429_on_graphql_the_rest_routes_answer_429_too(db, city, route):
    reports = await report_ids(db, city)
    url = rest_urls(city, reports[city.path()])[route]
    async with client(None, rate_limit_user=2) as http:
        token = city.token("officer")
        assert (await post(http, token)).status_code == 200
        assert (await post(http, token)).status_code == 200
        assert (await post(http, token)).status_code == 429
        resp = await http.get(url, headers=bearer(token))
        assert resp.status_code == 429, (url, resp.text[:200])
        assert int(resp.headers["retry-after"]) >= 1
        error = resp.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["bucket"] == "user"


async def test_an_export_is_charged_like_several_queries(city):
    async with client(None, rate_limit_user=10, rate_limit_export_cost=10) as http:
        token = city.token("leader")
        assert (await http.get("/exports/cases.csv", headers=bearer(token))).status_code == 200
        assert (await post(http, token)).status_code == 429  # the export used all 10 points


# --- the calendar feed: 404 for units the caller cannot see -----------------------------------


async def test_the_calendar_feed_is_404_for_unknown_and_foreign_units(http, world, city):
    token = city.token("officer")
    own = await http.get(f"/rosters{city.path('c1')}.ics", headers=bearer(token))
    assert own.status_code == 200 and own.text.startswith("BEGIN:VCALENDAR")
    for path in (city.path("nosuch"), "/nosuch", world.a.path(), world.a.path("c1")):
        resp = await http.get(f"/rosters{path}.ics", headers=bearer(token))
        assert resp.status_code == 404, (path, resp.text[:200])
        assert resp.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# --- signed report links ---------------------------------------------------------------------


async def link_of(gql, token: str, report_id: str) -> str:
    with frozen(sh(2026, 12, 2, 9)):
        found = (await gql(LINK, {"id": report_id}, token=token)).ok()["monthlyReport"]
    assert found["htmlLink"].startswith(found["htmlUrl"] + "?link=")
    return found["htmlLink"]


async def test_a_signed_link_opens_its_report_without_a_header_until_it_expires(
    gql, db, http, city
):
    reports = await report_ids(db, city)
    link = await link_of(gql, city.token("leader"), reports[city.path()])
    with frozen(sh(2026, 12, 2, 20)):
        page = await http.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "private, no-store"
    with frozen(sh(2026, 12, 4, 9)):  # more than XF_REPORT_LINK_TTL_SECONDS (24 h) later
        expired = await http.get(link)
    assert expired.status_code == 401, expired.text


async def test_a_signed_link_opens_nothing_but_its_own_report(gql, db, http, city):
    reports = await report_ids(db, city)
    link = await link_of(gql, city.token("leader"), reports[city.path()])
    token = parse_qs(urlsplit(link).query)["link"][0]
    with frozen(sh(2026, 12, 2, 10)):
        other = await http.get(f"/reports/{reports[city.path('c1')]}.html?link={token}")
        xlsx = await http.get(f"/reports/{reports[city.path()]}.xlsx?link={token}")
        as_bearer = await http.post(
            "/graphql", json={"query": "{ me { username } }"}, headers=bearer(token)
        )
        on_graphql = await http.post(
            f"/graphql?link={token}", json={"query": "{ me { username } }"}
        )
        forged = await http.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"))
    for resp in (other, xlsx, as_bearer, on_graphql, forged):
        assert resp.status_code == 401, (resp.request.url, resp.text[:200])


async def test_a_signed_link_follows_its_users_roles(gql, db, http, city):
    username = unique(f"{city.slug}_reader")
    admin = city.token("admin")
    user = {"tenant": city.slug, "username": username, "displayName": "r"}
    (await gql(CREATE_USER, {"i": user}, token=admin)).ok()
    grant = {"username": username, "role": "PETITION_OFFICER", "orgUnitPath": city.path("c1")}
    (await gql(ASSIGN, {"i": grant}, token=admin)).ok()
    reports = await report_ids(db, city)
    link = await link_of(gql, issue_token(username), reports[city.path("c1")])
    with frozen(sh(2026, 12, 2, 10)):
        assert (await http.get(link)).status_code == 200
    (await gql(REVOKE, {"i": grant}, token=admin)).ok()
    with frozen(sh(2026, 12, 2, 10)):
        assert (await http.get(link)).status_code in (403, 404)


async def test_exports_refuse_unknown_parameters_and_odd_flags(http, world):
    """Found by the outside probe: ``masked=maybe`` and ``unit=`` were silently ignored."""
    auth = {"Authorization": f"Bearer {world.a.token('officer')}"}
    for params, field in (({"masked": "maybe"}, "masked"), ({"unit": "/x"}, "unit")):
        r = await http.get("/exports/cases.csv", params=params, headers=auth)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"][0]["extensions"]["field"] == field
    ok = await http.get("/exports/cases.csv", params={"masked": "false"}, headers=auth)
    assert ok.status_code == 200
