"""The schema's descriptions, kept in one data file (``descriptions.toml`` beside this one).

Resolvers stay readable: a field's ``description=`` in the code still wins where present;
the data file fills in the rest when the schema is built (:func:`apply_descriptions`).
Keys, one TOML table per GraphQL type::

    [Case]
    _ = "the type's description"
    number = "a field (object, interface or input field)"
    "deadlines(open)" = "an argument"
    [CaseStatus]
    REGISTERED = "an enum value"

``[_any]`` describes a field or argument by its name alone (``caseId``, ``"(first)"``),
for the few names that mean the same thing wherever they occur; ``[_same]`` names, for a
type that inherits its fields (``CaseStatistics = "IndicatorSet"``), the table to read
them from. A type's own table wins over both.
``tests/test_schema_descriptions.py`` lists what is still undescribed, by key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
)

DESCRIPTIONS = Path(__file__).with_name("descriptions.toml")
ANY = "_any"
SAME = "_same"  # type -> the type whose table describes its inherited members
TYPE_KEY = "_"


@dataclass(frozen=True)
class Slot:
    """One describable thing: ``key`` is its name in the data file (``Type.field(arg)``)."""

    key: str
    owner: object  # the graphql-core object whose ``description`` this is

    @property
    def described(self) -> bool:
        return bool((getattr(self.owner, "description", None) or "").strip())


@cache
def load_descriptions(path: Path = DESCRIPTIONS) -> dict[str, dict[str, str]]:
    with path.open("rb") as f:
        data = tomllib.load(f)
    for table, entries in data.items():
        if not isinstance(entries, dict) or not all(
            isinstance(v, str) and v.strip() for v in entries.values()
        ):
            raise ValueError(f"{path.name}: [{table}] must map names to non-empty strings")
    return data


def own_types(schema: GraphQLSchema) -> list[GraphQLNamedType]:
    """The schema's own named types (no introspection types, no built-in scalars)."""
    builtin = {"String", "Int", "Float", "Boolean", "ID"}
    return [
        t
        for name, t in sorted(schema.type_map.items())
        if not name.startswith("__") and name not in builtin
    ]


def slots(schema: GraphQLSchema) -> Iterator[Slot]:
    """Every type, field, argument, input field and enum value, keyed as in the data file."""
    for t in own_types(schema):
        yield Slot(t.name, t)
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in t.fields.items():
                yield Slot(f"{t.name}.{fname}", field)
                for aname, arg in field.args.items():
                    yield Slot(f"{t.name}.{fname}({aname})", arg)
        elif isinstance(t, GraphQLInputObjectType):
            for fname, field in t.fields.items():
                yield Slot(f"{t.name}.{fname}", field)
        elif isinstance(t, GraphQLEnumType):
            for vname, value in t.values.items():
                yield Slot(f"{t.name}.{vname}", value)


def lookup(key: str, data: dict[str, dict[str, str]]) -> str | None:
    """The data file's text for ``key`` (``Type``, ``Type.member``, ``Type.field(arg)``)."""
    type_name, _, member = key.partition(".")
    own = data.get(type_name, {})
    if not member:
        return own.get(TYPE_KEY)
    if member in own:
        return own[member]
    base = data.get(SAME, {}).get(type_name)
    if base and member in data.get(base, {}):
        return data[base][member]
    common = data.get(ANY, {})
    if "(" in member:  # an argument: "(name)" in [_any]
        return common.get("(" + member.split("(", 1)[1])
    return common.get(member)


def apply_descriptions(
    schema: GraphQLSchema, data: dict[str, dict[str, str]] | None = None
) -> GraphQLSchema:
    """Fill in every empty description the data file has text for; code's own text wins."""
    data = load_descriptions() if data is None else data
    for slot in slots(schema):
        if slot.described:
            continue
        text = lookup(slot.key, data)
        if text:
            slot.owner.description = text.strip()
    return schema


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Keys of what has no description after :func:`apply_descriptions`."""
    return [s.key for s in slots(schema) if not s.described]


def shadowed_keys(schema: GraphQLSchema) -> list[str]:
    """Keys of a type's own table whose text is not shown because the code has its own
    ``description=`` (the code wins): one of the two should go."""
    data = load_descriptions()
    shadowed = []
    for slot in slots(schema):
        type_name, _, member = slot.key.partition(".")
        text = data.get(type_name, {}).get(member or TYPE_KEY)
        if text and (slot.owner.description or "") != text.strip():
            shadowed.append(slot.key)
    return shadowed


def unused_keys(schema: GraphQLSchema) -> list[str]:
    """Keys in the data file that name nothing in the schema (renamed or removed)."""
    data = load_descriptions()
    names = {s.key for s in slots(schema)}
    types = {t.name for t in own_types(schema)}
    members = {k.split(".", 1)[1] for k in names if "." in k}
    stale = []
    for table, entries in data.items():
        for member in entries:
            if table == SAME:
                ok = member in types and entries[member] in types
            elif table == ANY:
                ok = any(
                    m == member or (member.startswith("(") and m.endswith(member)) for m in members
                )
            else:
                ok = (table if member == TYPE_KEY else f"{table}.{member}") in names
            if not ok:
                stale.append(f"{table}.{member}")
    return stale
