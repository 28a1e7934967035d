"""Prometheus metrics per GraphQL operation (count, errors, latency)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from strawberry.extensions import SchemaExtension

GRAPHQL_REQUESTS = Counter(
    "xinfang_graphql_requests_total", "GraphQL operations", ["operation", "outcome"]
)
GRAPHQL_LATENCY = Histogram(
    "xinfang_graphql_duration_seconds",
    "GraphQL operation latency",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        name = ctx.operation_name or "anonymous"
        outcome = "error" if ctx.result is not None and ctx.result.errors else "ok"
        GRAPHQL_LATENCY.labels(name).observe(time.perf_counter() - started)
        GRAPHQL_REQUESTS.labels(name, outcome).inc()
