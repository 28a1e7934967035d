"""Exports: HTTP downloads (auth, masking, CSV/XLSX), the CLI, and 100k rows in bounded memory."""

from __future__ import annotations

import asyncio
import csv
import io
import tracemalloc
from datetime import UTC

from openpyxl import load_workbook
from sqlalchemy import Uuid, bindparam, select, text
from typer.testing import CliRunner

from backend.cases.queries import CaseFilter
from backend.core.db import TenantScope
from backend.stats import exports
from backend.tenants.models import OrgUnit
from backend.tenants.principals import load_principal
from tests.clocks import frozen, sh
from tests.helpers import build_city, create_supervisors, unique
from tests.test_jobs_support import register, route, tenant_id

PHONE = "13800001234"


async def _get(http, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.get(path, params=params, headers=headers)


def _csv(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))


async def _small_city(db):
    province = unique("ep")
    city = await build_city(db, unique("ex"), province)
    with frozen(sh(2025, 4, 1)):
        for _ in range(3):
            await route(db, city, await register(db, city), "c1")
    city.tokens.update(await create_supervisors(db, {"sup": province}))
    return city


async def test_case_export_is_masked_and_scoped(db, http, world):
    city = await _small_city(db)
    resp = await _get(http, "/exports/cases.csv", city.token("sup"), tenant=city.slug)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = _csv(resp)
    assert len(rows) == 4 and rows[0][0].startswith("编号")
    phones, ids = {r[10] for r in rows[1:]}, {r[11] for r in rows[1:]}
    assert PHONE not in phones and all("*" in p for p in phones)
    assert all("*" in i for i in ids)
    # officials: masked too, and the same list
    officer = _csv(await _get(http, "/exports/cases.csv", city.token("officer")))
    assert len(officer) == 4 and all(PHONE not in r for r in officer)
    # another province's supervisor / another city's officer: nothing
    # (a tenant outside the caller's scope is refused as the statistics are, 403, the
    # same for a city that does not exist)
    for slug in (city.slug, "no-such-city"):
        other = await _get(http, "/exports/cases.csv", world.tokens["sup2"], tenant=slug)
        assert other.status_code == 403, other.text
        assert other.json()["errors"][0]["message"].replace(slug, "<slug>") == (
            "no cases of tenant <slug> for this account"
        )
    foreign = _csv(await _get(http, "/exports/cases.csv", world.a.token("officer")))
    assert not any(r[0].startswith(city.slug) for r in foreign[1:])
    assert all(PHONE not in "".join(r) for r in foreign)
    # auth and refusals
    assert (await _get(http, "/exports/cases.csv")).status_code == 401
    assert (await _get(http, "/exports/cases.csv", "not-a-token")).status_code == 401
    assert (await _get(http, "/exports/cases.csv", world.tokens["platform"])).status_code == 403
    assert (await _get(http, "/exports/cases.pdf", city.token("sup"))).status_code == 404
    bad = await _get(http, "/exports/cases.csv", city.token("sup"), status="NOPE")
    assert bad.status_code == 400


async def test_case_export_as_xlsx(db, http):
    city = await _small_city(db)
    resp = await _get(http, "/exports/cases.xlsx", city.token("sup"), tenant=city.slug)
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(resp.content), read_only=True).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 4 and all(PHONE not in (r[10] or "") for r in rows[1:])


async def test_statistics_export(db, http, world):
    city = await _small_city(db)
    params = {"from": "2025-01-01", "to": "2025-12-31"}
    rows = _csv(await _get(http, "/exports/statistics.csv", city.token("officer"), **params))
    by = {r[0]: r for r in rows[1:]}
    assert by[city.path("c1")][2] == "3" and by["*"][2] == "3"
    assert by[city.path("dept")][3] == ""  # a null rate is an empty cell
    sup = await _get(
        http, "/exports/statistics.xlsx", city.token("sup"), province=city.province, **params
    )
    ws = load_workbook(io.BytesIO(sup.content), read_only=True).active
    table = list(ws.iter_rows(values_only=True))
    assert [r[0] for r in table[1:]] == [city.slug, "*"]
    # another city: refused; no dates: the current month (tests/test_first_hour.py)
    refused = await _get(
        http, "/exports/statistics.csv", world.a.token("officer"), tenant=city.slug, **params
    )
    assert refused.status_code == 403
    bad = await _get(http, "/exports/statistics.csv", city.token("officer"), **{"from": "x"})
    assert bad.status_code == 400


async def test_cli_report_export(db, tmp_path):
    city = await _small_city(db)
    from backend.cli import app as cli

    out = tmp_path / "cases.csv"
    args = ["report", "export", "cases", "--as", f"{city.slug}_officer", "--out", str(out)]
    result = await asyncio.to_thread(CliRunner().invoke, cli, args)  # its own event loop
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    assert len(rows) == 4 and all(PHONE not in "".join(r) for r in rows)
    # --unmasked: the city's officer handles every case, so every phone shows (and is logged)
    result = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--unmasked"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text("utf-8-sig"))))
    assert len(rows) == 4 and all(PHONE in "".join(r) for r in rows[1:])


def bulk_cases_sql(dialect: str):
    """One INSERT … SELECT over a generated series: 100k rows in a second or two."""
    if dialect == "postgresql":
        series, gen_id, tags, false = (
            "generate_series(0, :n - 1) AS s(i)",
            "gen_random_uuid()",
            "'[]'::json",
            "false",
        )
        number = "'BIG-' || lpad(i::text, 6, '0')"
        at = "TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL '1 second'"
        prefix = ""
    else:
        series, gen_id, tags, false = "s", "lower(hex(randomblob(16)))", "'[]'", "0"
        number = "'BIG-' || printf('%06d', i)"
        at = "datetime('2025-01-01', '+' || i || ' seconds') || '.000000'"
        prefix = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < :n - 1) "
    sql = (
        f"{prefix}INSERT INTO cases (tenant_id, id, created_at, number, client_key, payload_hash,"
        " channel, type, category, subject, content, priority, tags, head_count, petitioner_name,"
        " petitioner_phone, petitioner_id_number, location_unit_id, location_path, holder_unit_id,"
        " holder_path, registered_by_id, status, version, received_at, warning_color,"
        " repeat_count, skip_level, extension_approved, updated_at) "
        f"SELECT :tid, {gen_id}, {at}, {number}, 'k' || i, '{'0' * 64}', 'LETTER', 'CLAIM',"
        f" 'land', 'subject ' || i, 'c', 'NORMAL', {tags}, 1, '张三', '{PHONE}',"
        f" '411403198001010012', :unit, :path, :unit, :path, :by, 'ROUTED', 1, {at}, 'NONE', 0,"
        f" 'NONE', {false}, {at} FROM {series}"
    )
    return text(sql).bindparams(
        bindparam("tid", type_=Uuid()),
        bindparam("unit", type_=Uuid()),
        bindparam("by", type_=Uuid()),
    )


async def test_100k_rows_stream_in_bounded_memory(db):
    city = await build_city(db, unique("big"), unique("bp"))
    tid = await tenant_id(db, city)
    principal = await load_principal(db, f"{city.slug}_officer")
    n = 100_000
    async with db.transaction(TenantScope.of([tid])) as session:
        unit = await session.scalar(select(OrgUnit).where(OrgUnit.path == city.path("c1")))
        if db.dialect == "postgresql":
            # the fixture writes as the owner: Citus runs INSERT … SELECT as a COPY into the
            # shards, which row-level security refuses for the serving role
            await session.execute(text("RESET ROLE"))
        await session.execute(
            bulk_cases_sql(db.dialect),
            {"tid": tid, "unit": unit.id, "path": unit.path, "by": principal.account_id, "n": n},
        )
    clauses = await exports.case_clauses(db, principal, CaseFilter())
    tracemalloc.start()
    lines = size = 0
    try:
        async for chunk in exports.csv_stream(
            exports.CASE_HEADER, exports.case_rows(db, principal, clauses), UTC
        ):
            lines += chunk.count(b"\n")
            size += len(chunk)
            assert PHONE.encode() not in chunk
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == n + 1
    assert size > 10_000_000  # ~100 bytes a row: the whole file would not fit the bound
    assert peak < 8_000_000, peak
