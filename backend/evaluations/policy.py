"""A tenant's evaluation policy: panel size, category mix and follow-up days per verdict.

Stored as JSON in ``evaluation_policies`` (one row per tenant); absent keys
fall back to the defaults here, which follow the issue's example: at least
one lawyer and at least one member who is not an official.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import require
from backend.authz.principal import Principal
from backend.core.clock import now
from backend.core.errors import BadUserInput, Forbidden
from backend.evaluations.models import EvaluationPolicyRow, EvaluatorCategory, Verdict

MAX_PANEL_SIZE = 25
MAX_FOLLOW_UP_DAYS = 365

DEFAULT_FOLLOW_UP_DAYS: dict[Verdict, int] = {
    Verdict.REASONABLE: 30,
    Verdict.PARTLY_REASONABLE: 30,
    Verdict.HARDSHIP: 15,
    Verdict.UNREASONABLE: 15,
    Verdict.UNLAWFUL: 10,
}


def _default_minimums() -> dict[EvaluatorCategory, int]:
    return {EvaluatorCategory.LAWYER: 1}


@dataclass(frozen=True)
class EvaluationPolicy:
    default_size: int = 5
    max_size: int = 15
    minimums: dict[EvaluatorCategory, int] = field(default_factory=_default_minimums)
    min_non_official: int = 1
    follow_up_days: dict[Verdict, int] = field(default_factory=lambda: dict(DEFAULT_FOLLOW_UP_DAYS))

    def __post_init__(self) -> None:
        if not 1 <= self.max_size <= MAX_PANEL_SIZE:
            raise BadUserInput(f"maxSize must be 1-{MAX_PANEL_SIZE}", field="maxSize")
        if not 1 <= self.default_size <= self.max_size:
            raise BadUserInput("defaultSize must be between 1 and maxSize", field="defaultSize")
        minimums: dict[EvaluatorCategory, int] = {}
        for key, n in self.minimums.items():
            try:
                cat = EvaluatorCategory(key)
            except ValueError:
                raise BadUserInput(f"unknown category {key!r}", field="minimums") from None
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise BadUserInput(f"{cat}: minimum must be >= 0", field="minimums")
            if n:
                minimums[cat] = n
        object.__setattr__(self, "minimums", minimums)
        if not isinstance(self.min_non_official, int) or self.min_non_official < 0:
            raise BadUserInput("minNonOfficial must be >= 0", field="minNonOfficial")
        if self.required_size() > self.max_size:
            raise BadUserInput("the category mix needs more seats than maxSize", field="minimums")
        days = dict(DEFAULT_FOLLOW_UP_DAYS)
        for key, n in self.follow_up_days.items():
            try:
                verdict = Verdict(key)
            except ValueError:
                raise BadUserInput(f"unknown verdict {key!r}", field="followUpDays") from None
            if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_FOLLOW_UP_DAYS:
                raise BadUserInput(
                    f"{verdict}: follow-up days must be 1-{MAX_FOLLOW_UP_DAYS}",
                    field="followUpDays",
                )
            days[verdict] = n
        object.__setattr__(self, "follow_up_days", days)

    def required_size(self) -> int:
        """Seats the mix needs at least: the minimums, plus non-officials they do not cover."""
        fixed = sum(self.minimums.values())
        non_official = sum(n for c, n in self.minimums.items() if c != EvaluatorCategory.OFFICIAL)
        return fixed + max(0, self.min_non_official - non_official)

    def mix(self) -> dict[str, Any]:
        """The part of the policy the draw depends on (hashed into the pool snapshot)."""
        return {
            "minimums": {c.value: n for c, n in sorted(self.minimums.items())},
            "minNonOfficial": self.min_non_official,
        }

    def to_data(self) -> dict[str, Any]:
        return {
            "defaultSize": self.default_size,
            "maxSize": self.max_size,
            **self.mix(),
            "followUpDays": {v.value: n for v, n in self.follow_up_days.items()},
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> EvaluationPolicy:
        defaults = cls()
        return cls(
            default_size=int(data.get("defaultSize", defaults.default_size)),
            max_size=int(data.get("maxSize", defaults.max_size)),
            minimums=dict(data.get("minimums", defaults.minimums)),
            min_non_official=int(data.get("minNonOfficial", defaults.min_non_official)),
            follow_up_days=dict(data.get("followUpDays", {})),
        )


async def load_policy(session: AsyncSession, tenant_id: uuid.UUID) -> EvaluationPolicy:
    row = await session.scalar(
        select(EvaluationPolicyRow).where(EvaluationPolicyRow.tenant_id == tenant_id)
    )
    return EvaluationPolicy.from_data(dict(row.data) if row else {})


async def tenant_policy(session: AsyncSession, principal: Principal) -> EvaluationPolicy:
    require(principal, "pool", "read")
    if principal.tenant_id is None:
        raise Forbidden("the evaluation policy belongs to a city")
    return await load_policy(session, principal.tenant_id)


async def update_policy(
    session: AsyncSession, principal: Principal, policy: EvaluationPolicy
) -> EvaluationPolicy:
    """City administrator: replace the tenant's evaluation policy (validated on construction)."""
    require(principal, "pool", "manage")
    if principal.tenant_id is None:
        raise Forbidden("the evaluation policy belongs to a city")
    row = await session.scalar(
        select(EvaluationPolicyRow).where(EvaluationPolicyRow.tenant_id == principal.tenant_id)
    )
    if row is None:
        row = EvaluationPolicyRow(tenant_id=principal.tenant_id)
        session.add(row)
    row.data = policy.to_data()
    row.updated_at = now()
    await session.flush()
    return policy
