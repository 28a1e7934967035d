"""REST routes (exports, reports, calendar feeds) on the same footing as ``/graphql``.

:func:`rest_route` wraps an endpoint ``(request, principal) -> Response`` so that it
runs only for an authenticated caller (the app's one authentication,
``backend/web/auth.py``: a token, an API key or a signed link), with its path and
query parameters checked for text no column can store (NUL, lone surrogates: 400),
and charged to the same rate-limit buckets as the caller's GraphQL requests (1 point,
an export ``XF_RATE_LIMIT_EXPORT_COST``). Endpoints raise
:class:`~backend.core.errors.AppError`; the app's ``exception_handlers`` turn it
into the HTTP answer (``backend/web/errors.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from backend.authz.principal import Principal
from backend.core.errors import Unauthenticated
from backend.core.validation import storable_text
from backend.web.auth import caller_of

Endpoint = Callable[[Request, Principal], Awaitable[Response]]


def rest_route(path: str, endpoint: Endpoint, *, export: bool = False) -> Route:
    """``GET path`` answered by ``endpoint`` for an authenticated, rate-limited caller."""

    async def handle(request: Request) -> Response:
        caller = caller_of(request.scope)
        if caller is None:
            raise Unauthenticated("a bearer token or an API key is required")
        for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
            storable_text(str(name), "parameter")
            storable_text(str(value), str(name))
        limiter = request.app.state.limiter
        client = request.client.host if request.client else None
        await limiter.charge(caller.principal, client, limiter.export_cost if export else 1)
        await caller.release()  # the endpoint opens its own transactions
        return await endpoint(request, caller.principal)

    return Route(path, handle, methods=["GET"])
