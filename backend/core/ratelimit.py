"""Per-user and per-tenant rate limits: fixed windows on Redis, in-process without it.

Every request spends points from two buckets at once: the caller's and its
city's (anonymous callers: their address). A GraphQL operation costs one point
per root field and ``XF_RATE_LIMIT_MUTATION_COST`` per mutation field, so aliases
do not multiply work for free (``backend/schema/guards.py``); a REST download
costs 1, an export ``XF_RATE_LIMIT_EXPORT_COST`` (``backend/web/routes.py``). A
request over either limit is refused with ``RATE_LIMITED`` and the seconds until
that bucket's window ends (HTTP 429, ``Retry-After``).

Searching cases by id number has a bucket of its own, per user and much tighter
(``XF_RATE_LIMIT_ID_SEARCH`` per ``XF_RATE_LIMIT_ID_SEARCH_WINDOW_SECONDS``): each
search could confirm a masked number, so it is counted one by one — all of a request's
searches at once, before any runs, so a request refused for holding too many charges
nothing (``backend/schema/guards.py``).

On Redis both buckets are checked and charged by one Lua script: one round
trip per request, atomic across api pods. A refused request charges nothing,
so one noisy user does not drain the city's bucket. Without ``XF_REDIS_URL``
the same windows live in this process (one pod, or per pod — documented in
docs/graphql-limits.md). When Redis is configured but unreachable the API
keeps serving (fail open): the error is logged and counted
(``xinfang_ratelimit_errors_total``) and Redis is not asked again for a few
seconds, so an outage does not add a connect timeout to every request.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from backend.core.errors import RateLimited
from backend.core.logging import get_logger
from backend.core.settings import Settings

log = get_logger(__name__)

RATE_LIMITED = Counter(
    "xinfang_ratelimit_refused_total", "Requests refused by a rate limit", ["bucket"]
)
LIMITER_ERRORS = Counter(
    "xinfang_ratelimit_errors_total", "Rate-limit checks skipped because Redis failed (fail open)"
)

# KEYS: bucket keys; ARGV[1] cost, ARGV[2] window in ms, ARGV[2+i] the limit of KEYS[i].
# Returns {0, 0} when charged, else {index of the full bucket, ms until its window ends}.
_SCRIPT = """
local cost = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local used = tonumber(redis.call('GET', key) or '0')
  if used + cost > tonumber(ARGV[2 + i]) then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    return {i, ttl}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('INCRBY', key, cost)
  if redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, window)
  end
end
return {0, 0}
"""

BACKOFF_SECONDS = 5.0
_REFUSALS = {
    "user": "too many requests for this user",
    "tenant": "too many requests for this tenant",
    "idSearch": "too many searches by id number",
}


@dataclass(frozen=True)
class Bucket:
    name: str  # "user", "tenant" or "idSearch": which limit refused (label, extension)
    key: str
    limit: int


def caller_identity(principal: Any, client_host: str | None) -> tuple[str, str | None]:
    """``(user, tenant)`` bucket names of a caller: its account and city, or its address."""
    if principal is not None:
        tenant = str(principal.tenant_id) if principal.tenant_id else None
        return str(principal.account_id), tenant
    return f"ip:{client_host or '-'}", None


class RateLimiter:
    """Checks and charges buckets; ``None`` from :meth:`hit` means allowed."""

    def __init__(self, settings: Settings) -> None:
        enabled = settings.rate_limit_enabled
        self.enabled = enabled if enabled is not None else settings.env != "test"
        self.window = settings.rate_limit_window_seconds
        self.user_limit = settings.rate_limit_user
        self.tenant_limit = settings.rate_limit_tenant
        self.mutation_cost = settings.rate_limit_mutation_cost
        self.export_cost = settings.rate_limit_export_cost
        self.id_search_limit = settings.rate_limit_id_search
        self.id_search_window = settings.rate_limit_id_search_window_seconds
        self.redis_url = settings.redis_url
        self._redis: Any = None
        self._script: Any = None
        self._redis_down_until = 0.0
        self._local: dict[str, tuple[float, int]] = {}

    def buckets(self, user: str, tenant: str | None) -> list[Bucket]:
        found = [Bucket("user", f"xf:rl:u:{user}", self.user_limit)]
        if tenant:
            found.append(Bucket("tenant", f"xf:rl:t:{tenant}", self.tenant_limit))
        return found

    async def check(self, *, user: str, tenant: str | None, cost: int) -> None:
        """Charge ``cost`` points; raises :class:`RateLimited` when a bucket is full."""
        if not self.enabled:
            return
        await self._charge(self.buckets(user, tenant), cost, self.window)

    async def charge(self, principal: Any, client_host: str | None, cost: int) -> None:
        """:meth:`check` for a caller (a principal, or ``None`` and its address)."""
        user, tenant = caller_identity(principal, client_host)
        await self.check(user=user, tenant=tenant, cost=cost)

    async def check_id_search(self, principal: Any, count: int = 1) -> None:
        """Count ``count`` searches by id number against the caller's own, tight bucket:
        all of them or none (a refusal charges nothing)."""
        if not self.enabled:
            return
        bucket = Bucket("idSearch", f"xf:rl:ids:{principal.account_id}", self.id_search_limit)
        await self._charge([bucket], count, self.id_search_window)

    async def _charge(self, buckets: list[Bucket], cost: int, window: int) -> None:
        refused = await self.hit(buckets, cost, window)
        if refused is not None:
            bucket, retry_after = refused
            RATE_LIMITED.labels(bucket.name).inc()
            raise RateLimited(
                f"{_REFUSALS[bucket.name]}; retry in {retry_after} s",
                retryAfter=retry_after,
                bucket=bucket.name,
            )

    async def hit(
        self, buckets: list[Bucket], cost: int, window: int | None = None
    ) -> tuple[Bucket, int] | None:
        window = window or self.window
        if not self.redis_url:
            return self._hit_local(buckets, cost, window)
        if time.monotonic() < self._redis_down_until:
            return None
        try:
            index, ttl_ms = await self._run_script(buckets, cost, window)
        except Exception as exc:  # any Redis failure: keep serving, say so loudly
            self._redis_down_until = time.monotonic() + BACKOFF_SECONDS
            LIMITER_ERRORS.inc()
            log.warning("ratelimit.redis_unavailable", error=repr(exc), fail_open=True)
            return None
        if not index:
            return None
        return buckets[int(index) - 1], max(1, math.ceil(int(ttl_ms) / 1000))

    async def _run_script(self, buckets: list[Bucket], cost: int, window: int) -> tuple[int, int]:
        if self._redis is None:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(
                self.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5
            )
            self._script = self._redis.register_script(_SCRIPT)
        keys = [b.key for b in buckets]
        args = [cost, window * 1000, *(b.limit for b in buckets)]
        index, ttl = await self._script(keys=keys, args=args)
        return int(index), int(ttl)

    def _hit_local(
        self, buckets: list[Bucket], cost: int, window: int
    ) -> tuple[Bucket, int] | None:
        now = time.monotonic()
        if len(self._local) > 100_000:  # forget finished windows now and then
            self._local = {k: v for k, v in self._local.items() if v[0] > now}
        state = []
        for bucket in buckets:
            ends, used = self._local.get(bucket.key, (0.0, 0))
            if ends <= now:
                ends, used = now + window, 0
            if used + cost > bucket.limit:
                return bucket, max(1, math.ceil(ends - now))
            state.append((bucket.key, ends, used))
        for key, ends, used in state:
            self._local[key] = (ends, used + cost)
        return None

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
