"""The operator's routes: liveness, readiness and Prometheus metrics (CONTRACT.md)."""

from __future__ import annotations

import secrets

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.core.db import Database
from backend.core.errors import NotFound, Unauthenticated
from backend.core.settings import Settings


def probe_routes(settings: Settings, db: Database) -> list[Route]:
    """``/healthz``, ``/readyz`` and ``/metrics`` for the app's settings and database."""

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

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)]


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
