"""``xinfang pii rotate-key``: re-encrypt stored PII with the active key, tenant by tenant.

Rotation (docs/security.md, deploy/README.md): add the new key to
``XF_PII_KEYS`` and make it ``XF_PII_ACTIVE_KEY`` (every process can now read
both), run this command, then remove the old key. Values still in plaintext
(written before migration 0008) are encrypted on the way. With ``rehash`` the
petitioners' searchable keys are recomputed under the current
``XF_PII_HASH_KEY`` too (after changing that key; declared relatives of
evaluators, kept only as hashes, must then be declared again).

Works on raw SQL so that the stored text, not the decrypted attribute, is
read and compared; each tenant is its own transaction under its own scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Uuid, bindparam, select, text

from backend.cases.pii import normalise
from backend.core.crypto import is_encrypted, key_id_of, keyring
from backend.core.db import Database, TenantScope
from backend.core.progress import track

# (table, column): the encrypted columns (models use EncryptedText("<table>.<column>")).
ENCRYPTED_COLUMNS = (
    ("cases", "petitioner_phone"),
    ("cases", "petitioner_id_number"),
    ("notification_settings", "webhook_secret"),
    ("roster_people", "phone"),
)
BATCH = 500


@dataclass
class RotationReport:
    tenants: int = 0
    reencrypted: dict[str, int] = field(default_factory=dict)
    rehashed: int = 0


async def rotate(
    db: Database, *, rehash: bool = False, tenants: list[str] | None = None
) -> RotationReport:
    """Every tenant, or only those whose slugs are listed."""
    from backend.tenants.models import Tenant

    ring = keyring()  # the process keyring, the same one the ORM columns use
    report = RotationReport()
    query = select(Tenant.id).order_by(Tenant.id)
    if tenants:
        query = query.where(Tenant.slug.in_(tenants))
    async with db.transaction() as session:
        tenant_ids = list(await session.scalars(query))
    with track("pii rotate-key", total=len(tenant_ids), unit="tenants") as progress:
        for tid in tenant_ids:
            await _rotate_tenant(db, tid, ring, rehash, report, normalise)
            progress.advance()
    return report


async def _rotate_tenant(
    db: Database, tid: uuid.UUID, ring, rehash: bool, report: RotationReport, normalise
) -> None:
    """One tenant, one transaction under its own scope."""
    report.tenants += 1
    async with db.transaction(TenantScope.of([tid])) as session:
        for table, column in ENCRYPTED_COLUMNS:
            purpose = f"{table}.{column}"
            rows = await session.execute(
                text(
                    f"SELECT id, {column} FROM {table} "
                    f"WHERE tenant_id = :t AND {column} IS NOT NULL AND {column} <> ''"
                ).bindparams(bindparam("t", type_=Uuid())),
                {"t": tid},
            )
            updates = []
            for row_id, stored in rows:
                if is_encrypted(stored) and key_id_of(stored) == ring.active:
                    continue
                plain = ring.decrypt(stored, purpose) if is_encrypted(stored) else stored
                updates.append({"v": ring.encrypt(plain, purpose), "t": tid, "i": row_id})
            for start in range(0, len(updates), BATCH):
                await session.execute(_update(table, column), updates[start : start + BATCH])
            report.reencrypted[purpose] = report.reencrypted.get(purpose, 0) + len(updates)
        if rehash:
            report.rehashed += await _rehash(session, tid, ring, normalise)


def _update(table: str, column: str):
    return text(f"UPDATE {table} SET {column} = :v WHERE tenant_id = :t AND id = :i").bindparams(
        bindparam("t", type_=Uuid())
    )  # ``i`` goes back as the driver returned it


async def _rehash(session, tid: uuid.UUID, ring, normalise) -> int:
    rows = await session.execute(
        text(
            "SELECT id, petitioner_id_number, petitioner_phone FROM cases WHERE tenant_id = :t "
            "AND (petitioner_id_number IS NOT NULL OR petitioner_phone IS NOT NULL)"
        ).bindparams(bindparam("t", type_=Uuid())),
        {"t": tid},
    )
    updates = []
    for case_id, id_enc, phone_enc in rows:
        id_no = (
            ring.decrypt(id_enc, "cases.petitioner_id_number") if is_encrypted(id_enc) else id_enc
        )
        phone = (
            ring.decrypt(phone_enc, "cases.petitioner_phone")
            if is_encrypted(phone_enc)
            else phone_enc
        )
        basis = id_no or phone
        if basis:
            updates.append({"v": ring.blind_index(tid, normalise(basis)), "t": tid, "i": case_id})
    for start in range(0, len(updates), BATCH):
        await session.execute(_update("cases", "petitioner_key"), updates[start : start + BATCH])
    await session.execute(
        text(
            "UPDATE evaluation_panels SET petitioner_key = (SELECT c.petitioner_key FROM cases c "
            "WHERE c.tenant_id = evaluation_panels.tenant_id AND c.id = evaluation_panels.case_id) "
            "WHERE tenant_id = :t"
        ).bindparams(bindparam("t", type_=Uuid())),
        {"t": tid},
    )
    return len(updates)
