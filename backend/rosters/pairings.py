"""Cadre ↔ unit pairings.

* villages (三五 grassroots days, seed 000: each cadre is paired with villages);
* villages again, by a party member among the 两代表一委员 (seed 000, ``people.py``,
  table ``person_pairings``) — beside the cadre; either makes the village covered;
* townships (下访约访, seeds 002/003: every county (city) leader goes on the 15th to the
  township it is paired with — ``planning`` plans one down-visit shift per pair).

Both live in ``village_pairings`` (one contact per unit; a cadre may hold several);
the unit's level tells them apart.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, select
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
from backend.rosters.people import person_pairings
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
    return await _pair(session, principal, village, cadre.id)


async def assign_township_pairing(
    session: AsyncSession, principal: Principal, *, township_path: str, username: str
) -> VillagePairing:
    """下访约访: the township's contact leader, a leader at its county or city (above it)."""
    township = await unit_in_scope(
        session, principal, township_path, "townshipPath", "pairing", "manage"
    )
    if township.level != OrgUnitLevel.TOWNSHIP:
        raise BadUserInput(f"{township_path} is not a township", field="townshipPath")
    above = township.path.rsplit("/", 1)[0]
    leader = await leader_over(session, username, above, "username")
    return await _pair(session, principal, township, leader.id)


async def _pair(
    session: AsyncSession, principal: Principal, unit: OrgUnit, cadre_id: uuid.UUID
) -> VillagePairing:
    """Create or replace the unit's one contact cadre."""
    pairing = await session.scalar(
        select(VillagePairing).where(VillagePairing.village_id == unit.id)
    )
    if pairing is None:
        pairing = VillagePairing(
            tenant_id=unit.tenant_id,
            village_id=unit.id,
            village_path=unit.path,
            cadre_id=cadre_id,
        )
        session.add(pairing)
    pairing.cadre_id, pairing.assigned_by_id, pairing.updated_at = (
        cadre_id,
        principal.account_id,
        now(),
    )
    await session.flush()
    return pairing


def _of_level(level: str) -> ColumnElement[bool]:
    return exists(
        select(OrgUnit.id).where(
            OrgUnit.tenant_id == VillagePairing.tenant_id,
            OrgUnit.id == VillagePairing.village_id,
            OrgUnit.level == level,
        )
    )


async def paired_units(
    session: AsyncSession, under_path: str, level: str
) -> dict[uuid.UUID, list[OrgUnit]]:
    """Planning (no authorisation): each cadre's paired units of ``level`` below
    ``under_path``, by path."""
    rows = await session.execute(
        select(VillagePairing.cadre_id, OrgUnit)
        .join(
            OrgUnit,
            and_(
                OrgUnit.tenant_id == VillagePairing.tenant_id,
                OrgUnit.id == VillagePairing.village_id,
            ),
        )
        .where(OrgUnit.level == level, subtree_filter(VillagePairing.village_path, [under_path]))
        .order_by(OrgUnit.path)
    )
    out: dict[uuid.UUID, list[OrgUnit]] = defaultdict(list)
    for cadre_id, unit in rows:
        if unit.path != under_path:
            out[cadre_id].append(unit)
    return dict(out)


async def pairings(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str | None = None,
    level: str = OrgUnitLevel.VILLAGE,
) -> list[VillagePairing]:
    """Pairings of ``level`` units (villages, or townships) in the caller's scope."""
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(VillagePairing).where(
        subtree_filter(VillagePairing.village_path, paths), _of_level(level)
    )
    if unit_path:
        stmt = stmt.where(
            subtree_filter(VillagePairing.village_path, [v.path(unit_path, "unitPath")])
        )
    return list(await session.scalars(stmt.order_by(VillagePairing.village_path)))


async def township_pairings(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[VillagePairing]:
    """下访约访 pairings: townships and their contact leaders, in the caller's scope."""
    return await pairings(session, principal, unit_path=unit_path, level=OrgUnitLevel.TOWNSHIP)


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


async def _paired_village_ids(
    session: AsyncSession, principal: Principal, unit_path: str | None
) -> set[uuid.UUID]:
    """Villages with a contact: a cadre, or a party member among the 两代表一委员 (seed 000:
    三级党员干部及"两代表一委员"中的党员同志，一对一联系行政村 — both count for coverage)."""
    cadres = await pairings(session, principal, unit_path=unit_path)
    people = await person_pairings(session, principal, unit_path=unit_path)
    return {p.village_id for p in cadres} | {p.village_id for p in people}


async def unpaired_villages(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[OrgUnit]:
    villages = await _villages(session, principal, unit_path)
    paired = await _paired_village_ids(session, principal, unit_path)
    return [u for u in villages if u.id not in paired]


async def pairing_coverage(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[Coverage]:
    """Per county (the second level of the path): villages and how many are paired."""
    villages = await _villages(session, principal, unit_path)
    paired = await _paired_village_ids(session, principal, unit_path)
    by_county: dict[str, Coverage] = {}
    for u in villages:
        county = "/".join(u.path.split("/")[:3])
        cov = by_county.setdefault(county, Coverage(county, 0, 0))
        cov.villages += 1
        cov.paired += u.id in paired
    return [by_county[k] for k in sorted(by_county)]
