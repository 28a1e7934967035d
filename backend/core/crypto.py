"""Application-level encryption of PII at rest, and keyed hashes for searching it.

Why in the application and not the database: PostgreSQL's ``pgcrypto`` would
need the key in SQL text (logs, ``pg_stat_statements``), and a stolen backup
or a read replica would hold key and data together. Here the key lives only in
the process environment; the database and its backups hold ciphertext.

- **Encryption**: AES-256-GCM (``cryptography``), a random 96-bit nonce per
  value, and the column's name as associated data, so a ciphertext copied into
  another column does not decrypt. A stored value reads
  ``enc1:<kid>:<base64url(nonce || ciphertext || tag)>``; the key id makes
  rotation possible: every listed key decrypts, the active one encrypts, and
  ``xinfang pii rotate-key`` re-encrypts old rows.
- **Searchable hash** (blind index): HMAC-SHA256 under a separate key over
  ``<tenant id>:<normalised value>``. Equality search and repeat detection
  compare hashes; the hash reveals nothing without the key, and the same
  person hashes differently in two cities.
- **Dev and test** use fixed, published keys (below); production refuses to
  start without real ones (:func:`check_keys`, called by
  ``backend/core/startup.py``).

A value without the ``enc1:`` envelope is legacy plaintext (written before
migration 0008, or by raw SQL in a test) and is returned as is; the
``rotate-key`` command encrypts such leftovers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text, TypeDecorator

from backend.core.settings import ConfigurationError, Settings, get_settings

ENVELOPE = "enc1"
DEV_KEY_ID = "dev"
# Published on purpose: they protect nothing and exist so dev/test need no configuration.
DEV_PII_KEY = hashlib.sha256(b"xinfang dev pii key - not secret").digest()
DEV_HASH_KEY = hashlib.sha256(b"xinfang dev pii hash key - not secret").digest()
_KID_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_NONCE = 12


class PiiKeyError(RuntimeError):
    """A stored value cannot be decrypted: unknown key id, wrong key, or tampered data."""


@dataclass(frozen=True)
class Keyring:
    keys: dict[str, bytes]
    active: str
    hash_key: bytes

    def encrypt(self, plaintext: str, purpose: str) -> str:
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext.encode(), purpose.encode())
        body = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{ENVELOPE}:{self.active}:{body}"

    def decrypt(self, stored: str, purpose: str) -> str:
        _, kid, body = stored.split(":", 2)
        key = self.keys.get(kid)
        if key is None:
            raise PiiKeyError(
                f"{purpose}: value was encrypted with key id {kid!r}, which is not in "
                "XF_PII_KEYS (add the old key back until `xinfang pii rotate-key` has run)"
            )
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        try:
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], purpose.encode()).decode()
        except InvalidTag as exc:
            raise PiiKeyError(
                f"{purpose}: cannot decrypt with key id {kid!r} — wrong key for that id, "
                "or the stored value was altered"
            ) from exc

    def blind_index(self, tenant_id: Any, value: str) -> str:
        """The searchable hash of ``value`` in ``tenant_id`` (64 hex characters)."""
        message = f"{tenant_id}:{value}".encode()
        return hmac.new(self.hash_key, message, hashlib.sha256).hexdigest()


def is_encrypted(value: str | None) -> bool:
    return bool(value) and value.startswith(ENVELOPE + ":")


def key_id_of(value: str) -> str | None:
    return value.split(":", 2)[1] if is_encrypted(value) else None


def _b64key(raw: str, what: str, *, min_len: int = 32, exact: bool = False) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not valid base64") from exc
    if (exact and len(key) != min_len) or len(key) < min_len:
        size = f"exactly {min_len}" if exact else f"at least {min_len}"
        raise ConfigurationError(f"{what} must decode to {size} bytes (got {len(key)})")
    return key


def _parse_keys(spec: str) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        kid, sep, raw = item.partition(":")
        if not sep or not _KID_RE.match(kid):
            raise ConfigurationError(
                "XF_PII_KEYS must look like kid:base64key,kid2:base64key "
                "(key ids of 1-16 letters, digits, '_' or '-')"
            )
        if kid in keys:
            raise ConfigurationError(f"XF_PII_KEYS lists key id {kid!r} twice")
        keys[kid] = _b64key(raw, f"XF_PII_KEYS[{kid}]", exact=True)
    return keys


@lru_cache(maxsize=8)
def _build(env: str, spec: str | None, active: str | None, hash_key: str | None) -> Keyring:
    if env == "prod" and not (spec and hash_key):
        raise ConfigurationError(
            "XF_PII_KEYS and XF_PII_HASH_KEY must be set when XF_ENV=prod "
            "(generate with: python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
        )
    keys = _parse_keys(spec) if spec else {DEV_KEY_ID: DEV_PII_KEY}
    if not keys:
        raise ConfigurationError("XF_PII_KEYS lists no key")
    active = active or next(iter(keys))
    if active not in keys:
        raise ConfigurationError(f"XF_PII_ACTIVE_KEY {active!r} is not listed in XF_PII_KEYS")
    hkey = _b64key(hash_key, "XF_PII_HASH_KEY") if hash_key else DEV_HASH_KEY
    if env == "prod":
        if any(k == DEV_PII_KEY for k in keys.values()) or hkey == DEV_HASH_KEY:
            raise ConfigurationError("the published dev PII keys must not be used in production")
        if hkey in keys.values():
            raise ConfigurationError("XF_PII_HASH_KEY must differ from every encryption key")
    return Keyring(keys, active, hkey)


def keyring(settings: Settings | None = None) -> Keyring:
    s = settings or get_settings()
    return _build(s.env, s.pii_keys, s.pii_active_key, s.pii_hash_key)


def check_keys(settings: Settings) -> None:
    """Raise :class:`ConfigurationError` now rather than on the first petition."""
    keyring(settings)


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted; the ORM attribute holds the plaintext.

    Never compare such a column in SQL (each encryption differs): search through its
    blind index instead (``cases.petitioner_key``).
    """

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or value == "":
            return value
        return keyring().encrypt(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        if value is None or not is_encrypted(value):
            return value  # NULL, or legacy plaintext (see module docstring)
        return keyring().decrypt(value, self.purpose)
