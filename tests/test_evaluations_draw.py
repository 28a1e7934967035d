"""The draw and the verdict as pure functions: reproducible from the seed, never a conflicted
member (a property test over random pools and conflicts), category mix or a named shortage,
and the majority verdict with ties going to the stricter one."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.authz.scope import path_covers
from backend.cases.models import Case, CaseType
from backend.evaluations import draw as drawing
from backend.evaluations.models import Evaluator, EvaluatorCategory, EvaluatorStatus, Verdict
from backend.evaluations.panels import eligible_members
from backend.evaluations.policy import EvaluationPolicy
from backend.evaluations.scoring import Scores, majority, panel_result

CATS = list(EvaluatorCategory)
MIX = EvaluationPolicy().mix()  # at least one lawyer and one non-official


def pool(n: int, *, seed: int = 0) -> list[drawing.Candidate]:
    import random

    rng = random.Random(seed)
    return [
        drawing.Candidate(str(uuid.UUID(int=rng.getrandbits(128))), rng.choice(CATS))
        for _ in range(n)
    ] + [drawing.Candidate(str(uuid.UUID(int=k + 1)), EvaluatorCategory.LAWYER) for k in range(2)]


def test_same_seed_and_pool_give_the_same_panel_whatever_order_the_pool_comes_in():
    candidates = pool(40)
    first = drawing.draw(candidates, size=7, seed=42, mix=MIX)
    again = drawing.draw(list(reversed(candidates)), size=7, seed=42, mix=MIX)
    assert first == again and len({c.id for c in first}) == 7
    assert drawing.draw(candidates, size=7, seed="audit-2026", mix=MIX) == drawing.draw(
        candidates, size=7, seed="audit-2026", mix=MIX
    )
    panels = {tuple(drawing.draw(candidates, size=7, seed=s, mix=MIX)) for s in range(20)}
    assert len(panels) > 10  # the seed matters


def test_pool_hash_depends_on_pool_and_policy_not_on_order():
    candidates = pool(10)
    snap = drawing.snapshot(candidates)
    assert drawing.pool_hash(snap, MIX) == drawing.pool_hash(
        drawing.snapshot(reversed(candidates)), MIX
    )
    assert drawing.pool_hash(snap[1:], MIX) != drawing.pool_hash(snap, MIX)
    assert drawing.pool_hash(snap, {**MIX, "minNonOfficial": 2}) != drawing.pool_hash(snap, MIX)


def test_the_mix_is_honoured_and_a_shortage_names_its_category():
    officials = [drawing.Candidate(f"{k:04d}", EvaluatorCategory.OFFICIAL) for k in range(10)]
    with pytest.raises(drawing.PoolShort) as short:
        drawing.draw(officials, size=3, seed=1, mix=MIX)
    assert (short.value.category, short.value.needed, short.value.available) == ("LAWYER", 1, 0)
    lawyer = drawing.Candidate("9999", EvaluatorCategory.LAWYER)
    for seed in range(30):
        got = drawing.draw([*officials, lawyer], size=3, seed=seed, mix=MIX)
        assert lawyer in got
    mix = {"minimums": {"PSYCHOLOGIST": 2}, "minNonOfficial": 0}
    with pytest.raises(drawing.PoolShort) as short:
        drawing.draw([*officials, lawyer], size=3, seed=1, mix=mix)
    assert short.value.category == "PSYCHOLOGIST"
    with pytest.raises(drawing.PoolShort) as short:
        drawing.draw([lawyer, officials[0]], size=3, seed=1, mix=MIX)
    assert short.value.category == "ANY"


def test_majority_verdict_and_ties_go_to_the_stricter_verdict():
    v = Verdict
    assert majority([v.REASONABLE, v.REASONABLE, v.UNLAWFUL]) == v.REASONABLE
    assert majority([v.REASONABLE, v.UNREASONABLE]) == v.UNREASONABLE
    assert majority([v.HARDSHIP, v.PARTLY_REASONABLE, v.HARDSHIP, v.PARTLY_REASONABLE]) == (
        v.HARDSHIP
    )
    assert majority([v.UNLAWFUL, v.REASONABLE, v.PARTLY_REASONABLE]) == v.UNLAWFUL
    result = panel_result(
        [
            Scores(5, 4, 3, 2, v.REASONABLE),
            Scores(4, 4, 4, 4, v.UNREASONABLE),
            Scores(3, 1, 5, 3, v.REASONABLE),
        ]
    )
    assert result["means"] == {
        "facts": 4.0,
        "procedure": 3.0,
        "lawAndPolicy": 4.0,
        "responsibility": 3.0,
    }
    assert (result["verdict"], result["tieBroken"]) == ("REASONABLE", False)
    assert result["votes"]["REASONABLE"] == 2 and result["votes"]["UNREASONABLE"] == 1


# --- property: no drawn member ever conflicts with the case ------------------------------------

SEGMENTS = ["c1", "c10", "c2", "t1", "t10", "v1"]
paths = st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=3).map(
    lambda segs: "/city" + "".join(f"/{s}" for s in segs)
)


@st.composite
def worlds(draw):
    location = draw(paths)
    holder = draw(paths)
    petitioner = draw(st.sampled_from(["pk-1", "pk-2", None]))
    n = draw(st.integers(min_value=3, max_value=25))
    evaluators = []
    for k in range(n):
        ev = Evaluator(
            id=uuid.UUID(int=k + 1),
            user_id=uuid.UUID(int=1000 + k),
            category=draw(st.sampled_from(CATS)),
            status=draw(st.sampled_from(list(EvaluatorStatus))),
            excluded_unit_paths=draw(st.lists(paths, max_size=2)),
            related_persons=[
                {"name": "x", "key": k2}
                for k2 in draw(st.lists(st.sampled_from(["pk-1", "pk-2", "pk-3"]), max_size=2))
            ],
        )
        evaluators.append((ev, f"user{k}"))
    handlers = {uuid.UUID(int=1000 + k) for k in draw(st.sets(st.integers(0, n - 1), max_size=3))}
    served = {uuid.UUID(int=k + 1) for k in draw(st.sets(st.integers(0, n - 1), max_size=3))}
    accused = draw(st.sampled_from([None, "user0", "user1"]))
    accused_path = draw(st.none() | paths)
    case = Case(
        type=CaseType.ACCUSATION if accused or accused_path else CaseType.CLAIM,
        location_path=location,
        holder_path=holder,
        petitioner_key=petitioner,
        accused_username=accused,
        accused_path=accused_path,
    )
    # each evaluator's user may hold roles anywhere (inside the accused unit: Art. 30)
    roles = {ev.user_id: tuple(draw(st.lists(paths, max_size=2))) for ev, _ in evaluators}
    size = draw(st.integers(min_value=1, max_value=6))
    seed = draw(st.one_of(st.integers(0, 2**40), st.text(min_size=1, max_size=12)))
    return evaluators, case, handlers, served, size, seed, roles


def covers_by_segments(ancestor: str, path: str) -> bool:
    """Independent oracle: whole path segments, never a raw string prefix."""
    a, p = ancestor.strip("/").split("/"), path.strip("/").split("/")
    return p[: len(a)] == a


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sampled_from([MIX, {"minimums": {}, "minNonOfficial": 0}]))
def test_no_drawn_member_ever_conflicts_with_the_case(world, mix):
    evaluators, case, handlers, served, size, seed, roles = world
    eligible = eligible_members(evaluators, case, handlers, served, roles)
    try:
        chosen = drawing.draw([m.candidate for m in eligible], size=size, seed=seed, mix=mix)
    except drawing.PoolShort:
        return
    by_id = {str(ev.id): (ev, name) for ev, name in evaluators}
    assert len({c.id for c in chosen}) == len(chosen) == size
    for cand in chosen:
        ev, name = by_id[cand.id]
        assert ev.status == EvaluatorStatus.ACTIVE
        for p in ev.excluded_unit_paths:
            assert not covers_by_segments(p, case.location_path)
            assert not covers_by_segments(p, case.holder_path)
            assert path_covers(p, case.location_path) == covers_by_segments(p, case.location_path)
        assert case.petitioner_key is None or case.petitioner_key not in {
            r["key"] for r in ev.related_persons
        }
        assert ev.user_id not in handlers and ev.id not in served
        assert name != case.accused_username
        inside = case.accused_path and any(
            covers_by_segments(case.accused_path, p) for p in roles[ev.user_id]
        )
        assert not inside, "drawn from inside the accused unit (Art. 30)"
    # and the same inputs draw the same panel again
    again = drawing.draw([m.candidate for m in reversed(eligible)], size=size, seed=seed, mix=mix)
    assert again == chosen
