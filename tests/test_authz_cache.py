"""The process-wide memos of authorization never hand one principal another's visibility.

``allowed_grants``, ``minimal_paths`` and ``read_predicate`` are memoised on value keys
(role names, unit paths, account, tenant) so that the new Principal each request loads
reuses what an equal one derived before. These tests pin the key: every input the
predicate reads changes it, equal inputs share it, and a revoked grant is gone at once.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from backend.authz.enforcer import allowed_grants
from backend.authz.principal import Grant, Principal
from backend.authz.roles import AccountKind, Role
from backend.authz.scope import minimal_paths
from backend.cases import visibility
from backend.cases.models import Case
from backend.cases.visibility import read_predicate

TENANT = uuid.uuid4()


def official(
    username: str, *grants: tuple[Role, str], account: uuid.UUID | None = None
) -> Principal:
    """A city official as load_principal builds it (fresh objects on every call)."""
    return Principal(
        account_id=account or uuid.uuid4(),
        username=username,
        kind=AccountKind.TENANT_USER,
        tenant_id=TENANT,
        tenant_slug="city",
        grants=tuple(Grant(role=r, unit_id=uuid.uuid4(), unit_path=p) for r, p in grants),
    )


def sql(principal: Principal, dialect: Any = None) -> tuple[str, dict[str, Any]]:
    """The predicate as the database receives it: SQL text and bound values."""
    compiled = (
        select(Case.id)
        .where(read_predicate(principal))
        .compile(dialect=dialect or postgresql.dialect())
    )
    return str(compiled), compiled.params


def uncached(principal: Principal) -> tuple[str, dict[str, Any]]:
    """The same predicate built without the memo."""
    build = visibility._tenant_read_predicate.__wrapped__
    pred = build(principal.tenant_id, principal.account_id, principal.username, principal.grant_key)
    compiled = select(Case.id).where(pred).compile(dialect=postgresql.dialect())
    return str(compiled), compiled.params


def test_equal_grants_of_one_account_share_the_predicate_across_requests():
    account = uuid.uuid4()
    first = official("lead", (Role.LEADER, "/city"), (Role.LEADER, "/city/c1"), account=account)
    again = official("lead", (Role.LEADER, "/city"), (Role.LEADER, "/city/c1"), account=account)
    assert first is not again
    assert read_predicate(first) is read_predicate(again)
    assert sql(again) == uncached(again)


def test_different_grants_give_different_predicates():
    account = uuid.uuid4()
    county = official("off", (Role.PETITION_OFFICER, "/city/c1"), account=account)
    sibling = official("off", (Role.PETITION_OFFICER, "/city/c2"), account=account)
    handler = official("off", (Role.DEPARTMENT_HANDLER, "/city/c1"), account=account)
    assert len({repr(sql(p)) for p in (county, sibling, handler)}) == 3
    for p in (county, sibling, handler):
        assert sql(p) == uncached(p)
    assert "/city/c2" not in repr(sql(county)[1])


def test_same_grants_of_another_account_or_city_do_not_share():
    grants = ((Role.LEADER, "/city/c1"), (Role.EVALUATOR, "/city/c1"))
    one, other = official("a", *grants), official("b", *grants)
    assert read_predicate(one) is not read_predicate(other)
    assert str(one.account_id) not in repr(sql(other)[1])
    assert sql(other) == uncached(other)
    elsewhere = dataclasses.replace(one, tenant_id=uuid.uuid4())
    assert read_predicate(elsewhere) is not read_predicate(one)


def test_a_revoked_grant_is_gone_on_the_next_request():
    account = uuid.uuid4()
    before = official("lead", (Role.LEADER, "/city/c1"), (Role.LEADER, "/city/c2"), account=account)
    read_predicate(before)  # warm the memo with the old grants
    after = official("lead", (Role.LEADER, "/city/c1"), account=account)
    assert "/city/c2" in repr(sql(before)[1])
    assert "/city/c2" not in repr(sql(after)[1])
    assert sql(after) == uncached(after)
    none_left = official("lead", account=account)
    assert "false" in sql(none_left)[0].lower() or "0 = 1" in sql(none_left)[0]


def test_one_predicate_serves_several_statements_and_dialects():
    p = official("grid", (Role.GRID_WORKER, "/city/c1/t1/v1/g1"))
    pred = read_predicate(p)
    for dialect in (postgresql.dialect(), sqlite.dialect()):
        a = select(Case.id).where(pred).compile(dialect=dialect)
        b = select(Case.number).where(pred, Case.id.is_not(None)).compile(dialect=dialect)
        assert p.account_id in a.params.values() and p.account_id in b.params.values()
    assert sql(p, sqlite.dialect()) == sql(p, sqlite.dialect())


def test_allowed_grants_are_the_callers_own_grants():
    first = official("a", (Role.PETITION_OFFICER, "/city/c1"), (Role.EVALUATOR, "/city/c2"))
    second = official("b", (Role.PETITION_OFFICER, "/city/c1"), (Role.EVALUATOR, "/city/c2"))
    assert allowed_grants(first, "case", "register") == [first.grants[0]]
    got = allowed_grants(second, "case", "register")
    assert got == [second.grants[0]] and got[0] is second.grants[0]
    assert [g.role for g in allowed_grants(second, "case", "read_own")] == [Role.EVALUATOR]


def test_minimal_paths_memo_gives_fresh_lists():
    paths = ["/city/c1/t1", "/city/c1", "/city/c10", "/city/c1/t2"]
    first = minimal_paths(paths)
    assert sorted(first) == ["/city/c1", "/city/c10"]
    first.append("/mutated")
    assert sorted(minimal_paths(iter(paths))) == ["/city/c1", "/city/c10"]
    assert minimal_paths([]) == [] and minimal_paths(["/city"]) == ["/city"]


def test_the_compiled_detail_statement_is_kept_per_reader_and_scope():
    """The case detail's statement (backend/cases/compiled.py) is memoised on the read
    rule object, the selection, the zone and the tenant scope: two officials, or one
    official's statement in another scope, never share an entry, and a revoked grant
    gives a new rule and so a new statement."""
    from backend.cases import compiled

    node = (compiled.Field("number", "number"),)
    account = uuid.uuid4()
    lead = official("lead", (Role.LEADER, "/city/c1"), account=account)
    same = official("lead", (Role.LEADER, "/city/c1"), account=account)
    other = official("other", (Role.LEADER, "/city/c1"))
    scope, elsewhere = (TENANT,), (uuid.uuid4(),)

    def statement(p: Principal, s: tuple[Any, ...] = scope) -> Any:
        return compiled._detail_statement(read_predicate(p), node, "UTC", s)

    assert statement(lead) is statement(same)
    assert statement(lead) is not statement(other)
    assert statement(lead) is not statement(lead, elsewhere)
    compiled_elsewhere = statement(lead, elsewhere).compile(dialect=postgresql.dialect())
    assert "case_id" in str(compiled_elsewhere)
    assert str(elsewhere[0]) in repr(compiled_elsewhere.params)
    revoked = official("lead", (Role.LEADER, "/city/c2"), account=account)
    assert statement(revoked) is not statement(lead)
