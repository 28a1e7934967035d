"""Input checks shared by every domain; each failure names the input field."""

from __future__ import annotations

import re
from typing import Any

from backend.core.errors import BadUserInput

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62})$")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
PATH_RE = re.compile(r"^(/[a-z0-9](?:[a-z0-9-]{0,62}))+$")
MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}$")


def slug(value: str, field: str = "slug") -> str:
    if not SLUG_RE.match(value or ""):
        raise BadUserInput(
            f"{field} must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit",
            field=field,
        )
    return value


def path(value: str, field: str) -> str:
    if not PATH_RE.match(value or ""):
        raise BadUserInput(
            f"{field} must look like /city/county/... with segments of a-z, 0-9 and '-'",
            field=field,
        )
    return value


def username(value: str, field: str = "username") -> str:
    """The canonical spelling of a username (trimmed, lower-case), or BAD_USER_INPUT.

    Every username a client sends goes through here, a new one or a reference: ``SQ_Officer``
    names ``sq_officer`` everywhere (an accusation naming it, a key minted for it, a role).
    """
    canonical = (value or "").strip().lower()
    if not USERNAME_RE.match(canonical):
        raise BadUserInput(
            f"{field} must be 2-64 characters of a-z, 0-9, '.', '_' and '-'", field=field
        )
    return canonical


def text(value: str, field: str, *, max_len: int, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        raise BadUserInput(f"{field} must not be empty", field=field)
    if len(value) > max_len:
        raise BadUserInput(f"{field} must be at most {max_len} characters", field=field)
    return value


def phone(value: str | None, field: str = "phone") -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().replace(" ", "")
    if not (MOBILE_RE.match(value) or LANDLINE_RE.match(value)):
        raise BadUserInput(
            f"{field} must be a mainland mobile (11 digits) or landline number", field=field
        )
    return value


def tenant_slug_of(unit_path: str) -> str:
    """The first segment of an org-unit path is the tenant's slug."""
    return unit_path.strip("/").split("/", 1)[0]


def storable_text(value: str, field: str | None = None) -> str:
    """``value`` unless it holds a NUL or a lone surrogate, which no database column (nor
    UTF-8) can store: PostgreSQL refuses NUL in ``text``, and a lone surrogate cannot be
    encoded. Checked where requests come in (bodies, literals, query parameters), so such
    text is a 400 naming the field instead of a database error deep inside a resolver."""
    if "\x00" in value:
        where = f" in {field}" if field else ""
        raise BadUserInput(f"NUL character (U+0000){where} is not allowed", field=field)
    if _SURROGATE.search(value):
        where = f" in {field}" if field else ""
        raise BadUserInput(f"lone surrogate{where} is not valid Unicode text", field=field)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_json(value: Any, field: str | None = None) -> None:
    """:func:`storable_text` over every key and string of a decoded JSON value (iterative:
    the value may be nested as deep as the decoder allowed)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            storable_text(item, field)
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
