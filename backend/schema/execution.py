"""A shorter path through graphql-core for plain scalar fields.

graphql-core resolves every field the same way: it builds a ``GraphQLResolveInfo``,
calls the resolver (strawberry's wrapper, which calls ``getattr``), checks whether
the result is awaitable and walks ``complete_value``'s type dispatch — per field,
and a case-list page has about a thousand fields, most of them plain attributes
(``number``, ``status``, ``dueAt`` …; docs/performance.md measures it). For a field strawberry itself
calls *basic* (no resolver, no field extension: the value is
``getattr(source, python_name)``) whose type is a scalar or enum and which takes no
arguments, the result is the same as coercing the attribute directly, so that is
what :class:`PlainFieldExecutionContext` does. Anything else — resolvers, objects,
lists, arguments, a null where the type forbids one, a value the scalar refuses —
takes graphql-core's own path, which also raises its errors as before.

Written by hand (a subclass of strawberry's execution context, passed as
``execution_context_class``): neither library offers a compiled or lighter executor;
``tests/test_graphql_fast_path.py`` checks the answers are identical to the default
executor's on the documents of the test suite's main queries.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter

_MISSING = object()


class Precompleted:
    """A resolver's answer already in response form (the compiled reads of
    ``backend/schema/compiled.py``): the executor returns it as it is, without completing
    it field by field. Only :class:`PlainFieldExecutionContext` knows it, and says so on the
    request context (``RequestContext.precompleted``) so resolvers never hand it to another."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


# (attribute, leaf type, non-null) of a plain scalar field, or None when it is not one.
_Plan = tuple[str, GraphQLLeafType, bool] | None


def plain_field_plan(field_def: GraphQLField) -> _Plan:
    """How to answer ``field_def`` without a resolver, if it is a plain scalar field."""
    if field_def.args:
        return None
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or not getattr(definition, "is_basic_field", False):
        return None
    field_type, non_null = field_def.type, False
    if isinstance(field_type, GraphQLNonNull):
        field_type, non_null = field_type.of_type, True
    if not is_leaf_type(field_type):
        return None
    return definition.python_name, field_type, non_null


class PlainFieldExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context, with :func:`plain_field_plan` fields answered directly."""

    # id(GraphQLField) → (the field, its plan); the field is kept so the id stays its own.
    _plans: dict[int, tuple[GraphQLField, _Plan]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if hasattr(self.context_value, "precompleted"):
            self.context_value.precompleted = True

    def complete_value(  # type: ignore[override]
        self,
        return_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        result: Any,
        position_context: Any,
    ) -> Any:
        if type(result) is Precompleted:
            return result.data
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def execute_field(  # type: ignore[override]
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field_def = parent_type.fields.get(node.name.value)
        if field_def is not None and not node.arguments:
            known = self._plans.get(id(field_def))
            if known is None or known[0] is not field_def:
                known = self._plans[id(field_def)] = (field_def, plain_field_plan(field_def))
            plan = known[1]
            if plan is not None:
                attr, leaf_type, non_null = plan
                value = getattr(source, attr, _MISSING)
                if value is None and not non_null:
                    return None
                if value is not None and value is not _MISSING:
                    try:
                        coerced = leaf_type.coerce_output_value(value)
                    except Exception:
                        coerced = None
                    if coerced is not Undefined and coerced is not None:
                        return coerced
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
