"""重复访 and 复核终结: which earlier cases a new petition repeats (DOMAIN.md "registered").

An earlier case is the same matter when it has the same petitioner (``petitioner_key``),
the same category, names the same accused (Art. 30: nobody may learn of an accusation
through a repeat count, docs/security.md) and a **similar subject**. Similar is meant to
be explained to a petitioner in one sentence:

    both subjects are compared after normalising (NFKC, case folded, only letters and
    digits kept: spaces and punctuation do not count); they are similar when equal, when
    one contains the other and the shorter has at least :data:`MIN_CONTAINED` characters,
    or when difflib's ratio (2 × matching characters / total characters) is at least
    :data:`SIMILARITY_THRESHOLD`.

"土地补偿款未发放" and "关于土地补偿款至今未发放的问题" are similar (one contains the
other); "土地补偿款未发放" and "村道路灯损坏" are not (ratio 0). The comparison runs in
Python over the candidates SQL selected (tenant, petitioner, category, accused; at most
:data:`MAX_CANDIDATES`, newest first): the standard library's ratio works the same on
PostgreSQL and SQLite, where ``pg_trgm`` is neither available nor usable under RLS
(docs/decisions.md).

The same comparison finds the case a new petition would re-open after its re-review
(复核) was decided: Art. 36 — the same facts are not accepted again (``final_of``).
"""

from __future__ import annotations

import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime
from difflib import SequenceMatcher

from sqlalchemy import exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.cases.models import Case, CaseEvent

SIMILARITY_THRESHOLD = 0.6
MIN_CONTAINED = 4
MAX_CANDIDATES = 200
RE_REVIEW_DECIDED = "DECIDE_RE_REVIEW"  # the event kind of decide_re_review (lifecycle.py)


def normalise(subject: str) -> str:
    """The subject as compared: NFKC, case folded, letters and digits only."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", subject).casefold() if ch.isalnum())


def similar(a: str, b: str) -> bool:
    """Whether two subjects name the same matter (the rule in the module docstring)."""
    na, nb = normalise(a), normalise(b)
    if na == nb:
        return True
    if not na or not nb:
        return False
    short, long_ = sorted((na, nb), key=len)
    if len(short) >= MIN_CONTAINED and short in long_:
        return True
    return SequenceMatcher(None, na, nb, autojunk=False).ratio() >= SIMILARITY_THRESHOLD


@dataclass(frozen=True)
class Earlier:
    """An earlier case of the same petitioner, category and accused."""

    id: uuid.UUID
    subject: str
    received_at: datetime
    re_reviewed: bool  # its 复核 was decided (Art. 36)


@dataclass(frozen=True)
class Matches:
    repeat_count: int = 0  # similar earlier cases received within the repeat window
    repeat_of: uuid.UUID | None = None  # the first of them
    final_of: uuid.UUID | None = None  # the latest similar case whose re-review was decided


def match(subject: str, earlier: list[Earlier], since: datetime) -> Matches:
    """What the new case's ``subject`` repeats among ``earlier`` (any order)."""
    same = sorted((e for e in earlier if similar(subject, e.subject)), key=_order)
    recent = [e for e in same if e.received_at >= since]
    final = [e for e in same if e.re_reviewed]
    return Matches(
        repeat_count=len(recent),
        repeat_of=recent[0].id if recent else None,
        final_of=final[-1].id if final else None,
    )


def _order(e: Earlier) -> tuple[datetime, str]:
    return (e.received_at, str(e.id))


async def earlier_cases(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    *,
    petitioner_key: str,
    category: str,
    accused_path: str | None,
    accused_username: str | None,
) -> list[Earlier]:
    """The candidates :func:`match` compares: same tenant, petitioner, category and accused
    (in SQL), newest first, at most :data:`MAX_CANDIDATES`."""
    decided = exists(
        select(CaseEvent.id).where(
            CaseEvent.tenant_id == Case.tenant_id,
            CaseEvent.case_id == Case.id,
            CaseEvent.kind == RE_REVIEW_DECIDED,
        )
    )
    rows = await session.execute(
        select(Case.id, Case.subject, Case.received_at, decided)
        .where(
            Case.tenant_id == tenant_id,
            Case.petitioner_key == petitioner_key,
            Case.category == category,
            func.coalesce(Case.accused_path, "") == (accused_path or ""),
            func.coalesce(Case.accused_username, "") == (accused_username or ""),
        )
        .order_by(Case.received_at.desc(), Case.id.desc())
        .limit(MAX_CANDIDATES)
    )
    return [Earlier(r[0], r[1], r[2], bool(r[3])) for r in rows]
