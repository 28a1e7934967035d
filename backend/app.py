"""Builds the Starlette application: GraphQL, REST downloads, health, readiness and metrics.

Every route sits behind the same three things: one authentication
(``backend/web/auth.py``, Starlette's ``AuthenticationMiddleware``), one rate
limiter (``app.state.limiter``) and one error-to-HTTP mapping
(``backend/web/errors.py``, registered once in ``exception_handlers``).
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import backend.domains  # noqa: F401 — every table and hook in place (backend/domains.py)
from backend.core.db import Database
from backend.core.errors import NotFound, Unauthenticated
from backend.core.gc_tuning import tune_for_server
from backend.core.logging import configure_logging
from backend.core.middleware import RequestIdMiddleware
from backend.core.ratelimit import RateLimiter
from backend.core.settings import Settings, get_settings
from backend.core.startup import check_startup
from backend.jobs.inprocess import InProcessScheduler
from backend.schema import build_schema
from backend.schema.reports import report_routes
from backend.schema.rosters import ics_route
from backend.schema.stats import stats_routes
from backend.schema.view import GraphQLApp
from backend.web.auth import Authentication
from backend.web.errors import EXCEPTION_HANDLERS
from backend.web.graphiql import graphiql_routes

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
    )
    jobs_in_process = (
        run_jobs
        if run_jobs is not None
        else settings.run_jobs_in_process and not settings.redis_url
    )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        """Database reachable; Redis too when configured (CONTRACT.md).

        ``?require=database`` judges readiness on the database alone: the Kubernetes
        probe uses it so a Redis outage does not take every api pod out of the Service
        (requests never need Redis: rate limits fail open, jobs and the outbox live in
        PostgreSQL). Redis is still checked and reported in the body either way.
        """
        database_only = request.query_params.get("require") == "database"
        checks: dict[str, str] = {}
        try:
            await db.ping()
            checks["database"] = "ok"
        except Exception as exc:  # readiness reports, never raises
            checks["database"] = f"error: {type(exc).__name__}"
        body: dict[str, object] = {"checks": checks}
        if settings.redis_url:
            checks["redis"] = await _redis_status(settings.redis_url)
            if checks["redis"] != "ok":
                body["degraded"] = ["redis"]
        ready = checks["database"] == "ok" and (database_only or checks.get("redis", "ok") == "ok")
        body = {"ready": ready, **body}
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(request: Request) -> Response:
        """Prometheus text; with ``XF_METRICS_TOKEN``, for ``Bearer <token>`` only; in
        production not served at all without one (docs/security.md)."""
        if settings.metrics_token:
            sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not secrets.compare_digest(sent.encode(), settings.metrics_token.encode()):
                raise Unauthenticated("metrics need Authorization: Bearer <XF_METRICS_TOKEN>")
        elif settings.env == "prod":
            raise NotFound("metrics are off: set XF_METRICS_TOKEN to serve them")
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        scheduler = InProcessScheduler(db, settings.default_timezone) if jobs_in_process else None
        if scheduler:
            scheduler.start()
        tune_for_server()  # after startup: what it built lives as long as the process
        try:
            yield
        finally:
            if scheduler:
                await scheduler.stop()
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
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
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
