"""The GraphQL schema: one module per domain, merged here."""

from __future__ import annotations

from functools import cache

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import MaxTokensLimiter, ParserCache
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from backend.core.ratelimit import RateLimiter
from backend.core.settings import Settings, get_settings
from backend.schema.cases import CaseMutations, CaseQueries, PolicyMutations, PolicyQueries
from backend.schema.cost import CostLimiter
from backend.schema.describe import apply_descriptions
from backend.schema.errors import ErrorCode, error_code
from backend.schema.evaluations import EvaluationMutations, EvaluationQueries
from backend.schema.execution import PlainFieldExecutionContext
from backend.schema.guards import OperationSelection, RateLimit, StorableStrings
from backend.schema.live import Subscription
from backend.schema.metrics import OperationMetrics
from backend.schema.nodes import NodeQueries
from backend.schema.notifications import NotificationMutations, NotificationQueries
from backend.schema.practices import PracticeMutations, PracticeQueries
from backend.schema.reports import ReportQueries
from backend.schema.roster_people import RosterPeopleMutations, RosterPeopleQueries
from backend.schema.rosters import RosterMutations, RosterQueries
from backend.schema.scalars import SCALAR_OVERRIDES
from backend.schema.security import SecurityMutations, SecurityQueries, install_admin_audit
from backend.schema.stats import StatsMutations, StatsQueries
from backend.schema.sweeps import SweepMutations, SweepQueries
from backend.schema.tenants import TenantMutations, TenantQueries
from backend.schema.validation import CachedValidation, ValidationVerdicts, limit_rules

Query = merge_types(
    "Query",
    (
        TenantQueries,
        CaseQueries,
        PracticeQueries,
        PolicyQueries,
        NotificationQueries,
        ReportQueries,
        RosterQueries,
        RosterPeopleQueries,
        SweepQueries,
        EvaluationQueries,
        StatsQueries,
        SecurityQueries,
        NodeQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        TenantMutations,
        CaseMutations,
        PracticeMutations,
        PolicyMutations,
        NotificationMutations,
        RosterMutations,
        RosterPeopleMutations,
        SweepMutations,
        EvaluationMutations,
        StatsMutations,
        SecurityMutations,
    ),
)
install_admin_audit(Mutation)  # every admin mutation writes its audit row (tenants/audit_log.py)


class XinfangSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Internal errors are logged where they are masked (schema/errors.py); others are answers."""
        del errors, execution_context


def build_schema(
    settings: Settings | None = None, limiter: RateLimiter | None = None
) -> strawberry.Schema:
    """The schema with its guards (docs/graphql-limits.md); ``limiter`` is shared per app."""
    settings = settings or get_settings()
    limiter = limiter or RateLimiter(settings)
    no_introspection = (NoSchemaIntrospectionCustomRule,) if settings.env == "prod" else ()
    # string literals must be storable text (no NUL, no lone surrogate): a 400, not a 500
    extra_rules = (StorableStrings, *no_introspection)
    verdicts = ValidationVerdicts(
        limit_rules(
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            extra=extra_rules,
        )
    )
    extensions: list = [
        OperationMetrics,
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: ParserCache(maxsize=512),  # keyed by text and the token limit
        OperationSelection,  # several operations need operationName; a known one (guards.py)
        lambda: RateLimit(limiter=limiter),
        lambda: CachedValidation(verdicts=verdicts),  # depth, aliases, introspection
        lambda: CostLimiter(settings=settings),
    ]
    schema = XinfangSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,  # over WebSocket (live.py)
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
        execution_context_class=PlainFieldExecutionContext,
        scalar_overrides=SCALAR_OVERRIDES,  # DateTime in the tenant's zone (scalars.py)
    )
    apply_descriptions(schema._schema)  # descriptions.toml, where the code has none
    return schema


@cache
def sdl() -> str:
    """The schema's SDL, as committed in ``schema.graphql``."""
    schema = strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        scalar_overrides=SCALAR_OVERRIDES,
    )
    apply_descriptions(schema._schema)
    return schema.as_str() + "\n"


__all__ = ["ErrorCode", "build_schema", "error_code", "sdl"]
