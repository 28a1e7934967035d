"""Builds the Starlette application: GraphQL, REST downloads, health, readiness and metrics.

Every route sits behind the same three things: one authentication
(``backend/web/auth.py``, Starlette's ``AuthenticationMiddleware``), one rate
limiter (``app.state.limiter``) and one error-to-HTTP mapping
(``backend/web/errors.py``, registered once in ``exception_handlers``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Route, WebSocketRoute

import backend.domains  # noqa: F401 — every table and hook in place (backend/domains.py)
from backend.core import live
from backend.core.db import Database
from backend.core.gc_tuning import tune_for_server
from backend.core.logging import configure_logging
from backend.core.middleware import RequestIdMiddleware
from backend.core.ratelimit import RateLimiter
from backend.core.settings import Settings, get_settings
from backend.core.startup import check_startup
from backend.jobs.inprocess import InProcessScheduler
from backend.schema import build_schema
from backend.schema.live import SocketLimits
from backend.schema.reports import report_routes
from backend.schema.rosters import ics_route
from backend.schema.stats import stats_routes
from backend.schema.view import GraphQLApp
from backend.web.auth import Authentication
from backend.web.errors import EXCEPTION_HANDLERS
from backend.web.graphiql import graphiql_routes
from backend.web.probes import probe_routes

# Routes that involve no account: the authentication middleware leaves them alone.
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics")


def create_app(settings: Settings | None = None, *, run_jobs: bool | None = None) -> Starlette:
    """The whole HTTP surface; ``run_jobs`` defaults to "in-process when no Redis"."""
    settings = settings or get_settings()
    check_startup(settings)
    configure_logging(settings.log_level)
    db = Database(settings)
    limiter = RateLimiter(settings)  # one per process: its in-process windows are shared
    graphql = GraphQLApp(
        build_schema(settings, limiter),
        db,
        graphiql=settings.env != "prod",
        max_body_bytes=settings.max_body_bytes,
        limiter=limiter,
        suggestions=settings.env != "prod",  # no "Did you mean …" schema hints in prod
        default_timezone=settings.default_timezone,
        socket=SocketLimits.of(settings),  # subscriptions' WebSocket (XF_WS_*)
    )
    # LISTEN there once someone subscribes (docs/subscriptions.md)
    live.HUB.configure(settings.live_listen_url or settings.database_url)
    jobs_in_process = (
        run_jobs
        if run_jobs is not None
        else settings.run_jobs_in_process and not settings.redis_url
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # one process of `serve --workers N` runs the jobs (a PostgreSQL advisory lock)
        scheduler = (
            InProcessScheduler.for_database(db, settings.default_timezone)
            if jobs_in_process
            else None
        )
        app.state.jobs = scheduler
        if scheduler:
            scheduler.start()
        tune_for_server()  # after startup: what it built lives as long as the process
        try:
            yield
        finally:
            if scheduler:
                await scheduler.stop()
            await live.HUB.close()
            await limiter.close()
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
    middleware.append(Middleware(Authentication, db=db, public_paths=PUBLIC_PATHS))
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),  # subscriptions (backend/schema/live.py)
            *probe_routes(settings, db),
            ics_route(db),  # reception days (docs/rosters.md)
            *report_routes(db),
            *stats_routes(db),  # statistics and case-list exports (docs/indicators.md)
            *(graphiql_routes() if settings.env != "prod" else []),  # GraphiQL's assets
        ],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.db = db
    app.state.limiter = limiter
    return app
