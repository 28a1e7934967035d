"""Bearer JWTs: HS256, claims ``sub`` (username), ``iat``, ``exp``; header ``kid`` for rotation.

With ``XF_JWT_KEYS`` set, tokens are signed with the active key and carry its
``kid``; any listed key verifies, so two keys are valid during a rotation. A
token naming an unknown ``kid`` is refused; a kid-less token is checked
against ``XF_JWT_SECRET`` while that is configured (tokens minted before keys).

Signed links (:func:`issue_link`) are JWTs of the same keys with an audience
(``aud = xinfang:link``) and the one ``path`` they open: a link opens that page
for its user until ``exp`` and nothing else, and is never a bearer token
(PyJWT refuses a token with an audience where none is expected).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from backend.core.clock import now
from backend.core.errors import Unauthenticated
from backend.core.settings import Settings, get_settings

ALGORITHM = "HS256"
LINK_AUDIENCE = "xinfang:link"
MAX_SUB = 64  # usernames are at most 64 characters (backend/core/validation.py)


def issue_token(
    username: str, *, ttl_seconds: int | None = None, settings: Settings | None = None
) -> str:
    settings = settings or get_settings()
    issued = now()
    ttl = ttl_seconds if ttl_seconds is not None else settings.jwt_ttl_seconds
    if ttl > settings.jwt_max_ttl_seconds:
        raise ValueError(f"a token lives at most {settings.jwt_max_ttl_seconds} seconds")
    claims = {"sub": username, "iat": issued, "exp": issued + timedelta(seconds=ttl)}
    return _sign(claims, settings)


def _sign(claims: dict, settings: Settings) -> str:
    """Signed with the active key, its ``kid`` in the header (none for the legacy key)."""
    kid, secret = settings.jwt_signing_key
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid} if kid else None)


def _decode(token: str, settings: Settings, **options: object) -> dict:
    """The claims of a token signed with any configured key (PyJWT errors propagate)."""
    key = _verification_key(token, settings)
    return jwt.decode(token, key, algorithms=[ALGORITHM], **options)  # type: ignore[arg-type]


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
    return verified_token(token, settings=settings)[0]


def verified_token(token: str, *, settings: Settings | None = None) -> tuple[str, datetime]:
    """The username of a valid token and when it expires (its ``exp``), from one decode;
    ``Unauthenticated`` for anything else. A long-lived connection (a subscription's
    WebSocket) is closed at that instant."""
    settings = settings or get_settings()
    if not token.isascii():  # a JWT is base64url and dots; a lone surrogate broke PyJWT
        raise Unauthenticated("invalid token")
    try:
        claims = _decode(token, settings, options={"require": ["sub", "iat", "exp"]}, leeway=5)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid token") from exc
    _lifetime(claims, settings.jwt_max_ttl_seconds)  # exp is a whole number from here on
    return _subject(claims), datetime.fromtimestamp(claims["exp"], UTC)


def _lifetime(claims: dict, longest: int) -> None:
    """``iat`` and ``exp`` are whole seconds, and the token lives no longer than an
    operator allows: a leaked signing key must not mint tokens good for ever."""
    iat, exp = claims.get("iat"), claims.get("exp")
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (iat, exp)):
        raise Unauthenticated("invalid token")
    if exp - iat > longest:
        raise Unauthenticated("invalid token")


def _subject(claims: dict) -> str:
    """The ``sub`` claim if it can name an account: a signature proves who minted a token,
    not that its ``sub`` is sane (a NUL byte would reach the database as a 500)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB or not sub.isprintable():
        raise Unauthenticated("invalid token")
    if any(c.isspace() for c in sub):
        raise Unauthenticated("invalid token")
    return sub


def issue_link(
    path: str, username: str, *, ttl_seconds: int | None = None, settings: Settings | None = None
) -> str:
    """A signed link's token: ``username`` may GET ``path`` until it expires."""
    settings = settings or get_settings()
    issued = now()
    ttl = ttl_seconds if ttl_seconds is not None else settings.report_link_ttl_seconds
    claims = {
        "sub": username,
        "aud": LINK_AUDIENCE,
        "path": path,
        "iat": int(issued.timestamp()),
        "exp": int((issued + timedelta(seconds=ttl)).timestamp()),
    }
    return _sign(claims, settings)


def verify_link(token: str, path: str, *, settings: Settings | None = None) -> str:
    """The username of a valid link for ``path``; ``Unauthenticated`` for anything else.

    Expiry is judged by the project's clock (``backend.core.clock``), like minting.
    """
    settings = settings or get_settings()
    required = ["sub", "aud", "path", "exp"]
    try:  # expiry below, by the project's clock
        claims = _decode(
            token,
            settings,
            audience=LINK_AUDIENCE,
            options={"require": required, "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated("invalid link") from exc
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or now().timestamp() > exp:
        raise Unauthenticated("link expired: open the report again to get a new link")
    if claims.get("path") != path:
        raise Unauthenticated("this link opens another page")
    return _subject(claims)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header; raises for a malformed header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header")
    return token.strip()
