"""Identifiers: time-ordered UUIDv7, so primary-key indexes grow at the right edge.

Every object a client can fetch again (GraphQL's ``Node``) is known by its UUID, unique
across all types. A client may also name it in the *global* form Relay tools build:
``base64("Type:uuid")`` (standard alphabet, padding optional; the URL-safe alphabet is
accepted too), e.g. ``Q2FzZTowMTkz…`` for ``Case:0193…``. Every lookup takes both forms
(:func:`parse_id`); ``node(id:)`` uses the type to go straight to one table.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from uuid6 import uuid7

_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{0,63}$")


def new_id() -> uuid.UUID:
    """A fresh UUIDv7 as a standard-library ``uuid.UUID``."""
    return uuid.UUID(int=uuid7().int)


def to_global_id(type_name: str, key: uuid.UUID | str) -> str:
    """``base64("Type:key")``: the typed global form of an object's id."""
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def from_global_id(value: str) -> tuple[str, uuid.UUID] | None:
    """``(type, uuid)`` of a global id; ``None`` when ``value`` is not one."""
    if not isinstance(value, str) or not 8 <= len(value) <= 200:
        return None
    text = value.strip().replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    type_name, sep, key = raw.partition(":")
    if not sep or not _TYPE_NAME.match(type_name):
        return None
    try:
        return type_name, uuid.UUID(key)
    except ValueError:
        return None


def parse_id(value: str) -> uuid.UUID | None:
    """Parse a client-supplied id — a UUID, or its global form ``base64("Type:uuid")`` —
    ``None`` for garbage (callers answer NOT_FOUND)."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        pass
    found = from_global_id(value)
    return found[1] if found else None
