"""The ``DateTime`` scalar: every instant in the caller's city's time zone, to the second.

Timestamps are stored in UTC (``UtcDateTime``); a response shows each one once, in one
place — this scalar's serialisation — at the offset of the request's zone
(:data:`RESPONSE_ZONE`: the caller's tenant's ``timezone``, the deployment's
``XF_DEFAULT_TIMEZONE`` for supervisors and platform staff), without fractions of a
second: nothing in a petition's life is timed below the second, and an end of day is
``23:59:59+08:00`` rather than the stored ``15:59:59.999999+00:00``. The value names
the same instant as before (within the dropped fraction); a client that compared
strings must parse them (docs/CHANGELOG.md).
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from datetime import UTC, datetime, tzinfo

from strawberry.schema.types.base_scalars import DateTimeDefinition

# Set per request by the GraphQL view (``backend/schema/view.py``).
RESPONSE_ZONE: ContextVar[tzinfo] = ContextVar("response_zone", default=UTC)


def serialize_datetime(value: datetime) -> str:
    """``value`` in the response zone, ISO 8601 with its offset, whole seconds."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # a stored timestamp is UTC
    return value.astimezone(RESPONSE_ZONE.get()).replace(microsecond=0).isoformat()


# strawberry's own definition (its input parsing kept), serialised in the response zone
DateTime = dataclasses.replace(
    DateTimeDefinition,
    description=(
        "An instant, ISO 8601 with an offset. Every DateTime in a response is in the "
        "caller's city's time zone (Asia/Shanghai: `+08:00`; supervisors and platform "
        "staff: the deployment's default zone), to the second: an end of day reads "
        "`2026-11-17T23:59:59+08:00`. Inputs are ISO 8601 and should carry their offset."
    ),
    serialize=serialize_datetime,
)

SCALAR_OVERRIDES = {datetime: DateTime}
