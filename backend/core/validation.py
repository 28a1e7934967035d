"""Input checks shared by every domain; each failure names the input field."""

from __future__ import annotations

import re
from datetime import date, datetime
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


def unit_out_of_reach(value: str, field: str) -> BadUserInput:
    """BAD_USER_INPUT for a unit path the caller cannot act on. A unit that does not
    exist and one outside the caller's grants get this same answer (cases and units of
    another city must read as absent), so the message says both, not "unknown": an
    official naming a real unit of the city outside their scope was told it did not
    exist (outside probe of issue 21)."""
    return BadUserInput(f"no org unit {value} within your scope for this", field=field)


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


# --- dates ------------------------------------------------------------------------------
# The calendar the product supports: the statutory working-day calendar's years
# (backend/cases/calendar.py) and planning months (backend/rosters/days.py). Every date a
# client sends — a GraphQL ``Date``/``DateTime`` argument or input field (the scalars in
# backend/schema/scalars.py), a REST query parameter (exports, reports, the .ics feed) —
# is checked here, so an edge of Python's calendar (0001-01-01, 9999-12-31) is a 400 naming
# the field instead of an OverflowError deep inside a resolver (docs/graphql-limits.md).
FIRST_DATE = date(1990, 1, 1)
LAST_DATE = date(2100, 12, 31)
SUPPORTED_DATES = f"{FIRST_DATE.isoformat()}..{LAST_DATE.isoformat()}"


def supported_date(value: date, field: str | None = None) -> date:
    """``value`` if it lies in :data:`FIRST_DATE` .. :data:`LAST_DATE`, else BAD_USER_INPUT."""
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DATE <= day <= LAST_DATE:
        where = f"{field} " if field else "a date "
        raise BadUserInput(
            f"{where}must lie within {SUPPORTED_DATES} (got {day.isoformat()})",
            field=field,
            reason="DATE_OUT_OF_RANGE",
        )
    return value


def parse_date(raw: str, field: str) -> date:
    """A ``YYYY-MM-DD`` text (a query parameter) as a supported date, or BAD_USER_INPUT."""
    try:
        value = date.fromisoformat(raw)
    except (ValueError, TypeError):
        raise BadUserInput(f"{field} must be YYYY-MM-DD", field=field) from None
    return supported_date(value, field)


def date_range(
    first: date | None,
    last: date | None,
    *,
    first_field: str = "from",
    last_field: str = "to",
    max_days: int | None = None,
) -> None:
    """Both ends supported, ``last`` not before ``first``, at most ``max_days`` apart."""
    if first is not None:
        supported_date(first, first_field)
    if last is not None:
        supported_date(last, last_field)
    if first is not None and last is not None:
        if last < first:
            raise BadUserInput(f"{last_field} is before {first_field}", field=last_field)
        if max_days is not None and (last - first).days > max_days:
            raise BadUserInput(f"at most {max_days} days", field=last_field)
