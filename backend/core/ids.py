"""Identifiers: time-ordered UUIDv7, so primary-key indexes grow at the right edge."""

from __future__ import annotations

import uuid

from uuid6 import uuid7


def new_id() -> uuid.UUID:
    """A fresh UUIDv7 as a standard-library ``uuid.UUID``."""
    return uuid.UUID(int=uuid7().int)


def parse_id(value: str) -> uuid.UUID | None:
    """Parse a client-supplied id; ``None`` for garbage (callers answer NOT_FOUND)."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        return None
