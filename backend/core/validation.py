"""Input checks shared by every domain; each failure names the input field."""

from __future__ import annotations

import re

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
    if not USERNAME_RE.match(value or ""):
        raise BadUserInput(
            f"{field} must be 2-64 characters of a-z, 0-9, '.', '_' and '-'", field=field
        )
    return value


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
