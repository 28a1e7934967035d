"""Builds the Starlette application: GraphQL, health, readiness and metrics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.core.db import Database
from backend.core.logging import configure_logging
from backend.core.middleware import RequestIdMiddleware
from backend.core.settings import Settings, get_settings
from backend.jobs.inprocess import InProcessScheduler
from backend.rosters.ical import ics_endpoint
from backend.schema import build_schema
from backend.schema.reports import report_routes
from backend.schema.stats import stats_routes
from backend.schema.view import GraphQLApp


def create_app(settings: Settings | None = None, *, run_jobs: bool | None = None) -> Starlette:
    """The whole HTTP surface; ``run_jobs`` defaults to "in-process when no Redis"."""
    settings = settings or get_settings()
    settings.check_production_safety()
    configure_logging(settings.log_level)
    db = Database(settings)
    graphql = GraphQLApp(build_schema(settings), db, graphiql=settings.env != "prod")
    jobs_in_process = (
        run_jobs
        if run_jobs is not None
        else settings.run_jobs_in_process and not settings.redis_url
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            await db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["database"] = f"error: {type(exc).__name__}"
        if settings.redis_url:
            checks["redis"] = await _redis_status(settings.redis_url)
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        scheduler = InProcessScheduler(db, settings.default_timezone) if jobs_in_process else None
        if scheduler:
            scheduler.start()
        try:
            yield
        finally:
            if scheduler:
                await scheduler.stop()
            await db.dispose()

    middleware = [Middleware(RequestIdMiddleware)]
    if settings.cors_origin_list:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origin_list,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-request-id"],
            )
        )
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/rosters/{unit:path}.ics", ics_endpoint(db)),  # reception days (docs/rosters.md)
            *report_routes(db),
            *stats_routes(db),  # statistics and case-list exports (docs/indicators.md)
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.db = db
    return app


async def _redis_status(url: str) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    finally:
        await client.aclose()
