"""Panel result: per-dimension means, the verdict the scores propose, and the majority
verdict (ties → the stricter verdict), which confirms the proposal or not.

Strictness follows :class:`Verdict` order, REASONABLE (least strict on the
petitioner's demand) to UNLAWFUL (strictest): when two or more verdicts share
the most votes, the one latest in that order wins. Each verdict creates one
follow-up duty on the case with its own deadline (tenant policy, days).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from backend.evaluations.models import VERDICT_ORDER, Verdict

DIMENSIONS = ("facts", "procedure", "lawAndPolicy", "responsibility")
MIN_SCORE, MAX_SCORE = 1, 5

FOLLOW_UP_DUTIES: dict[Verdict, str] = {
    Verdict.REASONABLE: "责任单位依法按政策限期解决落实到位 (resolve the demand within the deadline)",
    Verdict.PARTLY_REASONABLE: "责任单位限期解决有理部分 (resolve the reasonable part within the deadline)",
    Verdict.HARDSHIP: "综合运用信访救助资金等救助帮扶 (refer for hardship relief)",
    Verdict.UNREASONABLE: "政策解释和心理疏导 (explanation and psychological guidance)",
    Verdict.UNLAWFUL: "依法处理 (handle according to law)",
}


# --- the proposed verdict ----------------------------------------------------------------
#
# The four scores grade the *handling* (三到位一处理): 5 = facts established, procedure
# proper, law and policy correctly applied, responsibility fulfilled; 1 = none of it. A
# handling that stands leaves the petitioner's further demand without support; one that
# fell short gives it merit. So, over the panel's means:
#
#   overall = mean of the four dimension means
#   overall < 2.5                                 → REASONABLE        (有理)
#   overall ≥ 3.5 and every dimension mean ≥ 2    → UNREASONABLE      (无理或要求过高)
#   otherwise                                     → PARTLY_REASONABLE (部分有理)
#
# (one dimension below 2 — e.g. law misapplied — keeps a well-scored case from reading
# as "unreasonable"). The scores say nothing about the petitioner's hardship or unlawful
# conduct, so the votes confirm a proposal with any verdict of its band:

REASONABLE_BELOW = 2.5
UNREASONABLE_FROM = 3.5
WEAKEST_DIMENSION_FLOOR = 2.0

CONFIRMING: dict[Verdict, frozenset[Verdict]] = {
    Verdict.REASONABLE: frozenset({Verdict.REASONABLE}),
    Verdict.PARTLY_REASONABLE: frozenset({Verdict.PARTLY_REASONABLE, Verdict.HARDSHIP}),
    Verdict.UNREASONABLE: frozenset({Verdict.UNREASONABLE, Verdict.UNLAWFUL, Verdict.HARDSHIP}),
}


def propose(means: dict[str, float]) -> Verdict:
    """The verdict the four dimension means propose (rule above)."""
    values = [float(means[d]) for d in DIMENSIONS]
    overall = sum(values) / len(values)
    if overall < REASONABLE_BELOW:
        return Verdict.REASONABLE
    if overall >= UNREASONABLE_FROM and min(values) >= WEAKEST_DIMENSION_FLOOR:
        return Verdict.UNREASONABLE
    return Verdict.PARTLY_REASONABLE


def confirms(proposal: Verdict, verdict: Verdict) -> bool:
    """Whether ``verdict`` (the majority, or the office's record of the panel's decision)
    confirms ``proposal``."""
    return Verdict(verdict) in CONFIRMING[Verdict(proposal)]


def majority(verdicts: Iterable[Verdict | str]) -> Verdict:
    """Most votes wins; a tie goes to the strictest of the tied verdicts."""
    counts = Counter(Verdict(v) for v in verdicts)
    if not counts:
        raise ValueError("no verdicts")
    top = max(counts.values())
    return max((v for v, n in counts.items() if n == top), key=VERDICT_ORDER.index)


@dataclass(frozen=True)
class Scores:
    facts: int
    procedure: int
    law_and_policy: int
    responsibility: int
    verdict: Verdict
    hardship_relief: bool = False  # also finds real hardship (seed 004), see panel_result


def finds_hardship(score: Scores) -> bool:
    """A member finds the petitioner in real hardship: by its verdict, or beside it."""
    return score.hardship_relief or score.verdict is Verdict.HARDSHIP


def panel_result(scores: Sequence[Scores]) -> dict:
    """What is stored on the panel: means (2 decimals), votes per verdict, the verdict, and
    ``hardshipRelief``: a majority of the members finds real hardship (by a ``HARDSHIP``
    vote or beside another verdict), so relief goes with whatever verdict concludes —
    seed 004's 帮扶救助 for the 确实有困难 alongside 三到位一处理 (部分有理 + 救助)."""
    if not scores:
        raise ValueError("no scores")
    n = len(scores)
    means = {
        "facts": round(sum(s.facts for s in scores) / n, 2),
        "procedure": round(sum(s.procedure for s in scores) / n, 2),
        "lawAndPolicy": round(sum(s.law_and_policy for s in scores) / n, 2),
        "responsibility": round(sum(s.responsibility for s in scores) / n, 2),
    }
    votes = Counter(s.verdict.value for s in scores)
    verdict = majority(s.verdict for s in scores)
    proposal = propose(means)
    return {
        "means": means,
        "votes": {v.value: votes.get(v.value, 0) for v in VERDICT_ORDER},
        "majority": verdict.value,
        "proposedVerdict": proposal.value,
        "confirmed": confirms(proposal, verdict),
        "verdict": verdict.value,
        "tieBroken": sum(1 for c in votes.values() if c == max(votes.values())) > 1,
        "hardshipRelief": 2 * sum(1 for s in scores if finds_hardship(s)) > n,
    }
