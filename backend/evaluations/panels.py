"""Panels (评议组): which cases are eligible, the reproducible random draw, reading
panels, and re-running a stored draw for an audit.
"""

from __future__ import annotations

import secrets
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.authz.enforcer import allowed_grants, may, require
from backend.authz.principal import Principal
from backend.authz.roles import Role
from backend.authz.scope import path_covers
from backend.cases import need_to_know
from backend.cases import queries as case_queries
from backend.cases.events import append_event
from backend.cases.models import Case, CaseEvent
from backend.cases.service import find_case
from backend.cases.visibility import inside_accused, own_readers, read_predicate
from backend.core import validation as v
from backend.core.clock import now
from backend.core.errors import BadUserInput, Conflict, Forbidden, InvalidTransition, NotFound
from backend.core.ids import new_id, parse_id
from backend.core.pagination import PageArgs, Window, datetime_key, paginate, uuid_key
from backend.evaluations import draw as drawing
from backend.evaluations.eligibility import (
    UPWARD_REPEAT_THRESHOLD,
    eligibility_clause,
    eligibility_reasons,
)
from backend.evaluations.models import (
    Evaluation,
    EvaluationPanel,
    Evaluator,
    EvaluatorCategory,
    EvaluatorStatus,
    PanelMember,
    PanelStatus,
)
from backend.evaluations.policy import load_policy
from backend.notifications.service import dedupe_key, enqueue
from backend.tenants.models import OrgUnit, RoleAssignment, User


def _has_panel(statuses: Sequence[PanelStatus]) -> ColumnElement[bool]:
    return exists(
        select(EvaluationPanel.id).where(
            EvaluationPanel.tenant_id == Case.tenant_id,
            EvaluationPanel.case_id == Case.id,
            EvaluationPanel.status.in_([s.value for s in statuses]),
        )
    )


async def eligible_cases(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int | None = None,
    after: str | None = None,
    include_evaluated: bool = False,
    last: int | None = None,
    before: str | None = None,
) -> case_queries.Page:
    """Eligible cases the official can see, newest first; without a panel unless asked."""
    if not may(principal, "case", "read"):
        raise Forbidden("not allowed to list eligible cases")
    clauses = [read_predicate(principal), eligibility_clause()]
    if not include_evaluated:
        clauses.append(~_has_panel([PanelStatus.OPEN, PanelStatus.CONCLUDED]))
    args = PageArgs(first=first, after=after, last=last, before=before)
    return await case_queries.case_page(session, clauses, args)


@dataclass(frozen=True)
class PoolMember:
    candidate: drawing.Candidate
    user_id: uuid.UUID
    username: str


async def eligible_pool(
    session: AsyncSession, case: Case, *, ignore_panel: uuid.UUID | None = None
) -> list[PoolMember]:
    """Active evaluators holding the role, minus every conflict with ``case``.

    Excluded: a declared unit covering the case's location or holder unit; a
    declared relative who is the petitioner; anyone who acted on the case (its
    events), its 包案 leader, registrar and first receiver; whoever may not know the
    case (Art. 30: the accused person, anyone holding a role inside the accused unit);
    and whoever sat on any earlier panel of the same petitioner (or case).
    """
    has_role = exists(
        select(RoleAssignment.id).where(
            RoleAssignment.tenant_id == Evaluator.tenant_id,
            RoleAssignment.user_id == Evaluator.user_id,
            RoleAssignment.role == Role.EVALUATOR,
        )
    )
    rows = (
        await session.execute(
            select(Evaluator, User.username)
            .join(User, and_(User.tenant_id == Evaluator.tenant_id, User.id == Evaluator.user_id))
            .where(
                Evaluator.tenant_id == case.tenant_id,
                Evaluator.status == EvaluatorStatus.ACTIVE,
                has_role,
            )
        )
    ).all()
    handlers = set(
        await session.scalars(
            select(CaseEvent.actor_id).where(
                CaseEvent.case_id == case.id, CaseEvent.actor_id.is_not(None)
            )
        )
    )
    handlers |= {u for u in (case.leader_id, case.registered_by_id, case.first_receiver_id) if u}
    same = EvaluationPanel.case_id == case.id
    if case.petitioner_key:
        same = or_(same, EvaluationPanel.petitioner_key == case.petitioner_key)
    served_q = (
        select(PanelMember.evaluator_id)
        .join(
            EvaluationPanel,
            and_(
                EvaluationPanel.tenant_id == PanelMember.tenant_id,
                EvaluationPanel.id == PanelMember.panel_id,
            ),
        )
        .where(same)
    )
    if ignore_panel is not None:
        served_q = served_q.where(EvaluationPanel.id != ignore_panel)
    served = set(await session.scalars(served_q))
    known = await need_to_know.people(session, case.tenant_id, (ev.user_id for ev, _ in rows))
    roles = {uid: person.unit_paths for uid, person in known.items()}
    offices = await official_role_paths(session, case.tenant_id, [ev.user_id for ev, _ in rows])
    accused = await need_to_know.accused_of(session, case)  # with the accused person's units
    return eligible_members(
        [(ev, u) for ev, u in rows],
        case,
        handlers,
        served,
        roles,
        official_paths=offices,
        accused=accused,
    )


async def official_role_paths(
    session: AsyncSession, tenant_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, ...]]:
    """The units where each user holds an official role (any role but ``EVALUATOR``, which
    enrolment grants at the city root and says nothing about whose official one is)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(RoleAssignment.user_id, OrgUnit.path)
        .join(
            OrgUnit,
            and_(
                OrgUnit.tenant_id == RoleAssignment.tenant_id,
                OrgUnit.id == RoleAssignment.org_unit_id,
            ),
        )
        .where(
            RoleAssignment.tenant_id == tenant_id,
            RoleAssignment.user_id.in_(sorted(set(user_ids))),
            RoleAssignment.role != Role.EVALUATOR,
        )
    )
    out: defaultdict[uuid.UUID, set[str]] = defaultdict(set)
    for uid, path in rows:
        out[uid].add(path)
    return {uid: tuple(sorted(paths)) for uid, paths in out.items()}


def eligible_members(
    rows: Sequence[tuple[Evaluator, str]],
    case: Case,
    handlers: set[uuid.UUID],
    served: set[uuid.UUID],
    roles: Mapping[uuid.UUID, Sequence[str]] | None = None,
    *,
    official_paths: Mapping[uuid.UUID, Sequence[str]] | None = None,
    accused: need_to_know.Accused | None = None,
) -> list[PoolMember]:
    """The pure half of :func:`eligible_pool`: active and free of every conflict.

    ``roles``: the unit paths of every role each evaluator's user holds (Art. 30);
    ``official_paths``: those of its official roles (every role but EVALUATOR);
    ``accused``: the case's accused units (need_to_know.accused_of) — without it, only
    the accused unit and person the case names.
    """
    pool = []
    for ev, username in rows:
        if ev.status != EvaluatorStatus.ACTIVE or ev.id in served:
            continue
        if conflicts(
            ev,
            username,
            case,
            handlers,
            (roles or {}).get(ev.user_id, ()),
            (official_paths or {}).get(ev.user_id, ()),
            accused,
        ):
            continue
        cand = drawing.Candidate(str(ev.id), EvaluatorCategory(ev.category))
        pool.append(PoolMember(cand, ev.user_id, username))
    return pool


def conflicts(
    ev: Evaluator,
    username: str,
    case: Case,
    handlers: set[uuid.UUID],
    role_paths: Sequence[str] = (),
    official_paths: Sequence[str] = (),
    accused: need_to_know.Accused | None = None,
) -> bool:
    """A declared or factual conflict of interest between one evaluator and one case.

    Art. 30 first: an evaluator who may not know the case (the accused person, or
    holding any role inside an accused unit — the named one or one where the accused
    person holds a post: need_to_know.py) is never drawn.
    Then the case's own units, declared or not: an official role (``official_paths``)
    at a unit covering the case's location or holder unit counts as if that unit were
    among the evaluator's ``excludedUnitPaths`` — an official does not judge the
    handling of its own unit's cases.
    """
    if need_to_know.is_barred(accused or case, role_paths, username):
        return True
    if any(
        path_covers(p, case.location_path) or path_covers(p, case.holder_path)
        for p in [*(ev.excluded_unit_paths or []), *official_paths]
    ):
        return True
    if case.petitioner_key and any(
        r.get("key") == case.petitioner_key for r in ev.related_persons or []
    ):
        return True
    return ev.user_id in handlers


def draw_grant_reaches(principal: Principal, case: Case, act: str, obj: str = "panel") -> bool:
    return any(
        (path_covers(g.unit_path, case.holder_path) or path_covers(g.unit_path, case.location_path))
        and not inside_accused(case, g.unit_path)
        for g in allowed_grants(principal, obj, act)
    )


async def draw_panel(
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: str,
    size: int | None = None,
    seed: int | str | None = None,
) -> EvaluationPanel:
    """随机抽选 a panel for an eligible case; same seed + same pool → same panel."""
    require(principal, "panel", "draw")
    case = await find_case(session, principal, case_id, lock=True)
    if not draw_grant_reaches(principal, case, "draw"):
        raise Forbidden("not allowed to draw a panel for this case here")
    reasons = await eligibility_reasons(session, case)
    if not reasons:
        raise BadUserInput(
            "the case is not eligible: the petitioner was not dissatisfied and went to the "
            f"province or Beijing fewer than {UPWARD_REPEAT_THRESHOLD} times on this matter",
            field="caseId",
        )
    busy = await session.scalar(
        select(EvaluationPanel.id).where(
            EvaluationPanel.case_id == case.id,
            EvaluationPanel.status.in_([PanelStatus.OPEN, PanelStatus.CONCLUDED]),
        )
    )
    if busy is not None:
        raise Conflict("the case already has a panel (cancel it to draw again)", field="caseId")
    policy = await load_policy(session, case.tenant_id)
    size = policy.default_size if size is None else size
    if not 1 <= size <= policy.max_size:
        raise BadUserInput(f"size must be between 1 and {policy.max_size}", field="size")
    if size < policy.required_size():
        raise BadUserInput(
            f"the category mix needs at least {policy.required_size()} members", field="size"
        )
    try:
        seed = drawing.parse_seed(secrets.randbelow(2**31) if seed is None else seed)
    except ValueError as exc:
        raise BadUserInput(str(exc), field="seed") from exc
    pool = await eligible_pool(session, case)
    by_id = {m.candidate.id: m for m in pool}
    snap = drawing.snapshot(m.candidate for m in pool)
    mix = policy.mix()
    try:
        chosen = drawing.draw(drawing.candidates_of(snap), size=size, seed=seed, mix=mix)
    except drawing.PoolShort as short:
        raise BadUserInput(
            f"the pool is short of {short.category}: the panel needs {short.needed}, "
            f"{short.available} eligible",
            field="size",
            category=short.category,
            needed=short.needed,
            available=short.available,
        ) from short
    seed_text, seed_is_int = drawing.stored_seed(seed)
    panel = EvaluationPanel(
        tenant_id=case.tenant_id,
        id=new_id(),
        case_id=case.id,
        petitioner_key=case.petitioner_key,
        status=PanelStatus.OPEN,
        size=size,
        seed=seed_text,
        seed_is_int=seed_is_int,
        policy=mix,
        pool_snapshot=snap,
        pool_hash=drawing.pool_hash(snap, mix),
        reasons=reasons,
        drawn_by_id=principal.account_id,
        drawn_at=now(),
    )
    session.add(panel)
    await session.flush()
    members = []
    for position, cand in enumerate(chosen, start=1):
        m = by_id[cand.id]
        members.append(
            PanelMember(
                tenant_id=case.tenant_id,
                panel_id=panel.id,
                evaluator_id=uuid.UUID(cand.id),
                user_id=m.user_id,
                case_id=case.id,
                category=cand.category,
                position=position,
            )
        )
    session.add_all(members)
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATION_PANEL_DRAWN",
        data={
            "panelId": str(panel.id),
            "seed": seed,
            "size": size,
            "poolHash": panel.pool_hash,
            "eligible": len(snap),
            "members": [by_id[c.id].username for c in chosen],
        },
    )
    day = now().date()
    for member in members:
        await enqueue(
            session,
            tenant_id=case.tenant_id,
            recipient_id=member.user_id,
            kind="evaluation_panel",
            subject=f"案件评价邀请 {case.number}",
            body=f"您已被随机抽选为案件 {case.number} 的评价员，请登录系统查看案情并提交评价。",
            dedupe_key=f"{dedupe_key(member.user_id, 'evaluation_panel', case.id, day)}:{panel.id}",
            case_id=case.id,
            data={"panelId": str(panel.id), "caseNumber": case.number},
        )
    return panel


async def cancel_panel(
    session: AsyncSession, principal: Principal, *, panel_id: str, reason: str
) -> EvaluationPanel:
    """Cancel an open panel (e.g. a member cannot serve); a new draw is then possible."""
    require(principal, "panel", "draw")
    panel, case = await official_panel(session, principal, panel_id)
    if not draw_grant_reaches(principal, case, "draw"):
        raise Forbidden("not allowed to cancel this panel here")
    if panel.status != PanelStatus.OPEN:
        raise InvalidTransition(
            f"only an OPEN panel can be cancelled (it is {panel.status})",
            currentStatus=panel.status,
        )
    panel.status = PanelStatus.CANCELLED
    panel.cancelled_reason = v.text(reason, "reason", max_len=2000)
    await session.flush()
    await append_event(
        session,
        case,
        principal,
        "EVALUATION_PANEL_CANCELLED",
        reason=panel.cancelled_reason,
        data={"panelId": str(panel.id)},
    )
    return panel


@own_readers.register
def cases_of_my_panels(account_id: uuid.UUID) -> ColumnElement[bool]:
    """Evaluators read the cases of the panels they sit on (masked: ``sees_pii``), the
    read rule's own-cases clause for this domain (cases/visibility.own_readers)."""
    return exists(
        select(PanelMember.id).where(
            PanelMember.tenant_id == Case.tenant_id,
            PanelMember.case_id == Case.id,
            PanelMember.user_id == account_id,
        )
    )


def panel_read_clause(principal: Principal) -> ColumnElement[bool]:
    """Officials: panels of the cases they can read; evaluators: panels they sit on."""
    clauses: list[ColumnElement[bool]] = []
    if may(principal, "case", "read"):
        clauses.append(
            exists(
                select(Case.id).where(
                    Case.tenant_id == EvaluationPanel.tenant_id,
                    Case.id == EvaluationPanel.case_id,
                    read_predicate(principal),
                )
            )
        )
    if principal.tenant_id is not None:
        clauses.append(
            and_(
                exists(
                    select(PanelMember.id).where(
                        PanelMember.tenant_id == EvaluationPanel.tenant_id,
                        PanelMember.panel_id == EvaluationPanel.id,
                        PanelMember.user_id == principal.account_id,
                    )
                ),
                # a member who took a role inside the accused unit since the draw (Art. 30)
                exists(
                    select(Case.id).where(
                        Case.tenant_id == EvaluationPanel.tenant_id,
                        Case.id == EvaluationPanel.case_id,
                        ~need_to_know.barred_clause(
                            [g.unit_path for g in principal.grants], [principal.username]
                        ),
                    )
                ),
            )
        )
    return or_(*clauses) if clauses else false()


async def get_panel(session: AsyncSession, principal: Principal, panel_id: str) -> EvaluationPanel:
    """One panel; NOT_FOUND when absent or not visible, also to a role that reads no
    panel at all (as ``node(id)`` answers, and as the schema promises: it said FORBIDDEN
    before the outside probe of issue 21; the same answer for every id, no oracle)."""
    pid = parse_id(panel_id, "Panel")
    panel = None
    if pid is not None and may(principal, "panel", "read"):
        panel = await session.scalar(
            select(EvaluationPanel).where(EvaluationPanel.id == pid, panel_read_clause(principal))
        )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    return panel


async def visible_panels(
    session: AsyncSession, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[EvaluationPanel]:
    """Those of ``ids`` :func:`get_panel` would answer, in one statement (none when the
    caller may read no panel)."""
    if not ids or not may(principal, "panel", "read"):
        return []
    stmt = select(EvaluationPanel).where(
        EvaluationPanel.id.in_(list(set(ids))), panel_read_clause(principal)
    )
    return list(await session.scalars(stmt))


async def list_panels(
    session: AsyncSession,
    principal: Principal,
    *,
    case_id: str | None = None,
    status: PanelStatus | None = None,
    mine: bool = False,
    first: int = 50,
) -> list[EvaluationPanel]:
    """Visible panels, newest first; ``mine``: only those the caller sits on."""
    require(principal, "panel", "read")
    if not 1 <= first <= 200:
        raise BadUserInput("first must be between 1 and 200", field="first")
    args = PageArgs(first=first)
    window = await panel_page(session, principal, args, case_id=case_id, status=status, mine=mine)
    return window.rows


# newest draw first; a cursor is ``drawn_at|id``
PANEL_KEYS = (datetime_key(EvaluationPanel.drawn_at, "drawn_at"), uuid_key(EvaluationPanel.id))


async def panel_page(
    session: AsyncSession,
    principal: Principal,
    args: PageArgs,
    *,
    case_id: str | None = None,
    status: PanelStatus | None = None,
    mine: bool = False,
) -> Window:
    """A page of the visible panels, newest first, in either direction (Relay cursors)."""
    require(principal, "panel", "read")
    stmt = select(EvaluationPanel).where(panel_read_clause(principal))
    if case_id is not None:
        cid = parse_id(case_id, "Case", "caseId")
        stmt = stmt.where(EvaluationPanel.case_id == cid if cid else false())
    if status is not None:
        stmt = stmt.where(EvaluationPanel.status == PanelStatus(status))
    if mine:
        stmt = stmt.where(
            exists(
                select(PanelMember.id).where(
                    PanelMember.tenant_id == EvaluationPanel.tenant_id,
                    PanelMember.panel_id == EvaluationPanel.id,
                    PanelMember.user_id == principal.account_id,
                )
            )
        )
    return await paginate(session, stmt, PANEL_KEYS, args)


@dataclass
class MemberView:
    member: PanelMember
    username: str
    display_name: str
    submitted: bool


async def members_of(
    session: AsyncSession, panel_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[MemberView]]:
    if not panel_ids:
        return {}
    rows = (
        await session.execute(
            select(PanelMember, User.username, User.display_name, Evaluation.id)
            .join(
                User, and_(User.tenant_id == PanelMember.tenant_id, User.id == PanelMember.user_id)
            )
            .outerjoin(
                Evaluation,
                and_(
                    Evaluation.tenant_id == PanelMember.tenant_id,
                    Evaluation.member_id == PanelMember.id,
                ),
            )
            .where(PanelMember.panel_id.in_(list(set(panel_ids))))
            .order_by(PanelMember.position)
        )
    ).all()
    out: defaultdict[uuid.UUID, list[MemberView]] = defaultdict(list)
    for m, username, display, eid in rows:
        out[m.panel_id].append(MemberView(m, username, display, eid is not None))
    return dict(out)


@dataclass
class ScoreView:
    evaluation: Evaluation
    username: str


async def scores_visible_to(
    session: AsyncSession, principal: Principal, panel: EvaluationPanel
) -> list[ScoreView] | None:
    """The scores the caller may see: a member sees none until it has submitted its own;
    after that (and for officials who read the case) all submitted scores."""
    rows = (
        await session.execute(
            select(Evaluation, User.username)
            .join(User, and_(User.tenant_id == Evaluation.tenant_id, User.id == Evaluation.user_id))
            .where(Evaluation.panel_id == panel.id)
            .order_by(Evaluation.submitted_at, Evaluation.id)
        )
    ).all()
    seat = await session.scalar(
        select(PanelMember.id).where(
            PanelMember.panel_id == panel.id, PanelMember.user_id == principal.account_id
        )
    )
    if seat is not None and not any(e.member_id == seat for e, _ in rows):
        return None
    if seat is None and not may(principal, "case", "read"):
        return None
    return [ScoreView(e, u) for e, u in rows]


async def own_score(
    session: AsyncSession, principal: Principal, panel: EvaluationPanel
) -> Evaluation | None:
    return await session.scalar(
        select(Evaluation).where(
            Evaluation.panel_id == panel.id, Evaluation.user_id == principal.account_id
        )
    )


async def official_panel(
    session: AsyncSession, principal: Principal, panel_id: str
) -> tuple[EvaluationPanel, Case]:
    pid = parse_id(panel_id, "Panel", "panelId")
    panel = None
    if pid is not None and may(principal, "case", "read"):
        panel = await session.scalar(
            select(EvaluationPanel)
            .where(EvaluationPanel.id == pid, panel_read_clause(principal))
            .with_for_update()
        )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    case = await session.scalar(select(Case).where(Case.id == panel.case_id).with_for_update())
    return panel, case


@dataclass
class DrawCheck:
    panel: EvaluationPanel
    case_number: str
    hash_ok: bool
    members_ok: bool
    stored_members: list[str]
    redrawn_members: list[str]
    current_hash: str
    pool_changes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.hash_ok and self.members_ok


async def verify_draw(session: AsyncSession, panel_id: str) -> DrawCheck:
    """Re-run a stored draw: hash of the stored pool, then the draw from seed and snapshot.

    Also reports how today's eligible pool differs from the stored one (evaluators
    join, leave and serve on other panels; that is drift, not tampering).
    """
    pid = parse_id(panel_id, "Panel", "panelId")
    panel = (
        await session.scalar(select(EvaluationPanel).where(EvaluationPanel.id == pid))
        if pid
        else None
    )
    if panel is None:
        raise NotFound(f"panel {panel_id} not found")
    case = await session.scalar(select(Case).where(Case.id == panel.case_id))
    stored = list(
        await session.scalars(
            select(PanelMember.evaluator_id)
            .where(PanelMember.panel_id == panel.id)
            .order_by(PanelMember.position)
        )
    )
    hash_ok = drawing.pool_hash(panel.pool_snapshot, panel.policy) == panel.pool_hash
    seed = drawing.loaded_seed(panel.seed, panel.seed_is_int)
    try:
        redrawn = drawing.draw(
            drawing.candidates_of(panel.pool_snapshot), size=panel.size, seed=seed, mix=panel.policy
        )
    except drawing.PoolShort:
        redrawn = []
    current = await eligible_pool(session, case, ignore_panel=panel.id)
    now_snap = drawing.snapshot(m.candidate for m in current)
    before = {tuple(p) for p in panel.pool_snapshot}
    after = {tuple(p) for p in now_snap}
    return DrawCheck(
        panel=panel,
        case_number=case.number,
        hash_ok=hash_ok,
        members_ok=[str(s) for s in stored] == [c.id for c in redrawn],
        stored_members=[str(s) for s in stored],
        redrawn_members=[c.id for c in redrawn],
        current_hash=drawing.pool_hash(now_snap, panel.policy),
        pool_changes={
            "joined": sorted(i for i, _ in after - before),
            "left": sorted(i for i, _ in before - after),
        },
    )
