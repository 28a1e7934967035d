"""The 08:00 red-list digest, escalation to the next level up, and overdue supervision orders.

Daily per tenant, from 08:00 tenant time (the job runs every 15 minutes and at
start; a tenant is due once its local clock has passed 08:00 and today's run
has not finished OK — so a worker that was down at 08:00 sends the digest when
it comes back, and never twice):

- **digest** — to each responsible official of a RED (due within the red
  threshold, or overdue) case: the leaders and petition officers whose role is
  held exactly at the case's holder unit, and the case's 包案 leader. One
  message per person per day (dedupe key ``(person, "digest", None, day)``)
  listing their cases, the most urgent first;
- **escalation** — a case red for at least ``escalateAfterRedDays`` working
  days (tenant policy, default 2; counted from ``cases.red_since``) is also
  reported to the leaders and petition officers of the holder's parent unit,
  one message per person per day (``(person, "escalation", None, day)``);
- **supervision overdue** — an open 督办 order past its due time goes to the
  leader who issued it, one message per order per day
  (``(issuer, "supervision_overdue", case, day)``).

Accusations never go to the person they accuse. Recipients and lists are
computed in SQL (window functions cap each list); messages are written to the
outbox in the tenant's transaction, the dispatcher delivers them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, union
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.cases.calendar import WorkingDayCalendar
from backend.cases.models import Case, CaseDeadline, DeadlineStatus, TenantPolicy, WarningColor
from backend.cases.policy import load_calendar, load_policy
from backend.cases.rules import DeadlinePolicy, Step
from backend.core.clock import now
from backend.core.db import Database, TenantScope
from backend.core.logging import get_logger
from backend.jobs.deadlines import open_case_filter, scan_tenant
from backend.jobs.runs import RunRecord, already_done, fan_out
from backend.tenants.models import OrgUnit, Role, RoleAssignment, Tenant, User

log = get_logger(__name__)

JOB = "red_digest"
DIGEST_AT = time(8, 0)
LIST_LIMIT = 50  # cases listed in one message; the count covers the rest
DEFAULT_ESCALATE_AFTER = 2
RESPONSIBLE_ROLES = (Role.LEADER.value, Role.PETITION_OFFICER.value)


@dataclass(frozen=True)
class Listed:
    case_id: uuid.UUID
    number: str
    subject: str
    holder_path: str
    due_at: datetime
    red_since: datetime | None
    overdue: bool


# --- who is responsible ------------------------------------------------------------------


def _red_cases(tenant_id: uuid.UUID) -> Any:
    return and_(
        Case.tenant_id == tenant_id,
        Case.warning_color == WarningColor.RED.value,
        open_case_filter(),
    )


def _holder_officials(where: Any) -> Select:
    """(user, case): roles held exactly at the case's holder unit."""
    return (
        select(RoleAssignment.user_id.label("user_id"), Case.id.label("case_id"))
        .join(
            RoleAssignment,
            and_(
                RoleAssignment.tenant_id == Case.tenant_id,
                RoleAssignment.org_unit_id == Case.holder_unit_id,
            ),
        )
        .where(where, RoleAssignment.role.in_(RESPONSIBLE_ROLES))
    )


def _case_leaders(where: Any) -> Select:
    """(user, case): the 包案 leader."""
    return select(Case.leader_id.label("user_id"), Case.id.label("case_id")).where(
        where, Case.leader_id.is_not(None)
    )


def _parent_officials(where: Any) -> Select:
    """(user, case): roles held exactly at the parent of the case's holder unit."""
    holder = aliased(OrgUnit)
    return (
        select(RoleAssignment.user_id.label("user_id"), Case.id.label("case_id"))
        .join(holder, and_(holder.tenant_id == Case.tenant_id, holder.id == Case.holder_unit_id))
        .join(
            RoleAssignment,
            and_(
                RoleAssignment.tenant_id == Case.tenant_id,
                RoleAssignment.org_unit_id == holder.parent_id,
            ),
        )
        .where(where, RoleAssignment.role.in_(RESPONSIBLE_ROLES))
    )


async def _lists(
    session: AsyncSession, tenant_id: uuid.UUID, pairs: Any, current: datetime
) -> dict[uuid.UUID, tuple[int, int, list[Listed]]]:
    """Per recipient: (total, overdue, the first LIST_LIMIT cases by due time)."""
    p = pairs.subquery()
    overdue = sql_case((Case.due_at < current, 1), else_=0)
    ranked = (
        select(
            p.c.user_id,
            Case.id,
            Case.number,
            Case.subject,
            Case.holder_path,
            Case.due_at,
            Case.red_since,
            func.row_number()
            .over(partition_by=p.c.user_id, order_by=(Case.due_at, Case.id))
            .label("rn"),
            func.count().over(partition_by=p.c.user_id).label("total"),
            func.sum(overdue).over(partition_by=p.c.user_id).label("overdue_total"),
        )
        .join(Case, and_(Case.tenant_id == tenant_id, Case.id == p.c.case_id))
        .join(User, and_(User.tenant_id == tenant_id, User.id == p.c.user_id))
        # 检举控告: never to the accused person
        .where(or_(Case.accused_username.is_(None), Case.accused_username != User.username))
        .subquery()
    )
    rows = await session.execute(
        select(ranked).where(ranked.c.rn <= LIST_LIMIT).order_by(ranked.c.user_id, ranked.c.rn)
    )
    out: dict[uuid.UUID, tuple[int, int, list[Listed]]] = {}
    for r in rows:
        total, n_over, items = out.get(r.user_id, (int(r.total), int(r.overdue_total or 0), []))
        due_at = _aware(r.due_at)
        items.append(
            Listed(
                r.id,
                r.number,
                r.subject,
                r.holder_path,
                due_at,
                _aware(r.red_since),
                due_at < current,
            )
        )
        out[r.user_id] = (total, n_over, items)
    return out


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


def _local_day(current: datetime, policy: DeadlinePolicy) -> date:
    return current.astimezone(policy.tz).date()


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


def _line(item: Listed, policy: DeadlinePolicy) -> str:
    due = item.due_at.astimezone(policy.tz).date().isoformat()
    state = "已超期" if item.overdue else "即将到期"
    return f"{item.number}｜{item.subject}｜{item.holder_path}｜到期 {due}｜{state}"


def _body(intro: str, total: int, items: list[Listed], policy: DeadlinePolicy) -> str:
    lines = [intro, *(_line(i, policy) for i in items)]
    if total > len(items):
        lines.append(f"……另有 {total - len(items)} 件，请登录系统查看红色预警列表。")
    return "\n".join(lines)


def _data(day: date, total: int, n_over: int, items: list[Listed], **extra: Any) -> dict[str, Any]:
    return {
        "day": day.isoformat(),
        "total": total,
        "overdue": n_over,
        "cases": [
            {
                "id": str(i.case_id),
                "number": i.number,
                "dueAt": i.due_at.isoformat(),
                "overdue": i.overdue,
                "redSince": i.red_since.isoformat() if i.red_since else None,
            }
            for i in items
        ],
        **extra,
    }


async def build_digest(session: AsyncSession, tenant: Tenant, *, day: date) -> dict[str, int]:
    """Write today's digest, escalation and supervision messages of one tenant to the outbox."""
    from backend.notifications.service import dedupe_key, enqueue

    current = now()
    policy = await load_policy(session, tenant.id)
    calendar = await load_calendar(session)
    counts = {"digests": 0, "escalations": 0, "supervisionOverdue": 0, "notifications": 0}

    red = _red_cases(tenant.id)
    pairs = union(_holder_officials(red), _case_leaders(red))
    for user_id, (total, n_over, items) in (
        await _lists(session, tenant.id, pairs, current)
    ).items():
        intro = f"{day.isoformat()} 红色预警：您负责的 {total} 件信访事项临期或超期（其中超期 {n_over} 件）。"
        created = await enqueue(
            session,
            tenant_id=tenant.id,
            recipient_id=user_id,
            kind="digest",
            subject=f"红色预警日报 {day.isoformat()}：{total} 件（超期 {n_over} 件）",
            body=_body(intro, total, items, policy),
            dedupe_key=dedupe_key(user_id, "digest", None, day),
            data=_data(day, total, n_over, items),
        )
        counts["digests"] += 1
        counts["notifications"] += len(created)

    days = await escalate_after(session, tenant.id)
    cutoff = red_cutoff(day, days, calendar, policy)
    stale = and_(red, Case.red_since.is_not(None), Case.red_since < cutoff)
    escalated = await _lists(session, tenant.id, _parent_officials(stale), current)
    for user_id, (total, n_over, items) in escalated.items():
        intro = (
            f"{day.isoformat()} 升级提醒：下级单位 {total} 件信访事项已连续 {days} 个工作日以上"
            f"处于红色预警（其中超期 {n_over} 件），请督促办理。"
        )
        created = await enqueue(
            session,
            tenant_id=tenant.id,
            recipient_id=user_id,
            kind="escalation",
            subject=f"红色预警升级 {day.isoformat()}：{total} 件",
            body=_body(intro, total, items, policy),
            dedupe_key=dedupe_key(user_id, "escalation", None, day),
            data=_data(day, total, n_over, items, escalateAfterRedDays=days),
        )
        counts["escalations"] += 1
        counts["notifications"] += len(created)

    orders = await session.execute(
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
            CaseDeadline.step == Step.SUPERVISION.value,
            CaseDeadline.status == DeadlineStatus.OPEN.value,
            CaseDeadline.due_at < current,
            CaseDeadline.issued_by_id.is_not(None),
            or_(Case.accused_username.is_(None), Case.accused_username != User.username),
        )
        .order_by(CaseDeadline.issued_by_id, CaseDeadline.due_at)
    )
    for issuer, case_id, due_date, note, number, subject in orders:
        created = await enqueue(
            session,
            tenant_id=tenant.id,
            recipient_id=issuer,
            kind="supervision_overdue",
            subject=f"督办超期：{number}",
            body=(
                f"您于督办单中要求 {due_date.isoformat()} 前办结的信访事项 {number}（{subject}）"
                f"已超期，尚未办结。督办要求：{note or '—'}"
            ),
            dedupe_key=dedupe_key(issuer, "supervision_overdue", case_id, day),
            case_id=case_id,
            data={"day": day.isoformat(), "caseId": str(case_id), "dueDate": due_date.isoformat()},
        )
        counts["supervisionOverdue"] += 1
        counts["notifications"] += len(created)
    return counts


async def _digest_step(db: Database, tenant: Tenant, run: RunRecord) -> None:
    run.add(**{f"scan.{k}": v for k, v in (await scan_tenant(db, tenant.id)).items()})
    async with db.transaction(TenantScope.of([tenant.id])) as session:
        run.add(**await build_digest(session, tenant, day=date.fromisoformat(run.key or "")))


async def red_digest(ctx: dict[str, Any]) -> dict[str, Any]:
    """Cron job: every 15 minutes and at start; each tenant once a day from 08:00 local."""
    return await fan_out(ctx, JOB, _digest_step, digest_due)
