"""Static cost of a GraphQL operation, computed before it runs (docs/graphql-limits.md).

Depth, alias and token limits bound the *document*; none of them bounds the
*work*: ``cases(first: 200) { edges { node { events { actor { username } } } } }``
is shallow and short yet asks for thousands of rows. The cost estimates the
number of objects a response may hold:

* a scalar or enum field costs 0, an object field 1 plus its selection;
* a list field costs ``n × (1 + its selection)`` where ``n`` is its ``first``
  argument (literal, variable, or the argument's default) and otherwise
  ``XF_GRAPHQL_DEFAULT_LIST_SIZE``; a field with ``first`` that returns a
  connection multiplies its selection by ``first``, and the ``edges`` list of
  a ``…Connection`` then counts once per item, not ``n`` times again;
* fragments are expanded and every branch of a union/interface is summed (an
  upper bound: the cost never depends on data).

The walk runs after validation, so the document is known to fit the schema.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    is_composite_type,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef
from strawberry.extensions import SchemaExtension

from backend.core.errors import BadUserInput
from backend.core.pagination import DEFAULT_PAGE
from backend.core.settings import Settings


class QueryTooComplex(BadUserInput):
    """Refused before execution: answered with HTTP 400 (``BAD_USER_INPUT``)."""


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    *,
    operation_name: str | None = None,
    variables: Mapping[str, Any] | None = None,
    default_list_size: int = 10,
) -> int:
    """The cost of the operation ``operation_name`` (or the only one) of ``document``."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if not operations:
        return 0
    operation = operations[0]
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[operation.operation]
    if root is None:
        return 0
    walker = _Walker(schema, fragments, _variable_values(operation, variables), default_list_size)
    return walker.selection_cost(operation.selection_set, root)


def _variable_values(
    operation: OperationDefinitionNode, variables: Mapping[str, Any] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        default = definition.default_value
        if isinstance(default, IntValueNode):
            values[name] = int(default.value)
    values.update(variables or {})
    return values


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
        default_list_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.default_list_size = default_list_size

    def selection_cost(self, selection_set: SelectionSetNode | None, parent: Any) -> int:
        return sum(
            self.field_cost(node, owner) for node, owner in self._fields(selection_set, parent)
        )

    def _fields(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        seen: frozenset[str] = frozenset(),
    ) -> Iterator[tuple[FieldNode, Any]]:
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                owner = self._type(selection.type_condition) or parent
                yield from self._fields(selection.selection_set, owner, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in seen:
                    continue
                owner = self._type(fragment.type_condition) or parent
                yield from self._fields(fragment.selection_set, owner, seen | {name})

    def _type(self, condition: Any) -> GraphQLNamedType | None:
        return self.schema.get_type(condition.name.value) if condition is not None else None

    def field_cost(self, node: FieldNode, parent: Any) -> int:
        definition = self._definition(node.name.value, parent)
        if definition is None:
            return 0
        field_type = definition.type
        is_list = False
        while isinstance(field_type, GraphQLNonNull | GraphQLList):
            is_list = is_list or isinstance(field_type, GraphQLList)
            field_type = field_type.of_type
        if not is_composite_type(field_type):
            return 0
        children = self.selection_cost(node.selection_set, field_type)
        first = self._first(node, definition)
        if is_list:
            in_connection = isinstance(parent, GraphQLObjectType) and parent.name.endswith(
                "Connection"
            )
            n = first if first is not None else 1 if in_connection else self.default_list_size
            return n * (1 + children)
        return 1 + (first if first is not None else 1) * children

    def _definition(self, name: str, parent: Any) -> GraphQLField | None:
        if name == "__schema":
            return SchemaMetaFieldDef
        if name == "__type":
            return TypeMetaFieldDef
        fields = getattr(parent, "fields", None)
        return fields.get(name) if fields else None

    def _first(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The page size asked for (``first``, or ``last`` paging backward), or ``None``
        when the field takes no ``first``. A Relay connection given neither serves
        ``DEFAULT_PAGE`` items; ``nodes(ids:)`` as many as it names."""
        if "first" not in definition.args:
            return self._ids(node) if "ids" in definition.args else None
        value: Any = definition.args["first"].default_value
        if value is None and "last" in definition.args:
            value = DEFAULT_PAGE
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            given: Any = None
            if isinstance(argument.value, IntValueNode):
                given = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                given = self.variables.get(argument.value.name.value)
            if isinstance(given, int):
                value = given
        if not isinstance(value, int):
            return self.default_list_size
        # Every list refuses a page over 200 itself, naming `first` (BAD_USER_INPUT);
        # counting beyond that would shadow the clearer error with a cost refusal.
        return min(max(value, 0), LARGEST_PAGE)

    def _ids(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value != "ids":
                continue
            if isinstance(argument.value, ListValueNode):
                return len(argument.value.values)
            if isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
                if isinstance(value, list):
                    return min(len(value), LARGEST_PAGE)
        return self.default_list_size


LARGEST_PAGE = 200  # the largest `first` any list serves (backend/cases/queries.MAX_PAGE)


class CostLimiter(SchemaExtension):
    """Refuses an operation whose cost exceeds ``XF_GRAPHQL_MAX_COST`` before it executes."""

    def __init__(self, *, settings: Settings) -> None:
        self.max_cost = settings.graphql_max_cost
        self.default_list_size = settings.graphql_default_list_size

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None:
            cost = operation_cost(
                ctx.schema._schema,
                ctx.graphql_document,
                operation_name=ctx.operation_name,
                variables=ctx.variables,
                default_list_size=self.default_list_size,
            )
            if cost > self.max_cost:
                raise QueryTooComplex(
                    f"query cost {cost} exceeds the limit {self.max_cost}; "
                    "ask for smaller pages (first) or fewer nested lists",
                    reason="QUERY_TOO_COMPLEX",
                    cost=cost,
                    maxCost=self.max_cost,
                )
        yield
