"""The ``xinfang`` command: migrate, seed, serve, run the worker, mint tokens, print the SDL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from backend.core.settings import get_settings

app = typer.Typer(
    help="xinfang — multi-tenant 信访 case handling",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
ROOT = Path(__file__).resolve().parent.parent


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


@app.command("seed-demo")
def seed_demo() -> None:
    """Load the demo provinces, cities, org trees and users (idempotent)."""
    from backend.core.db import Database
    from backend.tenants.demo import seed_demo as _seed

    async def main() -> list[str]:
        db = Database()
        try:
            return await _seed(db)
        finally:
            await db.dispose()

    created = asyncio.run(main())
    typer.echo(f"demo loaded ({', '.join(created) or 'already present'})")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind"),
    port: int = typer.Option(8000, help="Port"),
    workers: int = typer.Option(1, help="uvicorn worker processes"),
) -> None:
    """Serve GraphQL (GraphiQL in dev) with uvicorn."""
    import uvicorn

    get_settings().check_production_safety()
    uvicorn.run(
        "backend.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@app.command()
def worker() -> None:
    """Run the arq worker (needs XF_REDIS_URL)."""
    from arq.worker import run_worker

    from backend.core.logging import configure_logging
    from backend.jobs.worker import worker_settings

    configure_logging(get_settings().log_level)
    run_worker(worker_settings())


@app.command()
def token(
    username: str,
    ttl: int = typer.Option(None, "--ttl", help="Lifetime in seconds (default XF_JWT_TTL_SECONDS)"),
) -> None:
    """Print a bearer token for an existing user."""
    from backend.authz.tokens import issue_token
    from backend.core.db import Database
    from backend.tenants.service import account_by_username

    async def exists() -> bool:
        db = Database()
        try:
            async with db.transaction() as session:
                return await account_by_username(session, username) is not None
        finally:
            await db.dispose()

    if not asyncio.run(exists()):
        typer.echo(f"no such user: {username}", err=True)
        raise typer.Exit(1)
    typer.echo(issue_token(username, ttl_seconds=ttl))


@app.command("create-platform-admin")
def create_platform_admin(username: str) -> None:
    """Create a platform administrator (bootstrap)."""
    from backend.core.db import Database
    from backend.core.errors import AppError
    from backend.tenants.service import create_platform_admin as _create

    async def main() -> None:
        db = Database()
        try:
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


if __name__ == "__main__":
    app()
