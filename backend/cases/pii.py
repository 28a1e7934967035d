"""Petitioner PII: id-card validation (GB 11643 checksum), masking, and a matching key.

Hand-written because it is twenty lines of a national standard and no
maintained PyPI package covers checksum + masking together.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import date

from backend.core.crypto import keyring
from backend.core.errors import BadUserInput

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    return _CHECK[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def valid_id_number(value: str) -> bool:
    """18-digit resident id: shape, birth date and the ISO 7064 MOD 11-2 check character."""
    value = value.upper()
    if not _ID_RE.match(value):
        return False
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return check_character(value[:17]) == value[17]


def id_number(value: str | None, field: str = "petitioner.idNumber") -> str | None:
    if not value:
        return None
    value = value.strip().upper()
    if not valid_id_number(value):
        raise BadUserInput("not a valid 18-digit resident id number (checksum)", field=field)
    return value


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) > 7 else "****"


def mask_id_number(value: str | None) -> str | None:
    if not value:
        return value
    return value[:6] + "*" * (len(value) - 8) + value[-2:]


def petitioner_key(tenant_id: uuid.UUID, id_no: str | None, phone: str | None) -> str | None:
    """Stable identity for repeat detection and search: the id number, else the phone.

    A keyed hash (HMAC under ``XF_PII_HASH_KEY``, per tenant; backend/core/crypto.py): an
    unkeyed hash of an 18-digit id with a known birth date and area could be brute-forced.
    """
    basis = id_no or phone
    if not basis:
        return None
    return keyring().blind_index(tenant_id, normalise(basis))


def normalise(value: str) -> str:
    """One spelling per person: upper-case ``X`` check digit, no spaces or dashes."""
    return value.strip().upper().replace(" ", "").replace("-", "")


def legacy_petitioner_key(tenant_id: uuid.UUID | str, basis: str) -> str:
    """The unkeyed hash used before migration 0008 (only the migration still needs it)."""
    return hashlib.sha256(f"{tenant_id}:{basis}".encode()).hexdigest()
