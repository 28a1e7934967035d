"""Per-tenant indicator definitions: a closed, validated set of options — never free SQL.

A city may count some indicators differently from the province standard
(docs/indicators.md "Per-tenant definitions"). Each option only chooses
between numerators/denominators that are all computed anyway (and kept in
the daily summary), so two cities are always comparable on the standard
definition as well: the province overview shows each city's definition and
its figures under the province standard side by side.

Stored in ``tenant_policies.data.indicators`` (camelCase keys), set by the
city administrator through ``updateTenantPolicy(input: {indicators: …})``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.cases.models import TenantPolicy
from backend.core.errors import BadUserInput, Forbidden

# The petitioner's rating period after a reply: the 30 days of Art. 35 (请求复查 within 30
# days of the written reply) — the same period in which the petitioner reacts to the reply.
STANDARD_WINDOW_DAYS = 30
MAX_WINDOW_DAYS = 90


class SatisfactionFormula(StrEnum):
    STANDARD = "STANDARD"  # (satisfied + basically satisfied) / rated
    SATISFIED_ONLY = "SATISFIED_ONLY"  # satisfied / rated
    BASICALLY_HALF = "BASICALLY_HALF"  # (satisfied + ½ basically satisfied) / rated


class ClosureFormula(StrEnum):
    EXTENSION_COUNTS = "EXTENSION_COUNTS"  # on time against the (approved-)extended due time
    EXTENSION_LATE = "EXTENSION_LATE"  # a case that needed an extension is not on time


@dataclass(frozen=True)
class Definition:
    """The options; the defaults are the province standard."""

    satisfaction: SatisfactionFormula = SatisfactionFormula.STANDARD
    on_time_closure: ClosureFormula = ClosureFormula.EXTENSION_COUNTS
    participation_window_days: int = STANDARD_WINDOW_DAYS

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Definition:
        """Validate stored or submitted options (camelCase keys); unknown keys are refused."""
        data = dict(data or {})
        known = {"satisfaction", "onTimeClosure", "participationWindowDays"}
        unknown = set(data) - known
        if unknown:
            raise BadUserInput(f"unknown indicator options {sorted(unknown)}", field="indicators")
        try:
            satisfaction = SatisfactionFormula(data.get("satisfaction") or "STANDARD")
            closure = ClosureFormula(data.get("onTimeClosure") or "EXTENSION_COUNTS")
        except ValueError as exc:
            raise BadUserInput(str(exc), field="indicators") from None
        window = data.get("participationWindowDays", STANDARD_WINDOW_DAYS)
        if (
            not isinstance(window, int)
            or isinstance(window, bool)
            or not 1 <= window <= MAX_WINDOW_DAYS
        ):
            raise BadUserInput(
                f"participationWindowDays must be 1–{MAX_WINDOW_DAYS}", field="indicators"
            )
        return cls(satisfaction, closure, window)

    def as_data(self) -> dict[str, Any]:
        return {
            "satisfaction": self.satisfaction.value,
            "onTimeClosure": self.on_time_closure.value,
            "participationWindowDays": self.participation_window_days,
        }

    @property
    def is_standard(self) -> bool:
        return self == STANDARD


STANDARD = Definition()


async def tenant_definitions(
    session: AsyncSession, tenant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Definition]:
    """Each tenant's definition (the standard when it set none); one statement."""
    out = dict.fromkeys(tenant_ids, STANDARD)
    if not tenant_ids:
        return out
    for tid, data in await session.execute(
        select(TenantPolicy.tenant_id, TenantPolicy.data).where(
            TenantPolicy.tenant_id.in_(tenant_ids)
        )
    ):
        out[tid] = Definition.of((data or {}).get("indicators"))
    return out


async def tenant_definition(session: AsyncSession, tenant_id: uuid.UUID) -> Definition:
    return (await tenant_definitions(session, [tenant_id]))[tenant_id]


async def set_definition(
    session: AsyncSession, principal: Principal, data: dict[str, Any]
) -> Definition:
    """The city administrator chooses its options (validated; other policy keys stay)."""
    require(principal, "policy", "update")
    if principal.tenant_id is None or not allowed_grants(principal, "policy", "update"):
        raise Forbidden("only a city administrator sets the tenant policy")
    definition = Definition.of(data)
    row = await session.scalar(
        select(TenantPolicy).where(TenantPolicy.tenant_id == principal.tenant_id)
    )
    if row is None:
        session.add(TenantPolicy(tenant_id=principal.tenant_id, data={}))
        await session.flush()
        row = await session.scalar(
            select(TenantPolicy).where(TenantPolicy.tenant_id == principal.tenant_id)
        )
    row.data = {**row.data, "indicators": definition.as_data()}
    await session.flush()
    return definition
