"""Validate each distinct GraphQL document once per process, with every limit rule.

Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` build a new rule
class per request, so their validation can never be cached (strawberry's own
``ValidationCache`` keys on the rule tuple and misses every time): the whole
validation — ~7% of a case-list request, ~13% of an intake — ran on every
request although the front ends send the same few documents again and again.
Here the rules are built once, where the schema is assembled, and the verdict
(the list of errors, usually empty) is kept per document text in a bounded LRU.
Validation depends only on the schema, the rules and the text — never on
variables, the caller or the data — so a cached verdict is exact.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, specified_rules
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.schema import validate_document

DEFAULT_SIZE = 512  # bounded: distinct texts from a hostile client cannot grow memory


class ValidationVerdicts:
    """The validation errors per document text, least recently used dropped first."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], size: int = DEFAULT_SIZE):
        self.rules = rules
        self.size = size
        self._verdicts: OrderedDict[str, list[GraphQLError]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._verdicts)

    def verdict(
        self, schema: GraphQLSchema, query: str, document: DocumentNode
    ) -> list[GraphQLError]:
        errors = self._verdicts.get(query)
        if errors is not None:
            self._verdicts.move_to_end(query)
        else:
            errors = validate_document(schema, document, self.rules)
            self._verdicts[query] = errors
            if len(self._verdicts) > self.size:
                self._verdicts.popitem(last=False)
        return list(errors)  # a copy: the request's error list is its own


def limit_rules(
    *, max_depth: int, max_aliases: int, extra: tuple[type[ASTValidationRule], ...] = ()
) -> tuple[type[ASTValidationRule], ...]:
    """GraphQL's specified rules plus the depth and alias limits (and ``extra``), built once."""
    depth = QueryDepthLimiter(max_depth=max_depth).validation_rules
    aliases = MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules
    return (*specified_rules, *depth, *aliases, *extra)


class CachedValidation(SchemaExtension):
    """Sets the document's validation errors from :class:`ValidationVerdicts`.

    Strawberry skips its own validation when an extension has already set
    ``pre_execution_errors``.
    """

    def __init__(self, *, verdicts: ValidationVerdicts) -> None:
        self.verdicts = verdicts

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is not None and ctx.query is not None:
            ctx.pre_execution_errors = self.verdicts.verdict(
                ctx.schema._schema, ctx.query, ctx.graphql_document
            )
        yield
