"""The Art. 30 rule's three renderings agree (backend/cases/need_to_know.py).

``is_barred`` (Python, for loaded objects), ``barred_clause`` (SQL with a person's
grants as literals: the read predicate, reports, the inbox) and
``barred_user_clause`` (SQL over the role table: digest and escalation lists) must
give one answer for every case and person — the accused person's own units counting
as accused units in all three — or a channel using one of them would leak what
another hides. Hypothesis draws accusations against every unit and person
of a city whose people hold roles in and out of those units; the database (SQLite or
PostgreSQL) evaluates both SQL forms over the same rows.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Boolean, String, Uuid, literal, select, union_all

from backend.authz.principal import SYSTEM
from backend.authz.roles import Role
from backend.cases.need_to_know import (
    Accused,
    barred_clause,
    barred_user_clause,
    is_barred,
    people,
    person_units,
)
from backend.core.db import TenantScope
from backend.tenants import service
from backend.tenants.models import User
from tests.helpers import USERS, build_city, unique

UNITS = ["", "c1", "c2", "dept", "c1/t1", "c1/t2", "c2/t1", "c1/t1/v1", "c1/t1/v1/g1"]
EXTRA = [  # people with roles in and out of the units an accusation may name
    ("leader", Role.PETITION_OFFICER, "c1/t1"),
    ("c2_officer", Role.GRID_WORKER, "c1/t1/v1/g1"),
    ("handler", Role.LEADER, "c2"),
    ("evaluator", Role.DEPARTMENT_HANDLER, "dept"),
]


@pytest.fixture(scope="module")
async def town(db):
    city = await build_city(db, unique("nk"), unique("nkp"))
    async with db.transaction() as session:
        for short, role, rel in EXTRA:
            await service.assign_role(
                session,
                SYSTEM,
                username=f"{city.slug}_{short}",
                role=role,
                org_unit_path=city.path(rel),
            )
        tenant_id = (await service.tenant_by_slug(session, city.slug)).id
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        users = {u.username: u.id for u in await session.scalars(select(User))}
        known = await people(session, tenant_id, users.values())
        units = await person_units(session, tenant_id, users)
    return city, tenant_id, users, known, units


case_specs = st.lists(
    st.tuples(
        st.sampled_from(["ACCUSATION", "ACCUSATION", "CLAIM"]),
        st.none() | st.sampled_from(UNITS),
        st.none() | st.sampled_from([short for short, _, _ in USERS]),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs=case_specs)
async def test_python_and_both_sql_forms_agree_for_every_person(db, town, specs):
    city, tenant_id, users, known, units = town
    cases = [  # the Python form reads the accused person's units as loaded (accused_of)
        Accused(
            uuid.uuid4(),
            kind,
            city.path(unit) if unit is not None else None,
            f"{city.slug}_{who}" if who else None,
            units[f"{city.slug}_{who}"] if who else (),
        )
        for kind, unit, who in specs
    ]
    c = union_all(  # the cases as rows (SQLite has no VALUES with column names)
        *(
            select(
                literal(case.id, Uuid).label("id"),
                literal(tenant_id, Uuid).label("tenant_id"),
                literal(case.type, String).label("type"),
                literal(case.accused_path, String).label("accused_path"),
                literal(case.accused_username, String).label("accused_username"),
            )
            for case in cases
        )
    ).subquery("c")
    async with db.transaction(TenantScope.of([tenant_id])) as session:
        for username, user_id in users.items():
            person = known[user_id]
            literal_form = barred_clause(person.unit_paths, [username], cases=c.c)
            row_form = barred_user_clause(
                literal(user_id, Uuid), literal(username, String), cases=c.c
            )
            got = {
                case_id: (bool(a), bool(b))
                for case_id, a, b in await session.execute(
                    select(
                        c.c.id,
                        literal_form.cast(Boolean).label("a"),
                        row_form.cast(Boolean).label("b"),
                    )
                )
            }
            for case in cases:
                expected = is_barred(case, person.unit_paths, username)
                assert got[case.id] == (expected, expected), (username, person, case)
