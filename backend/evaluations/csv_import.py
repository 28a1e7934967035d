"""Bulk enrolment of evaluators from CSV: every row is checked first, then all or nothing.

Columns (header row required; order free):
``username, display_name, category`` (required) and ``phone, email,
excluded_unit_paths, related_persons, status`` (optional).
``category`` is the enum name or its Chinese label (律师, 五老, …);
``excluded_unit_paths`` is ``;``-separated; ``related_persons`` is
``name:idNumberOrPhone`` items separated by ``;``; ``status`` is ACTIVE
(default) or APPLIED. A user that does not exist yet is created in the city;
an existing user of the city is reused. Any bad row → ``BAD_USER_INPUT``
with ``extensions.rowErrors`` (``row`` = line number in the file, ``field``,
``message``) and nothing written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.principal import Principal
from backend.authz.roles import AccountKind
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import AppError, BadUserInput
from backend.evaluations.models import Evaluator, EvaluatorCategory, EvaluatorStatus
from backend.evaluations.pool import (
    RelatedPersonInput,
    checked_email,
    ensure_evaluator_role,
    pool_tenant,
    related_entries,
)
from backend.tenants.models import Account, OrgUnit, Tenant, User
from backend.tenants.service import username_prefixes

MAX_ROWS = 5000
MAX_BYTES = 2_000_000
REQUIRED = ("username", "display_name", "category")
OPTIONAL = ("phone", "email", "excluded_unit_paths", "related_persons", "status")

CATEGORY_LABELS: dict[str, EvaluatorCategory] = {
    "党员干部": EvaluatorCategory.OFFICIAL,
    "干部": EvaluatorCategory.OFFICIAL,
    "学者": EvaluatorCategory.EXPERT,
    "专家": EvaluatorCategory.EXPERT,
    "知名学者": EvaluatorCategory.EXPERT,
    "律师": EvaluatorCategory.LAWYER,
    "志愿者": EvaluatorCategory.VOLUNTEER,
    "两代表一委员": EvaluatorCategory.DEPUTY,
    "代表": EvaluatorCategory.DEPUTY,
    "委员": EvaluatorCategory.DEPUTY,
    "心理咨询师": EvaluatorCategory.PSYCHOLOGIST,
    "退役军人": EvaluatorCategory.VETERAN,
    "五老": EvaluatorCategory.ELDER,
    "信访老户": EvaluatorCategory.FORMER_PETITIONER,
}


@dataclass(frozen=True)
class RowError:
    row: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class _Row:
    line: int
    username: str
    display_name: str
    category: EvaluatorCategory
    phone: str | None
    email: str | None
    paths: list[str]
    related: list[dict[str, Any]]
    status: EvaluatorStatus


@dataclass(frozen=True)
class ImportResult:
    imported: int
    created_users: int


def _category(value: str) -> EvaluatorCategory:
    raw = value.strip()
    if raw in CATEGORY_LABELS:
        return CATEGORY_LABELS[raw]
    try:
        return EvaluatorCategory(raw.upper())
    except ValueError:
        raise BadUserInput(f"unknown category {raw!r}", field="category") from None


def _related(value: str) -> list[RelatedPersonInput]:
    people = []
    for item in filter(None, (s.strip() for s in value.split(";"))):
        name, _, ident = item.partition(":")
        ident = ident.strip()
        if len(ident) == 18:
            people.append(RelatedPersonInput(name=name, id_number=ident))
        else:
            people.append(RelatedPersonInput(name=name, phone=ident or None))
    return people


async def import_evaluators(
    session: AsyncSession, principal: Principal, *, text: str, tenant: str | None = None
) -> ImportResult:
    """Every row valid, or nothing imported (the errors name each row and field)."""
    tenant_id = await pool_tenant(session, principal, "manage", tenant)
    errors: list[RowError] = []
    rows = _parsed_rows(tenant_id, _records(text), errors)
    known = await _Existing.load(session, [r.username for r in rows], rows)
    prefixes = (  # a city admin's new names live in the city's namespace (as createUser)
        None
        if principal.is_platform_admin
        else tuple(await username_prefixes(session, await session.get(Tenant, tenant_id)))
    )
    for r in rows:
        errors += known.problems(r, prefixes)
    if errors:
        errors.sort(key=lambda e: (e.row, e.field))
        raise BadUserInput(
            f"{len({e.row for e in errors})} row(s) are invalid; nothing was imported",
            field="csv",
            rowErrors=[e.as_dict() for e in errors],
        )
    created = await _enrol(session, principal, tenant_id, rows, known.users)
    return ImportResult(imported=len(rows), created_users=created)


def _records(text: str) -> list[tuple[int, dict[str, str]]]:
    """(line, record) of every row; the header and the size checked."""
    if len(text.encode()) > MAX_BYTES:
        raise BadUserInput(f"the file is larger than {MAX_BYTES} bytes", field="csv")
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = [h.strip() for h in reader.fieldnames or []]
    missing = [h for h in REQUIRED if h not in headers]
    unknown = [h for h in headers if h not in REQUIRED + OPTIONAL]
    if missing or unknown:
        problem = f"missing columns {missing}" if missing else f"unknown columns {unknown}"
        raise BadUserInput(f"bad header: {problem}", field="csv")
    records = []
    for record in reader:
        records.append(
            (reader.line_num, {(k or "").strip(): (val or "") for k, val in record.items()})
        )
        if len(records) > MAX_ROWS:
            raise BadUserInput(f"at most {MAX_ROWS} rows per file", field="csv")
    if not records:
        raise BadUserInput("the file has no rows", field="csv")
    return records


def _parsed_rows(
    tenant_id: Any, records: list[tuple[int, dict[str, str]]], errors: list[RowError]
) -> list[_Row]:
    """The rows whose every field is valid, each username once; the rest as errors."""
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    for line, rec in records:
        row = _parse_row(tenant_id, line, rec, errors)
        if row is None:
            continue
        if row.username in seen:
            errors.append(RowError(line, "username", f"duplicate of row {seen[row.username]}"))
            continue
        seen[row.username] = line
        rows.append(row)
    return rows


@dataclass
class _Existing:
    """What the database already has of the file's names and paths (four statements)."""

    users: dict[str, User]
    accounts: set[str]
    enrolled: set[str]
    paths: set[str]

    @classmethod
    async def load(cls, session: AsyncSession, names: list[str], rows: list[_Row]) -> _Existing:
        if not names:
            return cls({}, set(), set(), set())
        users = {
            u.username: u
            for u in await session.scalars(select(User).where(User.username.in_(names)))
        }
        accounts = set(
            await session.scalars(select(Account.username).where(Account.username.in_(names)))
        )
        enrolled = set(
            await session.scalars(
                select(User.username)
                .join(
                    Evaluator,
                    (Evaluator.tenant_id == User.tenant_id) & (Evaluator.user_id == User.id),
                )
                .where(User.username.in_(names))
            )
        )
        wanted = sorted({p for r in rows for p in r.paths})
        paths = set(await session.scalars(select(OrgUnit.path).where(OrgUnit.path.in_(wanted))))
        return cls(users, accounts, enrolled, paths)

    def problems(self, r: _Row, prefixes: tuple[str, ...] | None) -> list[RowError]:
        """A row's conflicts with the database (the namespace checked before existence,
        so nothing about other cities shows)."""
        out = []
        new = r.username not in self.users
        if r.username in self.enrolled:
            out.append(RowError(r.line, "username", f"{r.username} is already in the pool"))
        elif new and prefixes and not r.username.startswith(prefixes):
            message = f"new usernames of this city start with {' or '.join(prefixes)}"
            out.append(RowError(r.line, "username", message))
        elif new and r.username in self.accounts:
            out.append(RowError(r.line, "username", f"username {r.username} is taken"))
        out += [
            RowError(r.line, "excluded_unit_paths", f"unknown org unit {p}")
            for p in r.paths
            if p not in self.paths
        ]
        return out


async def _enrol(
    session: AsyncSession,
    principal: Principal,
    tenant_id: Any,
    rows: list[_Row],
    users: dict[str, User],
) -> int:
    """Create the missing users, give each the role and the pool entry; users created."""
    tenant_row = await session.get(Tenant, tenant_id)
    created = 0
    t = now()
    approver = principal.account_id if principal.tenant_id else None
    for r in rows:
        user = users.get(r.username)
        if user is None:
            account = Account(
                username=r.username,
                kind=AccountKind.TENANT_USER,
                display_name=r.display_name,
                tenant_id=tenant_id,
                province_id=tenant_row.province_id,
            )
            session.add(account)
            await session.flush()
            user = User(
                tenant_id=tenant_id,
                id=account.id,
                username=r.username,
                display_name=r.display_name,
                phone=r.phone,
            )
            session.add(user)
            created += 1
        await ensure_evaluator_role(session, tenant_id, user)
        active = r.status is EvaluatorStatus.ACTIVE
        session.add(
            Evaluator(
                tenant_id=tenant_id,
                user_id=user.id,
                category=r.category,
                status=r.status,
                excluded_unit_paths=r.paths,
                related_persons=r.related,
                contact_phone=r.phone,
                contact_email=r.email,
                status_changed_at=t,
                approved_by_id=approver if active else None,
                approved_at=t if active else None,
            )
        )
        await session.flush()
    return created


def _parse_row(
    tenant_id: Any, line: int, rec: dict[str, str], errors: list[RowError]
) -> _Row | None:
    """One row, every field checked; its errors appended (``None`` when any)."""
    before = len(errors)

    def check(field: str, fn: Any) -> Any:
        try:
            return fn()
        except AppError as exc:
            errors.append(RowError(line, field, exc.message))
            return None

    username = check("username", lambda: v.username(rec.get("username", "").strip()))
    display = check(
        "display_name", lambda: v.text(rec.get("display_name", ""), "display_name", max_len=200)
    )
    category = check("category", lambda: _category(rec.get("category", "")))
    phone = check("phone", lambda: v.phone(rec.get("phone") or None))
    email = check("email", lambda: checked_email(rec.get("email") or None))
    paths = check(
        "excluded_unit_paths",
        lambda: sorted(
            {
                v.path(p.strip(), "excluded_unit_paths")
                for p in (rec.get("excluded_unit_paths") or "").split(";")
                if p.strip()
            }
        ),
    )
    related = check(
        "related_persons",
        lambda: related_entries(tenant_id, _related(rec.get("related_persons") or "")),
    )

    def status() -> EvaluatorStatus:
        raw = (rec.get("status") or "ACTIVE").strip().upper()
        if raw not in (EvaluatorStatus.ACTIVE, EvaluatorStatus.APPLIED):
            raise BadUserInput("status must be ACTIVE or APPLIED", field="status")
        return EvaluatorStatus(raw)

    state = check("status", status)
    if len(errors) > before:
        return None
    return _Row(line, username, display, category, phone, email, paths, related, state)
