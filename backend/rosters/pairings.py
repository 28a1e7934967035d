"""Cadre ↔ village pairings (三五 grassroots days: each cadre is paired with villages)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.authz.scope import subtree_filter
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput
from backend.rosters.access import leader_over, unit_in_scope
from backend.rosters.models import (
    VillagePairing,
)
from backend.tenants.models import OrgUnit, OrgUnitLevel


@dataclass
class Coverage:
    county_path: str
    villages: int
    paired: int

    @property
    def rate(self) -> float | None:
        return self.paired / self.villages if self.villages else None


async def assign_pairing(
    session: AsyncSession, principal: Principal, *, village_path: str, username: str
) -> VillagePairing:
    """The village's contact cadre: a leader at the village's township, county or city."""
    village = await unit_in_scope(
        session, principal, village_path, "villagePath", "pairing", "manage"
    )
    if village.level != OrgUnitLevel.VILLAGE:
        raise BadUserInput(f"{village_path} is not a village", field="villagePath")
    cadre = await leader_over(session, username, village.path, "username")
    pairing = await session.scalar(
        select(VillagePairing).where(VillagePairing.village_id == village.id)
    )
    if pairing is None:
        pairing = VillagePairing(
            tenant_id=village.tenant_id,
            village_id=village.id,
            village_path=village.path,
            cadre_id=cadre.id,
        )
        session.add(pairing)
    pairing.cadre_id, pairing.assigned_by_id, pairing.updated_at = (
        cadre.id,
        principal.account_id,
        now(),
    )
    await session.flush()
    return pairing


async def pairings(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[VillagePairing]:
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(VillagePairing).where(subtree_filter(VillagePairing.village_path, paths))
    if unit_path:
        stmt = stmt.where(
            subtree_filter(VillagePairing.village_path, [v.path(unit_path, "unitPath")])
        )
    return list(await session.scalars(stmt.order_by(VillagePairing.village_path)))


async def _villages(
    session: AsyncSession, principal: Principal, unit_path: str | None
) -> list[OrgUnit]:
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(OrgUnit).where(
        OrgUnit.level == OrgUnitLevel.VILLAGE, subtree_filter(OrgUnit.path, paths)
    )
    if unit_path:
        stmt = stmt.where(subtree_filter(OrgUnit.path, [v.path(unit_path, "unitPath")]))
    return list(await session.scalars(stmt.order_by(OrgUnit.path)))


async def unpaired_villages(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[OrgUnit]:
    villages = await _villages(session, principal, unit_path)
    paired = {p.village_id for p in await pairings(session, principal, unit_path=unit_path)}
    return [u for u in villages if u.id not in paired]


async def pairing_coverage(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[Coverage]:
    """Per county (the second level of the path): villages and how many are paired."""
    villages = await _villages(session, principal, unit_path)
    paired = {p.village_id for p in await pairings(session, principal, unit_path=unit_path)}
    by_county: dict[str, Coverage] = {}
    for u in villages:
        county = "/".join(u.path.split("/")[:3])
        cov = by_county.setdefault(county, Coverage(county, 0, 0))
        cov.villages += 1
        cov.paired += u.id in paired
    return [by_county[k] for k in sorted(by_county)]
