"""案件办理质量评价 in the demo: an evaluator pool, and panels for dissatisfied petitioners.

The city admin enrols the pool (a lawyer — ``sq_evaluator`` — a scholar, a
people's deputy, a veteran and a 五老 elder); the petition office draws panels
of three with a stored seed. One panel has scored and concluded (verdict and
follow-up step on the case); on the other everyone has scored but
``sq_evaluator``, whose evaluation is still waiting.
"""

from __future__ import annotations

from backend.cases.service import find_case
from backend.demo.cases import Tale
from backend.demo.timeline import Timeline
from backend.demo.world import DemoTenant
from backend.evaluations.models import EvaluatorCategory, Verdict
from backend.evaluations.panels import draw_panel, members_of
from backend.evaluations.pool import add_evaluator
from backend.evaluations.verdicts import ScoreInput, submit_evaluation

PANEL_SIZE = 3
# facts, procedure, law and policy, responsibility, verdict, comment — one per seat; the
# means (2.67, 2.33, 3.67, 2.33) propose PARTLY_REASONABLE and the majority confirms it
# (scoring.propose)
SCORES = [
    (4, 3, 4, 3, Verdict.PARTLY_REASONABLE, "补偿标准执行基本到位，但监测数据未向信访人公开。"),
    (3, 3, 4, 3, Verdict.PARTLY_REASONABLE, "建议补充第三方水质检测。"),
    (2, 2, 3, 2, Verdict.REASONABLE, "监测数据至今未公开，诉求应予支持。"),
]
ENROLLED_DAYS_AGO = 120


class Panels:
    """The pool and the panels of one city."""

    def __init__(self, demo: DemoTenant) -> None:
        self.demo = demo

    def enrol(self, timeline: Timeline) -> None:
        if not self.demo.evaluators:
            return

        async def run() -> None:
            async with timeline.acting(self.demo.actor("admin")) as (session, principal):
                for username, category in self.demo.evaluators:
                    await add_evaluator(
                        session,
                        principal,
                        username=username,
                        category=EvaluatorCategory(category),
                    )
            for username, _ in self.demo.evaluators:
                timeline.forget(username)  # enrolment granted the EVALUATOR role

        timeline.schedule(timeline.moment(ENROLLED_DAYS_AGO), f"{self.demo.slug}:pool", run)

    async def draw(self, timeline: Timeline, tale: Tale, *, seed: int) -> None:
        async with timeline.acting(self.demo.actor("officer")) as (session, principal):
            panel = await draw_panel(
                session, principal, case_id=tale.case_id, size=PANEL_SIZE, seed=seed
            )
            members = (await members_of(session, [panel.id]))[panel.id]
        tale.extras["panel"] = str(panel.id)
        tale.extras["members"] = [m.username for m in members]

    async def score(
        self, timeline: Timeline, tale: Tale, *, waiting_for: str | None = None
    ) -> None:
        """Each member submits (in seat order), but ``waiting_for`` who has not yet."""
        for seat, username in enumerate(tale.extras["members"]):
            if username == waiting_for:
                continue
            facts, procedure, law, duty, verdict, comment = SCORES[seat % len(SCORES)]
            async with timeline.acting(username) as (session, principal):
                await submit_evaluation(
                    session,
                    principal,
                    panel_id=tale.extras["panel"],
                    scores=ScoreInput(facts, procedure, law, duty, verdict, comment=comment),
                )
        # the last score concluded the panel and moved the case on: read its version again
        async with timeline.acting(self.demo.actor("officer")) as (session, principal):
            tale.keep(await find_case(session, principal, tale.case_id))
