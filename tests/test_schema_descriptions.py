"""Issue 20 item 8: every type, field, argument, input field and enum value of the schema
has a description (backend/schema/descriptions.toml, or the code's own ``description=``).

A new field without one fails here with its key, e.g. ``Case.newField`` or
``Query.cases(newArg)``: add a line to its type's table in descriptions.toml.
"""

from __future__ import annotations

import strawberry
from graphql import graphql_sync

from backend.schema import build_schema, sdl
from backend.schema.describe import apply_descriptions, shadowed_keys, undescribed, unused_keys


def _schema():
    return build_schema()._schema


def test_every_type_field_argument_and_enum_value_is_described():
    missing = undescribed(_schema())
    assert missing == [], (
        f"{len(missing)} without a description; add them to backend/schema/descriptions.toml:\n"
        + "\n".join(missing)
    )


def test_descriptions_file_names_only_what_the_schema_has():
    stale = unused_keys(_schema())
    assert stale == [], "descriptions.toml describes what the schema no longer has:\n" + "\n".join(
        stale
    )


def test_descriptions_file_holds_no_text_the_code_overrides():
    """The code's ``description=`` wins: the file's text for the same key would never show."""
    shadowed = shadowed_keys(_schema())
    assert shadowed == [], "described in the code already; drop from descriptions.toml:\n" + (
        "\n".join(shadowed)
    )


INTROSPECT = """
{
  types: __schema { types { name description kind
    fields { name description args { name description } }
    inputFields { name description }
    enumValues { name description } } }
}
"""


def test_introspection_answers_every_description():
    """What a client sees (GraphiQL's docs, codegen comments), not only the SDL."""
    result = graphql_sync(_schema(), INTROSPECT)
    assert result.errors is None
    empty = []
    for t in result.data["types"]["types"]:
        if t["name"].startswith("__") or t["name"] in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not t["description"]:
            empty.append(t["name"])
        for f in t["fields"] or []:
            empty += [f"{t['name']}.{f['name']}"] * (not f["description"])
            empty += [
                f"{t['name']}.{f['name']}({a['name']})" for a in f["args"] if not a["description"]
            ]
        for f in (t["inputFields"] or []) + (t["enumValues"] or []):
            empty += [f"{t['name']}.{f['name']}"] * (not f["description"])
    assert empty == []


def test_review_steps_carry_their_chinese_terms():
    result = graphql_sync(
        _schema(), '{ __type(name: "CaseStatus") { enumValues { name description } } }'
    )
    values = {v["name"]: v["description"] for v in result.data["__type"]["enumValues"]}
    assert values["REVIEW_REQUESTED"].startswith("复查 review")
    assert values["RE_REVIEW_REQUESTED"].startswith("复核 re-review")
    assert '"""复查 review requested by the petitioner (Art. 35)."""' in sdl()


def test_code_description_wins_over_the_data_file():
    @strawberry.type
    class Query:
        said: int = strawberry.field(description="From the code.")
        unsaid: int

    schema = strawberry.Schema(query=Query)._schema
    data = {"Query": {"_": "Root.", "said": "From the file.", "unsaid": "Filled in."}}
    apply_descriptions(schema, data)
    fields = schema.query_type.fields
    assert (fields["said"].description, fields["unsaid"].description) == (
        "From the code.",
        "Filled in.",
    )
    assert schema.query_type.description == "Root."
    assert undescribed(schema) == []
