"""检举控告 need to know (Art. 30): may this person learn anything about this case?

An accusation, and everything about it — that it exists, its content, the
petitioner, who handles it, its outcome — never reaches the accused person, nor
anybody holding any role inside the subtree of an *accused unit*, whatever their
other roles. The accused units of a case are the unit it names (``accused_path``)
and every unit where the person it names (``accused_username``) holds a staff role
now (:data:`STAFF_ROLES`: any role but EVALUATOR — the citizen pool sits at the city
root and makes nobody staff of it): an accusation against a township leader is an
accusation against his township too, and may not be routed, assigned or shown to
it. This module is the one place that rule is written; every way out asks it:

- reads (``case``, ``cases``, search, counts, boards, statistics, exports) through
  the read predicate (:func:`backend.cases.visibility.read_predicate`), which
  excludes :func:`barred_clause` for the caller;
- the outbox (in-app, webhook, SMS, e-mail) refuses a message to a barred recipient
  when it is written and again when it is delivered or read (:func:`screen`,
  :func:`barred_pairs`), and gives the channels outside the system a neutral text
  for any message about an accusation (:data:`NEUTRAL_SUBJECT`);
- the digest, escalation and supervision lists leave barred people out in SQL
  (:func:`barred_user_clause`);
- panel draws treat a barred evaluator as a conflict (:func:`is_barred`);
- stored reports aggregate no accusation one of their readers may not know
  (:func:`barred_clause` over the readers' grants);
- an intake replay answers the case only while it is readable;
- intake, routing, 包案, the first receiver (rosters) and joint-meeting participants
  place nothing inside an accused unit (:func:`accused_of`, :func:`is_barred`,
  :func:`person_units`); an accusation whose accused units include the city root is
  refused at intake (nobody in the city may handle it: it goes to the body above,
  docs/security.md).

Three renderings of the one rule, side by side and tested against each other
(tests/test_need_to_know.py): Python for objects already loaded
(:func:`is_barred`), SQL with the person's grants as literals when the person is
known (:func:`barred_clause`), and SQL correlated over ``role_assignments`` when
the people are rows of a statement (:func:`barred_user_clause`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.authz.roles import Role
from backend.authz.scope import path_covers, subtree_of
from backend.cases.models import Case, CaseType
from backend.tenants.models import OrgUnit, RoleAssignment, User

# Roles that make their holder staff of a unit, so an accusation against the holder is
# one against that unit (Art. 30). An EVALUATOR role is a seat in the citizen pool
# (held at the city root), not a post.
STAFF_ROLES = tuple(sorted(r.value for r in Role if r is not Role.EVALUATOR))

# What the channels outside the system (webhook, SMS, e-mail) say about an accusation:
# nothing but that there is something to look at, for whoever may look.
NEUTRAL_SUBJECT = "信访事项提醒"
NEUTRAL_BODY = "您有一条新的信访事项提醒，请登录系统查看。"


@dataclass(frozen=True)
class Accused:
    """What the rule reads of a case: its type and whom it accuses.

    ``person_paths``: the units where the accused person holds a staff role, loaded by
    :func:`accused_of` / :func:`accusations_among` (``Accused.of`` alone leaves them
    empty: use it only where the person's units are checked in SQL as well).
    """

    id: uuid.UUID
    type: str
    accused_path: str | None
    accused_username: str | None
    person_paths: tuple[str, ...] = ()

    @classmethod
    def of(cls, case: Case) -> Accused:
        """From a case row (or any object with its type and accused columns)."""
        return cls(
            getattr(case, "id", None),
            str(case.type),
            case.accused_path,
            getattr(case, "accused_username", None),
        )

    @property
    def names_an_accused(self) -> bool:
        return self.type == CaseType.ACCUSATION and bool(self.accused_path or self.accused_username)

    @property
    def accused_units(self) -> tuple[str, ...]:
        """The accused unit and the accused person's units (nothing for other cases)."""
        if self.type != CaseType.ACCUSATION:
            return ()
        return tuple(dict.fromkeys(p for p in (self.accused_path, *self.person_paths) if p))

    def covers(self, unit_path: str) -> bool:
        """``unit_path`` lies inside an accused unit: nothing of the case may go there."""
        return any(path_covers(a, unit_path) for a in self.accused_units)


# --- the rule, in Python ----------------------------------------------------------------


def is_barred(case: Accused | Case, unit_paths: Iterable[str], username: str | None) -> bool:
    """Whether the holder of roles at ``unit_paths`` named ``username`` may know nothing of it."""
    facts = case if isinstance(case, Accused) else Accused.of(case)
    if facts.type != CaseType.ACCUSATION:
        return False
    if facts.accused_username and username and facts.accused_username == username:
        return True
    return any(facts.covers(p) for p in unit_paths)


# --- the accused person's units -----------------------------------------------------------


def _in_person_units(tenant_id: Any, username: Any, inside: Any) -> ColumnElement[bool]:
    """The user named ``username`` holds a staff role at a unit whose path satisfies
    ``inside(path column)`` (all SQL expressions, correlated to the enclosing statement)."""
    ra, u, ou = aliased(RoleAssignment), aliased(User), aliased(OrgUnit)
    return exists(
        select(ra.id)
        .join(u, and_(u.tenant_id == ra.tenant_id, u.id == ra.user_id))
        .join(ou, and_(ou.tenant_id == ra.tenant_id, ou.id == ra.org_unit_id))
        .where(
            u.tenant_id == tenant_id,
            u.username == username,
            ra.role.in_(STAFF_ROLES),
            inside(ou.path),
        )
        # the case (and, nested in barred_user_clause, the reader's role) come from the
        # enclosing statements, however deep: never from a FROM of their own
        .correlate_except(ra, u, ou)
    )


def user_roles(*columns: Any) -> Any:
    """``SELECT columns`` over users joined to their role assignments and those units."""
    return (
        select(*columns)
        .join(
            RoleAssignment,
            and_(RoleAssignment.tenant_id == User.tenant_id, RoleAssignment.user_id == User.id),
        )
        .join(
            OrgUnit,
            and_(
                OrgUnit.tenant_id == RoleAssignment.tenant_id,
                OrgUnit.id == RoleAssignment.org_unit_id,
            ),
        )
    )


async def person_units(
    session: AsyncSession, tenant_id: uuid.UUID, usernames: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """The units where each of ``usernames`` holds a staff role now, in one statement."""
    names = sorted({u for u in usernames if u})
    if not names:
        return {}
    rows = await session.execute(
        user_roles(User.username, OrgUnit.path).where(
            User.tenant_id == tenant_id,
            User.username.in_(names),
            RoleAssignment.role.in_(STAFF_ROLES),
        )
    )
    found: dict[str, set[str]] = {}
    for username, path in rows:
        found.setdefault(username, set()).add(path)
    return {u: tuple(sorted(found.get(u, ()))) for u in names}


async def accused_of(session: AsyncSession, case: Case) -> Accused:
    """The case's facts with the accused person's current units: what every check that
    places the case somewhere (a holder, a leader, a receiver, a panel) asks."""
    facts = Accused.of(case)
    if facts.type != CaseType.ACCUSATION or not facts.accused_username:
        return facts
    units = await person_units(session, case.tenant_id, [facts.accused_username])
    return dataclasses.replace(facts, person_paths=units.get(facts.accused_username, ()))


# --- the rule, in SQL with the person's grants as literals -------------------------------


def barred_clause(
    unit_paths: Iterable[str], usernames: Iterable[str], cases: type[Case] | object = Case
) -> ColumnElement[bool]:
    """Cases one of these people (roles at ``unit_paths``, named ``usernames``) may not know.

    ``cases`` is the ``Case`` entity or an alias/CTE with the same column names. For
    one principal pass its grant paths and its username; for the readers of a stored
    report, all of theirs.
    """
    c = cases
    paths = sorted(set(unit_paths))
    inside = [subtree_of(p, c.accused_path) for p in paths]
    names = sorted({u for u in usernames if u})
    # every branch is false, never NULL, for a case naming no one: the read predicate
    # negates this clause, and NOT NULL would hide the case from everybody
    person = (
        and_(c.accused_username.is_not(None), c.accused_username.in_(names)) if names else false()
    )
    # one of the paths lies inside a unit where the accused person holds a staff role
    in_person_units = (
        and_(
            c.accused_username.is_not(None),
            _in_person_units(
                c.tenant_id,
                c.accused_username,
                lambda unit: or_(*(subtree_of(p, unit) for p in paths)),
            ),
        )
        if paths
        else false()
    )
    return and_(
        c.type == CaseType.ACCUSATION.value,
        or_(
            person,
            and_(c.accused_path.is_not(None), or_(*inside) if inside else false()),
            in_person_units,
        ),
    )


def names_an_accused(cases: type[Case] | object = Case) -> ColumnElement[bool]:
    """Accusations naming an accused (unit or person): what stored aggregates leave out,
    since nothing stored can ask who will read it."""
    c = cases
    return and_(
        c.type == CaseType.ACCUSATION.value,
        or_(c.accused_path.is_not(None), c.accused_username.is_not(None)),
    )


# --- the rule, in SQL over the role table (people as rows of a statement) ------------------


def barred_user_clause(
    user_id: ColumnElement[uuid.UUID],
    username: ColumnElement[str],
    cases: type[Case] | object = Case,
) -> ColumnElement[bool]:
    """The user ``user_id`` (named ``username``) may not know the case of ``cases``.

    For recipient lists computed in SQL (digest, escalation, supervision overdue):
    the user's current roles are read in the same statement, so a role granted inside
    the accused unit a minute ago already counts.
    """
    c = cases
    held_inside = exists(
        select(RoleAssignment.id)
        .join(
            OrgUnit,
            and_(
                OrgUnit.tenant_id == RoleAssignment.tenant_id,
                OrgUnit.id == RoleAssignment.org_unit_id,
            ),
        )
        .where(
            RoleAssignment.tenant_id == c.tenant_id,
            RoleAssignment.user_id == user_id,
            subtree_of(OrgUnit.path, c.accused_path),
        )
    )
    ra, ou = aliased(RoleAssignment), aliased(OrgUnit)
    held_in_person_units = exists(
        select(ra.id)
        .join(ou, and_(ou.tenant_id == ra.tenant_id, ou.id == ra.org_unit_id))
        .where(
            ra.tenant_id == c.tenant_id,
            ra.user_id == user_id,
            _in_person_units(
                c.tenant_id, c.accused_username, lambda unit: subtree_of(ou.path, unit)
            ),
        )
        .correlate_except(ra, ou)
    )
    return and_(
        c.type == CaseType.ACCUSATION.value,
        or_(
            and_(c.accused_username.is_not(None), c.accused_username == username),
            and_(c.accused_path.is_not(None), held_inside),
            and_(c.accused_username.is_not(None), held_in_person_units),
        ),
    )


# --- people and cases loaded for the outbox and the draws ----------------------------------


# PostgreSQL: one key probe per case (``LIMIT 1`` keeps the planner from flattening the
# lateral subquery into a join). ``id IN (…)`` under row-level security is priced as if
# the tenant setting named several tenants and planned as a read of the whole tenant —
# 50,000 heap pages per outbox batch at 1M cases (docs/performance.md, the deadline scan)
_ACCUSATIONS = text(
    """
    SELECT c.id, c.type, c.accused_path, c.accused_username
    FROM unnest(CAST(:ids AS uuid[])) AS ids(id)
    CROSS JOIN LATERAL (
        SELECT x.id, x.type, x.accused_path, x.accused_username FROM cases x
        WHERE x.tenant_id = :tenant AND x.id = ids.id AND x.type = :type
        LIMIT 1
    ) AS c
    """
)


async def accusations_among(
    session: AsyncSession, tenant_id: uuid.UUID, case_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Accused]:
    """The accusations among ``case_ids``: their content never leaves the system, and
    those naming an accused are barred from it (other cases need no check)."""
    ids = sorted(set(case_ids))
    if not ids:
        return {}
    if session.get_bind().dialect.name == "postgresql":
        rows = await session.execute(
            _ACCUSATIONS, {"ids": ids, "tenant": tenant_id, "type": CaseType.ACCUSATION.value}
        )
    else:
        rows = await session.execute(
            select(Case.id, Case.type, Case.accused_path, Case.accused_username).where(
                Case.tenant_id == tenant_id,
                Case.id.in_(ids),
                Case.type == CaseType.ACCUSATION.value,
            )
        )
    found = [(i, str(t), p, u) for i, t, p, u in rows]
    units = await person_units(session, tenant_id, (u for *_, u in found if u))
    return {i: Accused(i, t, p, u, units.get(u, ()) if u else ()) for i, t, p, u in found}


@dataclass(frozen=True)
class Person:
    """A user as the rule sees it: its name and the paths of every role it holds now."""

    username: str
    unit_paths: tuple[str, ...]


async def people(
    session: AsyncSession, tenant_id: uuid.UUID, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Person]:
    """Usernames and current role paths of ``user_ids``, in one statement."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(User.id, User.username, OrgUnit.path)
        .outerjoin(
            RoleAssignment,
            and_(RoleAssignment.tenant_id == User.tenant_id, RoleAssignment.user_id == User.id),
        )
        .outerjoin(
            OrgUnit,
            and_(
                OrgUnit.tenant_id == RoleAssignment.tenant_id,
                OrgUnit.id == RoleAssignment.org_unit_id,
            ),
        )
        .where(User.tenant_id == tenant_id, User.id.in_(ids))
    )
    names: dict[uuid.UUID, str] = {}
    paths: dict[uuid.UUID, set[str]] = {}
    for uid, username, path in rows:
        names[uid] = username
        if path is not None:
            paths.setdefault(uid, set()).add(path)
    return {uid: Person(name, tuple(sorted(paths.get(uid, ())))) for uid, name in names.items()}


async def barred_pairs(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    pairs: Iterable[tuple[uuid.UUID | None, Iterable[uuid.UUID]]],
) -> tuple[set[int], dict[uuid.UUID, Accused]]:
    """Which of ``(recipient, cases it is about)`` may not go out, and the accusations met.

    Returns the indices of the barred pairs (a recipient-less pair is never barred:
    it goes to no person) and the accusations among all the cases, so the caller can
    neutralise what leaves the system. Two statements for any number of pairs.
    """
    given = [(r, tuple(ids)) for r, ids in pairs]
    accusations = await accusations_among(
        session, tenant_id, (cid for _, ids in given for cid in ids)
    )
    if not accusations:
        return set(), {}

    def named(ids: tuple[uuid.UUID, ...]) -> list[Accused]:
        return [accusations[c] for c in ids if c in accusations]

    recipients = {r for r, ids in given if r is not None and named(ids)}
    known = await people(session, tenant_id, recipients)
    barred = set()
    for n, (recipient, ids) in enumerate(given):
        if recipient is None or not named(ids):
            continue  # to nobody in particular, or about no accusation: nothing to bar
        person = known.get(recipient)
        if person is None or any(
            is_barred(a, person.unit_paths, person.username) for a in named(ids)
        ):
            barred.add(n)  # no such user any more: nobody to vouch for
    return barred, accusations


async def may_know(
    session: AsyncSession, tenant_id: uuid.UUID, case: Case, user_ids: Iterable[uuid.UUID]
) -> list[uuid.UUID]:
    """``user_ids`` without those barred from ``case`` (order kept)."""
    ids = list(dict.fromkeys(user_ids))
    facts = await accused_of(session, case)
    if not facts.names_an_accused:
        return ids
    known = await people(session, tenant_id, ids)
    return [
        u
        for u in ids
        if u in known and not is_barred(facts, known[u].unit_paths, known[u].username)
    ]
