"""Bearer JWTs: HS256, claims ``sub`` (username), ``iat``, ``exp``."""

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
    return jwt.encode(claims, settings.effective_jwt_secret, algorithm=ALGORITHM)


def verify_token(token: str, *, settings: Settings | None = None) -> str:
    """The username of a valid token; ``Unauthenticated`` for anything else."""
    settings = settings or get_settings()
    try:
        claims = jwt.decode(
            token,
            settings.effective_jwt_secret,
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
