"""The plain-field shortcut (backend/schema/execution.py) answers exactly what graphql-core would.

Each document is sent twice over HTTP to the same app: once as served, once with the
shortcut switched off (its ``execute_field`` replaced by strawberry's own), and the two
JSON bodies must be identical — values, nulls, enums, dates, order of keys and errors.
"""

from __future__ import annotations

import json

import pytest
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from backend.schema.execution import PlainFieldExecutionContext
from tests.test_case_query_count import city  # noqa: F401 - the module's 52-case city

CASE_FIELDS = """id number status type channel category subject content version receivedAt
  dueAt warningColor repeatCount skipLevel headCount tags priority onHold replyOpinion
  rating resolution extensionDays extensionApproved __typename"""

DOCUMENTS = [
    f"""{{ cases(first: 20) {{ totalCount pageInfo {{ hasNextPage endCursor }}
      edges {{ cursor node {{ {CASE_FIELDS}
        holderUnit {{ id path slug name level depth }} locationUnit {{ path name }}
        leader {{ username displayName }} firstReceiver {{ username }}
        petitioner {{ name phone idNumber masked }}
        deadlines {{ step status startedAt dueDate dueAt warningColor rule note }}
        events {{ seq kind at actor {{ username }} fromStatus toStatus reason data hash }}
      }} }} }} }}""",
    """query { a: cases(first: 3) { edges { node { n: number ...F s: status } } }
      b: warningBoard { red yellow blue cases(color: RED, first: 2) { totalCount } } }
      fragment F on Case { id number @include(if: true) dueAt @skip(if: true) }""",
    """{ me { username } cases(first: 2, filter: {unitPath: "no such"}) { totalCount } }""",
]


@pytest.mark.parametrize("who", ["officer", "sup", "leader"])
@pytest.mark.parametrize("document", range(len(DOCUMENTS)))
async def test_shortcut_answers_like_graphql_core(gql, city, monkeypatch, who, document):  # noqa: F811
    token = city.token(who)
    served = await gql(DOCUMENTS[document], token=token)
    with monkeypatch.context() as patch:
        patch.setattr(
            PlainFieldExecutionContext,
            "execute_field",
            StrawberryGraphQLCoreExecutionContext.execute_field,
        )
        reference = await gql(DOCUMENTS[document], token=token)
    assert served.status == reference.status
    assert comparable(served.body) == comparable(reference.body)
    assert served.data or document == 2, served.body  # the last one is refused as a whole


def comparable(body: dict) -> str:
    """The body as JSON text (key order counts), without the per-request id of errors."""
    for error in body.get("errors") or []:
        error.get("extensions", {}).pop("requestId", None)
    return json.dumps(body, ensure_ascii=False)


def test_only_plain_scalar_fields_take_the_shortcut():
    from backend.schema import build_schema
    from backend.schema.execution import plain_field_plan

    case = build_schema()._schema.type_map["Case"]
    assert plain_field_plan(case.fields["number"])[0] == "number"
    assert plain_field_plan(case.fields["dueAt"])[0] == "due_at"
    for resolved in ("holderUnit", "deadlines", "petitioner", "tags"):  # objects, lists
        assert plain_field_plan(case.fields[resolved]) is None
    query = build_schema()._schema.type_map["Query"]
    assert plain_field_plan(query.fields["cases"]) is None  # a resolver with arguments
