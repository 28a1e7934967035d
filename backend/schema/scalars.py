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
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition

from backend.core.clock import local_instant
from backend.core.errors import BadUserInput
from backend.core.validation import SUPPORTED_DATES, supported_date

# Set per request by the GraphQL view (``backend/schema/view.py``).
RESPONSE_ZONE: ContextVar[tzinfo] = ContextVar("response_zone", default=UTC)


def serialize_datetime(value: datetime) -> str:
    """``value`` in the response zone, ISO 8601 with its offset, whole seconds."""
    return local_instant(value, RESPONSE_ZONE.get())


def _supported(parse: Callable[[object], Any], kind: str) -> Callable[[object], Any]:
    """strawberry's parser for ``kind`` (``parse``), refusing dates outside the supported ones.

    A refusal is a coercion error: a literal fails validation, a variable fails coercion,
    and the request is a 400 ``BAD_USER_INPUT`` before any resolver runs (guards.py)."""

    def parse_value(value: object) -> Any:
        parsed = parse(value)  # strawberry's own coercion error for what is no date at all
        try:
            return supported_date(parsed)
        except BadUserInput as exc:
            raise StrawberryInputCoercionError(
                f'Value cannot represent a {kind}: "{value}". {exc.message}'
            ) from None

    return parse_value


# strawberry's own definition, its input limited to the supported dates (backend/core/validation.py)
Date = dataclasses.replace(
    DateDefinition,
    description=f"A calendar date, ISO 8601 `YYYY-MM-DD`, within {SUPPORTED_DATES}.",
    parse_value=_supported(DateDefinition.parse_value, "Date"),
)

# strawberry's own definition (its input parsing kept, limited to the supported dates),
# serialised in the response zone
DateTime = dataclasses.replace(
    DateTimeDefinition,
    description=(
        "An instant, ISO 8601 with an offset. Every DateTime in a response is in the "
        "caller's city's time zone (Asia/Shanghai: `+08:00`; supervisors and platform "
        "staff: the deployment's default zone), to the second: an end of day reads "
        "`2026-11-17T23:59:59+08:00`. Inputs are ISO 8601, should carry their offset, and "
        f"fall within {SUPPORTED_DATES}."
    ),
    serialize=serialize_datetime,
    parse_value=_supported(DateTimeDefinition.parse_value, "DateTime"),
)

SCALAR_OVERRIDES = {datetime: DateTime, date: Date}
