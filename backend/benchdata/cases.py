"""Simulated case histories: every status, its events (hash-chained) and its deadlines.

Each case replays the lifecycle the services enforce (backend/cases/lifecycle.py)
with random but plausible durations, stopping at the first step that would lie
in the future — so old cases are mostly closed, recent ones open, and the slow
ones (about one in twelve) run past their due dates and show red. The rows
carry what the services would have written for the same history: status and
version, replied/rated/decided/closed timestamps, the rating, extension
fields, the routed-from path, open and met clocks with the rule of their due
date, and one event per change whose hash chains exactly as
``backend/cases/events.py`` computes it (``xinfang audit verify`` passes).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import uuid
from bisect import bisect
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from itertools import accumulate
from typing import Any

from backend.benchdata.tree import City, Unit, person_name, uuid7
from backend.cases.calendar import WorkingDayCalendar
from backend.cases.events import GENESIS, chain_hash
from backend.cases.models import CaseStatus as S
from backend.cases.models import CaseType, Channel, DeadlineStatus, Satisfaction, SkipLevel
from backend.cases.pii import check_character, petitioner_key
from backend.cases.rules import DeadlinePolicy, Step, compute_due, warning_color
from backend.tenants.models import OrgUnitLevel as L

CASE_COLUMNS = [
    "tenant_id", "id", "number", "client_key", "payload_hash", "channel", "type", "category",
    "subject", "content", "priority", "tags", "head_count", "petitioner_name",
    "petitioner_phone", "petitioner_id_number", "petitioner_key", "location_unit_id",
    "location_path", "holder_unit_id", "holder_path", "routed_from_path", "accused_path",
    "accused_username", "leader_id", "registered_by_id", "first_receiver_id", "status",
    "version", "received_at", "due_at", "warning_color", "red_since", "repeat_count",
    "repeat_of_id", "skip_level", "extension_days", "extension_reason", "extension_approved",
    "on_hold_since", "replied_at", "reply_opinion", "rating", "rated_at", "review_decided_at",
    "closed_at", "resolution", "updated_at", "created_at",
]  # fmt: skip
DEADLINE_COLUMNS = [
    "tenant_id", "id", "case_id", "step", "status", "started_at", "due_date", "due_at", "rule",
    "warning_color", "held_days", "note", "issued_by_id", "finished_at", "overdue_since",
    "created_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "tenant_id", "id", "case_id", "seq", "kind", "at", "actor_id", "actor_username",
    "from_status", "to_status", "reason", "data", "prev_hash", "hash", "created_at",
]  # fmt: skip

HISTORY_DAYS = 730
CST = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST: the same instants
HOUR = 3600.0
DAY = 86400.0
CHANNELS = [(Channel.ONLINE, 35), (Channel.VISIT, 30), (Channel.PHONE, 20), (Channel.LETTER, 10)]
CHANNELS += [(Channel.QR_CODE, 5)]
TYPES = [(CaseType.CLAIM, 73), (CaseType.SUGGESTION, 15), (CaseType.ACCUSATION, 12)]
# a few categories take most of the traffic, as in municipal statistics
HOT_CATEGORIES = {"land": 14, "wages": 12, "housing": 10, "demolition": 8, "labor": 7}
RATINGS = [(Satisfaction.SATISFIED, 60), (Satisfaction.BASICALLY_SATISFIED, 25)]
RATINGS += [(Satisfaction.DISSATISFIED, 15)]


def _weighted(pairs: list[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    values = [v for v, _ in pairs]
    return values, list(accumulate(w for _, w in pairs))


def _pick(rng: random.Random, table: tuple[list[Any], list[float]]) -> Any:
    values, cum = table
    return values[bisect(cum, rng.random() * cum[-1])]


# (step, local start date, days) → DueDate: every tenant has the default policy and the
# same national calendar, and a due date depends only on the start's local date
_DUE_CACHE: dict[tuple[Step, date, int], Any] = {}


class _Event:
    """What :func:`backend.cases.events.canonical` reads, without an ORM object."""

    __slots__ = (
        "actor_id",
        "actor_username",
        "at",
        "case_id",
        "data",
        "from_status",
        "kind",
        "reason",
        "seq",
        "tenant_id",
        "to_status",
    )  # fmt: skip

    def __init__(self, **kw: Any) -> None:
        for k, v in kw.items():
            setattr(self, k, v)


_CANONICAL = json.JSONEncoder(
    sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
).encode
_JSON = json.JSONEncoder(ensure_ascii=False).encode


def fast_chain(prev: str, tenant: str, case: str, e: tuple) -> str:
    """:func:`backend.cases.events.chain_hash` of the event tuple ``e`` (same bytes, less work).

    ``e`` = (seq, kind, at (UTC), actor id, actor username, from, to, reason, data).
    :func:`check_fast_chain` compares it with the reference on every run.
    """
    seq, kind, at, actor, username, before, after, reason, data = e
    body = {
        "tenant": tenant,
        "case": case,
        "seq": seq,
        "kind": kind,
        "at": at.isoformat(timespec="microseconds"),
        "actor": str(actor) if actor else None,
        "actorUsername": username,
        "from": before,
        "to": after,
        "reason": reason,
        "data": data,
    }
    return hashlib.sha256((prev + _CANONICAL(body)).encode()).hexdigest()


def check_fast_chain(tenant: uuid.UUID, case: uuid.UUID, e: tuple) -> None:
    """Refuse to generate anything if the shortcut ever disagrees with the real chain."""
    seq, kind, at, actor, username, before, after, reason, data = e
    reference = chain_hash(
        GENESIS,
        _Event(  # type: ignore[arg-type]
            tenant_id=tenant, case_id=case, seq=seq, kind=kind, at=at, actor_id=actor,
            actor_username=username, from_status=before, to_status=after, reason=reason,
            data=data,
        ),
    )  # fmt: skip
    if fast_chain(GENESIS, str(tenant), str(case), e) != reference:
        raise RuntimeError("benchdata's event hash differs from backend.cases.events")


@dataclass
class Skeleton:
    """What is decided before the cases are sorted by time (numbers follow that order)."""

    received_at: datetime
    location: Unit
    registrar: Unit
    officer: tuple[uuid.UUID, str]
    type: CaseType
    category: str
    channel: Channel
    accused: Unit | None
    accused_username: str | None
    petitioner: tuple[str, str, str | None, str | None]  # name, phone, id number, key
    skip_level: SkipLevel
    head_count: int
    forced: S | None = None


@dataclass
class Rows:
    cases: list[tuple] = field(default_factory=list)
    deadlines: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)


class CitySimulation:
    """Draws and replays the cases of one tenant."""

    def __init__(
        self,
        rng: random.Random,
        city: City,
        *,
        prefix: str,
        categories: list[tuple[str, str]],
        now: datetime,
    ) -> None:
        self.rng, self.city, self.prefix, self.now = rng, city, prefix, now
        self.policy = DeadlinePolicy()
        self.calendar = WorkingDayCalendar()
        self.category_names = dict(categories)
        self.categories = _weighted([(c, HOT_CATEGORIES.get(c, 2)) for c, _ in categories])
        self.channels = _weighted(CHANNELS)
        self.types = _weighted(TYPES)
        self.ratings = _weighted(RATINGS)
        # a few counties (and townships within them) take most of the traffic
        self.counties = _weighted([(c, 1 / (i + 1) ** 0.8) for i, c in enumerate(city.counties)])
        self.days = self._day_weights()
        self.petitioners: list[tuple[str, str, str | None, str | None]] = []
        self.counters: dict[int, int] = {}
        self.tenant_s = str(city.tenant_id)
        self.seal_phone = _sealer("petitioner_phone")
        self.seal_id = _sealer("petitioner_id_number")
        self.checked = False
        self.by_key: dict[tuple[str, str], list[tuple[datetime, uuid.UUID]]] = {}

    # --- phase 1: skeletons ----------------------------------------------------------------

    def _day_weights(self) -> tuple[list[date], list[float]]:
        """Weekdays busier than weekends, slow growth, and bursts (~4% of days, ×3-8)."""
        today = self.now.astimezone(CST).date()
        rng, pairs = self.rng, []
        for k in range(HISTORY_DAYS):
            d = today - timedelta(days=HISTORY_DAYS - 1 - k)
            w = (0.35 if d.weekday() >= 5 else 1.0) * (0.6 + 0.4 * k / HISTORY_DAYS)
            if rng.random() < 0.04:
                w *= rng.uniform(3, 8)
            pairs.append((d, w))
        return _weighted(pairs)

    def _id_number(self) -> str:
        rng = self.rng
        born = date(1950, 1, 1) + timedelta(days=rng.randrange(20000))
        first17 = f"41{rng.randrange(10000):04d}{born:%Y%m%d}{rng.randrange(1000):03d}"
        return first17 + check_character(first17)

    def _petitioner(self) -> tuple[str, str, str | None, str | None]:
        rng = self.rng
        if self.petitioners and rng.random() < 0.12:  # 重复访: someone comes back
            return rng.choice(self.petitioners[-5000:])
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        id_no = self._id_number() if rng.random() < 0.7 else None
        p = (person_name(rng), phone, id_no, petitioner_key(self.city.tenant_id, id_no, phone))
        self.petitioners.append(p)
        return p

    def _location(self) -> Unit:
        rng, root = self.rng, self.city.root
        r = rng.random()
        if r < 0.03 or not self.city.counties:
            return root
        county = _pick(rng, self.counties)
        towns = [u for u in county.children if u.level is L.TOWNSHIP]
        if r < 0.12 or not towns:
            return county
        town = towns[min(int(rng.expovariate(1 / 6)), len(towns) - 1)]
        if r < 0.30 or not town.children:
            return town
        return rng.choice([u for u in town.children if u.level is L.VILLAGE] or [town])

    def _registrar(self, location: Unit) -> Unit:
        chain = [u for u in location.ancestors() if u.level in (L.CITY, L.COUNTY, L.TOWNSHIP)]
        r = self.rng.random()
        if r < 0.5 and chain[0].level is L.TOWNSHIP:
            return chain[0]
        counties = [u for u in chain if u.level is L.COUNTY]
        if r < 0.85 and counties:
            return counties[0]
        return chain[-1]

    def _accused(self, location: Unit) -> tuple[Unit | None, str | None]:
        rng = self.rng
        if rng.random() < 0.3:
            return None, None
        below_city = [u for u in location.ancestors() if u.level is not L.CITY]
        if rng.random() < 0.1 or not below_city:
            county = next((u for u in below_city if u.level is L.COUNTY), None)
            pool = [d for d in (county or self.city.root).children if d.level is L.DEPARTMENT]
            unit = rng.choice(pool or self.city.city_departments)
        else:
            unit = below_city[min(int(rng.expovariate(1.2)), len(below_city) - 1)]
        people = unit.leaders or unit.handlers
        name = rng.choice(people)[1] if people and rng.random() < 0.4 else None
        return unit, name

    def skeleton(self, forced: S | None = None) -> Skeleton:
        rng = self.rng
        if forced is None:
            day = _pick(rng, self.days)
        else:  # old enough for the whole track to have happened
            day = self.now.astimezone(CST).date() - timedelta(days=300 + rng.randrange(30))
        at = datetime(day.year, day.month, day.day, 8, tzinfo=CST) + timedelta(
            seconds=rng.random() * 10 * HOUR
        )
        at = min(at, self.now - timedelta(seconds=HOUR + rng.random() * HOUR)).astimezone(UTC)
        location = self._location()
        registrar = self._registrar(location)
        ctype = _pick(rng, self.types) if forced is None else CaseType.CLAIM
        accused, accused_name = (
            self._accused(location) if ctype is CaseType.ACCUSATION else (None, None)
        )
        group = rng.random() < 0.05
        skip = rng.random()
        return Skeleton(
            received_at=at,
            location=location,
            registrar=registrar,
            officer=rng.choice(registrar.officers),
            type=ctype,
            category=_pick(rng, self.categories),
            channel=_pick(rng, self.channels),
            accused=accused,
            accused_username=accused_name,
            petitioner=self._petitioner(),
            skip_level=SkipLevel.BEIJING
            if skip < 0.01
            else SkipLevel.PROVINCE
            if skip < 0.05
            else SkipLevel.NONE,
            head_count=rng.randint(5, 60) if group else 1,
            forced=forced,
        )

    # --- phase 2: replay, in time order ----------------------------------------------------

    def _due(
        self, step: Step, start: datetime, days: int | None = None, extension: int = 0
    ) -> tuple[Any, str]:
        """The due date and its rule as JSON (``start`` is the only per-case part)."""
        key = (step, start.astimezone(CST).date(), days or 0)
        cached = _DUE_CACHE.get(key)
        if cached is None:
            due = compute_due(step, start, self.calendar, self.policy, days=days)
            cached = _DUE_CACHE[key] = (due, _JSON({**due.rule, "start": "@START@"}))
        due, template = cached
        rule = template.replace("@START@", start.astimezone(CST).isoformat())
        if extension:
            rule = f'{rule[:-1]}, "extensionDays": {extension}}}'
        return due, rule

    def replay(self, sk: Skeleton, out: Rows) -> None:
        _Replay(self, sk, out).run()

    def number(self, received_at: datetime) -> str:
        year = received_at.astimezone(CST).year
        self.counters[year] = last = self.counters.get(year, 0) + 1
        return f"{self.prefix}-{year}-{last:06d}"

    def repeats(self, key: str | None, category: str, at: datetime, case_id: uuid.UUID):
        if key is None:
            return 0, None
        earlier = self.by_key.setdefault((key, category), [])
        window = [c for t, c in earlier if t >= at - timedelta(days=365)]
        earlier.append((at, case_id))
        return len(window), (window[0] if window else None)


def _sealer(column: str) -> Any:
    """What the ORM would store for ``cases.<column>`` (encrypted at rest when the column
    type says so; COPY bypasses the type, so the generator applies it)."""
    from backend.cases.models import Case

    bind = getattr(Case.__table__.c[column].type, "process_bind_param", None)
    if bind is None:
        return lambda value: value
    return lambda value: bind(value, None)


def _holder(registrar: Unit, accused: Unit | None) -> Unit:
    """Art. 30: never held inside the accused unit — then the unit above the accused one."""
    if accused is not None and accused.covers(registrar.path):
        return accused.parent or registrar
    return registrar


class _Stop(Exception):
    pass


class _Replay:
    """One case's history, applied step by step like the service would."""

    def __init__(self, sim: CitySimulation, sk: Skeleton, out: Rows) -> None:
        self.sim, self.sk, self.out, self.rng = sim, sk, out, sim.rng
        self.tenant = sim.city.tenant_id
        self.id = uuid7(self.rng, sk.received_at)
        self.status: S | None = None
        self.holder = _holder(sk.registrar, sk.accused)
        self.f: dict[str, Any] = {"routed_from_path": None, "leader_id": None}
        self.steps: list[list[Any]] = []  # open and finished clocks
        self.events: list[tuple] = []
        self.t = sk.received_at

    # --- helpers

    def _uid(self, at: datetime) -> uuid.UUID:
        return uuid7(self.rng, at)

    def _staff(self, unit: Unit, leaders: bool = False) -> tuple[uuid.UUID, str]:
        for u in unit.ancestors():
            pool = u.leaders if leaders else (u.handlers or u.officers)
            if pool:
                return self.rng.choice(pool)
        return self.sk.officer

    def _later(self, low_days: float, high_days: float) -> datetime:
        return self.t + timedelta(seconds=self.rng.uniform(low_days, high_days) * DAY)

    def _event(
        self,
        kind: str,
        at: datetime,
        actor: tuple[uuid.UUID, str],
        to: S | None = None,
        *,
        reason: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Append one change at ``at``; stop the history when it would lie in the future."""
        if at > self.sim.now or (self.sk.forced is not None and self.status is self.sk.forced):
            raise _Stop  # in the future, or a forced status was reached by the last change
        self.t = at
        before = self.status
        if to is not None:
            self.status = to
        self.events.append(
            (len(self.events) + 1, kind, at, actor[0], actor[1], before, self.status, reason,
             data or {})
        )  # fmt: skip

    def _open(self, step: Step, start: datetime, days: int | None = None) -> None:
        due, rule = self.sim._due(step, start, days)
        # [step, status, started, due_date, due_at, rule, finished_at]
        self.steps.append([step, DeadlineStatus.OPEN, start, due.due_date, due.due_at, rule, None])

    def _finish(self, steps: set[Step] | None = None) -> None:
        for s in self.steps:
            if s[1] is DeadlineStatus.OPEN and (steps is None or s[0] in steps):
                s[1], s[6] = DeadlineStatus.MET, self.t

    # --- the history

    def run(self) -> None:
        with contextlib.suppress(_Stop):
            self._history()
        self._emit()

    def _history(self) -> None:
        sk, rng, forced = self.sk, self.rng, self.sk.forced
        registered = sk.received_at + timedelta(seconds=rng.uniform(60, 1800))
        self.f["number"] = self.sim.number(sk.received_at)
        self.f["repeat"] = self.sim.repeats(sk.petitioner[3], sk.category, registered, self.id)
        data = {
            "number": self.f["number"],
            "channel": sk.channel.value,
            "repeatCount": self.f["repeat"][0],
            "skipLevel": sk.skip_level.value,
        }
        self._event("REGISTERED", registered, sk.officer, S.REGISTERED, data=data)
        self._open(Step.ROUTING, sk.received_at)
        if forced is not S.REGISTERED:
            self._route()
        if rng.random() < 0.3 and forced is not S.REGISTERED:
            self._assign_leader()
        outcome = rng.random()
        if forced is S.DIVERTED or (forced is None and outcome < 0.04):
            self._event(
                "DIVERT",
                self._later(0.5, 10),
                self._staff(self.holder),
                S.DIVERTED,
                reason="属于诉讼程序处理范围，引导当事人依法起诉",
                data={"channel": rng.choice(["LITIGATION", "ARBITRATION", "RECONSIDERATION"])},
            )
            self._finish()
            return self._close(0.5, 10)
        if forced is S.NOT_ACCEPTED or (forced is None and outcome < 0.10):
            self._event(
                "REJECT",
                self._later(1, 14),
                self._staff(self.holder),
                S.NOT_ACCEPTED,
                reason="不属于信访事项受理范围",
            )
            self._finish()
            return self._close(1, 10)
        self._event("ACCEPT", self._later(0.2, 14), self._staff(self.holder), S.ACCEPTED)
        self._finish({Step.ROUTING, Step.ACCEPTANCE})
        self._open(Step.HANDLING, self.t)
        accepted = self.t
        slow = forced is None and rng.random() < 0.08
        extended = forced is S.EXTENDED or (forced is None and rng.random() < 0.12)
        if extended:
            self._extend(accepted)
        limit = 90 if extended else 60
        handling = rng.uniform(40, 140) if slow else rng.uniform(5, limit - 3)
        reply_at = max(accepted + timedelta(days=handling), self.t + timedelta(hours=2))
        self._event("REPLY", reply_at, self._staff(self.holder), S.REPLIED)
        self.f["replied_at"] = self.t
        self.f["reply_opinion"] = (
            "经调查核实，已依法依规作出处理，答复意见如下：" + "情况属实，已督促整改落实。"
        )
        self._finish({Step.HANDLING})
        review = forced in (S.REVIEW_REQUESTED, S.REVIEWED, S.RE_REVIEW_REQUESTED, S.RE_REVIEWED)
        rating = None
        if forced is None and rng.random() < 0.75:
            rating = _pick(rng, self.sim.ratings)
            self._event(
                "RATE_SATISFACTION",
                self._later(1, 10),
                self._staff(self.holder),
                data={"rating": rating.value},
            )
            self.f["rating"], self.f["rated_at"] = rating, self.t
        if forced is None:
            review = rng.random() < (0.4 if rating is Satisfaction.DISSATISFIED else 0.04)
        if review:
            self._review(forced)
        if forced is S.CLOSED or (forced is None and rng.random() < 0.88):
            self._close(3, 40)

    def _route(self) -> None:
        sk, rng = self.sk, self.rng
        holder, location = self.holder, sk.location
        chance = {L.CITY: 0.7, L.COUNTY: 0.5, L.TOWNSHIP: 0.15}.get(holder.level, 0.0)
        if sk.forced is S.ROUTED:
            chance = 1.0
        if rng.random() >= chance:
            return
        below = [u for u in location.ancestors() if u.parent is holder]
        departments = [u for u in holder.children if u.level is L.DEPARTMENT]
        options = below if below and rng.random() < 0.65 else departments or below
        options = [u for u in options if not (sk.accused and sk.accused.covers(u.path))]
        if not options:
            if sk.forced is S.ROUTED:  # still needs a route: any unit below, not accused
                options = [
                    u for u in holder.children if not (sk.accused and sk.accused.covers(u.path))
                ]
            if not options:
                return
        target = rng.choice(options)
        data = {"from": holder.path, "to": target.path, "mode": rng.choice(["TRANSFER", "ASSIGN"])}
        self.f["routed_from_path"] = holder.path
        self.holder = target
        at = self._later(0.1, 10)
        if at > self.sim.now:
            self.holder = holder
            self.f["routed_from_path"] = None
            raise _Stop
        self.t = at
        self._finish({Step.ROUTING, Step.ACCEPTANCE})
        self._open(Step.ACCEPTANCE, at)
        self._event("ROUTE", at, sk.officer, S.ROUTED, data=data)

    def _assign_leader(self) -> None:
        sk = self.sk
        candidates = [
            p
            for u in self.holder.ancestors()
            for p in u.leaders
            if p[1] != sk.accused_username and not (sk.accused and sk.accused.covers(u.path))
        ]
        if not candidates:
            return
        # the deepest leaders first: most cases are owned close to where they are held
        leader = candidates[min(int(self.rng.expovariate(0.5)), len(candidates) - 1)]
        at = self._later(0.05, 2)
        if at > self.sim.now:
            raise _Stop
        self.f["leader_id"] = leader[0]
        self._event("ASSIGN_LEADER", at, self._staff(self.holder), data={"leader": leader[1]})

    def _extend(self, accepted: datetime) -> None:
        days = self.rng.randint(10, 30)
        officer = self._staff(self.holder)
        reason = "案情复杂，需进一步调查核实"
        at = accepted + timedelta(days=self.rng.uniform(40, 55))
        self._event("REQUEST_EXTENSION", at, officer, reason=reason, data={"days": days})
        self.f["extension_days"], self.f["extension_reason"] = days, reason
        self._event(
            "APPROVE_EXTENSION",
            self._later(0.5, 3),
            self._staff(self.holder, leaders=True),
            S.EXTENDED,
            data={"days": days},
        )
        self.f["extension_approved"] = True
        for s in self.steps:
            if s[0] is Step.HANDLING and s[1] is DeadlineStatus.OPEN:
                due, rule = self.sim._due(Step.HANDLING, s[2], 60 + days, extension=days)
                s[3], s[4], s[5] = due.due_date, due.due_at, rule

    def _review(self, forced: S | None) -> None:
        body = self._staff(self.holder.parent or self.holder)
        self._event("REQUEST_REVIEW", self._later(2, 28), body, S.REVIEW_REQUESTED)
        self._open(Step.REVIEW_DECISION, self.t)
        opinion = "经复查，原处理意见事实清楚，予以维持。"
        self._event("DECIDE_REVIEW", self._later(3, 28), body, S.REVIEWED, reason=opinion)
        self.f["review_decided_at"] = self.t
        self._finish({Step.REVIEW_DECISION})
        again = forced in (S.RE_REVIEW_REQUESTED, S.RE_REVIEWED)
        if forced is None:
            again = self.rng.random() < 0.35
        if not again:
            return
        top = self.holder.parent.parent if self.holder.parent else None
        body = self._staff(top or self.holder)
        self._event("REQUEST_RE_REVIEW", self._later(2, 28), body, S.RE_REVIEW_REQUESTED)
        self._open(Step.RE_REVIEW_DECISION, self.t)
        opinion = "经复核，维持复查意见。"
        self._event("DECIDE_RE_REVIEW", self._later(3, 28), body, S.RE_REVIEWED, reason=opinion)
        self._finish({Step.RE_REVIEW_DECISION})

    def _close(self, low: float, high: float) -> None:
        resolution = "事项已办结，信访人诉求已依法处理。"
        self._event("CLOSE", self._later(low, high), self._staff(self.holder), S.CLOSED,
                    reason=resolution)  # fmt: skip
        self.f["resolution"], self.f["closed_at"] = resolution, self.t
        self._finish()

    # --- rows

    def _emit(self) -> None:
        sim, sk, f, now, out = self.sim, self.sk, self.f, self.sim.now, self.out
        policy, tenant = sim.policy, self.tenant
        open_due = []
        for step, status, started, due_date, due_at, rule, finished in self.steps:
            is_open = status is DeadlineStatus.OPEN
            if is_open:
                open_due.append(due_at)
            colour = warning_color(due_at, now if is_open else finished, policy)
            overdue = now if is_open and due_at < now else None
            out.deadlines.append(
                (
                    tenant, self._uid(started), self.id, step, status, started, due_date, due_at,
                    rule, colour, 0, None, None, finished,
                    overdue, started,
                )
            )  # fmt: skip
        prev = GENESIS
        tenant_s, case_s = sim.tenant_s, str(self.id)
        if not sim.checked:
            check_fast_chain(tenant, self.id, self.events[0])
            sim.checked = True
        for e in self.events:
            digest = fast_chain(prev, tenant_s, case_s, e)
            seq, kind, at, actor, username, before, after, reason, data = e
            out.events.append(
                (
                    tenant, self._uid(at), self.id, seq, kind, at, actor, username, before, after,
                    reason, _JSON(data), prev, digest, at,
                )
            )  # fmt: skip
            prev = digest
        due_at = min(open_due) if open_due else None
        colour = warning_color(due_at, now, policy) if due_at else "NONE"
        name, phone, id_no, key = sk.petitioner
        cat = sim.category_names[sk.category]
        place = sk.location.name
        repeat_count, repeat_of = f["repeat"]
        number = f["number"]
        rating = f.get("rating")
        out.cases.append(
            (
                tenant, self.id, number, f"bench-{number}",
                hashlib.sha256(number.encode()).hexdigest(), sk.channel, sk.type, sk.category,
                f"{place}{cat}问题", f"反映{place}{cat}方面的问题，请求有关部门依法处理。"
                f"信访人{name}称相关诉求长期未得到解决。", "URGENT" if sk.head_count > 1 else "NORMAL",
                "[]", sk.head_count, name, sim.seal_phone(phone), sim.seal_id(id_no), key, sk.location.id, sk.location.path,
                self.holder.id, self.holder.path, f["routed_from_path"],
                sk.accused.path if sk.accused else None, sk.accused_username, f["leader_id"],
                sk.officer[0], sk.officer[0], self.status, len(self.events), sk.received_at,
                due_at, colour, now if colour == "RED" else None, repeat_count, repeat_of,
                sk.skip_level, f.get("extension_days"), f.get("extension_reason"),
                f.get("extension_approved", False), None, f.get("replied_at"),
                f.get("reply_opinion"), rating.value if rating else None, f.get("rated_at"),
                f.get("review_decided_at"), f.get("closed_at"), f.get("resolution"),
                self.t, self.events[0][2],
            )
        )  # fmt: skip
