"""Case stories: petitions that arrived N days ago and what each official did since.

Together they put a case in every status in every city — red (overdue),
yellow and blue ones, an accusation against the housing department and one
against a township, a 包案 case under a 督办 order, a repeat petition, an
extension, reviews and re-reviews — and, where the city has a pool, a
dissatisfied petitioner's case evaluated by a panel (evaluations.py) — and Issue 19's
practices: a case the provincial bureau assigned down (省交办, its 交办单 recorded as
registerCase does), one registered with the grid worker as its 代办 agent, and one in
人民调解 (its handling clock running on).
Each step is one call of the case service as that official, at that moment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from backend.cases import agents, assigned, mediation
from backend.cases import service as cases
from backend.cases.models import AgentKind, CaseType, Channel, Satisfaction
from backend.cases.pii import check_character
from backend.cases.practices import AssignedDown, AssignmentOrigin, MediationKind
from backend.demo.timeline import Timeline
from backend.demo.world import DemoTenant

# (days after the petition arrived, action, who, arguments)
Step = tuple[int, str, str, dict[str, Any]]

REPLY = "经调查核实，已依法依规作出处理，并书面答复信访人。"


@dataclass(frozen=True)
class Story:
    key: str
    ago: int  # the petition arrived this many days before today
    channel: str
    type: str
    category: str
    subject: str
    place: str
    by: str = "officer"
    steps: tuple[Step, ...] = ()
    accused: str | None = None  # ACCUSATION: the place accused
    head_count: int = 1
    same_petitioner_as: str | None = None  # a repeat petition
    needs: str | None = None  # "evaluators": only in a city with a pool
    agent: tuple[str, str] | None = None  # 代办: (AgentKind, the part acting as agent)
    assigned_down: int | None = None  # 省交办: the bureau's due date, days after arrival


def _handled(ago_reply: int, *more: Step) -> tuple[Step, ...]:
    """Accepted by the city office the day after, replied ``ago_reply`` days in."""
    return ((1, "accept", "officer", {}), (ago_reply, "reply", "officer", {}), *more)


def _handled_by(place: str, part: str, ago_reply: int, *more: Step) -> tuple[Step, ...]:
    """Assigned to ``place`` the day after, accepted the day after that and replied
    ``ago_reply`` days in by ``part``: the body that replied, whose parent reviews (Art. 35)
    and whose grandparent re-reviews (Art. 36)."""
    return (
        (1, "route", "officer", {"to": place, "mode": "ASSIGN"}),
        (2, "accept", part, {}),
        (ago_reply, "reply", part, {}),
        *more,
    )


STORIES: list[Story] = [
    Story("new-visit", 1, "VISIT", "CLAIM", "wages", "农民工工资被拖欠三个月", "grid", by="grid"),
    Story(
        "not-routed",
        30,
        "LETTER",
        "CLAIM",
        "rural-affairs",
        "村集体土地租金去向不明",
        "village2",
    ),
    Story(
        "repeat",
        3,
        "PHONE",
        "CLAIM",
        "rural-affairs",
        "再次反映村集体土地租金去向不明",
        "village2",
        same_petitioner_as="not-routed",
    ),
    Story(
        "to-housing",
        4,
        "PHONE",
        "CLAIM",
        "housing",
        "保障房配租资格审核迟迟没有结果",
        "village2",
        steps=((1, "route", "officer", {"to": "housing"}),),
    ),
    Story(
        "housing-not-accepted-in-time",
        22,
        "ONLINE",
        "CLAIM",
        "housing",
        "物业维修基金使用不公开",
        "county2",
        steps=((1, "route", "officer", {"to": "housing"}),),
    ),
    Story(
        "housing-overdue",
        70,
        "ONLINE",
        "CLAIM",
        "housing",
        "小区电梯长期停运无人维修",
        "county",
        steps=((1, "route", "officer", {"to": "housing"}), (2, "accept", "handler", {})),
    ),
    Story(
        "county-yellow",
        55,
        "VISIT",
        "CLAIM",
        "land",
        "征地补偿款未足额发放",
        "village",
        steps=(
            (1, "route", "officer", {"to": "county", "mode": "ASSIGN"}),
            (3, "accept", "county_officer", {}),
        ),
    ),
    Story(
        "baoan-supervised",
        20,
        "VISIT",
        "CLAIM",
        "demolition",
        "拆迁安置面积争议（群体访）",
        "township",
        head_count=12,
        steps=(
            (1, "route", "officer", {"to": "county", "mode": "ASSIGN"}),
            (2, "accept", "county_officer", {}),
            (3, "assign_leader", "leader", {"username": "county_leader"}),
            (5, "supervise", "leader", {"due_in_days": 2}),
        ),
    ),
    Story(
        "extended",
        85,
        "LETTER",
        "CLAIM",
        "pension",
        "退休待遇核定有误",
        "county2",
        steps=(
            (1, "accept", "officer", {}),
            (55, "request_extension", "officer", {"days": 30}),
            (56, "approve_extension", "leader", {}),
        ),
    ),
    Story(
        "not-accepted",
        12,
        "ONLINE",
        "SUGGESTION",
        "other",
        "咨询个人所得税专项附加扣除政策",
        "city",
        steps=((2, "reject", "officer", {}),),
    ),
    Story(
        "diverted",
        9,
        "VISIT",
        "CLAIM",
        "litigation",
        "不服民事判决要求重新审理",
        "county",
        steps=((1, "divert", "officer", {}),),
    ),
    Story(
        "replied",
        45,
        "PHONE",
        "CLAIM",
        "social-insurance",
        "养老保险转移接续受阻",
        "far",
        steps=_handled(40),
    ),
    Story(
        "evaluated",
        75,
        "VISIT",
        "CLAIM",
        "environment",
        "养殖场污染水源",
        "far",
        needs="evaluators",
        steps=_handled(
            45,
            (47, "rate", "officer", {"rating": "DISSATISFIED"}),
            (48, "draw_panel", "officer", {"seed": 2026}),
            (50, "scores", "", {}),
        ),
    ),
    Story(
        "panel-open",
        40,
        "LETTER",
        "CLAIM",
        "medical",
        "医疗费用报销被拒",
        "county2",
        needs="evaluators",
        steps=_handled(
            30,
            (31, "rate", "officer", {"rating": "DISSATISFIED"}),
            (33, "draw_panel", "officer", {"seed": 7}),
            (35, "scores", "", {"waiting_for": "sq_evaluator"}),
        ),
    ),
    Story(
        "review-requested",
        80,
        "LETTER",
        "CLAIM",
        "labor",
        "劳动合同解除经济补偿争议",
        "county",
        steps=_handled_by("county", "county_officer", 55, (62, "request_review", "officer", {})),
    ),
    Story(
        "reviewed",
        110,
        "VISIT",
        "CLAIM",
        "education",
        "学生入学被拒",
        "county",
        steps=_handled_by(
            "county",
            "county_officer",
            60,
            (70, "request_review", "officer", {}),
            (95, "decide_review", "leader", {}),  # the city above the county that replied
        ),
    ),
    Story(
        "re-review-requested",
        130,
        "LETTER",
        "CLAIM",
        "civil-affairs",
        "低保资格被取消",
        "village",
        steps=_handled_by(
            "township",
            "township_officer",
            50,
            (60, "request_review", "officer", {}),
            (85, "decide_review", "county_officer", {}),  # the county above the township
            (110, "request_re_review", "officer", {}),
        ),
    ),
    Story(
        "re-reviewed",
        170,
        "VISIT",
        "CLAIM",
        "veterans",
        "退役安置待遇落实不到位",
        "village",
        steps=_handled_by(
            "township",
            "township_officer",
            50,
            (60, "request_review", "officer", {}),
            (85, "decide_review", "county_officer", {}),
            (100, "request_re_review", "officer", {}),
            (125, "decide_re_review", "leader", {}),  # the city above the county
        ),
    ),
    Story(
        "closed",
        50,
        "QR_CODE",
        "SUGGESTION",
        "transport",
        "建议增设公交站点",
        "county2",
        steps=_handled(
            30,
            (31, "rate", "officer", {"rating": "SATISFIED"}),
            (32, "close", "officer", {}),
        ),
    ),
    Story(
        "accusation-housing",
        6,
        "VISIT",
        "ACCUSATION",
        "discipline",
        "反映市住建局工作人员在保障房分配中优亲厚友",
        "county2",
        accused="housing",
        steps=((1, "accept", "officer", {}),),
    ),
    Story(
        "accusation-township",
        14,
        "LETTER",
        "ACCUSATION",
        "discipline",
        "反映乡干部截留惠农补贴",
        "village",
        accused="township",
        steps=((3, "route", "officer", {"to": "county", "mode": "ASSIGN"}),),
    ),
    # Issue 19's practices: a 省交办 case, a 代办 case, a case in 人民调解
    Story(
        "assigned-down",
        8,
        "LETTER",
        "CLAIM",
        "land",
        "省信访局交办：宅基地确权争议",
        "county2",
        assigned_down=30,
        steps=((1, "accept", "officer", {}),),
    ),
    Story(
        "agent",
        5,
        "VISIT",
        "CLAIM",
        "rural-affairs",
        "网格员代办：高龄老人补贴未发放",
        "grid",
        agent=("GRID_WORKER", "grid"),
    ),
    Story(
        "mediating",
        10,
        "VISIT",
        "CLAIM",
        "rural-affairs",
        "邻里宅基地边界纠纷",
        "village",
        steps=((1, "accept", "officer", {}), (3, "mediate", "officer", {})),
    ),
]

# fmt: off
NAMES = ["张桂英", "李建军", "王秀兰", "刘志强", "陈玉梅", "杨国庆",
         "赵淑珍", "黄海涛", "周丽娟", "吴大勇", "徐红霞", "孙德胜"]
# fmt: on


def _valid_id(n: int) -> str:
    """A demo resident id number (born 1960-1985) with a correct GB 11643 check character."""
    body = f"411403{1960 + n % 26}{n % 12 + 1:02d}{n % 28 + 1:02d}{100 + n:03d}"
    return body + check_character(body)


def petitioner(city: int, n: int) -> cases.PetitionerInput:
    """A made-up petitioner (the numbers are in reserved-looking demo ranges)."""
    return cases.PetitionerInput(
        NAMES[n % len(NAMES)], f"139{city:02d}{n:06d}"[:11], _valid_id(city * 50 + n)
    )


@dataclass
class Tale:
    """One story being told in one city: the case as the last step left it."""

    demo: DemoTenant
    story: Story
    number: int  # the story's index in the city (petitioner, client key)
    city_index: int
    case_id: str = ""
    version: int = 0
    extras: dict[str, Any] = field(default_factory=dict)

    def ref(self) -> cases.CaseRef:
        return cases.CaseRef(self.case_id, self.version)

    def keep(self, case: Any) -> None:
        self.case_id, self.version = str(case.id), case.version


def tell(timeline: Timeline, demo: DemoTenant, city_index: int, panels: Any) -> dict[str, Tale]:
    """Schedule every story that fits ``demo``; the tales by key (evaluations read them)."""
    tales: dict[str, Tale] = {}
    numbers = {s.key: i for i, s in enumerate(STORIES)}
    for story in STORIES:
        if story.needs == "evaluators" and not demo.evaluators:
            continue
        tale = Tale(demo, story, numbers[story.key], city_index)
        tales[story.key] = tale
        who = story.same_petitioner_as
        person = petitioner(city_index, numbers[who] if who else tale.number)
        timeline.schedule(
            timeline.moment(story.ago, minutes=tale.number),
            f"{demo.slug}:{story.key}:register",
            _registration(timeline, tale, person),
        )
        for offset, action, part, args in story.steps:
            if offset >= story.ago:
                raise ValueError(f"story {story.key}: step {action} is not in the past")
            timeline.schedule(
                timeline.moment(story.ago - offset, minutes=tale.number),
                f"{demo.slug}:{story.key}:{action}",
                _step(timeline, tale, action, part, args, panels),
            )
    return tales


def registration_input(
    tale: Tale, person: cases.PetitionerInput, arrived: date | None = None
) -> cases.RegisterCaseInput:
    story, demo = tale.story, tale.demo
    agent = assigned_down = None
    if story.agent:
        kind, part = story.agent
        agent = agents.AgentInput(AgentKind(kind), demo.actor(part))
    if story.assigned_down and arrived is not None:
        assigned_down = AssignedDown(
            AssignmentOrigin.PROVINCIAL_BUREAU,
            f"省交〔{arrived.year}〕{demo.prefix}{tale.number:03d}号",
            arrived + timedelta(days=story.assigned_down),
        )
    return cases.RegisterCaseInput(
        client_key=f"demo-{demo.slug}-{story.key}",
        channel=Channel(story.channel),
        type=CaseType(story.type),
        category=story.category,
        subject=story.subject,
        content=f"{story.subject}。信访人请求依法处理。（演示数据）",
        petitioner=person,
        location_path=demo.path(story.place),
        accused_unit_path=demo.path(story.accused) if story.accused else None,
        head_count=story.head_count,
        agent=agent,
        assigned_down=assigned_down,
    )


def _registration(timeline: Timeline, tale: Tale, person: cases.PetitionerInput):
    async def run() -> None:
        async with timeline.acting(tale.demo.actor(tale.story.by)) as (session, principal):
            arrived = timeline.today - timedelta(days=tale.story.ago)
            data = registration_input(tale, person, arrived)
            if data.assigned_down is not None:  # as registerCase does: the 交办单 recorded too
                tale.keep((await assigned.intake(session, principal, data)).case)
            else:
                tale.keep(await cases.register_case(session, principal, data))

    return run


def _step(timeline: Timeline, tale: Tale, action: str, part: str, args: dict, panels: Any):
    async def run() -> None:
        if action == "scores":
            await panels.score(timeline, tale, **args)
            return
        if action == "draw_panel":
            await panels.draw(timeline, tale, **args)
            return
        async with timeline.acting(tale.demo.actor(part)) as (session, principal):
            tale.keep(await _apply(session, principal, tale, action, args, timeline.today))

    return run


# The steps whose arguments are the same in every story: the service call and its words.
_FIXED_STEPS: dict[str, tuple[Callable[..., Awaitable[Any]], dict[str, Any]]] = {
    "accept": (cases.accept_case, {}),
    "reject": (
        cases.reject_case,
        {"reason": "不属于信访事项受理范围，已告知信访人向税务部门咨询。"},
    ),
    "divert": (
        cases.divert_case,
        {
            "channel": "LITIGATION",
            "reason": "已进入诉讼程序，引导信访人通过法定途径解决（诉访分离）。",
        },
    ),
    "approve_extension": (cases.approve_extension, {}),
    "reply": (cases.reply_case, {"opinion": REPLY}),
    "request_review": (cases.request_review, {"reason": "对答复意见不服"}),
    "decide_review": (
        cases.decide_review,
        {"opinion": "经复查，原答复意见事实清楚、处理恰当，予以维持。"},
    ),
    "request_re_review": (cases.request_re_review, {"reason": "对复查不服"}),
    "decide_re_review": (
        cases.decide_re_review,
        {"opinion": "经复核，维持复查意见；同一事实不再受理。"},
    ),
    "close": (cases.close_case, {"resolution": "信访人表示满意，事项办结。"}),
}


async def _apply(session, principal, tale: Tale, action: str, args: dict, today: date):
    """The case service call behind one step."""
    demo, ref = tale.demo, tale.ref()
    if action in _FIXED_STEPS:
        call, words = _FIXED_STEPS[action]
        return await call(session, principal, ref, **words)
    match action:
        case "route":
            target = demo.path(args["to"])
            mode = args.get("mode", "TRANSFER")
            return await cases.route_case(session, principal, ref, to_unit_path=target, mode=mode)
        case "request_extension":
            reason = "需调取历年档案并与社保部门核对，申请延期。"
            return await cases.request_extension(
                session, principal, ref, days=args["days"], reason=reason
            )
        case "rate":
            rating = Satisfaction(args["rating"])
            return await cases.rate_satisfaction(session, principal, ref, rating=rating)
        case "assign_leader":
            leader = demo.actor(args["username"])
            return await cases.assign_case_leader(session, principal, ref, username=leader)
        case "mediate":
            return await mediation.start_mediation(
                session,
                principal,
                ref,
                kind=MediationKind.PEOPLES,
                body="乡人民调解委员会",
                note="双方同意调解，办理期限照常计算。",
            )
        case "supervise":
            due = today + timedelta(days=args["due_in_days"])
            note = "督办：请于期限内报送化解进展和稳控措施。"
            return await cases.issue_supervision_order(
                session, principal, ref, due_date=due, note=note
            )
    raise ValueError(f"unknown demo step {action}")
