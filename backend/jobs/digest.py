"""The 08:00 red-list digest, escalation to the next level up, and overdue supervision orders.

Daily per tenant, from 08:00 tenant time (the job runs every 15 minutes and at
start; a tenant is due once its local clock has passed 08:00 and today's run
has not finished OK — so a worker that was down at 08:00 sends the digest when
it comes back, and never twice):

- **digest** — to each responsible official of a RED (due within the red
  threshold, or overdue) case: the leaders and petition officers whose role is
  held exactly at the case's holder unit, and the case's 包案 leader. One
  message per person per day (dedupe key ``(person, "digest", None, day)``)
  listing their cases, the most urgent first (a case assigned down by Beijing or the
  province, seed 000, with the bureau's number while the report back is owed);
- **escalation** — a case red for at least ``escalateAfterRedDays`` working
  days (tenant policy, default 2; counted from ``cases.red_since``) is also
  reported to the leaders and petition officers of the holder's parent unit,
  one message per person per day (``(person, "escalation", None, day)``);
- **supervision overdue** — an open 督办 order past its due time goes to the
  leader who issued it, one message per order per day
  (``(issuer, "supervision_overdue", case, day)``).

Accusations never reach the accused (Art. 30): the lists leave out every case a
recipient may not know (backend/cases/need_to_know.py), in SQL, before counting. Recipients and lists are
computed in SQL (window functions cap each list); messages are written to the
outbox in the tenant's transaction, the dispatcher delivers them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, String, and_, func, literal_column, select, text, union, union_all
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.authz.roles import Role
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import Case, CaseDeadline, DeadlineStatus, TenantPolicy, WarningColor
from backend.cases.need_to_know import barred_user_clause
from backend.cases.policy import load_calendar, load_policy
from backend.cases.practices import AssignedCase
from backend.cases.rules import DeadlinePolicy, Step
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.logging import get_logger
from backend.jobs.deadlines import open_case_filter, scan_tenant, thresholds
from backend.jobs.runs import RunRecord, already_done, fan_out
from backend.tenants.models import OrgUnit, RoleAssignment, Tenant, User

log = get_logger(__name__)

JOB = "red_digest"
DIGEST_AT = time(8, 0)
LIST_LIMIT = 50  # cases listed in one message; the count covers the rest
MESSAGE_BATCH = 200  # messages per enqueue_many
DEFAULT_ESCALATE_AFTER = 2
RESPONSIBLE_ROLES = (Role.LEADER.value, Role.PETITION_OFFICER.value)
DIGEST = "digest"  # the two red lists (and their messages' kinds)
ESCALATION = "escalation"
# the per-recipient ranking sorts every (recipient, red case) pair of a city: tens of
# thousands of rows at 1M open cases, which spill to disk with the default 4 MB. SET LOCAL
# (a fixed text, no value spliced in): Citus passes it on to the workers, set_config not
_WORK_MEM = text("SET LOCAL work_mem = '64MB'")


# --- who is responsible ------------------------------------------------------------------


def _red_cases(tenant_id: uuid.UUID, red_until: datetime) -> Any:
    """Red open cases. ``due_at <= red_until`` (the scan that precedes the digest just
    coloured every case due by then red) makes it a range on ``(tenant, due_at)``: no
    index of ``cases`` names the colour, so that its updates stay HOT (migration 0011)."""
    return and_(
        Case.tenant_id == tenant_id,
        Case.due_at <= red_until,
        Case.warning_color == WarningColor.RED.value,
        open_case_filter(),
    )


def _cases(tenant_id: uuid.UUID, where: Any, name: str) -> Any:
    """The cases to report, read once (a CTE) with every column a message lists."""
    return (
        select(
            Case.id,
            Case.number,
            Case.subject,
            Case.holder_path,
            Case.due_at,
            Case.red_since,
            Case.holder_unit_id,
            Case.leader_id,
            Case.tenant_id,
            Case.type,
            Case.accused_path,
            Case.accused_username,
            _bureau_number(),
        )
        .where(where)
        .cte(name)
    )


def _bureau_number() -> Any:
    """京、省交办 (seed 000): the bureau's 交办单号 while the report back is owed, so the
    digest says which red cases a bureau waits for (their REPORT_BACK date may be what
    made them red)."""
    return (
        select(AssignedCase.external_number)
        .where(
            AssignedCase.tenant_id == Case.tenant_id,
            AssignedCase.case_id == Case.id,
            AssignedCase.reported_at.is_(None),
        )
        .scalar_subquery()
        .label("external_number")
    )


def _listed(c: Any) -> list[Any]:
    return [
        c.c.id,
        c.c.number,
        c.c.subject,
        c.c.holder_path,
        c.c.due_at,
        c.c.red_since,
        c.c.tenant_id,
        c.c.type,
        c.c.accused_path,
        c.c.accused_username,
        c.c.external_number,
    ]


def _kind(kind: str) -> Any:
    """Which list a (user, case…) pair belongs to: ``digest`` or ``escalation``."""
    return literal_column(f"'{kind}'", String).label("kind")


def _holder_officials(tenant_id: uuid.UUID, c: Any) -> Select:
    """(digest, user, case…): roles held exactly at the case's holder unit."""
    return select(_kind(DIGEST), RoleAssignment.user_id.label("user_id"), *_listed(c)).join(
        RoleAssignment,
        and_(
            RoleAssignment.tenant_id == tenant_id,
            RoleAssignment.org_unit_id == c.c.holder_unit_id,
            RoleAssignment.role.in_(RESPONSIBLE_ROLES),
        ),
    )


def _case_leaders(c: Any) -> Select:
    """(digest, user, case…): the 包案 leader."""
    return select(_kind(DIGEST), c.c.leader_id.label("user_id"), *_listed(c)).where(
        c.c.leader_id.is_not(None)
    )


def _parent_officials(tenant_id: uuid.UUID, c: Any, where: Any) -> Select:
    """(escalation, user, case…): roles held exactly at the parent of the case's holder unit,
    for the cases of ``c`` that satisfy ``where``."""
    holder = aliased(OrgUnit)
    return (
        select(_kind(ESCALATION), RoleAssignment.user_id.label("user_id"), *_listed(c))
        .join(holder, and_(holder.tenant_id == tenant_id, holder.id == c.c.holder_unit_id))
        .join(
            RoleAssignment,
            and_(
                RoleAssignment.tenant_id == tenant_id,
                RoleAssignment.org_unit_id == holder.parent_id,
                RoleAssignment.role.in_(RESPONSIBLE_ROLES),
            ),
        )
        .where(where)
    )


def _pairs(tenant_id: uuid.UUID, red_until: datetime, cutoff: datetime) -> Any:
    """(kind, user, case…) of both lists from ONE read of the red cases (a CTE the two lists
    share): the digest's pairs (holder officials and 包案 leaders, without duplicates) and
    the escalation's (the parent unit's officials of the cases red since before ``cutoff``).
    Reading the red cases once instead of once per list halves the heap pages the digest
    reads — the bulk of its time at 1M open cases (docs/performance.md)."""
    red = _cases(tenant_id, _red_cases(tenant_id, red_until), "red")
    digest = union(_holder_officials(tenant_id, red), _case_leaders(red)).subquery("digest")
    stale = and_(red.c.red_since.is_not(None), red.c.red_since < cutoff)
    # union_all: the escalation pairs were never deduplicated (a subquery, not a nested
    # compound: SQLite refuses parentheses around a UNION)
    return union_all(select(digest), _parent_officials(tenant_id, red, stale))


async def _lists(
    session: AsyncSession, tenant_id: uuid.UUID, pairs: Any, current: datetime
) -> AsyncIterator[tuple[str, uuid.UUID, int, int, list[Any]]]:
    """Per list and recipient: (kind, user, total, overdue, the first LIST_LIMIT case rows by
    due time), the digests first.

    ``pairs`` are (kind, user, case columns…) rows: the cases are read once, not joined
    back. Counting and ranking happen in SQL (window functions); Python sees at
    most LIST_LIMIT rows per recipient, streamed, one recipient at a time.
    """
    p = pairs.subquery()
    overdue = sql_case((p.c.due_at < current, 1), else_=0)
    per_list = (p.c.kind, p.c.user_id)
    ranked = (
        select(
            p.c.kind,
            p.c.user_id,
            p.c.id,
            p.c.number,
            p.c.subject,
            p.c.holder_path,
            p.c.due_at,
            p.c.red_since,
            p.c.external_number,
            func.row_number()
            .over(partition_by=per_list, order_by=(p.c.due_at, p.c.id))
            .label("rn"),
            func.count().over(partition_by=per_list).label("total"),
            func.sum(overdue).over(partition_by=per_list).label("overdue_total"),
        )
        .join(User, and_(User.tenant_id == tenant_id, User.id == p.c.user_id))
        # 检举控告 (Art. 30): never to the accused person nor anyone inside the accused unit
        .where(~barred_user_clause(p.c.user_id, User.username, cases=p.c))
        .subquery()
    )
    rows = await session.stream(
        select(ranked)
        .where(ranked.c.rn <= LIST_LIMIT)
        .order_by(ranked.c.kind, ranked.c.user_id, ranked.c.rn)
    )
    key: tuple[str, uuid.UUID] | None = None
    total, n_over, items = 0, 0, []
    async for r in rows:
        if (r.kind, r.user_id) != key:
            if key is not None:
                yield key[0], key[1], total, n_over, items
            key = (r.kind, r.user_id)
            total, n_over, items = int(r.total), int(r.overdue_total or 0), []
        items.append(r)
    if key is not None:
        yield key[0], key[1], total, n_over, items


def _aware(value: datetime | None) -> datetime | None:
    """Window-function subqueries come back raw on SQLite: naive UTC (or text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- when --------------------------------------------------------------------------------


async def escalate_after(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """Tenant policy ``escalateAfterRedDays`` (working days), default 2."""
    data = await session.scalar(
        select(TenantPolicy.data).where(TenantPolicy.tenant_id == tenant_id)
    )
    try:
        days = int((data or {}).get("escalateAfterRedDays", DEFAULT_ESCALATE_AFTER))
    except (TypeError, ValueError):
        days = DEFAULT_ESCALATE_AFTER
    return max(days, 1)


def red_cutoff(
    today: date, days: int, calendar: WorkingDayCalendar, policy: DeadlinePolicy
) -> datetime:
    """Red since before this instant ⇒ red for at least ``days`` working days by today.

    A case red since day D has been red for the working days in (D, today]; the
    latest D with ``days`` of them is found by walking back from today.
    """
    d, counted = today, 0
    while counted < days:
        if calendar.is_working_day(d):
            counted += 1
        d -= timedelta(days=1)
    return datetime.combine(d + timedelta(days=1), time.min, tzinfo=policy.tz).astimezone(UTC)


async def digest_due(db: Database, tenant: Tenant, force: bool) -> str | None:
    """Today's slot (local date) once the tenant's clock has passed 08:00 and it is not done."""
    local = now().astimezone(DeadlinePolicy(timezone=tenant.timezone).tz)
    if not force and local.time() < DIGEST_AT:
        return None
    key = local.date().isoformat()
    if not force and await already_done(db, JOB, tenant.id, key):
        return None
    return key


# --- messages ----------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _iso(value: datetime, tz: Any) -> str:
    """An instant of the message's ``data`` as the API writes a DateTime (README): in the
    city's zone, to the second (it was UTC with microseconds; outside probe of issue 21)."""
    return value.astimezone(tz).isoformat(timespec="seconds")


@lru_cache(maxsize=4096)
def _due_day(value: datetime, tz: Any) -> str:
    return value.astimezone(tz).date().isoformat()


# Due times are ends of days and red-since times scan times: a few hundred distinct values
# among the tens of thousands of listed rows of a run, hence the memoised formatting above.


def _line(r: Any, current: datetime, policy: DeadlinePolicy) -> str:
    due_at = _aware(r.due_at)
    state = "已超期" if due_at < current else "即将到期"
    line = f"{r.number}｜{r.subject}｜{r.holder_path}｜到期 {_due_day(due_at, policy.tz)}｜{state}"
    return f"{line}｜交办 {r.external_number}" if r.external_number else line


def _body(
    intro: str, total: int, items: list[Any], current: datetime, policy: DeadlinePolicy
) -> str:
    lines = [intro, *(_line(r, current, policy) for r in items)]
    if total > len(items):
        lines.append(f"……另有 {total - len(items)} 件，请登录系统查看红色预警列表。")
    return "\n".join(lines)


def _data(
    day: date,
    total: int,
    n_over: int,
    items: list[Any],
    current: datetime,
    tz: Any,
    **extra: Any,
) -> dict[str, Any]:
    cases = []
    for r in items:
        due_at, red_since = _aware(r.due_at), _aware(r.red_since)
        cases.append(
            {
                "id": str(r.id),
                "number": r.number,
                "dueAt": _iso(due_at, tz),
                "overdue": due_at < current,
                "redSince": _iso(red_since, tz) if red_since else None,
                **({"externalNumber": r.external_number} if r.external_number else {}),
            }
        )
    return {"day": day.isoformat(), "total": total, "overdue": n_over, "cases": cases, **extra}


def _intro(kind: str, day: date, total: int, n_over: int, days: int) -> str:
    if kind == DIGEST:
        return (
            f"{day.isoformat()} 红色预警：您负责的 {total} 件信访事项临期或超期"
            f"（其中超期 {n_over} 件）。"
        )
    return (
        f"{day.isoformat()} 升级提醒：下级单位 {total} 件信访事项已连续 {days} 个工作日以上"
        f"处于红色预警（其中超期 {n_over} 件），请督促办理。"
    )


class _Outbox:
    """Messages of one tenant's run, written with :func:`enqueue_many` every BATCH of them."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.session, self.tenant_id = session, tenant_id
        self.pending: list[Any] = []
        self.created = 0

    async def add(self, message: Any) -> None:
        self.pending.append(message)
        if len(self.pending) >= MESSAGE_BATCH:
            await self.flush()

    async def flush(self) -> None:
        from backend.notifications.service import enqueue_many

        if self.pending:
            rows = await enqueue_many(self.session, tenant_id=self.tenant_id, messages=self.pending)
            self.created += len(rows)
            self.pending = []


async def build_digest(session: AsyncSession, tenant: Tenant, *, day: date) -> dict[str, int]:
    """Write today's digest, escalation and supervision messages of one tenant to the outbox."""
    from backend.notifications.service import Message, dedupe_key

    current = now()
    policy = await load_policy(session, tenant.id)
    calendar = await load_calendar(session)
    counts = {"digests": 0, "escalations": 0, "supervisionOverdue": 0, "notifications": 0}
    outbox = _Outbox(session, tenant.id)

    red_until, _ = thresholds(current, policy)
    days = await escalate_after(session, tenant.id)
    cutoff = red_cutoff(day, days, calendar, policy)
    lists = _lists(session, tenant.id, _pairs(tenant.id, red_until, cutoff), current)
    async for kind, user_id, total, n_over, items in lists:
        body = _body(_intro(kind, day, total, n_over, days), total, items, current, policy)
        if kind == DIGEST:
            message = Message(
                recipient_id=user_id,
                kind=DIGEST,
                subject=f"红色预警日报 {day.isoformat()}：{total} 件（超期 {n_over} 件）",
                body=body,
                dedupe_key=dedupe_key(user_id, DIGEST, None, day),
                data=_data(day, total, n_over, items, current, policy.tz),
                about=[r.id for r in items],
            )
        else:
            message = Message(
                recipient_id=user_id,
                kind=ESCALATION,
                subject=f"红色预警升级 {day.isoformat()}：{total} 件",
                body=body,
                dedupe_key=dedupe_key(user_id, ESCALATION, None, day),
                data=_data(
                    day, total, n_over, items, current, policy.tz, escalateAfterRedDays=days
                ),
                about=[r.id for r in items],
            )
        await outbox.add(message)
        counts["digests" if kind == DIGEST else "escalations"] += 1

    orders = await session.stream(
        select(
            CaseDeadline.issued_by_id,
            CaseDeadline.case_id,
            CaseDeadline.due_date,
            CaseDeadline.note,
            Case.number,
            Case.subject,
        )
        .join(Case, and_(Case.tenant_id == CaseDeadline.tenant_id, Case.id == CaseDeadline.case_id))
        .join(
            User,
            and_(User.tenant_id == CaseDeadline.tenant_id, User.id == CaseDeadline.issued_by_id),
        )
        .where(
            CaseDeadline.tenant_id == tenant.id,
            CaseDeadline.step == Step.SUPERVISION.value,
            CaseDeadline.status == DeadlineStatus.OPEN.value,
            CaseDeadline.due_at < current,
            CaseDeadline.issued_by_id.is_not(None),
            ~barred_user_clause(CaseDeadline.issued_by_id, User.username),
        )
        .order_by(CaseDeadline.issued_by_id, CaseDeadline.due_at)
    )
    async for issuer, case_id, due_date, note, number, subject in orders:
        await outbox.add(
            Message(
                recipient_id=issuer,
                kind="supervision_overdue",
                subject=f"督办超期：{number}",
                body=(
                    f"您于督办单中要求 {due_date.isoformat()} 前办结的信访事项 {number}（{subject}）"
                    f"已超期，尚未办结。督办要求：{note or '—'}"
                ),
                dedupe_key=dedupe_key(issuer, "supervision_overdue", case_id, day),
                case_id=case_id,
                data={
                    "day": day.isoformat(),
                    "caseId": str(case_id),
                    "dueDate": due_date.isoformat(),
                },
            )
        )
        counts["supervisionOverdue"] += 1
    await outbox.flush()
    counts["notifications"] = outbox.created
    return counts


async def _digest_step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    run.add(**{f"scan.{k}": v for k, v in (await scan_tenant(db, tenant.id)).items()})
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        if session.get_bind().dialect.name == "postgresql":
            await session.execute(_WORK_MEM)
        run.add(**await build_digest(session, tenant, day=date.fromisoformat(run.key or "")))


async def red_digest(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job: every 15 minutes and at start; each tenant once a day from 08:00 local."""
    return await fan_out(ctx, JOB, _digest_step, digest_due)
