"""Tenant deadline policy and the national working-day calendar, looked up in one place."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import HolidayOverride, TenantPolicy
from backend.cases.rules import RIGHTS_WINDOWS, DeadlinePolicy, Step
from backend.core.clock import DEFAULT_TIMEZONE
from backend.core.errors import Forbidden
from backend.tenants.models import Tenant

_CALENDAR_TTL = 60.0
_calendar_cache: tuple[float, WorkingDayCalendar] | None = None


async def load_calendar(session: AsyncSession, *, fresh: bool = False) -> WorkingDayCalendar:
    """The calendar with the loaded State Council notices (cached for a minute per process)."""
    global _calendar_cache
    if not fresh and _calendar_cache and time.monotonic() - _calendar_cache[0] < _CALENDAR_TTL:
        return _calendar_cache[1]
    rows = (
        await session.execute(select(HolidayOverride.day, HolidayOverride.is_working_day))
    ).all()
    overrides: dict[date, bool] = {day: working for day, working in rows}
    years = {day.year for day in overrides}
    calendar = WorkingDayCalendar(overrides=overrides, override_years=years)
    _calendar_cache = (time.monotonic(), calendar)
    return calendar


def forget_calendar() -> None:
    global _calendar_cache
    _calendar_cache = None


async def load_policy(session: AsyncSession, tenant_id: uuid.UUID) -> DeadlinePolicy:
    """The tenant's policy: its stored row (if any) and its time zone, in one statement."""
    row = (
        await session.execute(
            select(Tenant.timezone, TenantPolicy.data)
            .outerjoin(TenantPolicy, TenantPolicy.tenant_id == Tenant.id)
            .where(Tenant.id == tenant_id)
        )
    ).first()
    return policy_from(row[1] if row else None, row[0] if row else None)


def policy_from(data: dict[str, Any] | None, timezone: str | None) -> DeadlinePolicy:
    """A :class:`DeadlinePolicy` from the stored JSON and the tenant's time zone.

    Validating a policy (time zone lookup, limits against the statute) costs more than the
    row read; the same few policies recur on every intake and lifecycle step, so they are
    memoised by value. The result is shared: treat it as read-only (it is frozen).
    """
    key = json.dumps(data or {}, sort_keys=True, default=str)
    return _policy(key, timezone or DEFAULT_TIMEZONE)


@lru_cache(maxsize=1024)
def _policy(data_json: str, timezone: str) -> DeadlinePolicy:
    data = json.loads(data_json)
    # a policy stored before the petitioner's windows were protected may still shorten
    # one: the statutory window applies (it is ignored here, refused on every update)
    limits = {
        Step(k): int(v)
        for k, v in (data.get("limits") or {}).items()
        if Step(k) not in RIGHTS_WINDOWS
    }
    return DeadlinePolicy(
        limits=limits,
        counting=data.get("counting", "calendar"),
        red_days=int(data.get("redDays", 3)),
        yellow_days=int(data.get("yellowDays", 10)),
        timezone=timezone,
        handling_by_type={k: int(v) for k, v in (data.get("handlingByType") or {}).items()},
    )


def policy_data(policy: DeadlinePolicy) -> dict[str, Any]:
    """The stored (JSON) form of a policy; the time zone lives on the tenant."""
    return {
        "limits": {step.value: days for step, days in policy.limits.items()},
        "counting": policy.counting,
        "redDays": policy.red_days,
        "yellowDays": policy.yellow_days,
        "handlingByType": dict(policy.handling_by_type),
    }


async def update_policy(
    session: AsyncSession,
    principal: Principal,
    *,
    limits: dict[str, int],
    counting: str,
    red_days: int,
    yellow_days: int,
    handling_by_type: dict[str, int] | None = None,
) -> DeadlinePolicy:
    """A city administrator shortens limits or moves the warning thresholds (validated).

    ``handling_by_type``: the suggestions' and accusations' own handling limits (Arts. 32,
    33; at most the 60 days of Art. 34); None keeps the current ones, ``{}`` clears them.
    """
    require(principal, "policy", "update")
    if principal.tenant_id is None or not allowed_grants(principal, "policy", "update"):
        raise Forbidden("only a city administrator sets the tenant policy")
    tenant_id = principal.tenant_id
    current = await load_policy(session, tenant_id)
    policy = DeadlinePolicy(
        limits=dict(limits),
        counting=counting,
        red_days=red_days,
        yellow_days=yellow_days,
        timezone=current.timezone,
        handling_by_type=current.handling_by_type if handling_by_type is None else handling_by_type,
    )
    row = await session.scalar(select(TenantPolicy).where(TenantPolicy.tenant_id == tenant_id))
    if row is None:
        session.add(TenantPolicy(tenant_id=tenant_id, data=policy_data(policy)))
    else:  # keys other modules keep in the policy (e.g. escalateAfterRedDays) stay
        row.data = {**row.data, **policy_data(policy)}
    await session.flush()
    return policy


async def tenant_policy(session: AsyncSession, principal: Principal) -> DeadlinePolicy:
    require(principal, "tenant", "read")
    if principal.tenant_id is None:
        raise Forbidden("the deadline policy belongs to a city")
    return await load_policy(session, principal.tenant_id)
