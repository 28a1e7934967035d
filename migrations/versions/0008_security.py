"""security: admin audit log, API keys, encrypted id numbers with a searchable hash

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00

Existing rows are migrated here: petitioner phones and id numbers and webhook
secrets are encrypted with the active ``XF_PII_KEYS`` key, ``petitioner_key``
becomes the keyed hash (HMAC under ``XF_PII_HASH_KEY``), evaluation panels copy
their case's new key, and evaluators' declared relatives are re-keyed where the
old unkeyed hash matches a petitioner of the city (others must be declared
again: only a hash of them was ever kept). In production the keys must be set
before ``xinfang migrate``; the migration refuses to run without them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from backend.core.rls import AUDIT_LOG_CHECK, AUDIT_LOG_USING, enable_tenant_rls, grant_app_role, make_append_only

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ENCRYPTED = (
    ('cases', 'petitioner_phone', 32),
    ('cases', 'petitioner_id_number', 32),
    ('notification_settings', 'webhook_secret', 256),
)
BATCH = 1000


def upgrade() -> None:
    from backend.core.crypto import keyring

    ring = keyring()  # fails here, before any change, when production keys are missing
    op.create_table('admin_audit_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=True),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_username', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('via', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('admin_audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_admin_audit_log_tenant', ['tenant_id', 'id'], unique=False)

    op.create_table('api_keys',
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('secret_hash', sa.String(length=255), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id', 'user_id'], ['users.tenant_id', 'users.id'], name='fk_api_keys_user'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ),
    sa.PrimaryKeyConstraint('tenant_id', 'id'),
    sa.UniqueConstraint('tenant_id', 'prefix', name='uq_api_keys_prefix')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_user', ['tenant_id', 'user_id'], unique=False)

    for table, column, length in ENCRYPTED:
        _retype(table, column, sa.String(length=length), sa.Text())

    _see_every_tenant()
    _encrypt_rows(ring)
    _rekey_petitioners(ring)

    enable_tenant_rls('api_keys')
    _audit_log_rls()
    make_append_only('admin_audit_log')
    grant_app_role()


def downgrade() -> None:
    from backend.core.crypto import keyring

    ring = keyring()
    _see_every_tenant()
    _decrypt_rows(ring)
    _legacy_petitioner_keys()
    for table, column, length in reversed(ENCRYPTED):
        _retype(table, column, sa.Text(), sa.String(length=length))
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_user')
    op.drop_table('api_keys')
    with op.batch_alter_table('admin_audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_audit_log_tenant')
    op.drop_table('admin_audit_log')
    if _is_postgres():
        op.execute('DROP FUNCTION IF EXISTS admin_audit_log_append_only()')


# --- helpers -----------------------------------------------------------------------------


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == 'postgresql'


def _retype(table: str, column: str, old: sa.types.TypeEngine, new: sa.types.TypeEngine) -> None:
    """Change a column's type in place.

    PostgreSQL: ``ALTER COLUMN TYPE`` (varchar to text needs no rewrite). SQLite would
    rebuild the whole table (batch mode), and dropping a populated ``cases`` fails its
    children's foreign keys; SQLite >= 3.35 can add, copy, drop and rename a column instead.
    """
    if _is_postgres():
        op.alter_column(table, column, existing_type=old, type_=new)
        return
    spare = f'{column}__retype'
    ddl = new.compile(dialect=op.get_bind().dialect)
    op.execute(f'ALTER TABLE {table} ADD COLUMN {spare} {ddl}')
    op.execute(f'UPDATE {table} SET {spare} = {column}')
    op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
    op.execute(f'ALTER TABLE {table} RENAME COLUMN {spare} TO {column}')


def _see_every_tenant() -> None:
    """Row-level security is FORCEd, for the owner too: scope this transaction to all."""
    if _is_postgres():
        op.execute(
            "SELECT set_config('app.tenant_ids', "
            "coalesce((SELECT string_agg(id::text, ',') FROM tenants), ''), true)"
        )


def _audit_log_rls() -> None:
    if not _is_postgres():
        return
    op.execute('ALTER TABLE admin_audit_log ENABLE ROW LEVEL SECURITY')
    op.execute('ALTER TABLE admin_audit_log FORCE ROW LEVEL SECURITY')
    op.execute(
        f'CREATE POLICY tenant_isolation ON admin_audit_log USING ({AUDIT_LOG_USING})'
        f' WITH CHECK ({AUDIT_LOG_CHECK})'
    )


def _batches(table: str, columns: str, where: str) -> Iterator[list[Any]]:
    """Keyset walk over ``(tenant_id, id)``, ``BATCH`` rows at a time."""
    bind = op.get_bind()
    last: tuple[Any, Any] | None = None
    while True:
        after = '' if last is None else ' AND (tenant_id > :t OR (tenant_id = :t AND id > :i))'
        rows = bind.execute(
            sa.text(
                f'SELECT tenant_id, id, {columns} FROM {table} WHERE ({where}){after} '
                f'ORDER BY tenant_id, id LIMIT {BATCH}'
            ),
            {} if last is None else {'t': last[0], 'i': last[1]},
        ).all()
        if not rows:
            return
        yield rows
        last = (rows[-1][0], rows[-1][1])


def _transform(convert: Callable[[str, str], str], *, plaintext: bool) -> None:
    bind = op.get_bind()
    test = "NOT LIKE 'enc1:%'" if plaintext else "LIKE 'enc1:%'"
    for table, column, _ in ENCRYPTED:
        purpose = f'{table}.{column}'
        where = f'{column} IS NOT NULL AND {column} <> \'\' AND {column} {test}'
        for rows in _batches(table, column, where):
            bind.execute(
                sa.text(f'UPDATE {table} SET {column} = :v WHERE tenant_id = :t AND id = :i'),
                [{'v': convert(r[2], purpose), 't': r[0], 'i': r[1]} for r in rows],
            )


def _encrypt_rows(ring: Any) -> None:
    _transform(ring.encrypt, plaintext=True)


def _decrypt_rows(ring: Any) -> None:
    _transform(ring.decrypt, plaintext=False)


def _rekey_petitioners(ring: Any) -> None:
    """HMAC keys for cases (from the decrypted values), then panels and declared relatives."""
    from backend.cases.pii import legacy_petitioner_key, normalise

    bind = op.get_bind()
    renamed: dict[str, str] = {}
    where = 'petitioner_id_number IS NOT NULL OR petitioner_phone IS NOT NULL'
    for rows in _batches('cases', 'petitioner_id_number, petitioner_phone', where):
        updates = []
        for tenant_id, case_id, id_enc, phone_enc in rows:
            id_no = ring.decrypt(id_enc, 'cases.petitioner_id_number') if id_enc else None
            phone = ring.decrypt(phone_enc, 'cases.petitioner_phone') if phone_enc else None
            basis = id_no or phone
            if not basis:
                continue
            tid = _uuid(tenant_id)  # SQLite hands back 32 hex digits; keys use the dashed form
            key = ring.blind_index(tid, normalise(basis))
            renamed[legacy_petitioner_key(tid, basis)] = key
            updates.append({'k': key, 't': tenant_id, 'i': case_id})
        if updates:
            bind.execute(
                sa.text('UPDATE cases SET petitioner_key = :k WHERE tenant_id = :t AND id = :i'),
                updates,
            )
    _copy_panel_keys()
    _rename_relative_keys(renamed)


def _copy_panel_keys() -> None:
    op.execute(
        'UPDATE evaluation_panels SET petitioner_key = (SELECT c.petitioner_key FROM cases c '
        'WHERE c.tenant_id = evaluation_panels.tenant_id AND c.id = evaluation_panels.case_id)'
    )


def _rename_relative_keys(renamed: dict[str, str]) -> None:
    bind = op.get_bind()
    for rows in _batches('evaluators', 'related_persons', "related_persons IS NOT NULL"):
        for tenant_id, evaluator_id, raw in rows:
            people = json.loads(raw) if isinstance(raw, str) else (raw or [])
            changed = False
            for person in people:
                new = renamed.get(person.get('key'))
                if new:
                    person['key'], changed = new, True
            if changed:
                bind.execute(
                    sa.text(
                        'UPDATE evaluators SET related_persons = :p '
                        'WHERE tenant_id = :t AND id = :i'
                    ).bindparams(sa.bindparam('p', type_=sa.JSON())),
                    {'p': people, 't': tenant_id, 'i': evaluator_id},
                )


def _legacy_petitioner_keys() -> None:
    """Downgrade: back to the unkeyed hash (values are plaintext again by now)."""
    from backend.cases.pii import legacy_petitioner_key

    bind = op.get_bind()
    where = 'petitioner_id_number IS NOT NULL OR petitioner_phone IS NOT NULL'
    for rows in _batches('cases', 'petitioner_id_number, petitioner_phone', where):
        bind.execute(
            sa.text('UPDATE cases SET petitioner_key = :k WHERE tenant_id = :t AND id = :i'),
            [
                {'k': legacy_petitioner_key(_uuid(r[0]), r[2] or r[3]), 't': r[0], 'i': r[1]}
                for r in rows
            ],
        )
    _copy_panel_keys()
