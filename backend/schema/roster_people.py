"""GraphQL for the named people of rosters (两代表一委员, party members, lawyers,
counsellors) and their village pairings (seed 000). Thin: it parses, calls
``backend.rosters.people`` and shapes the answer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import strawberry
from strawberry.dataloader import DataLoader

from backend.cases.pii import mask_phone
from backend.rosters import models, people
from backend.schema.context import Ctx, RequestContext
from backend.schema.loaders import load
from backend.schema.tenants import OrgUnitType

RosterPersonKind = strawberry.enum(models.PersonKind, name="RosterPersonKind")


def _people_loader(ctx: RequestContext) -> DataLoader[uuid.UUID, Any]:
    async def batch(keys: Sequence[uuid.UUID]) -> list[Any]:
        async with ctx.read() as session:
            found = await people.people_by_ids(session, list(keys))
        return [found.get(k) for k in keys]

    return DataLoader(load_fn=batch)


async def person_by_id(info: Ctx, person_id: uuid.UUID | None) -> RosterPerson | None:
    if person_id is None:
        return None
    found = await info.context.loader("roster_people", _people_loader).load(person_id)
    return RosterPerson.of(found) if found else None


@strawberry.type
class RosterPerson:
    _m: strawberry.Private[models.RosterPerson]
    name: str
    unit_path: str
    organisation: str | None
    party_member: bool
    active: bool

    @classmethod
    def of(cls, m: models.RosterPerson) -> RosterPerson:
        return cls(
            _m=m,
            name=m.name,
            unit_path=m.unit_path,
            organisation=m.organisation,
            party_member=m.party_member,
            active=m.active,
        )

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self._m.id))

    @strawberry.field
    def kind(self) -> RosterPersonKind:
        return models.PersonKind(self._m.kind)

    @strawberry.field
    def phone(self, info: Ctx) -> str | None:
        if people.manages_person(info.context.principal, self._m):
            return self._m.phone
        return mask_phone(self._m.phone)

    @strawberry.field
    async def unit(self, info: Ctx) -> OrgUnitType | None:
        unit = await load(info.context, "unit_by_path", self._m.unit_path)
        return OrgUnitType.of(unit) if unit else None


@strawberry.type
class PersonPairing:
    _m: strawberry.Private[models.PersonPairing]
    village_path: str

    @strawberry.field
    async def village(self, info: Ctx) -> OrgUnitType | None:
        unit = await load(info.context, "unit_by_path", self._m.village_path)
        return OrgUnitType.of(unit) if unit else None

    @strawberry.field
    async def person(self, info: Ctx) -> RosterPerson | None:
        return await person_by_id(info, self._m.person_id)


def _pairing(m: models.PersonPairing) -> PersonPairing:
    return PersonPairing(_m=m, village_path=m.village_path)


@strawberry.type
class RosterPeopleQueries:
    @strawberry.field
    async def roster_people(
        self, info: Ctx, unit_path: str | None = None, kind: RosterPersonKind | None = None
    ) -> list[RosterPerson]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await people.roster_people(
                session, ctx.principal, unit_path=unit_path, kind=kind
            )
        return [RosterPerson.of(p) for p in rows]

    @strawberry.field
    async def person_pairings(self, info: Ctx, unit_path: str | None = None) -> list[PersonPairing]:
        ctx = info.context
        async with ctx.read() as session:
            rows = await people.person_pairings(session, ctx.principal, unit_path=unit_path)
        return [_pairing(p) for p in rows]


@strawberry.input
class AddRosterPersonInput:
    unit_path: str
    name: str
    kind: RosterPersonKind
    party_member: bool = False
    organisation: str | None = None
    phone: str | None = None

    def to_service(self) -> dict[str, Any]:
        return {
            "unit_path": self.unit_path,
            "name": self.name,
            "kind": models.PersonKind(self.kind),
            "party_member": self.party_member,
            "organisation": self.organisation,
            "phone": self.phone,
        }


@strawberry.input
class SetRosterPersonActiveInput:
    person_id: strawberry.ID
    active: bool

    def to_service(self) -> dict[str, Any]:
        return {"person_id": str(self.person_id), "active": self.active}


@strawberry.input
class AssignPersonPairingInput:
    village_path: str
    person_id: strawberry.ID

    def to_service(self) -> dict[str, Any]:
        return {"village_path": self.village_path, "person_id": str(self.person_id)}


@strawberry.type
class RosterPeopleMutations:
    @strawberry.mutation
    async def add_roster_person(self, info: Ctx, input: AddRosterPersonInput) -> RosterPerson:
        person = await info.context.mutate(people.add_roster_person, **input.to_service())
        return RosterPerson.of(person)

    @strawberry.mutation
    async def set_roster_person_active(
        self, info: Ctx, input: SetRosterPersonActiveInput
    ) -> RosterPerson:
        person = await info.context.mutate(people.set_roster_person_active, **input.to_service())
        return RosterPerson.of(person)

    @strawberry.mutation
    async def assign_person_pairing(
        self, info: Ctx, input: AssignPersonPairingInput
    ) -> PersonPairing:
        pairing = await info.context.mutate(people.assign_person_pairing, **input.to_service())
        return _pairing(pairing)
