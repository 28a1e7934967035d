"""The panel draw as a pure function: same seed + same pool snapshot + same mix = same panel.

The eligible pool is sorted by evaluator id, shuffled with ``random.Random(seed)``
and walked in that order: first the category minimums (categories in enum
order), then the non-official minimum, then the remaining seats. The pool
hash is ``sha256`` over the canonical JSON of the sorted ``[id, category]``
pairs and the mix, so an auditor can tell whether a re-run used the same pool.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from backend.evaluations.models import EvaluatorCategory

NON_OFFICIAL = "NON_OFFICIAL"


@dataclass(frozen=True, order=True)
class Candidate:
    id: str
    category: EvaluatorCategory


class PoolShort(Exception):
    """The eligible pool cannot fill a requirement (``category`` names which)."""

    def __init__(self, category: str, needed: int, available: int) -> None:
        super().__init__(f"{category}: needed {needed}, {available} eligible")
        self.category, self.needed, self.available = category, needed, available


def snapshot(candidates: Iterable[Candidate]) -> list[list[str]]:
    """The stored form of the eligible pool: ``[[id, category], ...]`` sorted by id."""
    return [[c.id, c.category.value] for c in sorted(set(candidates))]


def candidates_of(snap: Sequence[Sequence[str]]) -> list[Candidate]:
    return [Candidate(str(i), EvaluatorCategory(c)) for i, c in snap]


def pool_hash(snap: Sequence[Sequence[str]], mix: dict[str, Any]) -> str:
    body = json.dumps(
        {"pool": [list(p) for p in snap], "policy": mix},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def draw(
    pool: Iterable[Candidate], *, size: int, seed: int | str, mix: dict[str, Any]
) -> list[Candidate]:
    """The members, in the order they were picked; raises :class:`PoolShort`."""
    ordered = sorted(set(pool))
    order = list(ordered)
    random.Random(seed).shuffle(order)
    chosen: list[Candidate] = []
    taken: set[str] = set()

    def take(pred: Any, need: int) -> int:
        got = 0
        for c in order:
            if got >= need:
                break
            if c.id not in taken and pred(c):
                chosen.append(c)
                taken.add(c.id)
                got += 1
        return got

    minimums = {EvaluatorCategory(k): int(n) for k, n in mix.get("minimums", {}).items()}
    for cat in EvaluatorCategory:  # enum order: fixed, documented
        need = minimums.get(cat, 0)
        if need and take(lambda c, cat=cat: c.category == cat, need) < need:
            available = sum(1 for c in ordered if c.category == cat)
            raise PoolShort(cat.value, need, available)
    need_non_official = int(mix.get("minNonOfficial", 0))
    have = sum(1 for c in chosen if c.category != EvaluatorCategory.OFFICIAL)
    if need_non_official > have:
        missing = need_non_official - have
        if take(lambda c: c.category != EvaluatorCategory.OFFICIAL, missing) < missing:
            available = sum(1 for c in ordered if c.category != EvaluatorCategory.OFFICIAL)
            raise PoolShort(NON_OFFICIAL, need_non_official, available)
    if len(ordered) < size:
        raise PoolShort("ANY", size, len(ordered))
    take(lambda c: True, size - len(chosen))
    return chosen


def parse_seed(value: Any) -> int | str:
    """Seeds are integers or strings and are echoed back as given."""
    if isinstance(value, bool):
        raise ValueError("a seed is an integer or a string")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and 1 <= len(value) <= 128:
        return value
    raise ValueError("a seed is an integer or a string of 1-128 characters")


def stored_seed(seed: int | str) -> tuple[str, bool]:
    return str(seed), isinstance(seed, int)


def loaded_seed(text: str, is_int: bool) -> int | str:
    return int(text) if is_int else text
