"""An independent reference model of who may see which case, and what of it (DOMAIN.md).

Written from the rules in ``../shared/DOMAIN.md`` and docs/tenancy.md — *not* from the
backend's code — so that ``tests/test_isolation_property.py`` can compare what the API
returns with what the rules say, for random cities, org trees, roles and cases. Pure
Python, no imports from ``backend``: if the two ever agree, it is not because they share
a bug.

The rules, as read:

- A city is a tenant; officials see nothing of another city. A provincial supervisor
  reads every case of its province's cities, PII masked; platform staff read no case.
- Scope is an org unit and its subtree (by path, ``/a/b`` covers ``/a/b/...`` but
  never ``/a/bc``).
- ``petition_officer`` and ``leader`` read the cases held in, or located in, their
  scope; a ``leader`` also reads the cases it owns (包案) wherever they went.
- ``department_handler`` reads the cases its department (scope) holds.
- ``grid_worker`` reads the cases it registered; ``evaluator`` the cases of the panels
  it sits on; ``city_admin`` reads no case at all.
- 检举控告 (Art. 30): an accusation is never visible to the accused person, nor to
  anybody who holds any role inside the subtree of an accused unit, whatever their
  other roles. The accused units are the unit it names and every unit where the
  accused person holds a post (any role but evaluator); an accusation whose accused
  units include the city root is refused at intake.
- PII (phone, id number) is shown only to officials handling the case in scope: a
  petition officer, leader or department handler whose scope covers the unit holding
  the case. Everyone else gets it masked (phone ``138****1234``, id number first six
  and last two characters).
- A new case is held by the registrar's own unit (the deepest unit where it may
  register that covers the location) — unless that unit lies inside an accused unit
  of an accusation: then the nearest unit above it inside none holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READ_IN_SCOPE = {"petition_officer", "leader"}
HANDLING = {"petition_officer", "leader", "department_handler"}
REGISTER = {"petition_officer", "leader", "grid_worker"}
LISTING = {"petition_officer", "leader", "department_handler", "grid_worker", "evaluator"}


def covers(ancestor: str, path: str) -> bool:
    """``ancestor`` is ``path`` or one of its ancestors (whole path segments only)."""
    return path == ancestor or path.startswith(ancestor + "/")


def parent(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or path


@dataclass(frozen=True)
class Grant:
    role: str  # lower-case role name, e.g. "petition_officer"
    unit: str  # org unit path


@dataclass(frozen=True)
class Official:
    username: str
    tenant: str
    grants: tuple[Grant, ...]

    def roles(self) -> set[str]:
        return {g.role for g in self.grants}


@dataclass(frozen=True)
class Supervisor:
    username: str
    province: str


@dataclass(frozen=True)
class PlatformAdmin:
    username: str


Principal = Official | Supervisor | PlatformAdmin


@dataclass
class Case:
    id: str
    tenant: str
    type: str  # CLAIM / SUGGESTION / ACCUSATION
    location: str
    holder: str
    registered_by: str
    accused_unit: str | None = None
    accused_user: str | None = None
    accused_person_units: tuple[str, ...] = ()  # where the accused person holds a post
    leader: str | None = None
    panel: set[str] = field(default_factory=set)
    phone: str | None = None
    id_number: str | None = None


@dataclass
class World:
    """Cities by slug → province, and every case registered so far."""

    provinces: dict[str, str] = field(default_factory=dict)  # tenant slug → province
    cases: dict[str, Case] = field(default_factory=dict)

    # --- intake and routing ---------------------------------------------------------

    @staticmethod
    def registering_unit(user: Official, location: str) -> str | None:
        """The registrar's unit for a case at ``location``, None if it may not register."""
        units = [g.unit for g in user.grants if g.role in REGISTER and covers(g.unit, location)]
        return max(units, key=len) if units else None

    @staticmethod
    def accused_units(accused_unit: str | None, accused: Official | None) -> tuple[str, ...]:
        """The named unit and the units where the accused person holds a post."""
        posts = [g.unit for g in accused.grants if g.role != "evaluator"] if accused else []
        return tuple(dict.fromkeys(u for u in [accused_unit, *posts] if u))

    @staticmethod
    def refused(accused_units: tuple[str, ...]) -> bool:
        """An accusation against the city itself (its root unit) is not registered."""
        return any(u.count("/") == 1 for u in accused_units)

    @staticmethod
    def intake_holder(registrar_unit: str, accused_units: tuple[str, ...]) -> str:
        unit = registrar_unit
        while any(covers(a, unit) for a in accused_units):
            unit = parent(unit)
        return unit

    # --- what a principal may see ---------------------------------------------------

    @staticmethod
    def may_read_cases(p: Principal) -> bool:
        if isinstance(p, Supervisor):
            return True
        if isinstance(p, PlatformAdmin):
            return False
        return bool(p.roles() & LISTING)

    def sees(self, p: Principal, case: Case) -> bool:
        if isinstance(p, PlatformAdmin):
            return False
        if isinstance(p, Supervisor):
            return self.provinces.get(case.tenant) == p.province
        if case.tenant != p.tenant:
            return False
        if case.type == "ACCUSATION":
            if case.accused_user == p.username:
                return False
            accused = [u for u in [case.accused_unit, *case.accused_person_units] if u]
            if any(covers(a, g.unit) for a in accused for g in p.grants):
                return False
        for g in p.grants:
            if g.role in READ_IN_SCOPE and (
                covers(g.unit, case.holder) or covers(g.unit, case.location)
            ):
                return True
            if g.role == "department_handler" and covers(g.unit, case.holder):
                return True
            if g.role == "grid_worker" and case.registered_by == p.username:
                return True
            if g.role == "evaluator" and p.username in case.panel:
                return True
            if g.role == "leader" and case.leader == p.username:
                return True
        return False

    def visible(self, p: Principal) -> set[str]:
        return {cid for cid, case in self.cases.items() if self.sees(p, case)}

    def may_route(self, user: Official, case: Case) -> list[str]:
        """Scopes from which ``user`` may route the case: petition officer over its holder."""
        if not self.sees(user, case):
            return []
        return [
            g.unit
            for g in user.grants
            if g.role == "petition_officer" and covers(g.unit, case.holder)
        ]

    def may_own(self, user: Official, case: Case) -> bool:
        """包案: a leader whose scope covers the holder, and not the accused."""
        if not self.sees(user, case):
            return False
        return any(g.role == "leader" and covers(g.unit, case.holder) for g in user.grants)

    # --- PII --------------------------------------------------------------------------

    @staticmethod
    def unmasked(p: Principal, case: Case) -> bool:
        if not isinstance(p, Official):
            return False
        return any(g.role in HANDLING and covers(g.unit, case.holder) for g in p.grants)

    @staticmethod
    def mask_phone(phone: str | None) -> str | None:
        if not phone:
            return phone
        return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]

    @staticmethod
    def mask_id_number(value: str | None) -> str | None:
        if not value:
            return value
        return value[:6] + "*" * (len(value) - 8) + value[-2:]

    def petitioner(self, p: Principal, case: Case) -> dict[str, object]:
        """The petitioner's phone, id number and masked flag as ``p`` should read them."""
        if self.unmasked(p, case):
            return {"phone": case.phone, "idNumber": case.id_number, "masked": False}
        return {
            "phone": self.mask_phone(case.phone),
            "idNumber": self.mask_id_number(case.id_number),
            "masked": True,
        }
