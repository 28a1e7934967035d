"""Which cases may be evaluated (案件办理质量评价), seed 000:

    选取群众对处理结果"不满意"案件和"赴京到省重复信访3次以上"案件

A case is eligible when

* the petitioner rated the reply ``DISSATISFIED``, or
* the petitioner has gone **to the province or to Beijing** on the same matter
  at least :data:`UPWARD_REPEAT_THRESHOLD` (3) times, this case included.

"3次以上" includes the third petition (≥ 3): Chinese statutes read 以上 as
including the number itself (e.g. 民法典 Art. 1259, 刑法 Art. 99: "以上、以下、
以内，包括本数").

*The same matter* is the repeat chain intake builds (``Case.repeat_of_id``: same
petitioner, same category, same accused, within the repeat window): the case
itself, the first case of its chain and the chain's other cases received up to
this one. A petition counts as going upward when its ``skipLevel`` is
``PROVINCE`` (到省) or ``BEIJING`` (赴京); both levels add to one count, and the
reasons name each level's share. Repeats that stayed local, however many, and a
single skip-level petition do not make a case eligible.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from backend.cases.models import Case, Satisfaction, SkipLevel

UPWARD_REPEAT_THRESHOLD = 3  # 赴京到省重复信访3次以上: ≥ 3, the third included


@dataclass(frozen=True)
class UpwardCount:
    """Petitions of one matter that went to the province / to Beijing."""

    province: int = 0
    beijing: int = 0

    @property
    def total(self) -> int:
        return self.province + self.beijing


def reasons_for(rating: str | None, upward: UpwardCount) -> list[str]:
    """Why a case is eligible (empty: it is not) — the pure rule.

    ``DISSATISFIED``; ``UPWARD_REPEATS_n`` with ``TO_PROVINCE_p`` / ``TO_BEIJING_b`` for
    each level that has petitions, when ``n ≥ 3``.
    """
    reasons = []
    if rating == Satisfaction.DISSATISFIED:
        reasons.append("DISSATISFIED")
    if upward.total >= UPWARD_REPEAT_THRESHOLD:
        reasons.append(f"UPWARD_REPEATS_{upward.total}")
        if upward.province:
            reasons.append(f"TO_PROVINCE_{upward.province}")
        if upward.beijing:
            reasons.append(f"TO_BEIJING_{upward.beijing}")
    return reasons


def _same_matter(other: type[Case]) -> ColumnElement[bool]:
    """``other`` belongs to the matter of the (correlated) ``Case`` row, received no later.

    Chain members share the petitioner key by construction (intake links only the same
    petitioner), so the equality costs nothing and lets the count use the petitioner
    index instead of scanning the tenant's cases.
    """
    return and_(
        other.tenant_id == Case.tenant_id,
        other.petitioner_key == Case.petitioner_key,
        other.received_at <= Case.received_at,
        or_(
            other.id == Case.id,
            other.id == Case.repeat_of_id,
            other.repeat_of_id == Case.repeat_of_id,
        ),
    )


def upward_count_column(level: SkipLevel | None = None) -> ColumnElement[int]:
    """Correlated count of the upward petitions of each ``Case`` row's matter
    (one level, or both)."""
    other = aliased(Case)
    levels = [level.value] if level else [SkipLevel.PROVINCE.value, SkipLevel.BEIJING.value]
    return (
        select(func.count(other.id))
        .where(_same_matter(other), other.skip_level.in_(levels))
        .correlate(Case)
        .scalar_subquery()
    )


def eligibility_clause() -> ColumnElement[bool]:
    """SQL twin of :func:`reasons_for` over ``Case`` rows."""
    return or_(
        Case.rating == Satisfaction.DISSATISFIED,
        # a case outside any chain has one petition at most: never 3 upward
        and_(
            Case.repeat_of_id.is_not(None),
            Case.petitioner_key.is_not(None),
            upward_count_column() >= UPWARD_REPEAT_THRESHOLD,
        ),
    )


async def upward_count(session: AsyncSession, case: Case) -> UpwardCount:
    """How often the petitioner of ``case`` went to the province / Beijing on its matter."""
    if case.repeat_of_id is None or case.petitioner_key is None:
        # outside any chain: this petition alone
        level = case.skip_level if case.skip_level != SkipLevel.NONE else None
        return UpwardCount(
            province=int(level == SkipLevel.PROVINCE), beijing=int(level == SkipLevel.BEIJING)
        )
    other = aliased(Case)
    levels = [SkipLevel.PROVINCE.value, SkipLevel.BEIJING.value]
    same = [
        other.tenant_id == case.tenant_id,
        other.petitioner_key == case.petitioner_key,
        other.received_at <= case.received_at,
        other.skip_level.in_(levels),
    ]
    ids = [
        other.id == case.id,
        other.id == case.repeat_of_id,
        other.repeat_of_id == case.repeat_of_id,
    ]
    rows = await session.execute(
        select(other.skip_level, func.count(other.id))
        .where(*same, or_(*ids))
        .group_by(other.skip_level)
    )
    counts = {level: int(n) for level, n in rows}
    return UpwardCount(
        province=counts.get(SkipLevel.PROVINCE.value, 0),
        beijing=counts.get(SkipLevel.BEIJING.value, 0),
    )


async def eligibility_reasons(session: AsyncSession, case: Case) -> list[str]:
    return reasons_for(case.rating, await upward_count(session, case))
