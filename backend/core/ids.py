"""Identifiers: time-ordered UUIDv7, so primary-key indexes grow at the right edge.

Every object a client can fetch again (GraphQL's ``Node``) is known by its UUID, unique
across all types. A client may also name it in the *global* form Relay tools build:
``base64("Type:uuid")`` (standard alphabet, padding optional; the URL-safe alphabet is
accepted too), e.g. ``Q2FzZTowMTkz…`` for ``Case:0193…``. Every lookup takes both forms
through :func:`parse_id` — malformed: ``BAD_USER_INPUT``; another type's: not found —
and ``node(id:)`` uses the type to go straight to one table.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid

from uuid6 import uuid7

from backend.core.errors import BadUserInput

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


SHOWN = 24  # characters of a refused id a message repeats: enough to recognise, no more


def shown(value: object) -> str:
    """The start of a client's text for a message: an id of 5,000 characters is not echoed."""
    text = str(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def decode_id(value: object, field: str = "id") -> tuple[str | None, uuid.UUID]:
    """The one decoding of every id a client sends: ``(None, key)`` for a UUID,
    ``(type, key)`` for ``base64("Type:uuid")``; ``BAD_USER_INPUT`` (``field``) for what is
    no id at all, its message quoting only the start of it (:func:`shown`)."""
    try:
        return None, uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        pass
    found = from_global_id(value)  # type: ignore[arg-type]  # not a str: None
    if found is None:
        raise BadUserInput(
            f'{field}: "{shown(value)}" is not an id (a UUID or base64("Type:uuid"))',
            field=field,
        )
    return found


def parse_id(value: object, kind: str, field: str = "id") -> uuid.UUID | None:
    """The key of an id argument naming a ``kind`` (its GraphQL type), as the contract wants:
    malformed → ``BAD_USER_INPUT`` (:func:`decode_id`); a well-formed global id of another
    type → ``None``, which the caller answers with the very NOT_FOUND of an unknown id, so
    an id's type never reads an object of another type, nor tells that one exists."""
    type_name, key = decode_id(value, field)
    return key if type_name in (None, kind) else None
