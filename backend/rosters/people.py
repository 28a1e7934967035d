"""Named people of the city in rosters (两代表一委员, party members, lawyers, counsellors).

Seed 000 pairs the party members among the 两代表一委员 one-to-one with villages beside the
cadres; seeds 001 and 003 put lawyers, counsellors and deputies on duty. They are usually
not system users, so they are rows of ``roster_people`` — name, kind, unit, an optional
phone (PII: encrypted at rest, masked for anyone who does not manage the roster) — kept
by the roster office (``roster manage``) and read by whoever reads rosters in scope.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, require
from backend.authz.principal import Principal
from backend.authz.scope import path_covers, subtree_filter
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput
from backend.core.ids import parse_id
from backend.rosters.access import reaches, unit_in_scope
from backend.rosters.models import PARTY_KINDS, PersonKind, PersonPairing, RosterPerson
from backend.tenants.models import OrgUnitLevel


async def add_roster_person(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str,
    name: str,
    kind: PersonKind,
    party_member: bool = False,
    organisation: str | None = None,
    phone: str | None = None,
) -> RosterPerson:
    """Register a named person with a unit in the caller's roster scope. 党代表 and 党员 are
    party members whatever ``party_member`` says."""
    unit = await unit_in_scope(session, principal, unit_path, "unitPath", "roster", "manage")
    kind = PersonKind(kind)
    person = RosterPerson(
        tenant_id=unit.tenant_id,
        name=v.text(name, "name", max_len=100),
        kind=kind,
        party_member=party_member or kind in PARTY_KINDS,
        unit_id=unit.id,
        unit_path=unit.path,
        organisation=_optional(organisation, "organisation"),
        phone=v.phone(phone),
        active=True,
        updated_at=now(),
    )
    session.add(person)
    await session.flush()
    return person


def _optional(value: str | None, field: str) -> str | None:
    return v.text(value, field, max_len=200, required=False) or None if value else None


async def set_roster_person_active(
    session: AsyncSession, principal: Principal, *, person_id: str, active: bool
) -> RosterPerson:
    """Retire (or bring back) a person: planning skips inactive people."""
    person = await person_in_scope(session, principal, person_id, "personId")
    person.active, person.updated_at = active, now()
    await session.flush()
    return person


async def person_in_scope(
    session: AsyncSession, principal: Principal, person_id: str, field: str
) -> RosterPerson:
    """A person the caller manages (absent and out of scope read the same)."""
    require(principal, "roster", "manage")
    pid = parse_id(person_id, "RosterPerson", field)
    person = (
        await session.scalar(select(RosterPerson).where(RosterPerson.id == pid)) if pid else None
    )
    if person is None or not reaches(principal, "roster", "manage", person.unit_path):
        raise BadUserInput(f"unknown person {person_id}", field=field)
    return person


def manages_person(principal: Principal, person: RosterPerson) -> bool:
    """Who sees the phone unmasked: the roster office over the person's unit."""
    return reaches(principal, "roster", "manage", person.unit_path)


async def roster_people(
    session: AsyncSession,
    principal: Principal,
    *,
    unit_path: str | None = None,
    kind: PersonKind | None = None,
) -> list[RosterPerson]:
    """People registered at units in the caller's roster scope (filtered in SQL)."""
    require(principal, "roster", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "roster", "read")]
    stmt = select(RosterPerson).where(subtree_filter(RosterPerson.unit_path, paths))
    if unit_path:
        stmt = stmt.where(subtree_filter(RosterPerson.unit_path, [v.path(unit_path, "unitPath")]))
    if kind is not None:
        stmt = stmt.where(RosterPerson.kind == PersonKind(kind))
    return list(await session.scalars(stmt.order_by(RosterPerson.unit_path, RosterPerson.name)))


async def people_by_ids(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, RosterPerson]:
    if not ids:
        return {}
    rows = await session.scalars(select(RosterPerson).where(RosterPerson.id.in_(set(ids))))
    return {p.id: p for p in rows}


# --- seed 000: 两代表一委员中的党员同志，一对一联系行政村 ------------------------------------


async def assign_person_pairing(
    session: AsyncSession, principal: Principal, *, village_path: str, person_id: str
) -> PersonPairing:
    """The village's contact among the 两代表一委员 and party members (seed 000): a party
    member registered at the village or a unit above it. One per village (re-assigning
    replaces it), beside the village's contact cadre."""
    village = await unit_in_scope(
        session, principal, village_path, "villagePath", "pairing", "manage"
    )
    if village.level != OrgUnitLevel.VILLAGE:
        raise BadUserInput(f"{village_path} is not a village", field="villagePath")
    person = await person_in_scope(session, principal, person_id, "personId")
    if not person.party_member or not person.active:
        raise BadUserInput(
            "only an active party member among the 两代表一委员 is paired (seed 000)",
            field="personId",
        )
    if not path_covers(person.unit_path, village.path):
        raise BadUserInput(
            f"{person.name} is not registered above {village.path}", field="personId"
        )
    pairing = await session.scalar(
        select(PersonPairing).where(PersonPairing.village_id == village.id)
    )
    if pairing is None:
        pairing = PersonPairing(
            tenant_id=village.tenant_id, village_id=village.id, village_path=village.path
        )
        session.add(pairing)
    pairing.person_id, pairing.assigned_by_id = person.id, principal.account_id
    pairing.updated_at = now()
    await session.flush()
    return pairing


async def person_pairings(
    session: AsyncSession, principal: Principal, *, unit_path: str | None = None
) -> list[PersonPairing]:
    """Villages and their 两代表一委员 party-member contacts, in the caller's scope."""
    require(principal, "pairing", "read")
    paths = [g.unit_path for g in allowed_grants(principal, "pairing", "read")]
    stmt = select(PersonPairing).where(subtree_filter(PersonPairing.village_path, paths))
    if unit_path:
        stmt = stmt.where(
            subtree_filter(PersonPairing.village_path, [v.path(unit_path, "unitPath")])
        )
    return list(await session.scalars(stmt.order_by(PersonPairing.village_path)))
