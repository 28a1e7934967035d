"""The ``xinfang`` command: migrate, seed, serve, run the worker, mint tokens, print the SDL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from sqlalchemy import select

import backend.domains  # noqa: F401 — every table and hook in place (backend/domains.py)
from backend.core.db import Database
from backend.core.settings import get_settings
from backend.core.startup import check_startup

T = TypeVar("T")

app = typer.Typer(
    help="xinfang — multi-tenant 信访 case handling",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
ROOT = Path(__file__).resolve().parent.parent


@app.callback()
def _every_command() -> None:
    """Logs as JSON on stderr (stdout carries what a command prints); progress bars when
    a person watches stderr, log lines otherwise (backend/core/progress.py)."""
    import sys

    from backend.core.logging import configure_logging
    from backend.core.progress import show_bars

    configure_logging(get_settings().log_level)
    show_bars(sys.stderr.isatty())


def _alembic_config(url: str | None = None):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if url:
        cfg.attributes["database_url"] = url
    return cfg


def run_migrations(url: str | None = None) -> None:
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


@app.command()
def migrate() -> None:
    """Apply all database migrations (as the database owner)."""
    run_migrations()
    typer.echo("migrated to head")


@app.command()
def distribute() -> None:
    """Citus: distribute every tenant table by tenant_id (as the owner, after migrate; idempotent)."""
    from backend.core.citus import NotCitus, UnlistedTables
    from backend.core.citus import distribute as _distribute

    async def main():
        db = Database()
        try:
            async with db.engine.begin() as conn:
                return await _distribute(conn, echo=typer.echo)
        finally:
            await db.dispose()

    try:
        layout = asyncio.run(main())
    except (NotCitus, UnlistedTables) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    if not layout.changed:
        typer.echo("already distributed")
        return
    kinds = sorted(set(layout.converted.values()))
    for kind in kinds:
        names = [t for t, k in layout.converted.items() if k == kind]
        typer.echo(f"{kind}: {', '.join(names)}")
    typer.echo(f"foreign keys re-added: {layout.foreign_keys}")
    for name in layout.settings:
        typer.echo(f"set: {name}")


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo: provinces, cities, users, and months of work up to today (idempotent)."""
    from backend.core.db import Database
    from backend.core.logging import configure_logging
    from backend.demo.seed import seed_demo as _seed

    configure_logging("WARNING")  # the jobs it runs would log each run; one line says it all

    async def main() -> list[str]:
        db = Database()
        try:
            return await _seed(db)
        finally:
            await db.dispose()

    created = asyncio.run(main())
    typer.echo(f"demo loaded ({', '.join(created) or 'already present'})")


@app.command("bench-data")
def bench_data(
    cases: int = typer.Option(10_000, "--cases", help="Cases in the province"),
    tenants: int = typer.Option(20, "--tenants", help="Cities (tenants)"),
    db: str = typer.Option(None, "--db", help="Database on the XF_DATABASE_URL server"),
    seed: int = typer.Option(1, "--seed"),
    province: str = typer.Option("benchprov", "--province", help="Province slug"),
) -> None:
    """Fill a migrated PostgreSQL database with a benchmark province (seeded, COPY-based)."""
    import json

    from backend.benchdata.generator import generate

    url = get_settings().database_url
    if not url.startswith("postgresql"):
        typer.echo("bench-data needs PostgreSQL (XF_DATABASE_URL)", err=True)
        raise typer.Exit(2)
    raw = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    if db:
        raw = f"{raw.rsplit('/', 1)[0]}/{db}"
    missing = asyncio.run(_missing_database(raw))
    if missing:
        typer.echo(missing, err=True)
        raise typer.Exit(2)
    run_migrations(raw.replace("postgresql://", "postgresql+asyncpg://", 1))
    summary = asyncio.run(generate(raw, cases=cases, tenants=tenants, seed=seed, province=province))
    typer.echo(json.dumps({k: v for k, v in summary.items() if k != "tenants"}, ensure_ascii=False))


async def _missing_database(raw_url: str) -> str | None:
    """What to do when the database of ``raw_url`` does not exist (``None`` when it does)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    try:
        conn = await asyncpg.connect(raw_url)
    except asyncpg.InvalidCatalogNameError:
        url = make_url(raw_url)
        where = (
            f"-h {url.host or '127.0.0.1'} -p {url.port or 5432} -U {url.username or 'postgres'}"
        )
        return (
            f"database {url.database} does not exist: create it with "
            f'`createdb {where} {url.database}` (or CREATE DATABASE "{url.database}" in psql)'
        )
    await conn.close()
    return None


def serve_workers(asked: int | None, database_url: str) -> int:
    """How many processes ``serve`` starts: ``asked``, else one per CPU core; one on SQLite
    (a single writer file, and the in-process jobs are elected through PostgreSQL)."""
    from backend.core.serving import cpu_cores

    if not database_url.startswith("postgresql"):
        if asked and asked > 1:
            typer.echo(f"SQLite: serving with 1 worker, not {asked}", err=True)
        return 1
    return asked or cpu_cores()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind"),
    port: int = typer.Option(8000, help="Port"),
    workers: int = typer.Option(
        None,
        min=1,
        help="Worker processes (default: the CPU cores; 1 on SQLite). The scheduled jobs "
        "run in one of them (README: sizing)",
    ),
    check_port: bool = typer.Option(
        False, "--check-port", help="Only check that the port is free (exit 1 if taken)"
    ),
) -> None:
    """Serve GraphQL (GraphiQL in dev) with uvicorn; one line says where once it is ready."""
    from backend.core.serving import port_in_use_message, ready_line, run_server

    taken = port_in_use_message(host, port)
    if taken:
        typer.echo(taken, err=True)
        raise typer.Exit(1)
    if check_port:
        return
    settings = get_settings()
    check_startup(settings)
    workers = serve_workers(workers, settings.database_url)
    run_server(host, port, workers, ready_line(host, port, graphiql=settings.env != "prod"))


@app.command()
def worker() -> None:
    """Run the arq worker (needs XF_REDIS_URL)."""
    from backend.core.logging import configure_logging
    from backend.jobs.worker import run, worker_settings

    configure_logging(get_settings().log_level)
    run(worker_settings())  # survives Redis outages (backend/jobs/worker.py)


@app.command()
def token(
    username: str,
    ttl: int = typer.Option(None, "--ttl", help="Lifetime in seconds (default XF_JWT_TTL_SECONDS)"),
) -> None:
    """Print a bearer token for an existing user."""
    from backend.authz.roles import AccountKind
    from backend.authz.tokens import issue_token
    from backend.core.db import Database
    from backend.tenants.service import account_by_username

    async def kind() -> str | None:
        db = Database()
        try:
            async with db.transaction() as session:
                account = await account_by_username(session, username)
                return account.kind if account else None
        finally:
            await db.dispose()

    found = asyncio.run(kind())
    if found is None:
        typer.echo(f"no such user: {username}", err=True)
        raise typer.Exit(1)
    if found == AccountKind.SERVICE_ACCOUNT:
        typer.echo(f"{username} is a service account: it authenticates with an API key", err=True)
        raise typer.Exit(1)
    try:
        typer.echo(issue_token(username, ttl_seconds=ttl))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ttl") from exc


@app.command("create-platform-admin")
def create_platform_admin(username: str) -> None:
    """Create a platform administrator (bootstrap)."""
    from backend.core.db import Database
    from backend.core.errors import AppError
    from backend.tenants.service import create_platform_admin as _create

    async def main() -> None:
        from backend.authz.principal import SYSTEM
        from backend.tenants.audit_log import admin_action

        db = Database()
        try:
            with admin_action("createPlatformAdmin", SYSTEM, target=username, via="cli"):
                async with db.transaction() as session:
                    await _create(session, username=username)
        finally:
            await db.dispose()

    try:
        asyncio.run(main())
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"platform admin {username} created")


@app.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL SDL (committed as schema.graphql)."""
    from backend.schema import sdl

    typer.echo(sdl(), nl=False)


@app.command("authz-doc")
def authz_doc() -> None:
    """Print docs/authz.md, the role × action matrix generated from the casbin policy."""
    from backend.authz.matrix import render_markdown

    typer.echo(render_markdown(), nl=False)


audit_app = typer.Typer(help="Audit trail checks.", no_args_is_help=True)
holidays_app = typer.Typer(help="The statutory working-day calendar.", no_args_is_help=True)
jobs_app = typer.Typer(help="Scheduled jobs.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
app.add_typer(holidays_app, name="holidays")
app.add_typer(jobs_app, name="jobs")
report_app = typer.Typer(help="Statistics and case-list exports (docs/indicators.md).")
app.add_typer(report_app, name="report")
pii_app = typer.Typer(help="PII encryption keys (docs/security.md).", no_args_is_help=True)
app.add_typer(pii_app, name="pii")


@pii_app.command("rotate-key")
def pii_rotate_key(
    rehash: bool = typer.Option(
        False, "--rehash", help="Also recompute searchable hashes (after changing XF_PII_HASH_KEY)"
    ),
    tenant: list[str] = typer.Option(None, "--tenant", help="Only these tenant slugs"),
) -> None:
    """Re-encrypt stored PII with XF_PII_ACTIVE_KEY (and encrypt any legacy plaintext)."""
    from backend.authz.principal import SYSTEM
    from backend.cases.pii_rotation import rotate
    from backend.tenants.audit_log import admin_action

    async def main(db: Database):
        with admin_action("rotatePiiKey", SYSTEM, details={"rehash": rehash}, via="cli"):
            return await rotate(db, rehash=rehash, tenants=tenant or None)

    report = _run_with_db(main)
    for purpose, count in sorted(report.reencrypted.items()):
        typer.echo(f"{purpose}: {count} values re-encrypted")
    if rehash:
        typer.echo(f"cases.petitioner_key: {report.rehashed} recomputed")
    typer.echo(
        f"OK: {report.tenants} tenants, active key {get_settings().pii_active_key or 'default'}"
    )


def _run_with_db(fn: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``fn(db)`` on a fresh engine and dispose of it."""

    async def main() -> T:
        db = Database()
        try:
            return await fn(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


@audit_app.command("verify")
def audit_verify(tenant: str = typer.Option(..., "--tenant", help="Tenant slug")) -> None:
    """Re-hash every case event of a tenant; report the first broken link (exit 1)."""
    from backend.cases.audit import count_tenant_events, verify_tenant_chain
    from backend.cases.models import Case
    from backend.core.db import TenantScope
    from backend.core.progress import track
    from backend.tenants.service import tenant_by_slug

    async def main(db: Database) -> str | None:
        async with db.transaction() as session:
            found = await tenant_by_slug(session, tenant)
        if found is None:
            typer.echo(f"no such tenant: {tenant}", err=True)
            raise typer.Exit(2)
        async with db.transaction(TenantScope.of([found.id])) as session:
            total = await count_tenant_events(session)
            with track(f"audit verify {tenant}", total=total, unit="events") as progress:
                count, broken = await verify_tenant_chain(session, progress)
            if broken is None:
                typer.echo(f"OK: {count} events of {tenant} verified")
                return None
            number = await session.scalar(select(Case.number).where(Case.id == broken.case_id))
            return f"BROKEN: case {number} ({broken.case_id}) event {broken.seq}: {broken.reason}"

    problem = _run_with_db(main)
    if problem:
        typer.echo(problem)
        raise typer.Exit(1)


@holidays_app.command("load")
def holidays_load(file: Path = typer.Argument(..., exists=True, readable=True)) -> None:
    """Load a State Council notice (JSON: year, source, days_off, working_days)."""
    from backend.authz.principal import SYSTEM
    from backend.cases.calendar import parse_override_file
    from backend.core.errors import AppError
    from backend.jobs.holidays import load_and_recompute

    try:
        notice = parse_override_file(file.read_text(encoding="utf-8"))
    except AppError as exc:
        typer.echo(f"error ({exc.field}): {exc.message}", err=True)
        raise typer.Exit(1) from exc

    async def main(db: Database) -> tuple[int, dict]:
        from backend.tenants.audit_log import admin_action

        details = {"year": notice.year, "source": notice.source}
        with admin_action(
            "loadHolidays", SYSTEM, target=str(notice.year), details=details, via="cli"
        ):
            # the open steps of that year get their dates on the new calendar now
            # (holiday_recompute, docs/deadlines.md)
            return await load_and_recompute(db, SYSTEM, notice)

    days, result = _run_with_db(main)
    typer.echo(f"{notice.year}: {days} days loaded from {notice.source}")
    typer.echo(
        f"holiday_recompute: {result.get('moved', 0)} due dates moved on "
        f"{result.get('cases', 0)} cases ({result.get('steps', 0)} steps updated, "
        f"{result.get('tenants', 0)} cities, {result['status']})"
    )
    if result["status"] != "OK":
        raise typer.Exit(1)


@holidays_app.command("list")
def holidays_list() -> None:
    """Years with a loaded notice; other years use the computed calendar."""
    from backend.cases.holidays import loaded_years

    async def main(db: Database) -> list[tuple[int, str, int]]:
        async with db.transaction() as session:
            return await loaded_years(session)

    rows = _run_with_db(main)
    for year, source, days in rows:
        typer.echo(f"{year}\t{days} days\t{source}")
    if not rows:
        typer.echo("no notices loaded: the holidays package's China calendar is used")


@jobs_app.command("run")
def jobs_run(
    name: str,
    tenant: str = typer.Option(None, "--tenant", help="Only this tenant (slug)"),
) -> None:
    """Run one scheduled job now, in this process (recorded in job_runs).

    A run by hand skips the time-of-day gates (the digest's 08:00, the report's first
    working day); the outbox's dedupe keys still keep one message per person and slot.
    """
    from backend.jobs.registry import CRON_JOBS
    from backend.jobs.runs import TenantNotFound

    jobs = {job.name: job for job in CRON_JOBS}
    if name not in jobs:
        typer.echo(f"unknown job {name}; known: {', '.join(sorted(jobs))}", err=True)
        raise typer.Exit(2)
    ctx = {"runner": "cli", "force": True, "tenant": tenant}
    try:
        result = _run_with_db(lambda db: jobs[name].coroutine({**ctx, "db": db}))
    except TenantNotFound:
        typer.echo(f"no such tenant: {tenant}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{name}: {result}")
    if isinstance(result, dict) and result.get("status") in {"FAILED", "PARTIAL"}:
        raise typer.Exit(1)


@jobs_app.command("list")
def jobs_list() -> None:
    """The scheduled jobs: name, when it runs, what it does (worker time zone)."""
    from backend.jobs.registry import CRON_JOBS, SCHEDULE

    width = max(len(job.name) for job in CRON_JOBS)
    for job in CRON_JOBS:
        when, what = SCHEDULE[job.name]
        typer.echo(f"{job.name:<{width}}  {when}\n{'':<{width}}  → {what}")


evaluations_app = typer.Typer(
    help="案件办理质量评价: pool import, draw audit.", no_args_is_help=True
)
app.add_typer(evaluations_app, name="evaluations")


@evaluations_app.command("verify-draw")
def evaluations_verify_draw(
    panel_id: str,
    tenant: str = typer.Option(None, "--tenant", help="Tenant slug (default: search all)"),
) -> None:
    """Re-run a panel's draw from its stored seed and pool snapshot; exit 1 on a mismatch."""
    from backend.core.db import TenantScope
    from backend.core.errors import AppError
    from backend.evaluations.panels import verify_draw
    from backend.tenants.models import Tenant

    async def main(db: Database) -> tuple[bool, list[str]]:
        async with db.transaction() as session:
            query = select(Tenant.id)
            if tenant:
                query = query.where(Tenant.slug == tenant)
            ids = list(await session.scalars(query))
        async with db.transaction(TenantScope.of(ids)) as session:
            check = await verify_draw(session, panel_id)
        p = check.panel
        lines = [
            f"panel {p.id} of case {check.case_number}: seed {p.seed!s} "
            f"({'int' if p.seed_is_int else 'str'}), size {p.size}, "
            f"{len(p.pool_snapshot)} eligible, policy {p.policy}",
            f"pool hash {'OK' if check.hash_ok else 'MISMATCH'}: {p.pool_hash}",
            f"members {'OK' if check.members_ok else 'MISMATCH'}: stored "
            f"{check.stored_members} re-drawn {check.redrawn_members}",
        ]
        if check.current_hash != p.pool_hash:
            lines.append(
                f"note: today's eligible pool differs (joined {len(check.pool_changes['joined'])},"
                f" left {len(check.pool_changes['left'])}); the stored snapshot is what counts"
            )
        return check.ok, lines

    try:
        ok, lines = _run_with_db(main)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from exc
    for line in lines:
        typer.echo(line)
    typer.echo("OK: the draw is reproducible" if ok else "BROKEN: the draw does not reproduce")
    if not ok:
        raise typer.Exit(1)


@evaluations_app.command("import")
def evaluations_import(
    file: Path = typer.Argument(..., exists=True, readable=True),
    tenant: str = typer.Option(..., "--tenant", help="Tenant slug"),
) -> None:
    """Enrol evaluators from a CSV file: all rows or none (row errors listed, exit 1)."""
    from backend.authz.principal import SYSTEM
    from backend.core.errors import AppError
    from backend.evaluations.csv_import import import_evaluators

    text = file.read_text(encoding="utf-8-sig")

    async def main(db: Database):
        from backend.tenants.audit_log import admin_action

        with admin_action(
            "importEvaluators", SYSTEM, target=tenant, details={"file": file.name}, via="cli"
        ):
            async with db.transaction() as session:
                return await import_evaluators(session, SYSTEM, text=text, tenant=tenant)

    try:
        result = _run_with_db(main)
    except AppError as exc:
        typer.echo(f"error ({exc.field}): {exc.message}", err=True)
        for err in exc.extensions.get("rowErrors", []):
            typer.echo(f"  row {err['row']} {err['field']}: {err['message']}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{result.imported} evaluators imported into {tenant} ({result.created_users} new users)"
    )


@report_app.command("export")
def report_export(  # noqa: PLR0913 — typer: one parameter per command-line option
    kind: str = typer.Argument(..., help="statistics | cases"),
    user: str = typer.Option(..., "--as", help="Export with this account's rights"),
    fmt: str = typer.Option("csv", "--format", help="csv | xlsx"),
    out: Path = typer.Option(None, "--out", help="File to write (default: stdout)"),
    first: str = typer.Option(
        None, "--from", help="YYYY-MM-DD (local, inclusive); statistics: default this month"
    ),
    last: str = typer.Option(
        None, "--to", help="YYYY-MM-DD (local, inclusive); statistics: default this month"
    ),
    tenant: str = typer.Option(None, "--tenant"),
    unit: str = typer.Option(None, "--unit", help="Unit path (subtree)"),
    province: str = typer.Option(None, "--province", help="Supervisors: every city side by side"),
    unmasked: bool = typer.Option(
        False,
        "--unmasked",
        help="Cases: petitioner contact unmasked where --as may see it (each case logged)",
    ),
) -> None:
    """Write an indicator table or a filtered case list as CSV or XLSX.

    Statistics cover --from to --to, by default the current month in the city's time
    zone. PII is masked unless --unmasked: then exactly the cases the per-case API would
    show unmasked to --as are, and each is written to the PII access log. Long case lists
    show their progress.
    """
    import sys

    from backend.core.errors import AppError
    from backend.stats.exports import Format, export_to

    if kind not in ("statistics", "cases") or fmt not in ("csv", "xlsx"):
        typer.echo("kind must be statistics|cases and --format csv|xlsx", err=True)
        raise typer.Exit(2)
    if fmt == "xlsx" and out is None and sys.stdout.isatty():
        typer.echo("XLSX is binary: write it to a file with --out FILE (or redirect)", err=True)
        raise typer.Exit(2)
    from backend.core.validation import parse_date

    try:  # YYYY-MM-DD within the supported dates, as the HTTP exports take them
        d1 = parse_date(first, "--from") if first else None
        d2 = parse_date(last, "--to") if last else None
    except AppError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from exc

    async def main(db: Database) -> int:
        target = out.open("wb") if out else sys.stdout.buffer
        try:
            return await export_to(
                db,
                user,
                kind,
                Format(fmt),
                target,
                first=d1,
                last=d2,
                tenant=tenant,
                unit_path=unit,
                province=province,
                masked=not unmasked,
            )
        finally:
            if out:
                target.close()

    try:
        written = _run_with_db(main)
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if out:
        typer.echo(f"{written} bytes written to {out}", err=True)


if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

persisted_app = typer.Typer(
    help="Persisted queries: the allow-list of GraphQL documents (docs/graphql-limits.md).",
    no_args_is_help=True,
)
app.add_typer(persisted_app, name="persisted-queries")


async def _tenant_id(session: AsyncSession, slug: str | None) -> uuid.UUID | None:
    """The id of tenant ``slug`` (``None`` for no slug); exit 2 when there is none."""
    from backend.tenants.service import tenant_by_slug

    if slug is None:
        return None
    found = await tenant_by_slug(session, slug)
    if found is None:
        typer.echo(f"no such tenant: {slug}", err=True)
        raise typer.Exit(2)
    return found.id


@persisted_app.command("load")
def persisted_load(
    file: Path = typer.Argument(..., exists=True, readable=True, help="Manifest (JSON)"),
    tenant: str = typer.Option(None, "--tenant", help="Only for this city (default: every city)"),
    replace: bool = typer.Option(False, "--replace", help="Drop documents not in this manifest"),
) -> None:
    """Load an Apollo persisted-query manifest or a {sha256: query} object (idempotent)."""
    from backend.core.errors import AppError
    from backend.core.persisted import load_manifest, parse_manifest

    try:
        entries = parse_manifest(file.read_text(encoding="utf-8"))
    except AppError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc

    async def main(db: Database) -> int:
        async with db.transaction() as session:
            tenant_id = await _tenant_id(session, tenant)
            return await load_manifest(session, entries, tenant_id=tenant_id, replace=replace)

    added = _run_with_db(main)
    typer.echo(f"{added} new of {len(entries)} documents for {tenant or 'every city'}")


@persisted_app.command("mode")
def persisted_mode(
    state: str = typer.Argument(..., help="on: only persisted queries; off: any document"),
    tenant: str = typer.Option(..., "--tenant", help="City slug"),
) -> None:
    """Switch a city's allow-list mode (its users may then run persisted queries only)."""
    from backend.core.persisted import set_allow_list_only

    if state not in ("on", "off"):
        typer.echo("state must be on or off", err=True)
        raise typer.Exit(2)

    async def main(db: Database) -> None:
        async with db.transaction() as session:
            await set_allow_list_only(session, await _tenant_id(session, tenant), state == "on")

    _run_with_db(main)
    typer.echo(f"{tenant}: persisted queries only {state}")


if __name__ == "__main__":
    app()
