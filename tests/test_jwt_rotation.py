"""JWT key rotation over HTTP: ``kid`` header, two keys valid at once, unknown kid → 401,
and kid-less tokens accepted while ``XF_JWT_SECRET`` is still configured."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from backend.authz.tokens import issue_token, verify_token
from backend.core.settings import ConfigurationError, Settings, get_settings

OLD = "old-key-0123456789-0123456789-0123456789"
NEW = "new-key-0123456789-0123456789-0123456789"
ME = "{ me { username } }"


@pytest.fixture
def rotation(monkeypatch):
    """The process's settings mid-rotation: k1 (old) and k2 (new, signing) both listed."""

    def configure(keys: str, active: str | None = "k2", secret: str | None = "keep") -> Settings:
        monkeypatch.setenv("XF_JWT_KEYS", keys)
        if active:
            monkeypatch.setenv("XF_JWT_ACTIVE_KID", active)
        if secret is None:
            monkeypatch.delenv("XF_JWT_SECRET", raising=False)
        get_settings.cache_clear()
        return get_settings()

    yield configure
    monkeypatch.undo()
    get_settings.cache_clear()


def signed(username: str, secret: str, kid: str | None) -> str:
    issued = datetime.now(UTC)
    claims = {"sub": username, "iat": issued, "exp": issued + timedelta(hours=1)}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": kid} if kid else None)


async def test_new_tokens_carry_the_active_kid_and_both_keys_verify(gql, world, rotation):
    legacy = world.a.token("officer")  # minted before the keys existed: no kid
    rotation(f"k1:{OLD},k2:{NEW}")
    username = f"{world.a.slug}_officer"
    fresh = issue_token(username)
    assert jwt.get_unverified_header(fresh)["kid"] == "k2"
    jwt.decode(fresh, NEW, algorithms=["HS256"])  # signed with the active key
    for token in (fresh, signed(username, OLD, "k1"), legacy):
        resp = await gql(ME, token=token)
        assert resp.ok()["me"]["username"] == username


async def test_unknown_kid_and_wrong_key_are_401(gql, world, rotation):
    rotation(f"k1:{OLD},k2:{NEW}")
    username = f"{world.a.slug}_officer"
    for token in (signed(username, NEW, "k3"), signed(username, OLD, "k2")):
        resp = await gql(ME, token=token)
        assert (resp.status, resp.code) == (401, "UNAUTHENTICATED")


async def test_kid_less_tokens_stop_working_when_the_single_secret_is_removed(gql, world, rotation):
    legacy = world.a.token("officer")
    rotation(f'{{"k1": "{OLD}", "k2": "{NEW}"}}', secret=None)  # the JSON form
    resp = await gql(ME, token=legacy)
    assert (resp.status, resp.code) == (401, "UNAUTHENTICATED")
    assert (await gql(ME, token=issue_token(f"{world.a.slug}_officer"))).status == 200


def test_key_settings_parse_and_validate():
    settings = Settings(jwt_keys=f"k1:{OLD}, k2:{NEW}", jwt_active_kid="k1")
    assert settings.jwt_key_map == {"k1": OLD, "k2": NEW}
    assert settings.jwt_signing_key == ("k1", OLD)
    single = Settings(jwt_keys=f"only:{NEW}", jwt_active_kid=None)
    assert single.jwt_signing_key == ("only", NEW)
    token = issue_token("someone", settings=single)
    assert verify_token(token, settings=single) == "someone"
    with pytest.raises(ConfigurationError):
        _ = Settings(jwt_keys=f"k1:{OLD},k2:{NEW}", jwt_active_kid=None).jwt_signing_key
    with pytest.raises(ConfigurationError):
        _ = Settings(jwt_keys=f"k1:{OLD}", jwt_active_kid="k9").jwt_signing_key
    with pytest.raises(ConfigurationError):
        _ = Settings(jwt_keys="k1:").jwt_key_map


def test_production_checks_every_key():
    pii = {  # the PII keyring is checked first (docs/security.md); real-looking keys
        "pii_keys": "p1:" + base64.b64encode(bytes(range(32))).decode(),
        "pii_hash_key": base64.b64encode(bytes(range(32, 64))).decode(),
    }

    def prod(**kw) -> Settings:
        return Settings(env="prod", jwt_secret=None, **pii, **kw)

    prod(jwt_keys=f"k1:{OLD},k2:{NEW}", jwt_active_kid="k2").check_production_safety()
    with pytest.raises(ConfigurationError):
        prod(jwt_keys=f"k1:short,k2:{NEW}", jwt_active_kid="k2").check_production_safety()
    with pytest.raises(ConfigurationError):
        prod(jwt_keys=f"k1:{OLD}", jwt_active_kid="k2").check_production_safety()
    with pytest.raises(ConfigurationError):  # keys, plus a leftover weak single secret
        Settings(
            env="prod", jwt_secret="weak", jwt_keys=f"k1:{OLD}", jwt_active_kid="k1", **pii
        ).check_production_safety()
