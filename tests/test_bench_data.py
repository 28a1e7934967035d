"""The benchmark province generator (backend/benchdata): a small province in the test
database, checked from the outside (the API, the audit chain, RLS) and against the
invariants the app relies on (numbers, counters, paths, clocks)."""

from __future__ import annotations

import re

import asyncpg
import pytest
from sqlalchemy import text

from backend.authz.tokens import issue_token
from backend.benchdata.generator import case_shares, generate
from backend.cases.audit import verify_tenant_chain
from backend.cases.models import CaseStatus
from backend.core.db import TenantScope
from backend.core.settings import get_settings
from tests.helpers import unique

pytestmark = pytest.mark.postgres

CASES = """query($f: CaseFilter) { cases(first: 50, filter: $f) {
  totalCount edges { node { number status holderUnit { path } leader { username } petitioner { phone masked }
  deadlines { step status dueAt } } } } }"""

# What a petition officer at county ``$2`` sees in its tenant (backend/cases/visibility.py):
# held or located in its subtree, minus accusations against a unit covering its grant,
# minus accusations naming the officer.
VISIBLE = """
SELECT count(*) FROM cases
WHERE tenant_id = $1
  AND (holder_path = $2 OR holder_path LIKE $2 || '/%'
       OR location_path = $2 OR location_path LIKE $2 || '/%')
  AND NOT (type = 'ACCUSATION' AND accused_path IS NOT NULL
           AND ($2 = accused_path OR $2 LIKE accused_path || '/%'))
  AND (accused_username IS NULL OR accused_username <> $3)
  AND ($4::text IS NULL OR status = $4)
"""


@pytest.fixture(scope="module")
async def province(migrated):
    raw = get_settings().database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    summary = await generate(raw, cases=3000, tenants=3, seed=7, province=unique("bd"))
    conn = await asyncpg.connect(raw)
    yield summary, conn
    await conn.close()


def test_case_shares_are_skewed_and_exact():
    shares = case_shares(1_000_000, 20)
    assert sum(shares) == 1_000_000
    assert shares == sorted(shares, reverse=True)
    assert sum(shares[:3]) > 0.45 * 1_000_000  # a few large cities take most cases


async def test_summary_counts_match_the_database(province):
    summary, conn = province
    assert summary["cases"] == 3000 and len(summary["tenants"]) == 3
    ids = [t["id"] for t in summary["tenants"]]
    for table, key in (
        ("cases", "cases"),
        ("case_events", "events"),
        ("case_deadlines", "deadlines"),
    ):
        n = await conn.fetchval(
            f"SELECT count(*) FROM {table} WHERE tenant_id = ANY($1::uuid[])", ids
        )
        assert n == summary[key], table
    biggest = summary["tenants"][0]
    assert biggest["roleAssignments"] >= 10_000
    villages = await conn.fetchval(
        "SELECT count(*) FROM org_units WHERE tenant_id = $1 AND level = 'VILLAGE'", biggest["id"]
    )
    assert villages >= 4000


async def test_every_status_in_every_tenant_with_consistent_fields(province):
    summary, conn = province
    for t in summary["tenants"]:
        statuses = {
            r["status"]
            for r in await conn.fetch(
                "SELECT DISTINCT status FROM cases WHERE tenant_id = $1", t["id"]
            )
        }
        assert statuses == {s.value for s in CaseStatus}, t["slug"]
    ids = [t["id"] for t in summary["tenants"]]
    bad = await conn.fetchval(
        """SELECT count(*) FROM cases WHERE tenant_id = ANY($1::uuid[]) AND (
             (status IN ('REPLIED','REVIEW_REQUESTED','REVIEWED','RE_REVIEW_REQUESTED',
                         'RE_REVIEWED') AND replied_at IS NULL)
          OR (status = 'CLOSED') <> (closed_at IS NOT NULL)
          OR (rating IS NULL) <> (rated_at IS NULL)
          OR (status = 'EXTENDED' AND NOT extension_approved)
          OR version <> (SELECT count(*) FROM case_events e
                         WHERE e.tenant_id = cases.tenant_id AND e.case_id = cases.id))""",
        ids,
    )
    assert bad == 0
    # the case mirrors its earliest open clock
    mismatched = await conn.fetchval(
        """SELECT count(*) FROM cases c WHERE c.tenant_id = ANY($1::uuid[])
           AND c.due_at IS DISTINCT FROM (SELECT min(d.due_at) FROM case_deadlines d
               WHERE d.tenant_id = c.tenant_id AND d.case_id = c.id AND d.status = 'OPEN')""",
        ids,
    )
    assert mismatched == 0
    assert await conn.fetchval(
        "SELECT count(*) FROM cases WHERE tenant_id = ANY($1::uuid[]) AND rating IS NOT NULL", ids
    )
    assert await conn.fetchval(
        "SELECT count(*) FROM cases WHERE tenant_id = ANY($1::uuid[]) AND accused_path IS NOT NULL",
        ids,
    )


async def test_numbers_are_gap_free_per_tenant_and_year_with_the_counter_row(province):
    summary, conn = province
    for t in summary["tenants"]:
        rows = await conn.fetch(
            """SELECT split_part(number, '-', 2)::int AS year,
                      count(*) AS n, max(split_part(number, '-', 3)::int) AS top,
                      min(split_part(number, '-', 3)::int) AS bottom
               FROM cases WHERE tenant_id = $1 GROUP BY 1""",
            t["id"],
        )
        counters = {
            r["year"]: r["last"]
            for r in await conn.fetch(
                "SELECT year, last FROM case_counters WHERE tenant_id = $1", t["id"]
            )
        }
        assert counters == {r["year"]: r["n"] for r in rows}
        assert all(r["bottom"] == 1 and r["top"] == r["n"] for r in rows)


async def test_unit_paths_match_the_tree(province):
    summary, conn = province
    ids = [t["id"] for t in summary["tenants"]]
    broken = await conn.fetchval(
        """SELECT count(*) FROM org_units u JOIN org_units p
             ON p.tenant_id = u.tenant_id AND p.id = u.parent_id
           WHERE u.tenant_id = ANY($1::uuid[])
             AND (u.path <> p.path || '/' || u.slug OR u.depth <> p.depth + 1)""",
        ids,
    )
    assert broken == 0
    orphans = await conn.fetchval(
        """SELECT count(*) FROM cases c WHERE c.tenant_id = ANY($1::uuid[]) AND NOT EXISTS (
             SELECT 1 FROM org_units u WHERE u.tenant_id = c.tenant_id
               AND u.id = c.holder_unit_id AND u.path = c.holder_path)""",
        ids,
    )
    assert orphans == 0


async def test_a_county_officer_lists_its_cases_and_the_total_matches_sql(province, gql):
    summary, conn = province
    for t in summary["tenants"][:2]:
        token = issue_token(t["countyOfficer"])
        for status in (None, "ACCEPTED", "CLOSED"):
            f = {"unitPath": t["countyPath"], **({"status": status} if status else {})}
            page = (await gql(CASES, {"f": f}, token=token)).ok()["cases"]
            expected = await conn.fetchval(
                VISIBLE, t["id"], t["countyPath"], t["countyOfficer"], status
            )
            assert page["totalCount"] == expected > 0, (t["slug"], status)
            assert len(page["edges"]) == min(50, expected)
            for edge in page["edges"]:
                node = edge["node"]
                assert node["number"].startswith(t["slug"].split("-")[-1][:2].upper())
                assert status is None or node["status"] == status
                assert node["holderUnit"]["path"].startswith("/" + t["slug"])
                if not node["petitioner"]["masked"]:  # stored encrypted, read back in clear
                    assert re.fullmatch(r"1[3-9]\d{9}", node["petitioner"]["phone"])


async def test_the_event_chains_verify(province, db):
    summary, conn = province
    for t in summary["tenants"]:
        async with db.transaction(TenantScope.of([t["id"]])) as session:
            count, broken = await verify_tenant_chain(session)
        assert broken is None, broken
        assert count == await conn.fetchval(
            "SELECT count(*) FROM case_events WHERE tenant_id = $1", t["id"]
        )


async def test_row_level_security_still_isolates_the_generated_tenants(province, db):
    summary, _conn = province
    a, b = summary["tenants"][0], summary["tenants"][1]
    async with db.session(TenantScope.of([a["id"]])) as session:
        seen = {r[0] for r in await session.execute(text("SELECT DISTINCT tenant_id FROM cases"))}
        other = await session.execute(
            text("SELECT count(*) FROM case_events WHERE tenant_id = :b"), {"b": b["id"]}
        )
        assert other.scalar() == 0
    assert {str(x) for x in seen} == {a["id"]}
