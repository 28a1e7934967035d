"""Bearer JWTs: HS256, claims ``sub`` (username), ``iat``, ``exp``; header ``kid`` for rotation.

With ``XF_JWT_KEYS`` set, tokens are signed with the active key and carry its
``kid``; any listed key verifies, so two keys are valid during a rotation. A
token naming an unknown ``kid`` is refused; a kid-less token is checked
against ``XF_JWT_SECRET`` while that is configured (tokens minted before keys).
"""

from __future__ import annotations

from datetime import timedelta

import jwt

from backend.core.clock import now
from backend.core.errors import Unauthenticated
from backend.core.settings import Settings, get_settings

ALGORITHM = "HS256"


def issue_token(
    username: str, *, ttl_seconds: int | None = None, settings: Settings | None = None
) -> str:
    settings = settings or get_settings()
    issued = now()
    ttl = ttl_seconds if ttl_seconds is not None else settings.jwt_ttl_seconds
    claims = {"sub": username, "iat": issued, "exp": issued + timedelta(seconds=ttl)}
    kid, secret = settings.jwt_signing_key
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers=headers)


def _verification_key(token: str, settings: Settings) -> str:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid token") from exc
    kid = header.get("kid")
    if kid is None:
        secret = settings.jwt_legacy_secret
    else:
        secret = settings.jwt_key_map.get(kid) if isinstance(kid, str) else None
    if secret is None:
        raise Unauthenticated("invalid token")  # unknown kid: say no more than for a forgery
    return secret


def verify_token(token: str, *, settings: Settings | None = None) -> str:
    """The username of a valid token; ``Unauthenticated`` for anything else."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            _verification_key(token, settings),
            algorithms=[ALGORITHM],
            options={"require": ["sub", "iat", "exp"]},
            leeway=5,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid token") from exc
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated("invalid token")
    return sub


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; raises for a malformed header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header")
    return token.strip()
