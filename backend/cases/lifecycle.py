"""The case state machine: which transition is allowed from which status, and by which action.

One table, read by the service and rendered in docs/lifecycle.md, so the
rules a front-end sees in ``INVALID_TRANSITION`` errors are the ones here.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.cases.models import CaseStatus as S
from backend.core.errors import InvalidTransition

OPEN_STATUSES = frozenset(S) - {S.CLOSED}
HANDLING = frozenset({S.ACCEPTED, S.EXTENDED, S.REVIEW_REQUESTED, S.RE_REVIEW_REQUESTED})
# the case has an answer the bureau that assigned it down can be told (报结, seed 000)
ANSWERED = frozenset(
    {
        S.REPLIED,
        S.REVIEW_REQUESTED,
        S.REVIEWED,
        S.RE_REVIEW_REQUESTED,
        S.RE_REVIEWED,
        S.NOT_ACCEPTED,
        S.DIVERTED,
        S.CLOSED,
    }
)


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[S]
    target: S | None  # None: the status stays (an event is still recorded)
    action: str  # the casbin action on `case` it needs
    kind: str  # the event kind it records


def _t(name: str, sources: set[S] | frozenset[S], target: S | None, action: str) -> Transition:
    return Transition(name, frozenset(sources), target, action, name.upper())


TRANSITIONS: dict[str, Transition] = {
    t.name: t
    for t in [
        _t("route", {S.REGISTERED, S.ROUTED}, S.ROUTED, "route"),
        _t("divert", {S.REGISTERED, S.ROUTED}, S.DIVERTED, "divert"),
        _t("accept", {S.REGISTERED, S.ROUTED}, S.ACCEPTED, "accept"),
        _t("reject", {S.REGISTERED, S.ROUTED}, S.NOT_ACCEPTED, "accept"),
        # Art. 23: the receiving body objects; the case waits with it for the routing
        # office, which agrees (back to it, to be routed again) or refuses (it stays)
        _t("object_transfer", {S.ROUTED}, None, "accept"),
        _t("agree_objection", {S.ROUTED}, S.REGISTERED, "route"),
        _t("refuse_objection", {S.ROUTED}, None, "route"),
        _t("request_extension", {S.ACCEPTED}, None, "handle"),
        _t("approve_extension", {S.ACCEPTED}, S.EXTENDED, "approve_extension"),
        _t("reply", {S.ACCEPTED, S.EXTENDED}, S.REPLIED, "handle"),
        _t("rate_satisfaction", {S.REPLIED, S.REVIEWED, S.RE_REVIEWED}, None, "handle"),
        _t("request_review", {S.REPLIED}, S.REVIEW_REQUESTED, "review"),
        _t("decide_review", {S.REVIEW_REQUESTED}, S.REVIEWED, "review"),
        _t("request_re_review", {S.REVIEWED}, S.RE_REVIEW_REQUESTED, "review"),
        _t("decide_re_review", {S.RE_REVIEW_REQUESTED}, S.RE_REVIEWED, "review"),
        _t("hold", HANDLING, None, "hold"),
        _t("resume", HANDLING, None, "resume"),
        _t(
            "close",
            {S.REPLIED, S.REVIEWED, S.RE_REVIEWED, S.NOT_ACCEPTED, S.DIVERTED},
            S.CLOSED,
            "close",
        ),
        _t("assign_leader", OPEN_STATUSES, None, "assign_leader"),
        _t("issue_supervision_order", OPEN_STATUSES, None, "supervise"),
        _t("escalate", OPEN_STATUSES, None, "escalate"),
        _t("record_joint_meeting", OPEN_STATUSES, None, "escalate"),
        # seed 000: 京、省交办 reported back to the bureau once the case has an answer
        _t("report_back", ANSWERED, None, "close"),
        # seeds 001, 004: 四调联动 within the handling period (the clock runs on)
        _t("start_mediation", {S.ACCEPTED, S.EXTENDED}, None, "handle"),
        _t("record_mediation_outcome", {S.ACCEPTED, S.EXTENDED}, None, "handle"),
        # seed 004: 三不限"回头看" of a dissatisfied closed case
        _t("record_revisit", {S.CLOSED}, None, "revisit"),
    ]
}


def check(name: str, status: str) -> Transition:
    transition = TRANSITIONS[name]
    if S(status) not in transition.sources:
        allowed = ", ".join(sorted(s.value for s in transition.sources))
        raise InvalidTransition(
            f"cannot {name.replace('_', ' ')} a case in status {status} (allowed from: {allowed})",
            currentStatus=status,
        )
    return transition


def render_markdown() -> str:
    """docs/lifecycle.md: the transition table as the code enforces it."""
    rows = [
        f"| `{t.name}` | {', '.join(sorted(s.value for s in t.sources))} | "
        f"{t.target.value if t.target else '(unchanged)'} | `case:{t.action}` | {t.kind} |"
        for t in TRANSITIONS.values()
    ]
    return "\n".join(
        [
            "# Case lifecycle",
            "",
            "Generated from `backend/cases/lifecycle.py` (`make docs`); a test keeps it in sync.",
            "A mutation whose case is in any other status answers `INVALID_TRANSITION` naming the",
            "current status (`extensions.currentStatus`); a stale `version` answers `CONFLICT`.",
            "The check order is: role may do the action (`FORBIDDEN`) → case visible (`NOT_FOUND`)",
            "→ version (`CONFLICT`) → status (`INVALID_TRANSITION`) → a grant reaching the unit",
            "that holds the case (`FORBIDDEN`) → input (`BAD_USER_INPUT`). Nothing is written",
            "when any check fails; every change appends one hash-chained event.",
            "",
            "| mutation | from status | to status | needs | event kind |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "After `decide_re_review` (复核) only `close` remains: the same facts are not",
            "accepted again (Art. 36); a new petition is a new case.",
            "",
            "## Re-review is final (Art. 36)",
            "",
            "Intake registers every petition (登记), also one of the same matter as a case whose",
            "re-review was decided — same petitioner key, category and accused, a similar",
            "subject (docs/decisions.md) — but flags it: `finalAfterReReview: true`, `finalOf`",
            "the latest such case (null for a reader who may not see it), and its `REGISTERED`",
            "event carries `data.finalOf`. The expected answer is `reject` (不予受理). `accept`",
            "of a flagged case needs `reason` (new facts, a wrong match): without one it",
            'answers `BAD_USER_INPUT` (`field: "reason"`, `extensions.finalOf`) and writes',
            "nothing; with one the `ACCEPT` event records the reason and `data.finalOf`. Why",
            "not refuse at intake: the regulation forbids *accepting* (受理) the same facts",
            "again, not recording that the petitioner came back, and the flag is visible to",
            "whoever decides acceptance, which may be another body than the registrar.",
            "",
            "## Who decides review and re-review (Arts. 35, 36)",
            "",
            "Each decision belongs to the unit one level above the unit that decided the step",
            "before. The unit that replied is the replier's own unit nearest the case (a",
            "county officer replying on a township's case replies as the county); the",
            "`REPLY` event records it as `data.unit`. `decide_review` is allowed only to a",
            "holder of `case:review` at exactly its parent unit, `decide_re_review` only at",
            "the parent of the reviewer (`DECIDE_REVIEW`'s `data.unit`); anybody else gets",
            "`FORBIDDEN` with `extensions.decidingUnit`. The petitioner's request may be",
            "recorded by either body; its event names the deciding unit",
            "(`data.decidingUnit`). When that unit would be above the city (the city's own",
            "office replied, or reviewed), the request answers `INVALID_TRANSITION` with",
            "`extensions.decidingUnit: null`: the petitioner asks the provincial body.",
            "",
            "## Closing (Arts. 35, 36)",
            "",
            "`close` from `REPLIED` waits until the 30-day review window has passed unused,",
            "from `REVIEWED` until the re-review window has, unless the petitioner declared",
            "itself satisfied (`SATISFIED` or `BASICALLY_SATISFIED`) after that reply or",
            "review decision; otherwise `INVALID_TRANSITION` with `extensions.windowEndsOn`.",
            "From `RE_REVIEWED`, `NOT_ACCEPTED` and `DIVERTED` it is not held back.",
            "",
            "## Holds",
            "",
            "`hold` (hearing, suspension 中止) is approved like an extension: only a leader",
            "over the holding unit puts it (`case:hold`), so no handler stops its own clock;",
            "`resume` is open to the handler, petition officers and leaders (`case:resume`).",
            "",
            "## Cases assigned down from Beijing or the province (京、省交办, seed 000)",
            "",
            "`registerCase` with `assignedDown: {origin, externalNumber, externalDueDate}` records",
            "the bureau's order (an `ASSIGNED_DOWN` event after `REGISTERED`) and opens a",
            "`REPORT_BACK` step due at the end of the bureau's date (docs/deadlines.md: the",
            "earlier of that and our own limit governs `dueAt`). The case is listed on",
            "`assignedDownCases` until `report_back` (mutation `reportAssignedCase`, a petition",
            "officer over the holder, once the case has an answer) meets the step; reply,",
            "rejection and closure leave it open.",
            "",
            "## Mediation (四调联动, seeds 001, 004)",
            "",
            "`start_mediation` (mutation `startMediation`, `kind` people's / administrative /",
            "judicial / the petition office's own, `body` the mediating body) sends an",
            "`ACCEPTED` or `EXTENDED` case to mediation; the status stays and the handling clock",
            "runs on (docs/deadlines.md). One mediation at a time: a second one, and `reply`,",
            "answer `INVALID_TRANSITION` until `record_mediation_outcome`",
            "(`recordMediationOutcome`: `AGREEMENT` with its terms, or `FAILED` with why). After an",
            "agreement the case is replied to and closed as usual; after a failure it is handled",
            "on, possibly by another mediation. `caseMediations(caseId)` lists them under the",
            "case's read rules.",
            "",
            "## 回头看 re-visits (三不限, seed 004)",
            "",
            "The monthly `revisit_list` job (docs/jobs.md) lists last month's `CLOSED` cases the",
            "petitioner rated `DISSATISFIED`. `record_revisit` (mutation `recordRevisit`, a",
            "petition officer or leader over the holder, `case:revisit`) records the re-visit of",
            "a listed case — the day, the caller, the outcome — with an event; the case stays",
            "`CLOSED` (a case still dissatisfied is re-handled as a new case).",
            "",
            "## Objections (Art. 23)",
            "",
            "`object_transfer` (mutation `objectToTransfer`, by the body",
            "the case was transferred to, within 5 working days) leaves the case `ROUTED` with",
            "that body and opens an `OBJECTION_DECISION` step for the routing office; until",
            "the office decides, `route`, `accept`, `reject`, `divert` and a second objection",
            "answer `INVALID_TRANSITION`. `decideObjection(input: {caseId, version, agree,",
            "reason})` by the routing office (a grant covering the unit that routed the case;",
            "anyone else `FORBIDDEN`) records `agree_objection` (back to the office,",
            "`REGISTERED`, a new routing clock; the acceptance step ends `OBJECTED`, not `MET`)",
            "or `refuse_objection` (the case stays; the acceptance clock runs on).",
            "",
        ]
    )
