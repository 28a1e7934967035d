"""Prometheus metrics per GraphQL operation (count, errors, latency).

The operation name is the client's to choose, and every distinct label value is a time
series kept in memory for the life of the process: names are labels only while they
look like names (``[A-Za-z_][A-Za-z0-9_]{0,63}``) and only the first
:data:`MAX_OPERATION_LABELS` of them; anything else is counted under ``other``.
"""

from __future__ import annotations

import re
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


MAX_OPERATION_LABELS = 300
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_labels: set[str] = set()


def operation_label(name: str | None) -> str:
    """The metric label of an operation name: bounded in length, shape and number."""
    if not name:
        return "anonymous"
    if name in _labels:
        return name
    if not _NAME.match(name) or len(_labels) >= MAX_OPERATION_LABELS:
        return "other"
    _labels.add(name)
    return name


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        name = operation_label(ctx.operation_name)
        outcome = "error" if ctx.result is not None and ctx.result.errors else "ok"
        GRAPHQL_LATENCY.labels(name).observe(time.perf_counter() - started)
        GRAPHQL_REQUESTS.labels(name, outcome).inc()
