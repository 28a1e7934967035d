"""PII at rest: id numbers, phones and webhook secrets are ciphertext in the database; the
API still shows them to those allowed (masked to others); repeat detection and search by id
number work through the keyed hash; a wrong or missing key fails loudly."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from sqlalchemy import Uuid, bindparam, select, text

from backend.cases.models import Case
from backend.cases.pii import legacy_petitioner_key, mask_id_number, mask_phone, petitioner_key
from backend.cases.pii_rotation import rotate
from backend.core import crypto
from backend.core.crypto import DEV_PII_KEY, ConfigurationError, Keyring, PiiKeyError
from backend.core.db import TenantScope
from backend.core.settings import Settings, get_settings
from backend.core.startup import check_startup
from backend.tenants.service import tenant_by_slug
from tests.case_helpers import CASE, COUNT, bad_checksum, make_id_number, register
from tests.helpers import build_city, unique

WEBHOOK = """mutation($i: SetNotificationWebhookInput!) {
  setNotificationWebhook(input: $i) { webhookConfigured } }"""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
async def city(db):
    return await build_city(db, unique("pii"), unique("pp"))


async def _tenant_id(db, city):
    async with db.transaction() as session:
        return (await tenant_by_slug(session, city.slug)).id


async def _raw(db, city, sql: str, **params):
    """Raw SQL in the city's scope: what is really stored, past the ORM's decryption."""
    tid = await _tenant_id(db, city)
    stmt = text(sql).bindparams(bindparam("t", type_=Uuid()))
    for name in params:
        if name.endswith("_id"):
            stmt = stmt.bindparams(bindparam(name, type_=Uuid()))
    async with db.transaction(TenantScope.of([tid])) as session:
        return (await session.execute(stmt, {"t": tid, **params})).all()


async def test_id_number_and_phone_are_ciphertext_in_the_database(gql, db, city):
    id_no = make_id_number()
    case = await register(
        gql,
        city.token("officer"),
        city,
        petitioner={"name": "李四", "phone": "13912345678", "idNumber": id_no},
    )
    import uuid

    rows = await _raw(
        db,
        city,
        "SELECT petitioner_id_number, petitioner_phone, petitioner_key FROM cases "
        "WHERE tenant_id = :t AND id = :case_id",
        case_id=uuid.UUID(case["id"]),
    )
    stored_id, stored_phone, key = rows[0]
    assert stored_id.startswith("enc1:") and id_no not in stored_id and id_no[-6:] not in stored_id
    assert stored_phone.startswith("enc1:") and "13912345678" not in stored_phone
    tid = await _tenant_id(db, city)
    assert key == petitioner_key(tid, id_no, None)
    assert key != legacy_petitioner_key(tid, id_no)  # keyed, not the brute-forceable sha256
    assert key != petitioner_key(uuid.uuid4(), id_no, None)  # per tenant


async def test_officer_sees_plaintext_and_others_see_masks(gql, city):
    id_no = make_id_number()
    case = await register(
        gql,
        city.token("officer"),
        city,
        petitioner={"name": "王五", "phone": "13700001111", "idNumber": id_no},
    )
    shown = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert shown["petitioner"] == {
        "name": "王五",
        "phone": "13700001111",
        "idNumber": id_no,
        "masked": False,
    }
    # the registering grid worker reads its own case, masked (no handling role)
    grid_case = await register(
        gql,
        city.token("grid"),
        city,
        petitioner={"name": "赵六", "phone": "13700002222", "idNumber": id_no},
        locationPath=city.path("c1/t1/v1/g1"),
    )
    masked = (await gql(CASE, {"id": grid_case["id"]}, token=city.token("grid"))).ok()["case"]
    assert masked["petitioner"]["masked"] is True
    assert masked["petitioner"]["idNumber"] == mask_id_number(id_no)
    assert masked["petitioner"]["phone"] == mask_phone("13700002222")


async def test_repeat_detection_still_works_through_the_keyed_hash(gql, city):
    id_no = make_id_number()
    token = city.token("officer")
    first = await register(gql, token, city, petitioner={"name": "甲", "idNumber": id_no})
    second = await register(gql, token, city, petitioner={"name": "甲", "idNumber": id_no.lower()})
    other = await register(
        gql, token, city, petitioner={"name": "乙", "idNumber": make_id_number()}
    )
    assert (first["repeatCount"], second["repeatCount"], other["repeatCount"]) == (0, 1, 0)
    # no id number: the phone is the identity
    p1 = await register(gql, token, city, petitioner={"name": "丙", "phone": "13655556666"})
    p2 = await register(gql, token, city, petitioner={"name": "丙", "phone": "13655556666"})
    assert (p1["repeatCount"], p2["repeatCount"]) == (0, 1)


async def test_search_by_id_number(gql, city):
    id_no = make_id_number()
    token = city.token("officer")
    for _ in range(2):
        await register(gql, token, city, petitioner={"name": "丁", "idNumber": id_no})

    async def count(value, who="officer"):
        return await gql(COUNT, {"f": {"petitionerIdNumber": value}}, token=city.token(who))

    assert (await count(id_no)).ok()["cases"]["totalCount"] == 2
    assert (await count(id_no.lower())).ok()["cases"]["totalCount"] == 2
    assert (await count(make_id_number())).ok()["cases"]["totalCount"] == 0
    bad = await count(bad_checksum(id_no))
    assert bad.code == "BAD_USER_INPUT" and bad.field == "filter.petitionerIdNumber"
    # who cannot see PII unmasked cannot probe for a person either
    assert (await count(id_no, "grid")).code == "FORBIDDEN"
    assert (await count(id_no, "evaluator")).code == "FORBIDDEN"


async def test_search_by_id_number_is_refused_to_supervisors(gql, world):
    resp = await gql(
        COUNT, {"f": {"petitionerIdNumber": make_id_number()}}, token=world.tokens["sup1"]
    )
    assert resp.code == "FORBIDDEN"


async def test_webhook_secret_is_ciphertext_in_the_database(gql, db, city):
    secret = "s3cret-" + unique("w") * 2
    resp = await gql(
        WEBHOOK,
        {"i": {"url": "https://hooks.example.com/xf", "secret": secret}},
        token=city.token("admin"),
    )
    assert resp.ok()["setNotificationWebhook"]["webhookConfigured"] is True
    rows = await _raw(
        db, city, "SELECT webhook_secret FROM notification_settings WHERE tenant_id = :t"
    )
    assert rows[0][0].startswith("enc1:") and secret not in rows[0][0]


# --- keys --------------------------------------------------------------------------------


def test_wrong_key_fails_clearly():
    ring = Keyring({"k1": os.urandom(32)}, "k1", os.urandom(32))
    sealed = ring.encrypt("411403198001010012", "cases.petitioner_id_number")
    assert ring.decrypt(sealed, "cases.petitioner_id_number") == "411403198001010012"
    wrong = Keyring({"k1": os.urandom(32)}, "k1", ring.hash_key)
    with pytest.raises(PiiKeyError, match="wrong key"):
        wrong.decrypt(sealed, "cases.petitioner_id_number")
    other = Keyring({"k2": os.urandom(32)}, "k2", ring.hash_key)
    with pytest.raises(PiiKeyError, match=r"'k1'.*XF_PII_KEYS"):
        other.decrypt(sealed, "cases.petitioner_id_number")
    # the column is bound in: a ciphertext moved to another column does not decrypt
    with pytest.raises(PiiKeyError):
        ring.decrypt(sealed, "cases.petitioner_phone")


async def test_reading_with_the_wrong_key_fails_loudly_not_silently(gql, db, city, monkeypatch):
    await register(gql, city.token("officer"), city)
    tid = await _tenant_id(db, city)
    kid = crypto.keyring().active
    stranger = Settings(pii_keys=f"{kid}:{_b64(os.urandom(32))}")
    monkeypatch.setattr(crypto, "get_settings", lambda: stranger)
    async with db.transaction(TenantScope.of([tid])) as session:
        with pytest.raises(PiiKeyError, match="wrong key"):
            (await session.scalars(select(Case).where(Case.tenant_id == tid))).all()
    monkeypatch.setattr(
        crypto, "get_settings", lambda: Settings(pii_keys=f"x9:{_b64(os.urandom(32))}")
    )
    async with db.transaction(TenantScope.of([tid])) as session:
        with pytest.raises(PiiKeyError, match="not in XF_PII_KEYS"):
            (await session.scalars(select(Case).where(Case.tenant_id == tid))).all()


def _prod(**kw) -> Settings:
    keys = {"pii_keys": None, "pii_active_key": None, "pii_hash_key": None, **kw}
    return Settings(env="prod", jwt_secret="x" * 40, **keys)


def test_production_refuses_missing_or_dev_keys():
    real, hkey = _b64(os.urandom(32)), _b64(os.urandom(32))
    with pytest.raises(ConfigurationError, match="XF_PII_KEYS"):
        crypto.check_keys(_prod())
    with pytest.raises(ConfigurationError, match="XF_PII_KEYS"):
        check_startup(_prod())
    with pytest.raises(ConfigurationError, match="dev"):
        crypto.check_keys(_prod(pii_keys=f"k1:{_b64(DEV_PII_KEY)}", pii_hash_key=hkey))
    with pytest.raises(ConfigurationError, match="32 bytes"):
        crypto.check_keys(_prod(pii_keys=f"k1:{_b64(b'short')}", pii_hash_key=hkey))
    with pytest.raises(ConfigurationError, match="not listed"):
        crypto.check_keys(_prod(pii_keys=f"k1:{real}", pii_active_key="k9", pii_hash_key=hkey))
    with pytest.raises(ConfigurationError, match="differ"):
        crypto.check_keys(_prod(pii_keys=f"k1:{real}", pii_hash_key=real))
    crypto.check_keys(_prod(pii_keys=f"k1:{real}", pii_hash_key=hkey))  # fine
    # outside production the published dev keys apply without configuration
    dev = Settings(env="dev", pii_keys=None, pii_hash_key=None)
    assert crypto.keyring(dev).active == crypto.DEV_KEY_ID


async def test_rotate_key_reencrypts_and_encrypts_legacy_plaintext(gql, db, city, monkeypatch):
    id_no = make_id_number()
    case = await register(
        gql,
        city.token("officer"),
        city,
        petitioner={"name": "戊", "phone": "13511112222", "idNumber": id_no},
    )
    import uuid

    cid = uuid.UUID(case["id"])
    tid = await _tenant_id(db, city)
    async with db.transaction(TenantScope.of([tid])) as session:  # a row from before 0008
        await session.execute(
            text(
                "UPDATE cases SET petitioner_phone = '13511112222' WHERE tenant_id = :t AND id = :c"
            ).bindparams(bindparam("t", type_=Uuid()), bindparam("c", type_=Uuid())),
            {"t": tid, "c": cid},
        )
    shown = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert shown["petitioner"]["phone"] == "13511112222"  # legacy plaintext still reads

    base = crypto.keyring()
    kid, current = base.active, _b64(base.keys[base.active])
    both = f"{kid}:{current},k2:{_b64(hashlib.sha256(b'k2').digest())}"
    new = Settings(pii_keys=both, pii_active_key="k2")
    monkeypatch.setattr(crypto, "get_settings", lambda: new)
    report = await rotate(db, tenants=[city.slug])
    assert report.tenants == 1 and report.reencrypted["cases.petitioner_phone"] >= 1
    sql = "SELECT petitioner_id_number, petitioner_phone FROM cases WHERE tenant_id = :t AND id = :case_id"
    ((stored_id, stored_phone),) = await _raw(db, city, sql, case_id=cid)
    assert stored_id.startswith("enc1:k2:") and stored_phone.startswith("enc1:k2:")
    shown = (await gql(CASE, {"id": case["id"]}, token=city.token("officer"))).ok()["case"]
    assert shown["petitioner"]["idNumber"] == id_no
    assert (await rotate(db, tenants=[city.slug])).reencrypted["cases.petitioner_phone"] == 0

    # and back to the dev key, so the rest of the suite reads this city with its settings
    monkeypatch.setattr(crypto, "get_settings", lambda: Settings(pii_keys=both, pii_active_key=kid))
    await rotate(db, tenants=[city.slug], rehash=True)
    monkeypatch.setattr(crypto, "get_settings", get_settings)
    ((stored_id, _),) = await _raw(db, city, sql, case_id=cid)
    assert stored_id.startswith(f"enc1:{kid}:")
    count = await gql(COUNT, {"f": {"petitionerIdNumber": id_no}}, token=city.token("officer"))
    assert count.ok()["cases"]["totalCount"] == 1
